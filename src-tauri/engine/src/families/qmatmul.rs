//! Quantized matrix products for GGUF weight types whose candle 0.11 CPU kernel is scalar.
//!
//! Profiling SmolLM2 (Q4_1) decode showed 76% of the time in candle's `vec_dot_unopt` for Q4_1,
//! which has no SIMD path. This does the same arithmetic as ggml's `vec_dot_q4_1_q8_1`
//! (activations quantized to 8-bit blocks of 32 with f16 scales, integer dot products, then
//! `d_w * d_x * Σ q_w q_x + m_w * s_x` per block), compiled for the CPU's vector units at run
//! time and spread over the output rows on rayon's pool.

use half::f16;
use rayon::prelude::*;

use super::kernels::simd;

/// Bytes of one Q4_1 block: f16 scale, f16 minimum, 16 bytes of packed 4-bit values.
const Q4_1_BLOCK: usize = 20;
pub(super) const QK: usize = 32;

/// Activations quantized as ggml's Q8_1: per block of 32, a scale `d` and `s = d * Σ q`, both
/// rounded through f16 as ggml stores them.
pub(super) struct Q8_1 {
    pub(super) q: Vec<i8>,
    pub(super) d: Vec<f32>,
    pub(super) s: Vec<f32>,
}

pub(super) fn quantize_q8_1(x: &[f32]) -> Q8_1 {
    let blocks = x.len() / QK;
    let mut q = vec![0i8; x.len()];
    let mut d = Vec::with_capacity(blocks);
    let mut s = Vec::with_capacity(blocks);
    for (xs, qs) in x.chunks_exact(QK).zip(q.chunks_exact_mut(QK)) {
        let amax = xs.iter().fold(0f32, |a, v| a.max(v.abs()));
        let scale = amax / 127.0;
        let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        let mut sum = 0i32;
        for (qv, xv) in qs.iter_mut().zip(xs) {
            *qv = (xv * inv).round() as i8;
            sum += i32::from(*qv);
        }
        let scale16 = f16::from_f32(scale);
        d.push(scale16.to_f32());
        s.push((f16::from_f32(sum as f32) * scale16).to_f32());
    }
    Q8_1 { q, d, s }
}

/// An f16 (as stored in a block) to f32, exact for every finite value, without a call: `half`
/// picks its F16C path at run time through a function that does not inline into the kernel
/// (2.6% of decode in the profile). Moving the exponent and mantissa into place and scaling by
/// 2^112 re-biases the exponent and also handles subnormals.
#[inline(always)]
pub(super) fn f16_bits_to_f32(lo: u8, hi: u8) -> f32 {
    let h = u32::from(u16::from_le_bytes([lo, hi]));
    let magnitude = f32::from_bits((h & 0x7fff) << 13) * f32::from_bits(0x7780_0000);
    f32::from_bits(magnitude.to_bits() | ((h & 0x8000) << 16))
}

/// `x` rounded as the 8-bit activation blocks of ggml's Q8_0/Q8_1 products (blocks of 32,
/// scale `max|x| / 127` stored in f16), back in f32. The prefill path multiplies dequantized
/// weights by these in one f32 GEMM: the same products as the integer kernel, so a prompt's
/// numbers do not depend on which path ran (and stay close to llama.cpp's).
pub fn round_like_q8(x: &mut [f32]) {
    for block in x.chunks_exact_mut(QK) {
        let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
        let scale = amax / 127.0;
        let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
        let scale16 = f16::from_f32(scale).to_f32();
        for v in block.iter_mut() {
            *v = (*v * inv).round() * scale16;
        }
    }
}

/// One row of Q4_1 weights against one row of Q8_1 activations.
#[inline(always)]
fn dot_q4_1(w: &[u8], x: &[i8], xd: &[f32], xs: &[f32]) -> f32 {
    let mut total = 0f32;
    for (((block, xq), d), s) in w
        .chunks_exact(Q4_1_BLOCK)
        .zip(x.chunks_exact(QK))
        .zip(xd)
        .zip(xs)
    {
        let wd = f16_bits_to_f32(block[0], block[1]);
        let wm = f16_bits_to_f32(block[2], block[3]);
        let qs = &block[4..Q4_1_BLOCK];
        let (lo, hi) = xq.split_at(QK / 2);
        let mut sum = 0i32;
        for j in 0..QK / 2 {
            sum += i32::from(qs[j] & 0x0F) * i32::from(lo[j])
                + i32::from(qs[j] >> 4) * i32::from(hi[j]);
        }
        total += sum as f32 * wd * d + wm * s;
    }
    total
}

/// [`dot_q4_1`] with AVX2 integer dot products (`vpmaddubsw`: 32 unsigned 4-bit weights times
/// 32 signed 8-bit activations per instruction) and FMA, as ggml does it on this hardware.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn dot_q4_1_avx2(simd: pulp::x86::V3, w: &[u8], x: &[i8], xd: &[f32], xs: &[f32]) -> f32 {
    use core::arch::x86_64::{__m128i, __m256i};
    use pulp::bytemuck::cast;
    let (avx, avx2, fma, sse, sse2) = (simd.avx, simd.avx2, simd.fma, simd.sse, simd.sse2);
    let low = avx._mm256_set1_epi8(0x0F);
    let ones = avx._mm256_set1_epi16(1);
    let mut acc = avx._mm256_setzero_ps();
    let mut min_terms = 0f32;
    for (((block, xq), d), s) in w
        .chunks_exact(Q4_1_BLOCK)
        .zip(x.chunks_exact(QK))
        .zip(xd)
        .zip(xs)
    {
        let wd = f16_bits_to_f32(block[0], block[1]);
        let wm = f16_bits_to_f32(block[2], block[3]);
        let mut packed = [0u8; 16];
        packed.copy_from_slice(&block[4..Q4_1_BLOCK]);
        let mut acts = [0i8; QK];
        acts.copy_from_slice(xq);
        let packed: __m128i = cast(packed);
        // Bytes 0..16: low nibbles (elements 0..16); 16..32: high nibbles (16..32).
        let nibbles = avx._mm256_set_m128i(sse2._mm_srli_epi16::<4>(packed), packed);
        let weights = avx2._mm256_and_si256(nibbles, low);
        let acts: __m256i = cast(acts);
        let pairs = avx2._mm256_maddubs_epi16(weights, acts);
        let sums = avx._mm256_cvtepi32_ps(avx2._mm256_madd_epi16(pairs, ones));
        acc = fma._mm256_fmadd_ps(sums, avx._mm256_set1_ps(wd * d), acc);
        min_terms += wm * s;
    }
    let quad = sse._mm_add_ps(
        avx._mm256_castps256_ps128(acc),
        avx._mm256_extractf128_ps::<1>(acc),
    );
    let lanes: [f32; 4] = cast(quad);
    lanes.iter().sum::<f32>() + min_terms
}

/// Bytes of one Q5_0 block: f16 scale, 32 high bits, 16 bytes of packed low 4-bit values.
const Q5_0_BLOCK: usize = 22;

/// One row of Q5_0 weights against one row of 8-bit activations (ggml's `vec_dot_q5_0_q8_0`:
/// values `(low4 | high1 << 4) - 16`, scaled by both blocks' `d`).
#[inline(always)]
fn dot_q5_0(w: &[u8], x: &[i8], xd: &[f32]) -> f32 {
    let mut total = 0f32;
    for ((block, xq), d) in w.chunks_exact(Q5_0_BLOCK).zip(x.chunks_exact(QK)).zip(xd) {
        let wd = f16_bits_to_f32(block[0], block[1]);
        let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
        let qs = &block[6..Q5_0_BLOCK];
        let (lo, hi) = xq.split_at(QK / 2);
        let mut sum = 0i32;
        for j in 0..QK / 2 {
            let w0 = i32::from(qs[j] & 0x0F) | ((((qh >> j) & 1) as i32) << 4);
            let w1 = i32::from(qs[j] >> 4) | ((((qh >> (j + 16)) & 1) as i32) << 4);
            sum += (w0 - 16) * i32::from(lo[j]) + (w1 - 16) * i32::from(hi[j]);
        }
        total += sum as f32 * wd * d;
    }
    total
}

/// `x · Wᵀ` for `W` (`[n, k]`) stored as Q5_0 blocks (Gemma 3's output head in Q4_K_M files:
/// candle's Q5_0 product is scalar and was half of its decode time); returns `[m, n]`.
pub fn matmul_q5_0(w: &[u8], n: usize, k: usize, x: &[f32], m: usize) -> Vec<f32> {
    let row_bytes = k / QK * Q5_0_BLOCK;
    let blocks = k / QK;
    let xq: Vec<Q8_1> = x.chunks_exact(k).map(quantize_q8_1).collect();
    let mut out_t = vec![0f32; n * m];
    let per_task = n
        .div_ceil(rayon::current_num_threads() * 2)
        .max(ROWS_PER_TASK);
    out_t
        .par_chunks_mut(per_task * m)
        .enumerate()
        .for_each(|(task, out)| {
            let first = task * per_task;
            simd(
                #[inline(always)]
                || {
                    for (r, row_out) in out.chunks_exact_mut(m).enumerate() {
                        let row = first + r;
                        let wrow = &w[row * row_bytes..(row + 1) * row_bytes];
                        for (o, xr) in row_out.iter_mut().zip(&xq) {
                            *o = dot_q5_0(wrow, &xr.q, &xr.d[..blocks]);
                        }
                    }
                },
            )
        });
    transpose(&out_t, n, m)
}

/// `[n][m]` to `[m][n]`.
pub(super) fn transpose(out_t: &[f32], n: usize, m: usize) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    for (row, values) in out_t.chunks_exact(m).enumerate() {
        for (i, v) in values.iter().enumerate() {
            out[i * n + row] = *v;
        }
    }
    out
}

/// The fewest output rows worth a parallel task.
const ROWS_PER_TASK: usize = 64;

/// `x · Wᵀ` for `W` (`[n, k]`) stored as Q4_1 blocks and `x` (`[m, k]`) in f32; returns
/// `[m, n]`. `k` must be a multiple of 32 (GGUF guarantees it for Q4_1 tensors).
pub fn matmul_q4_1(w: &[u8], n: usize, k: usize, x: &[f32], m: usize) -> Vec<f32> {
    let row_bytes = k / QK * Q4_1_BLOCK;
    let blocks = k / QK;
    let xq: Vec<Q8_1> = x.chunks_exact(k).map(quantize_q8_1).collect();
    // Transposed result, [n][m], so each task owns whole weight rows (read once, used m times).
    let mut out_t = vec![0f32; n * m];
    // One task per thread (a few more for balance): each hand-off costs more than the rows.
    let per_task = n
        .div_ceil(rayon::current_num_threads() * 2)
        .max(ROWS_PER_TASK);
    out_t
        .par_chunks_mut(per_task * m)
        .enumerate()
        .for_each(|(task, out)| {
            let first = task * per_task;
            #[cfg(target_arch = "x86_64")]
            if let Some(v3) = pulp::x86::V3::try_new() {
                v3.vectorize(
                    #[inline(always)]
                    || {
                        for (r, row_out) in out.chunks_exact_mut(m).enumerate() {
                            let row = first + r;
                            let wrow = &w[row * row_bytes..(row + 1) * row_bytes];
                            for (o, xr) in row_out.iter_mut().zip(&xq) {
                                *o = dot_q4_1_avx2(
                                    v3,
                                    wrow,
                                    &xr.q,
                                    &xr.d[..blocks],
                                    &xr.s[..blocks],
                                );
                            }
                        }
                    },
                );
                return;
            }
            simd(
                #[inline(always)]
                || {
                    for (r, row_out) in out.chunks_exact_mut(m).enumerate() {
                        let row = first + r;
                        let wrow = &w[row * row_bytes..(row + 1) * row_bytes];
                        for (o, xr) in row_out.iter_mut().zip(&xq) {
                            *o = dot_q4_1(wrow, &xr.q, &xr.d[..blocks], &xr.s[..blocks]);
                        }
                    }
                },
            )
        });
    transpose(&out_t, n, m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    /// Same numbers as candle's own (scalar) Q4_1 product, on random weights and inputs.
    /// Same numbers as candle's own (scalar) Q5_0 product.
    #[test]
    fn q5_0_matches_candles_reference() {
        let (n, k, m) = (80, 128, 2);
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        let x = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q5_0).unwrap();
        let bytes = q.data().unwrap().to_vec();
        let want = QMatMul::from_qtensor(q).unwrap().forward(&x).unwrap();
        let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
        let xs: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        let got = matmul_q5_0(&bytes, n, k, &xs, m);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{g} vs {w}");
        }
    }

    #[test]
    fn f16_conversion_is_exact() {
        for bits in (0u16..=0xffff).filter(|b| b & 0x7c00 != 0x7c00) {
            let [lo, hi] = bits.to_le_bytes();
            assert_eq!(
                f16_bits_to_f32(lo, hi).to_bits(),
                f16::from_bits(bits).to_f32().to_bits(),
                "{bits:#x}"
            );
        }
    }

    #[test]
    fn q4_1_matches_candles_reference() {
        let (n, k, m) = (96, 256, 3);
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        let x = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q4_1).unwrap();
        let bytes = q.data().unwrap().to_vec();
        let want = QMatMul::from_qtensor(q).unwrap().forward(&x).unwrap();
        let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
        let xs: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
        let got = matmul_q4_1(&bytes, n, k, &xs, m);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{g} vs {w}");
        }
        // The portable loop gives the same numbers as the AVX2 one.
        let q = quantize_q8_1(&xs[..k]);
        let row = &bytes[..k / QK * Q4_1_BLOCK];
        let portable = dot_q4_1(row, &q.q, &q.d, &q.s);
        assert!((portable - got[0]).abs() <= 1e-4 * portable.abs().max(1.0));
    }
}
