//! Quantized matrix products for GGUF weight types whose candle 0.11 CPU kernel is scalar.
//!
//! Profiling SmolLM2 (Q4_1) decode showed 76% of the time in candle's `vec_dot_unopt` for Q4_1,
//! which has no SIMD path. This does the same arithmetic as ggml's `vec_dot_q4_1_q8_1`
//! (activations quantized to 8-bit blocks of 32 with f16 scales, integer dot products, then
//! `d_w * d_x * Σ q_w q_x + m_w * s_x` per block), compiled for the CPU's vector units at run
//! time and spread over the output rows on rayon's pool.

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use half::f16;
use rayon::prelude::*;

use super::simd;

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
    // Under `simd` `round` becomes one instruction pair; outside it, a libm call per value
    // (2.7% of SmolLM2's decode).
    simd(
        #[inline(always)]
        || {
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
        },
    );
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
    simd(
        #[inline(always)]
        || {
            for block in x.chunks_exact_mut(QK) {
                let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
                let scale = amax / 127.0;
                let inv = if scale != 0.0 { 1.0 / scale } else { 0.0 };
                let scale16 = f16::from_f32(scale).to_f32();
                for v in block.iter_mut() {
                    *v = (*v * inv).round() * scale16;
                }
            }
        },
    )
}

/// One GGML block type's dot product of a weight row (GGUF's bytes) with a row of 8-bit
/// activations: a portable version and, on x86-64, an AVX2 one. [`ggml_matmul`] drives either
/// over a matrix; adding a type means one more implementation.
trait RowKernel: Sync {
    /// Bytes per block of 32 weights.
    const BLOCK: usize;
    fn portable(w: &[u8], x: &Q8_1) -> f32;
    /// One block's 32 weights in f32, as candle and ggml dequantize them.
    fn dequantize(block: &[u8], out: &mut [f32]);
    #[cfg(target_arch = "x86_64")]
    fn avx2(simd: pulp::x86::V3, w: &[u8], x: &Q8_1) -> f32;
}

/// `x · Wᵀ` for `W` (`[n, k]`) stored as blocks of `K` and `x` (`[m, k]`) in f32; returns
/// `[m, n]`. `k` must be a multiple of 32 (GGUF guarantees it for these types).
fn ggml_matmul<K: RowKernel>(w: &[u8], n: usize, k: usize, x: &[f32], m: usize) -> Vec<f32> {
    let row_bytes = k / QK * K::BLOCK;
    let xq: Vec<Q8_1> = x.chunks_exact(k).map(quantize_q8_1).collect();
    by_row_tasks(n, m, |first, out| {
        let rows = out.chunks_exact_mut(m).enumerate();
        // No helper closure for the row's slice: one defined out here and called inside
        // `vectorize` was left out of line in dev builds, and with it every intrinsic of the
        // kernel (5x slower tests).
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = pulp::x86::V3::try_new() {
            v3.vectorize(
                #[inline(always)]
                || {
                    for (r, row_out) in rows {
                        let start = (first + r) * row_bytes;
                        prefetch_rows_ahead(v3, w, start, row_bytes);
                        for (o, xr) in row_out.iter_mut().zip(&xq) {
                            *o = K::avx2(v3, &w[start..][..row_bytes], xr);
                        }
                    }
                },
            );
            return;
        }
        simd(
            #[inline(always)]
            || {
                for (r, row_out) in rows {
                    for (o, xr) in row_out.iter_mut().zip(&xq) {
                        *o = K::portable(&w[(first + r) * row_bytes..][..row_bytes], xr);
                    }
                }
            },
        )
    })
}

/// Asks for a row about 2 KiB after the one at `start` (`row_len` elements) to be brought into
/// cache. The rows are one sequential stream, but on the AVX-512 Xeon VM the hardware
/// prefetcher left the kernels waiting on memory: two thirds of Gemma 3's decode samples sat
/// on the weight loads, and asking ahead doubled its decode speed (18 -> 36 tok/s).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn prefetch_rows_ahead<T>(simd: pulp::x86::V3, w: &[T], start: usize, row_len: usize) {
    use core::arch::x86_64::_MM_HINT_T0;
    // About 2 KiB ahead, at least two rows: 0.5-8 KiB measured the same (SmolLM2 and Gemma 3
    // decode, alternating); what mattered was asking at all.
    let rows_ahead = (2048 / (row_len * std::mem::size_of::<T>()).max(1)).max(2);
    let from = (start + rows_ahead * row_len).min(w.len());
    let to = (from + row_len).min(w.len());
    let per_line = (64 / std::mem::size_of::<T>().max(1)).max(1);
    for line in w[from..to].chunks(per_line) {
        simd.sse._mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast());
    }
}

/// The sum of a vector's eight lanes.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn horizontal_sum(simd: pulp::x86::V3, v: core::arch::x86_64::__m256) -> f32 {
    let (avx, sse) = (simd.avx, simd.sse);
    let quad = sse._mm_add_ps(
        avx._mm256_castps256_ps128(v),
        avx._mm256_extractf128_ps::<1>(v),
    );
    let lanes: [f32; 4] = pulp::bytemuck::cast(quad);
    lanes.iter().sum()
}

/// Eight i32 sums of pairs of products of `w` (as signed bytes) and `x`: `vpmaddubsw` wants one
/// unsigned operand, so it multiplies `|w|` by `x` carrying `w`'s sign (as ggml does). Returned
/// as f32, ready to be scaled.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn signed_byte_sums(
    simd: pulp::x86::V3,
    w: core::arch::x86_64::__m256i,
    x: core::arch::x86_64::__m256i,
) -> core::arch::x86_64::__m256 {
    let (avx, avx2) = (simd.avx, simd.avx2);
    let pairs = avx2._mm256_maddubs_epi16(avx2._mm256_abs_epi8(w), avx2._mm256_sign_epi8(x, w));
    avx._mm256_cvtepi32_ps(avx2._mm256_madd_epi16(pairs, avx._mm256_set1_epi16(1)))
}

/// A block's 32 activations as one vector.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn activations(q: &[i8]) -> core::arch::x86_64::__m256i {
    pulp::bytemuck::pod_read_unaligned(pulp::bytemuck::cast_slice(&q[..QK]))
}

/// Runs `step(acc, block, activations, activation scale, activation sum)` over a row's blocks
/// with two accumulators, alternating, so consecutive blocks' FMAs do not wait on each other
/// (indexing an array of two kept them in memory: a store and reload on every block).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn two_accumulators(
    simd: pulp::x86::V3,
    w: &[u8],
    block_bytes: usize,
    x: &Q8_1,
    step: impl Fn(core::arch::x86_64::__m256, &[u8], &[i8], f32, f32) -> core::arch::x86_64::__m256,
) -> f32 {
    let avx = simd.avx;
    let (mut even, mut odd) = (avx._mm256_setzero_ps(), avx._mm256_setzero_ps());
    let mut blocks = w
        .chunks_exact(block_bytes)
        .zip(x.q.chunks_exact(QK))
        .zip(x.d.iter().zip(&x.s));
    while let Some(((block, q), (d, s))) = blocks.next() {
        even = step(even, block, q, *d, *s);
        let Some(((block, q), (d, s))) = blocks.next() else {
            break;
        };
        odd = step(odd, block, q, *d, *s);
    }
    horizontal_sum(simd, avx._mm256_add_ps(even, odd))
}

/// 16 bytes of nibbles as 32 values in element order: low nibbles (elements 0..16), then high
/// nibbles (16..32), as GGML's 4- and 5-bit blocks store them.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn unpack_nibbles(simd: pulp::x86::V3, packed: &[u8]) -> core::arch::x86_64::__m256i {
    use core::arch::x86_64::__m128i;
    let (avx, avx2, sse2) = (simd.avx, simd.avx2, simd.sse2);
    let packed: __m128i = pulp::bytemuck::pod_read_unaligned(&packed[..16]);
    let both = avx._mm256_set_m128i(sse2._mm_srli_epi16::<4>(packed), packed);
    avx2._mm256_and_si256(both, avx._mm256_set1_epi8(0x0F))
}

/// GGML's Q4_1, in the layout GGUF stores it. Only tied embedding tables use this now:
/// projections are repacked at load ([`super::q4_1_packed`]).
struct Q4_1;

impl RowKernel for Q4_1 {
    /// f16 scale, f16 minimum, 16 bytes of packed 4-bit values.
    const BLOCK: usize = 20;

    #[inline(always)]
    fn portable(w: &[u8], x: &Q8_1) -> f32 {
        let mut total = 0f32;
        for (((block, xq), d), s) in w
            .chunks_exact(Self::BLOCK)
            .zip(x.q.chunks_exact(QK))
            .zip(&x.d)
            .zip(&x.s)
        {
            let wd = f16_bits_to_f32(block[0], block[1]);
            let wm = f16_bits_to_f32(block[2], block[3]);
            let (lo, hi) = xq.split_at(QK / 2);
            let mut sum = 0i32;
            for ((q, l), h) in block[4..].iter().zip(lo).zip(hi) {
                sum += i32::from(q & 0x0F) * i32::from(*l) + i32::from(q >> 4) * i32::from(*h);
            }
            total += sum as f32 * wd * d + wm * s;
        }
        total
    }

    #[inline(always)]
    fn dequantize(block: &[u8], out: &mut [f32]) {
        let d = f16_bits_to_f32(block[0], block[1]);
        let m = f16_bits_to_f32(block[2], block[3]);
        let (lo, hi) = out.split_at_mut(QK / 2);
        for ((l, h), q) in lo.iter_mut().zip(hi).zip(&block[4..]) {
            *l = f32::from(q & 0x0F) * d + m;
            *h = f32::from(q >> 4) * d + m;
        }
    }

    /// Integer dot products with `vpmaddubsw` (32 unsigned 4-bit weights times 32 signed 8-bit
    /// activations per instruction) and FMA, as ggml does it on this hardware. The minimum
    /// term `m_w s_x` rides in lane 0 of the same FMA chain.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn avx2(simd: pulp::x86::V3, w: &[u8], x: &Q8_1) -> f32 {
        let (avx, avx2, fma, sse) = (simd.avx, simd.avx2, simd.fma, simd.sse);
        two_accumulators(
            simd,
            w,
            Self::BLOCK,
            x,
            #[inline(always)]
            |acc, block, q, d, s| {
                let wd = f16_bits_to_f32(block[0], block[1]);
                let wm = f16_bits_to_f32(block[2], block[3]);
                let weights = unpack_nibbles(simd, &block[4..]);
                let pairs = avx2._mm256_maddubs_epi16(weights, activations(q));
                let sums =
                    avx._mm256_cvtepi32_ps(avx2._mm256_madd_epi16(pairs, avx._mm256_set1_epi16(1)));
                let acc = fma._mm256_fmadd_ps(sums, avx._mm256_set1_ps(wd * d), acc);
                let min_term = avx._mm256_zextps128_ps256(sse._mm_set_ss(wm * s));
                avx._mm256_add_ps(acc, min_term)
            },
        )
    }
}

/// GGML's Q5_0: values `(low4 | high1 << 4) - 16`, scaled by the block's `d` (ggml's
/// `vec_dot_q5_0_q8_0`). Gemma 3 270M's Q4_K_M file stores most of its matrices so (its
/// width, 640, is not a multiple of the K-quants' 256).
struct Q5_0;

impl RowKernel for Q5_0 {
    /// f16 scale, 32 high bits, 16 bytes of packed low 4-bit values.
    const BLOCK: usize = 22;

    #[inline(always)]
    fn portable(w: &[u8], x: &Q8_1) -> f32 {
        let mut total = 0f32;
        for ((block, xq), d) in w
            .chunks_exact(Self::BLOCK)
            .zip(x.q.chunks_exact(QK))
            .zip(&x.d)
        {
            let wd = f16_bits_to_f32(block[0], block[1]);
            let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
            let qs = &block[6..];
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

    #[inline(always)]
    fn dequantize(block: &[u8], out: &mut [f32]) {
        let d = f16_bits_to_f32(block[0], block[1]);
        let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
        let (lo, hi) = out.split_at_mut(QK / 2);
        for (j, ((l, h), q)) in lo.iter_mut().zip(hi).zip(&block[6..]).enumerate() {
            let w0 = i32::from(q & 0x0F) | ((((qh >> j) & 1) as i32) << 4);
            let w1 = i32::from(q >> 4) | ((((qh >> (j + 16)) & 1) as i32) << 4);
            *l = (w0 - 16) as f32 * d;
            *h = (w1 - 16) as f32 * d;
        }
    }

    /// The nibbles unpacked as for Q4_1; the 32 high bits spread one per byte (each byte
    /// picks its bit with a shuffle, an OR and a compare), and bytes whose bit is clear get
    /// `0xF0`, which makes `low4 - 16` as a signed byte. Then the signed product of Q8_0.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn avx2(simd: pulp::x86::V3, w: &[u8], x: &Q8_1) -> f32 {
        use core::arch::x86_64::__m256i;
        let (avx, avx2, fma) = (simd.avx, simd.avx2, simd.fma);
        // Byte i of the result reads byte i / 8 of the high bits...
        let spread: __m256i = pulp::bytemuck::cast([
            0u8, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3,
            3, 3, 3, 3,
        ]);
        // ...and keeps bit i % 8 of it: every other bit is set, so the byte is all ones exactly
        // when its bit is.
        let others = avx._mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe);
        let all = avx._mm256_set1_epi8(-1);
        let high_nibble = avx._mm256_set1_epi8(0xF0u8 as i8);
        two_accumulators(
            simd,
            w,
            Self::BLOCK,
            x,
            #[inline(always)]
            |acc, block, q, d, _| {
                let wd = f16_bits_to_f32(block[0], block[1]);
                let qh = i32::from_le_bytes([block[2], block[3], block[4], block[5]]);
                let bits = avx2._mm256_shuffle_epi8(avx._mm256_set1_epi32(qh), spread);
                let set = avx2._mm256_cmpeq_epi8(avx2._mm256_or_si256(bits, others), all);
                let weights = avx2._mm256_or_si256(
                    unpack_nibbles(simd, &block[6..]),
                    avx2._mm256_andnot_si256(set, high_nibble),
                );
                let sums = signed_byte_sums(simd, weights, activations(q));
                fma._mm256_fmadd_ps(sums, avx._mm256_set1_ps(wd * d), acc)
            },
        )
    }
}

/// GGML's Q8_0: 32 signed bytes and a scale (ggml's `vec_dot_q8_0_q8_0`). Tied output heads
/// keep it: SmolLM2's 49k-row head was a quarter of its decode time in candle's product, which
/// converts each block's scale through a function call and runs on its own thread pool.
struct Q8_0;

impl RowKernel for Q8_0 {
    /// f16 scale, 32 signed 8-bit values.
    const BLOCK: usize = 34;

    #[inline(always)]
    fn portable(w: &[u8], x: &Q8_1) -> f32 {
        let mut total = 0f32;
        for ((block, xq), d) in w
            .chunks_exact(Self::BLOCK)
            .zip(x.q.chunks_exact(QK))
            .zip(&x.d)
        {
            let wd = f16_bits_to_f32(block[0], block[1]);
            let sum: i32 = block[2..]
                .iter()
                .zip(xq)
                .map(|(a, b)| i32::from(*a as i8) * i32::from(*b))
                .sum();
            total += sum as f32 * wd * d;
        }
        total
    }

    #[inline(always)]
    fn dequantize(block: &[u8], out: &mut [f32]) {
        let d = f16_bits_to_f32(block[0], block[1]);
        for (o, q) in out.iter_mut().zip(&block[2..]) {
            *o = f32::from(*q as i8) * d;
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn avx2(simd: pulp::x86::V3, w: &[u8], x: &Q8_1) -> f32 {
        let (avx, fma) = (simd.avx, simd.fma);
        two_accumulators(
            simd,
            w,
            Self::BLOCK,
            x,
            #[inline(always)]
            |acc, block, q, d, _| {
                let wd = f16_bits_to_f32(block[0], block[1]);
                let weights = pulp::bytemuck::pod_read_unaligned(&block[2..]);
                let sums = signed_byte_sums(simd, weights, activations(q));
                fma._mm256_fmadd_ps(sums, avx._mm256_set1_ps(wd * d), acc)
            },
        )
    }
}

/// Blocks of `K` (`w`) into `out`, one thread.
fn ggml_dequantize_into<K: RowKernel>(w: &[u8], out: &mut [f32]) {
    simd(
        #[inline(always)]
        || {
            for (o, block) in out.chunks_exact_mut(QK).zip(w.chunks_exact(K::BLOCK)) {
                K::dequantize(block, o);
            }
        },
    )
}

/// Bytes of one row of `k` values of `dtype` in GGUF's layout.
pub fn row_bytes(dtype: GgmlDType, k: usize) -> usize {
    k / dtype.block_size() * dtype.type_size()
}

/// Whole rows of GGUF's bytes of `dtype` (`w`, `k` values each) in f32 on the calling thread:
/// Wick's dequantization where it has one, candle's for the rest.
pub fn dequantize_rows(dtype: GgmlDType, w: &[u8], k: usize) -> candle_core::Result<Vec<f32>> {
    let row_bytes = row_bytes(dtype, k);
    if row_bytes == 0 || !w.len().is_multiple_of(row_bytes) {
        candle_core::bail!(
            "{} bytes are not whole rows of {k} {dtype:?} values",
            w.len()
        );
    }
    let rows = w.len() / row_bytes;
    let mut out = vec![0f32; rows * k];
    match dtype {
        GgmlDType::Q4_1 => ggml_dequantize_into::<Q4_1>(w, &mut out),
        GgmlDType::Q5_0 => ggml_dequantize_into::<Q5_0>(w, &mut out),
        GgmlDType::Q8_0 => ggml_dequantize_into::<Q8_0>(w, &mut out),
        _ => {
            let q = candle_core::quantized::ggml_file::qtensor_from_ggml(
                dtype,
                w,
                vec![rows, k],
                &Device::Cpu,
            )?;
            return q.dequantize(&Device::Cpu)?.flatten_all()?.to_vec1();
        }
    }
    Ok(out)
}

/// Whether [`matmul`] and Wick's own [`dequantize_rows`] take `dtype`.
pub fn has_kernel(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q8_0)
}

/// `xs · Wᵀ` (`xs` of any rank, last dimension `k`) for a quantized `[n, k]` `W` through
/// Wick's kernel for its type; an error for a type without one ([`has_kernel`]).
pub fn forward(q: &QTensor, xs: &Tensor) -> candle_core::Result<Tensor> {
    let (n, k) = q.shape().dims2()?;
    let m = xs.elem_count() / k.max(1);
    let x: Vec<f32> = xs.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let y = matmul(q.dtype(), &q.data()?, n, k, &x, m)
        .ok_or_else(|| candle_core::Error::Msg(format!("no Wick kernel for {:?}", q.dtype())))?;
    Tensor::from_vec(y, out_dims(xs, n), xs.device())
}

/// `xs · Wᵀ` for a quantized `[n, k]` `W` that `weight_rows` dequantizes a range of rows at a
/// time: a prompt's product through [`super::panels::matmul_streamed`], which packs each 64-row panel
/// from them while it is in cache, so the f32 matrix is never held whole.
pub fn streamed_forward(
    n: usize,
    k: usize,
    dtype: GgmlDType,
    xs: &Tensor,
    weight_rows: impl Fn(std::ops::Range<usize>) -> candle_core::Result<Vec<f32>> + Sync,
) -> candle_core::Result<Tensor> {
    let x: Vec<f32> = gemm_input(dtype, xs, k)?.flatten_all()?.to_vec1()?;
    let m = x.len() / k.max(1);
    let y =
        super::panels::matmul_streamed(&x, m, k, n, |r| weight_rows(r).map_err(|e| e.to_string()))
            .map_err(candle_core::Error::Msg)?;
    Tensor::from_vec(y, out_dims(xs, n), xs.device())
}

/// `xs` as the `[m, k]` f32 left operand of a prompt product, rounded as the integer kernels
/// quantize it for `dtype`.
fn gemm_input(dtype: GgmlDType, xs: &Tensor, k: usize) -> candle_core::Result<Tensor> {
    let m = xs.elem_count() / k.max(1);
    let x = xs.reshape((m, k))?.to_dtype(DType::F32)?;
    if matches!(
        dtype,
        GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_0
    ) && k.is_multiple_of(QK)
    {
        let mut values: Vec<f32> = x.flatten_all()?.to_vec1()?;
        round_like_q8(&mut values);
        return Tensor::from_vec(values, (m, k), xs.device());
    }
    Ok(x)
}

/// `xs`'s shape with the last dimension `n`.
pub fn out_dims(xs: &Tensor, n: usize) -> Vec<usize> {
    let mut dims = xs.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = n;
    }
    dims
}

/// `x · Wᵀ` for `W` (`[n, k]`, GGUF's bytes of `dtype`) and `x` (`[m, k]`); returns `[m, n]`,
/// or `None` for a type without a Wick kernel.
pub fn matmul(
    dtype: GgmlDType,
    w: &[u8],
    n: usize,
    k: usize,
    x: &[f32],
    m: usize,
) -> Option<Vec<f32>> {
    match dtype {
        GgmlDType::Q4_1 => Some(ggml_matmul::<Q4_1>(w, n, k, x, m)),
        GgmlDType::Q5_0 => Some(ggml_matmul::<Q5_0>(w, n, k, x, m)),
        GgmlDType::Q8_0 => Some(ggml_matmul::<Q8_0>(w, n, k, x, m)),
        _ => None,
    }
}

/// Runs `task(first_row, out)` over the `n` output rows of a product with `m` input rows, a
/// few tasks per thread (each hand-off costs more than a few rows), each writing its rows'
/// results as `[rows][m]` (so a task reads each weight row once and uses it `m` times); returns
/// the result as `[m, n]`.
pub(super) fn by_row_tasks(
    n: usize,
    m: usize,
    task: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    let mut out_t = vec![0f32; n * m];
    let per_task = n
        .div_ceil(rayon::current_num_threads() * 2)
        .max(ROWS_PER_TASK);
    out_t
        .par_chunks_mut(per_task * m)
        .enumerate()
        .for_each(|(i, out)| task(i * per_task, out));
    transpose(out_t, n, m)
}

/// `[n][m]` to `[m][n]`.
fn transpose(out_t: Vec<f32>, n: usize, m: usize) -> Vec<f32> {
    if m == 1 {
        // A decode step: already in order (a copy of the 49k-row head was 1% of decode).
        return out_t;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    fn values_of(q: &QTensor) -> Vec<f32> {
        let t = q.dequantize(&Device::Cpu).unwrap();
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// `K`'s product and dequantization give candle's numbers (its reference implementation of the same ggml
    /// arithmetic) on random weights and inputs, and the portable and AVX2 loops agree.
    fn check<K: RowKernel>(dtype: GgmlDType, shapes: &[(usize, usize, usize)]) {
        for &(n, k, m) in shapes {
            let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
            let x = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu).unwrap();
            let q = QTensor::quantize(&w, dtype).unwrap();
            let bytes = q.data().unwrap().to_vec();
            let want = QMatMul::from_qtensor(q).unwrap().forward(&x).unwrap();
            let want: Vec<f32> = want.flatten_all().unwrap().to_vec1().unwrap();
            let xs: Vec<f32> = x.flatten_all().unwrap().to_vec1().unwrap();
            let got = ggml_matmul::<K>(&bytes, n, k, &xs, m);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    (g - w).abs() <= 1e-4 * w.abs().max(1.0),
                    "{dtype:?}: {g} vs {w}"
                );
            }
            let xq = quantize_q8_1(&xs[..k]);
            let row_bytes = k / QK * K::BLOCK;
            let deq = dequantize_rows(dtype, &bytes, k).unwrap();
            assert_eq!(
                deq,
                values_of(&QTensor::quantize(&w, dtype).unwrap()),
                "{dtype:?}"
            );
            for (r, g) in got[..n].iter().enumerate() {
                let portable = K::portable(&bytes[r * row_bytes..(r + 1) * row_bytes], &xq);
                assert!(
                    (portable - g).abs() <= 1e-4 * portable.abs().max(1.0),
                    "row {r}"
                );
            }
        }
    }

    // candle's Q4_1 and Q5_0 references take even block counts only.
    #[test]
    fn q4_1_matches_candles_reference() {
        check::<Q4_1>(GgmlDType::Q4_1, &[(96, 256, 3), (70, 64, 1)]);
    }

    #[test]
    fn q5_0_matches_candles_reference() {
        check::<Q5_0>(GgmlDType::Q5_0, &[(80, 128, 2), (67, 192, 1)]);
    }

    #[test]
    fn q8_0_matches_candles_reference() {
        check::<Q8_0>(GgmlDType::Q8_0, &[(80, 128, 2), (67, 96, 1)]);
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
}
