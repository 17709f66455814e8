//! A prompt's product with GGUF Q5_0 weights in 8-bit integers, on AVX-512BW.
//!
//! Gemma 3's Q4_K_M file stores its 640-wide projections as Q5_0 (640 is no multiple of the
//! K-quants' 256), and in f32 (weights unpacked, [`super::panels::matmul_streamed`]) they were
//! 43% of its prefill, the f32 kernel already near the CPU's peak. Integers do more per
//! instruction: a Q5_0 weight is an unsigned 5-bit `q` (value `(q - 16) · d`), a prompt row is
//! quantized to signed bytes per block of 32 (as the decode kernels and the f32 prompt path
//! round it), and `maddubs` multiplies 64 byte pairs at once. Four of its 16-bit results add up
//! without overflow (4 · 2 · 31 · 127 < 2¹⁵), then `madd` widens them to 32 bits, so a block of
//! 32 inputs for 16 weight rows and one prompt row takes 8 multiplies, their additions and one
//! scaled float update, where f32 took 32 fused multiply-adds. Gemma 3 prefill: +18-27%
//! (alternating, Zen 4); this module takes 32% of it (the kernel 24%, regrouping 8%) where the
//! f32 product took 43%.
//!
//! Weights are regrouped per call, 16 rows at a time (`[block][4 inputs][16 rows][4 bytes]`,
//! 10 KiB for a 640-wide group), so one 64-byte load feeds 16 rows; nothing is kept between
//! calls. Everything here is safe Rust through pulp's AVX-512 wrappers.

#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_imports))]

use rayon::prelude::*;

use super::qmatmul::{f16_bits_to_f32, quantize_q8_1, QK};

/// Bytes of one Q5_0 block: an f16 scale, 32 high bits, 16 bytes of low nibbles.
const BLOCK_BYTES: usize = 22;
/// Weight rows per group: one 32-bit lane each in a 512-bit vector.
const GROUP: usize = 16;
/// Prompt rows that share each loaded group of weights.
const TILE: usize = 4;

/// Whether [`matmul`] takes an `[n, k]` weight on this CPU: it needs AVX-512BW, and `n` a
/// multiple of 16. Asked first, so that other CPUs do not copy the prompt for nothing.
pub fn fits(n: usize, k: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    let cpu = pulp::x86::V4::is_available();
    #[cfg(not(target_arch = "x86_64"))]
    let cpu = false;
    cpu && n.is_multiple_of(GROUP) && k.is_multiple_of(QK)
}

/// `x · Wᵀ` for `W` (`[n, k]`, GGUF's Q5_0 bytes) and `x` (`[m, k]`, f32), as `[m, n]`; `None`
/// where it does not [`fit`](fits) or the buffers do not match the shape, so the caller takes
/// the f32 path.
pub fn matmul(w: &[u8], n: usize, k: usize, x: &[f32], m: usize) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    {
        let simd = pulp::x86::V4::try_new()?;
        let blocks = k / QK;
        if !fits(n, k) || w.len() != n * blocks * BLOCK_BYTES || x.len() != m * k || m == 0 {
            return None;
        }
        let rows = Rows::quantize(x, m, k);
        let row_bytes = blocks * BLOCK_BYTES;
        // Each group's outputs as `[m][16]`, side by side, then put in place.
        let mut outs = vec![0f32; n / GROUP * m * GROUP];
        outs.par_chunks_mut(m * GROUP)
            .zip(w.par_chunks(GROUP * row_bytes))
            .for_each(|(out, group)| {
                let (weights, scales) = regroup(group, blocks);
                simd.vectorize(
                    #[inline(always)]
                    || group_product(simd, &weights, &scales, &rows, blocks, out),
                );
            });
        Some(super::panels::place_columns(&outs, m, n, GROUP))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (w, n, k, x, m);
        None
    }
}

/// The prompt rows as signed bytes per block of 32 (padded with zero rows to whole tiles):
/// the bytes in fours as `i32` for broadcasting, each block's scale, and `16 · Σ q` per block
/// (the weights' offset of 16, taken off in integers).
struct Rows {
    quads: Vec<i32>,
    scales: Vec<f32>,
    offsets: Vec<i32>,
    padded: usize,
}

impl Rows {
    fn quantize(x: &[f32], m: usize, k: usize) -> Self {
        let blocks = k / QK;
        let padded = m.div_ceil(TILE) * TILE;
        let mut quads = vec![0i32; padded * k / 4];
        let mut scales = vec![0f32; padded * blocks];
        let mut offsets = vec![0i32; padded * blocks];
        for (r, row) in x.chunks_exact(k).enumerate() {
            let q = quantize_q8_1(row);
            for (dst, b) in quads[r * k / 4..(r + 1) * k / 4]
                .iter_mut()
                .zip(q.q.chunks_exact(4))
            {
                *dst = i32::from_le_bytes([b[0] as u8, b[1] as u8, b[2] as u8, b[3] as u8]);
            }
            scales[r * blocks..(r + 1) * blocks].copy_from_slice(&q.d);
            for (o, block) in offsets[r * blocks..(r + 1) * blocks]
                .iter_mut()
                .zip(q.q.chunks_exact(QK))
            {
                *o = 16 * block.iter().map(|&v| i32::from(v)).sum::<i32>();
            }
        }
        Self {
            quads,
            scales,
            offsets,
            padded,
        }
    }
}

/// 16 weight rows (GGUF's Q5_0 bytes) regrouped: per block, 8 runs of 64 bytes (4 inputs of
/// each of the 16 rows, `q` from 0 to 31), and per block the 16 rows' scales.
fn regroup(group: &[u8], blocks: usize) -> (Vec<u8>, Vec<f32>) {
    let mut weights = vec![0u8; blocks * QK * GROUP];
    let mut scales = vec![0f32; blocks * GROUP];
    for (i, row) in group.chunks_exact(blocks * BLOCK_BYTES).enumerate() {
        for (b, block) in row.chunks_exact(BLOCK_BYTES).enumerate() {
            scales[b * GROUP + i] = f16_bits_to_f32(block[0], block[1]);
            let qh = u32::from_le_bytes([block[2], block[3], block[4], block[5]]);
            let mut q = [0u8; QK];
            let (lo, hi) = q.split_at_mut(QK / 2);
            for (j, ((l, h), &byte)) in lo.iter_mut().zip(hi).zip(&block[6..]).enumerate() {
                *l = (byte & 0x0F) | ((((qh >> j) & 1) as u8) << 4);
                *h = (byte >> 4) | ((((qh >> (j + 16)) & 1) as u8) << 4);
            }
            // Inputs 4j..4j+4 of row `i` go to lane `i` of run `j`.
            let base = b * QK * GROUP + i * 4;
            for (j, four) in q.chunks_exact(4).enumerate() {
                weights[base + j * 64..base + j * 64 + 4].copy_from_slice(four);
            }
        }
    }
    (weights, scales)
}

/// One group of 16 weight rows against every prompt row, `TILE` rows at a time, into `out`
/// (`[m][16]`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn group_product(
    simd: pulp::x86::V4,
    weights: &[u8],
    scales: &[f32],
    rows: &Rows,
    blocks: usize,
    out: &mut [f32],
) {
    use core::arch::x86_64::__m512;
    let f = simd.avx512f;
    let ones = f._mm512_set1_epi32(0x0001_0001);
    let quads_per_row = blocks * QK / 4;
    let m = out.len() / GROUP;
    for r0 in (0..rows.padded).step_by(TILE) {
        let mut acc: [__m512; TILE] = [f._mm512_setzero_ps(); TILE];
        for b in 0..blocks {
            let mut w = [f._mm512_setzero_si512(); 8];
            for (j, w) in w.iter_mut().enumerate() {
                let at = b * QK * GROUP + j * 64;
                let bytes: [u8; 64] = weights[at..at + 64].try_into().unwrap_or([0; 64]);
                *w = pulp::bytemuck::cast(bytes);
            }
            let dw_lanes: [f32; GROUP] = scales[b * GROUP..(b + 1) * GROUP]
                .try_into()
                .unwrap_or([0.0; GROUP]);
            let dw: __m512 = pulp::bytemuck::cast(dw_lanes);
            for (t, acc) in acc.iter_mut().enumerate() {
                let r = r0 + t;
                let at = r * quads_per_row + b * 8;
                let xq = &rows.quads[at..at + 8];
                let dots = f._mm512_add_epi32(
                    four_runs(simd, &w[..4], &xq[..4], ones),
                    four_runs(simd, &w[4..], &xq[4..], ones),
                );
                let dots =
                    f._mm512_sub_epi32(dots, f._mm512_set1_epi32(rows.offsets[r * blocks + b]));
                let scale = f._mm512_mul_ps(dw, f._mm512_set1_ps(rows.scales[r * blocks + b]));
                *acc = f._mm512_fmadd_ps(f._mm512_cvtepi32_ps(dots), scale, *acc);
            }
        }
        for (t, acc) in acc.iter().enumerate() {
            let r = r0 + t;
            if r < m {
                let lanes: [f32; GROUP] = pulp::bytemuck::cast(*acc);
                out[r * GROUP..(r + 1) * GROUP].copy_from_slice(&lanes);
            }
        }
    }
}

/// Four runs of 4 inputs × 16 rows against the same 16 inputs of one prompt row: 16-bit pair
/// sums added while they cannot overflow, then widened to 32 bits (16 products per 32-bit lane).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn four_runs(
    simd: pulp::x86::V4,
    w: &[core::arch::x86_64::__m512i],
    xq: &[i32],
    ones: core::arch::x86_64::__m512i,
) -> core::arch::x86_64::__m512i {
    let (f, bw) = (simd.avx512f, simd.avx512bw);
    let mut sum = f._mm512_setzero_si512();
    for (w, &x) in w.iter().zip(xq) {
        sum = bw._mm512_add_epi16(sum, bw._mm512_maddubs_epi16(*w, f._mm512_set1_epi32(x)));
    }
    bw._mm512_madd_epi16(sum, ones)
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    /// The integer product equals the f32 product of the dequantized weights and the
    /// activations rounded as 8-bit blocks (the f32 prompt path), to float rounding.
    #[test]
    fn matches_the_f32_prompt_path() {
        let Some(_) = pulp::x86::V4::try_new() else {
            // No AVX-512BW: the caller takes the f32 path, and `matmul` says so.
            assert!(matmul(&[0; 22 * 16], 16, 32, &[0.0; 32], 1).is_none());
            return;
        };
        for &(n, k, m) in &[(16, 32, 1), (32, 640, 7), (48, 96, 13)] {
            let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
            let q = QTensor::quantize(&w, GgmlDType::Q5_0).unwrap();
            let bytes = q.data().unwrap();
            let x: Vec<f32> = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let got = matmul(&bytes, n, k, &x, m).unwrap();
            let wd: Vec<f32> = q
                .dequantize(&Device::Cpu)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let mut xr = x.clone();
            crate::kernels::qmatmul::round_like_q8(&mut xr);
            for r in 0..m {
                for c in 0..n {
                    let want: f32 = (0..k).map(|i| xr[r * k + i] * wd[c * k + i]).sum();
                    let g = got[r * n + c];
                    assert!(
                        (g - want).abs() <= 1e-3 * want.abs().max(1.0),
                        "{n}x{k}x{m} [{r}, {c}]: {g} vs {want}"
                    );
                }
            }
        }
        // Shapes it does not take: the caller falls back.
        assert!(matmul(&[0; 22 * 8], 8, 32, &[0.0; 32], 1).is_none());
        assert!(matmul(&[0; 22 * 16], 16, 32, &[0.0; 31], 1).is_none());
    }
}
