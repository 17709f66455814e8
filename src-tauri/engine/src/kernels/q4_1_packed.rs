//! Q4_1 weights rearranged at load for Wick's decode kernel.
//!
//! GGUF stores Q4_1 as 20-byte blocks (f16 scale, f16 minimum, 16 bytes of nibbles). The
//! kernel over that layout (`qmatmul::matmul_q4_1`) spent ~16 cycles per block on SmolLM2 decode:
//! each block's two scales were converted and broadcast one at a time, its odd-sized data
//! copied into registers, and its minimum term added in a scalar chain. Here the same bytes are
//! kept as three arrays per matrix: the nibbles, 16 bytes per block, so two neighbouring blocks
//! are one 32-byte load; and the scales and minimums as f16 rows, converted eight at a time.
//! The activations are quantized once per product into a matching order, so one `vpmaddubsw`
//! pair covers two blocks. Memory is unchanged (20 bytes per block) and the GGUF copy is dropped.
//!
//! The arithmetic is ggml's `vec_dot_q4_1_q8_1` (activations in 8-bit blocks of 32 with f16
//! scales; `d_w d_x Σ q_w q_x + m_w s_x` per block), so results match candle's reference.

use rayon::prelude::*;

use super::qmatmul::{by_row_tasks, f16_bits_to_f32, quantize_q8_1, QK};
#[cfg(target_arch = "x86_64")]
use super::qmatmul::{horizontal_sum, prefetch_rows_ahead};
use super::simd;

/// Bytes of one Q4_1 block as GGUF stores it: f16 scale, f16 minimum, 16 bytes of nibbles.
const GGML_BLOCK: usize = 20;
/// Bytes of nibbles per block.
const NIBBLES: usize = QK / 2;

/// A `[n, k]` Q4_1 matrix in Wick's layout.
#[derive(Debug, Clone)]
pub struct PackedQ4_1 {
    n: usize,
    k: usize,
    /// Per row, `k / 32` blocks of 16 bytes: byte `j` holds element `j` (low nibble) and
    /// element `j + 16` (high nibble), as in GGUF.
    nibbles: Vec<u8>,
    /// Per row and block, the scale `d` as f16 bits.
    scales: Vec<u16>,
    /// Per row and block, the minimum `m` as f16 bits.
    mins: Vec<u16>,
}

/// Why a buffer is not a Q4_1 matrix of the shape given.
#[derive(Debug, thiserror::Error)]
#[error("Q4_1 tensor of shape [{n}, {k}] needs {want} bytes with k a multiple of 32; got {got}")]
pub struct LayoutError {
    n: usize,
    k: usize,
    want: usize,
    got: usize,
}

impl PackedQ4_1 {
    /// Rearranges GGUF's Q4_1 blocks of a `[n, k]` matrix.
    pub fn from_ggml(bytes: &[u8], n: usize, k: usize) -> Result<Self, LayoutError> {
        let blocks = n * (k / QK);
        let want = blocks * GGML_BLOCK;
        if !k.is_multiple_of(QK) || bytes.len() != want {
            return Err(LayoutError {
                n,
                k,
                want,
                got: bytes.len(),
            });
        }
        let mut nibbles = Vec::with_capacity(blocks * NIBBLES);
        let mut scales = Vec::with_capacity(blocks);
        let mut mins = Vec::with_capacity(blocks);
        for block in bytes.chunks_exact(GGML_BLOCK) {
            scales.push(u16::from_le_bytes([block[0], block[1]]));
            mins.push(u16::from_le_bytes([block[2], block[3]]));
            nibbles.extend_from_slice(&block[4..]);
        }
        Ok(Self {
            n,
            k,
            nibbles,
            scales,
            mins,
        })
    }

    /// `(n, k)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    /// Bytes the weights take in memory.
    pub fn bytes(&self) -> usize {
        self.nibbles.len() + 2 * (self.scales.len() + self.mins.len())
    }

    /// Row `r`'s slices.
    #[inline(always)]
    fn row(&self, r: usize) -> Row<'_> {
        let blocks = self.blocks_per_row();
        let i = r * blocks;
        Row {
            nibbles: &self.nibbles[i * NIBBLES..(i + blocks) * NIBBLES],
            scales: &self.scales[i..i + blocks],
            mins: &self.mins[i..i + blocks],
        }
    }

    fn blocks_per_row(&self) -> usize {
        self.k / QK
    }

    /// The weights in f32, `[n, k]` row-major (`d * q + m`, as candle and ggml dequantize).
    pub fn dequantize(&self) -> Vec<f32> {
        self.dequantize_rows(0..self.n)
    }

    /// Weight rows `rows` in f32, `[rows.len(), k]`.
    pub fn dequantize_rows(&self, rows: std::ops::Range<usize>) -> Vec<f32> {
        let rows = rows.start.min(self.n)..rows.end.min(self.n);
        let mut out = vec![0f32; rows.len() * self.k];
        let blocks = self.blocks_per_row();
        out.par_chunks_mut(self.k)
            .enumerate()
            .map(|(i, values)| (rows.start + i, values))
            .for_each(|(row, values)| {
                for (b, block) in values.chunks_exact_mut(QK).enumerate() {
                    let i = row * blocks + b;
                    let d = f16_to_f32(self.scales[i]);
                    let m = f16_to_f32(self.mins[i]);
                    let q = &self.nibbles[i * NIBBLES..(i + 1) * NIBBLES];
                    let (lo, hi) = block.split_at_mut(NIBBLES);
                    for ((l, h), byte) in lo.iter_mut().zip(hi.iter_mut()).zip(q) {
                        *l = f32::from(byte & 0x0F) * d + m;
                        *h = f32::from(byte >> 4) * d + m;
                    }
                }
            });
        out
    }

    /// `x · Wᵀ` for `x` (`[m, k]`, f32); returns `[m, n]`.
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        let (n, k) = (self.n, self.k);
        let xq: Vec<PairedQ8> = x.chunks_exact(k).map(PairedQ8::new).collect();
        by_row_tasks(n, m, |first, out| {
            #[cfg(target_arch = "x86_64")]
            if let Some(v3) = pulp::x86::V3::try_new() {
                v3.vectorize(
                    #[inline(always)]
                    || {
                        // `self.row` is called here, not through a closure defined outside
                        // `vectorize`: dev builds left such a closure out of line, and with it
                        // every intrinsic of the kernel (tests ran 5x slower).
                        let blocks = self.blocks_per_row();
                        for (r, row_out) in out.chunks_exact_mut(m).enumerate() {
                            let i = (first + r) * blocks;
                            prefetch_rows_ahead(v3, &self.nibbles, i * NIBBLES, blocks * NIBBLES);
                            prefetch_rows_ahead(v3, &self.scales, i, blocks);
                            prefetch_rows_ahead(v3, &self.mins, i, blocks);
                            let w = self.row(first + r);
                            let mut fours = row_out.chunks_exact_mut(4);
                            let mut xs = xq.chunks_exact(4);
                            for (o, x) in (&mut fours).zip(&mut xs) {
                                o.copy_from_slice(&dot_avx2(v3, &w, [&x[0], &x[1], &x[2], &x[3]]));
                            }
                            let rest = fours.into_remainder().iter_mut();
                            for (o, x) in rest.zip(xs.remainder()) {
                                [*o] = dot_avx2(v3, &w, [x]);
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
                        let w = self.row(first + r);
                        for (o, xr) in row_out.iter_mut().zip(&xq) {
                            *o = dot_portable(&w, xr);
                        }
                    }
                },
            )
        })
    }
}

#[inline(always)]
fn f16_to_f32(bits: u16) -> f32 {
    let [lo, hi] = bits.to_le_bytes();
    f16_bits_to_f32(lo, hi)
}

/// One weight row's slices.
struct Row<'a> {
    nibbles: &'a [u8],
    scales: &'a [u16],
    mins: &'a [u16],
}

/// One activation row quantized as ggml's Q8_1 (per block of 32: `d`, and `s = d Σ q`), with
/// the values of each pair of blocks `(2i, 2i+1)` reordered to match a 32-byte load of their
/// nibbles: `[2i: 0..16, 2i+1: 0..16, 2i: 16..32, 2i+1: 16..32]`. An odd last block keeps its
/// natural order (which is `[0..16, 16..32]` too).
struct PairedQ8 {
    q: Vec<i8>,
    d: Vec<f32>,
    s: Vec<f32>,
}

impl PairedQ8 {
    fn new(x: &[f32]) -> Self {
        let natural = quantize_q8_1(x);
        let blocks = natural.d.len();
        let mut q = natural.q.clone();
        for pair in 0..blocks / 2 {
            let src = &natural.q[pair * 2 * QK..(pair + 1) * 2 * QK];
            let dst = &mut q[pair * 2 * QK..(pair + 1) * 2 * QK];
            let half = NIBBLES;
            dst[..half].copy_from_slice(&src[..half]);
            dst[half..2 * half].copy_from_slice(&src[QK..QK + half]);
            dst[2 * half..3 * half].copy_from_slice(&src[half..QK]);
            dst[3 * half..].copy_from_slice(&src[QK + half..]);
        }
        Self {
            q,
            d: natural.d,
            s: natural.s,
        }
    }

    /// Where block `b`'s activations for its low and high nibbles start.
    #[inline(always)]
    fn offsets(&self, b: usize) -> (usize, usize) {
        let blocks = self.d.len();
        if b + 1 == blocks && !blocks.is_multiple_of(2) {
            return (b * QK, b * QK + NIBBLES);
        }
        let pair = (b & !1) * QK;
        let side = (b & 1) * NIBBLES;
        (pair + side, pair + QK + side)
    }
}

/// One block's integer dot product, in plain Rust.
#[inline(always)]
fn block_sum(nibbles: &[u8], lo: &[i8], hi: &[i8]) -> i32 {
    let mut sum = 0i32;
    for ((byte, l), h) in nibbles.iter().zip(lo).zip(hi) {
        sum += i32::from(byte & 0x0F) * i32::from(*l) + i32::from(byte >> 4) * i32::from(*h);
    }
    sum
}

/// One weight row against one activation row, in plain Rust (CPUs without AVX2, and the
/// reference the AVX2 version is tested against).
#[inline(always)]
fn dot_portable(w: &Row, x: &PairedQ8) -> f32 {
    (0..w.scales.len()).map(|b| block_dot(w, x, b)).sum()
}

/// Block `b` of a weight row against its activations, whole: `d_w d_x Σ q_w q_x + m_w s_x`.
#[inline(always)]
fn block_dot(w: &Row, x: &PairedQ8, b: usize) -> f32 {
    let (lo, hi) = x.offsets(b);
    let sum = block_sum(
        &w.nibbles[b * NIBBLES..(b + 1) * NIBBLES],
        &x.q[lo..lo + NIBBLES],
        &x.q[hi..hi + NIBBLES],
    );
    sum as f32 * f16_to_f32(w.scales[b]) * x.d[b] + f16_to_f32(w.mins[b]) * x.s[b]
}

/// Eight f16 values (as bits) to f32 with integer AVX2 operations: the same bit arithmetic as
/// [`f16_bits_to_f32`], since `pulp` has no safe wrapper for F16C's `vcvtph2ps`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn f16x8_to_f32(simd: pulp::x86::V3, bits: &[u16]) -> core::arch::x86_64::__m256 {
    use core::arch::x86_64::__m128i;
    let (avx, avx2) = (simd.avx, simd.avx2);
    let h = avx2._mm256_cvtepu16_epi32(pulp::bytemuck::pod_read_unaligned::<__m128i>(
        pulp::bytemuck::cast_slice(&bits[..8]),
    ));
    let magnitude =
        avx2._mm256_slli_epi32::<13>(avx2._mm256_and_si256(h, avx._mm256_set1_epi32(0x7fff)));
    let magnitude = avx._mm256_mul_ps(
        avx._mm256_castsi256_ps(magnitude),
        avx._mm256_set1_ps(f32::from_bits(0x7780_0000)),
    );
    let sign =
        avx2._mm256_slli_epi32::<16>(avx2._mm256_and_si256(h, avx._mm256_set1_epi32(0x8000)));
    avx._mm256_castsi256_ps(avx2._mm256_or_si256(avx._mm256_castps_si256(magnitude), sign))
}

/// Two neighbouring blocks' integer dot products (blocks `b` and `b + 1`), as eight i32 sums
/// in f32: lanes 0-3 belong to block `b`, 4-7 to `b + 1`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn pair_sums(simd: pulp::x86::V3, w: &Row, x: &PairedQ8, b: usize) -> core::arch::x86_64::__m256 {
    use core::arch::x86_64::__m256i;
    use pulp::bytemuck::pod_read_unaligned;
    let (avx, avx2) = (simd.avx, simd.avx2);
    let low = avx._mm256_set1_epi8(0x0F);
    let v: __m256i = pod_read_unaligned(&w.nibbles[b * NIBBLES..(b + 2) * NIBBLES]);
    let acts: &[u8] = pulp::bytemuck::cast_slice(&x.q[b * QK..(b + 2) * QK]);
    let a: __m256i = pod_read_unaligned(&acts[..QK]);
    let h: __m256i = pod_read_unaligned(&acts[QK..]);
    let lo = avx2._mm256_and_si256(v, low);
    let hi = avx2._mm256_and_si256(avx2._mm256_srli_epi16::<4>(v), low);
    let sums = avx2._mm256_add_epi16(
        avx2._mm256_maddubs_epi16(lo, a),
        avx2._mm256_maddubs_epi16(hi, h),
    );
    avx._mm256_cvtepi32_ps(avx2._mm256_madd_epi16(sums, avx._mm256_set1_epi16(1)))
}

/// One weight row against `R` activation rows with AVX2: per pair of blocks one 32-byte load
/// of nibbles, unpacked once for all `R` rows; per row two `vpmaddubsw` (low and high nibbles
/// against the reordered activations), one `vpmaddwd` and one FMA whose scale vector
/// (`d_w d_x` of the two blocks, four lanes each) is picked out of eight scales converted
/// together. `R = 1` is decode; prompts of a few tokens take `R = 4`, which unpacks a quarter
/// as often.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn dot_avx2<const R: usize>(simd: pulp::x86::V3, w: &Row, x: [&PairedQ8; R]) -> [f32; R] {
    use core::arch::x86_64::{__m256, __m256i};
    use pulp::bytemuck::{cast, cast_slice, pod_read_unaligned};
    let (avx, avx2, fma) = (simd.avx, simd.avx2, simd.fma);
    let blocks = w.scales.len();
    // Lanes 0-3 take block 2p's scale, lanes 4-7 block 2p+1's.
    let picks: [__m256i; 4] = [
        cast([0i32, 0, 0, 0, 1, 1, 1, 1]),
        cast([2i32, 2, 2, 2, 3, 3, 3, 3]),
        cast([4i32, 4, 4, 4, 5, 5, 5, 5]),
        cast([6i32, 6, 6, 6, 7, 7, 7, 7]),
    ];
    let low = avx._mm256_set1_epi8(0x0F);
    let ones = avx._mm256_set1_epi16(1);
    let mut acc = [[avx._mm256_setzero_ps(); 2]; R];
    let mut min_acc = [avx._mm256_setzero_ps(); R];
    let groups = blocks / 8;
    for g in 0..groups {
        let first = g * 8;
        let wd = f16x8_to_f32(simd, &w.scales[first..]);
        let wm = f16x8_to_f32(simd, &w.mins[first..]);
        let mut scales = [avx._mm256_setzero_ps(); R];
        for r in 0..R {
            let xd: __m256 = pod_read_unaligned(cast_slice(&x[r].d[first..first + 8]));
            let xs: __m256 = pod_read_unaligned(cast_slice(&x[r].s[first..first + 8]));
            scales[r] = avx._mm256_mul_ps(wd, xd);
            min_acc[r] = fma._mm256_fmadd_ps(wm, xs, min_acc[r]);
        }
        for (p, pick) in picks.iter().enumerate() {
            let b = first + 2 * p;
            let v: __m256i = pod_read_unaligned(&w.nibbles[b * NIBBLES..(b + 2) * NIBBLES]);
            let lo = avx2._mm256_and_si256(v, low);
            let hi = avx2._mm256_and_si256(avx2._mm256_srli_epi16::<4>(v), low);
            for r in 0..R {
                let acts: &[u8] = cast_slice(&x[r].q[b * QK..(b + 2) * QK]);
                let a: __m256i = pod_read_unaligned(&acts[..QK]);
                let h: __m256i = pod_read_unaligned(&acts[QK..]);
                let sums = avx2._mm256_add_epi16(
                    avx2._mm256_maddubs_epi16(lo, a),
                    avx2._mm256_maddubs_epi16(hi, h),
                );
                let sums = avx._mm256_cvtepi32_ps(avx2._mm256_madd_epi16(sums, ones));
                let scale = avx2._mm256_permutevar8x32_ps(scales[r], *pick);
                acc[r][p % 2] = fma._mm256_fmadd_ps(sums, scale, acc[r][p % 2]);
            }
        }
    }
    let mut out = [0f32; R];
    for r in 0..R {
        let total = avx._mm256_add_ps(avx._mm256_add_ps(acc[r][0], acc[r][1]), min_acc[r]);
        out[r] = horizontal_sum(simd, total) + tail_avx2(simd, w, x[r], groups * 8);
    }
    out
}

/// The blocks from `start` on (after the last whole group of eight): pairs with scalar
/// scales, then an odd one.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn tail_avx2(simd: pulp::x86::V3, w: &Row, x: &PairedQ8, start: usize) -> f32 {
    let (avx, fma, sse) = (simd.avx, simd.fma, simd.sse);
    let blocks = w.scales.len();
    let mut acc = avx._mm256_setzero_ps();
    let mut tail = 0f32;
    let mut b = start;
    while b + 2 <= blocks {
        let d0 = f16_to_f32(w.scales[b]) * x.d[b];
        let d1 = f16_to_f32(w.scales[b + 1]) * x.d[b + 1];
        let scale = avx._mm256_set_m128(sse._mm_set1_ps(d1), sse._mm_set1_ps(d0));
        acc = fma._mm256_fmadd_ps(pair_sums(simd, w, x, b), scale, acc);
        tail += f16_to_f32(w.mins[b]) * x.s[b] + f16_to_f32(w.mins[b + 1]) * x.s[b + 1];
        b += 2;
    }
    if b < blocks {
        tail += block_dot(w, x, b);
    }
    horizontal_sum(simd, acc) + tail
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::kernels::qmatmul::{round_like_q8, streamed_forward};
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    fn close(got: f32, want: f32) -> bool {
        (got - want).abs() <= 1e-4 * want.abs().max(1.0)
    }

    /// Random `[n, k]` weights quantized by candle, their packed copy and `m` random inputs.
    fn case(n: usize, k: usize, m: usize) -> (PackedQ4_1, QTensor, Tensor) {
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        let x = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q4_1).unwrap();
        let packed = PackedQ4_1::from_ggml(&q.data().unwrap(), n, k).unwrap();
        (packed, q, x)
    }

    fn values(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    /// Same numbers as candle's own (scalar) Q4_1 product, for row widths that exercise whole
    /// groups of eight blocks and leftover pairs (candle's reference takes even block counts
    /// only; the odd last block is checked against the portable loop below).
    #[test]
    fn matches_candles_reference() {
        for (n, k, m) in [
            (96, 256, 3),
            (130, 32 * 22, 1),
            (64, 32 * 10, 2),
            (70, 64, 1),
        ] {
            let (packed, q, x) = case(n, k, m);
            let want = values(&QMatMul::from_qtensor(q).unwrap().forward(&x).unwrap());
            let got = packed.matmul(&values(&x), m);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!(close(*g, *w), "[{n}, {k}] x {m}: {g} vs {w}");
            }
        }
    }

    /// The portable loop gives the AVX2 loop's numbers (each is the kernel on some CPU).
    #[test]
    fn portable_matches_vectorised() {
        let (n, k) = (64, 32 * 23);
        let (packed, _, x) = case(n, k, 1);
        let x = values(&x);
        let got = packed.matmul(&x, 1);
        let xq = PairedQ8::new(&x);
        for (r, g) in got.iter().enumerate() {
            let portable = dot_portable(&packed.row(r), &xq);
            assert!(close(portable, *g), "row {r}: {portable} vs {g}");
        }
    }

    #[test]
    fn dequantizes_as_candle_does() {
        let (packed, q, x) = case(40, 32 * 5, 9);
        let x = values(&x);
        assert_eq!(
            packed.dequantize(),
            values(&q.dequantize(&Device::Cpu).unwrap())
        );
        assert_eq!(packed.bytes(), q.storage_size_in_bytes());
        // The prompt path is the product of the rounded activations and the dequantized weights.
        // (It differs from the integer kernel by the kernel's minimum term, which uses
        // `s = d Σ q` rounded to f16 as ggml stores it: about 1e-2 on these random rows.)
        let xt = Tensor::from_vec(x.clone(), (9, 32 * 5), &Device::Cpu).unwrap();
        let gemm = streamed_forward(40, 32 * 5, GgmlDType::Q4_1, &xt, |r| {
            Ok(packed.dequantize_rows(r))
        })
        .unwrap();
        let gemm = values(&gemm);
        let mut rounded = x.clone();
        round_like_q8(&mut rounded);
        let rounded = Tensor::from_vec(rounded, (9, 32 * 5), &Device::Cpu).unwrap();
        let w = q.dequantize(&Device::Cpu).unwrap();
        let want = values(&rounded.matmul(&w.t().unwrap()).unwrap());
        for (g, w) in gemm.iter().zip(&want) {
            assert!(close(*g, *w), "{g} vs {w}");
        }
    }

    #[test]
    fn rejects_a_buffer_of_the_wrong_size() {
        let err = PackedQ4_1::from_ggml(&[0u8; 39], 1, 64).unwrap_err();
        assert!(err.to_string().contains("needs 40 bytes"), "{err}");
        assert!(PackedQ4_1::from_ggml(&[0u8; 20], 1, 33).is_err());
    }
}
