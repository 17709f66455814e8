//! f32 products `x · W` for the CPU with the weight packed once, at load, into panels of 64
//! output columns (`[panel][in][64]`, contiguous).
//!
//! Why not candle's GEMM: for the few rows a sentence or a decode step has, the `gemm` crate
//! streams the `[in, out]` weight with a stride of a whole row per step and reads it more than
//! once per product. Measured on this machine's kind (Xeon, AVX-512, one thread):
//! `[22, 384] x [384, 1536]` ran at 96 GFLOP/s while the weight sat in cache, and at 29
//! GFLOP/s when 36 different weights took turns, as a model's layers do. A packed panel is one
//! sequential read, reused from cache by every tile of rows.
//!
//! Rows are read in place, `T` at a time (a tile), and the innermost loop keeps `T` rows' sums
//! in registers: 6 rows × 64 columns (4 vectors each) with AVX-512; with AVX2, 1 row × 64
//! columns (8 vectors), or for bands of many rows 6 rows × 16 columns in four passes per panel
//! ([`TileShape`]). Copying rows into tiles first, for contiguous reads, cost more than it
//! saved: 5.7% of a batch of 32 sentences, for a kernel under 4% faster. Each sum runs over
//! `in` in order with fused multiply-adds after the bias, so results match a plain dot product
//! to rounding (and candle's GEMM exactly, in the products measured).

use pulp::Simd;
use rayon::prelude::*;

/// Output columns per panel.
pub const PANEL: usize = 64;

/// Inputs per chunk of the sums: a panel's chunk is then 32 KiB, which stays in L1 while every
/// tile of rows takes it in turn. Partial sums wait in f32 between chunks, so the result is the
/// same as one pass.
const KC: usize = 128;

/// Multiply-adds per parallel task: enough to amortise a hand-off between threads.
const TASK_WORK: usize = 1 << 18;

/// Rows per task when there are many, at most (about): a multiple of every tile height.
const BAND: usize = 96;

/// The tallest tile ([`TileShape`]): bands are cut in whole tiles of it.
const TILE_ROWS_MAX: usize = 6;

/// A weight `[in, out]` packed in panels of [`PANEL`] columns, the last padded with zeros.
#[derive(Debug, Clone)]
pub struct Panels {
    inp: usize,
    out: usize,
    data: Vec<f32>,
}

impl Panels {
    /// Packs `wt`, laid out `[inp, out]` row by row.
    pub fn pack(wt: &[f32], inp: usize, out: usize) -> Result<Self, String> {
        if wt.len() != inp * out || inp == 0 || out == 0 {
            return Err(format!(
                "a weight of {} values is not [{inp}, {out}]",
                wt.len()
            ));
        }
        let panels = out.div_ceil(PANEL);
        let mut data = vec![0f32; panels * inp * PANEL];
        data.par_chunks_mut(inp * PANEL)
            .enumerate()
            .for_each(|(p, panel)| {
                let c0 = p * PANEL;
                let width = PANEL.min(out - c0);
                for (row, dst) in wt.chunks_exact(out).zip(panel.chunks_exact_mut(PANEL)) {
                    dst[..width].copy_from_slice(&row[c0..c0 + width]);
                }
            });
        Ok(Self { inp, out, data })
    }

    /// The weight back in its `[inp, out]` layout.
    pub fn unpack(&self) -> Vec<f32> {
        let mut wt = vec![0f32; self.inp * self.out];
        for (row, k) in wt.chunks_exact_mut(self.out).zip(0..) {
            for (c0, dst) in (0..).step_by(PANEL).zip(row.chunks_mut(PANEL)) {
                let panel = &self.data[(c0 / PANEL) * self.inp * PANEL..];
                dst.copy_from_slice(&panel[k * PANEL..k * PANEL + dst.len()]);
            }
        }
        wt
    }

    pub fn inp(&self) -> usize {
        self.inp
    }

    pub fn out(&self) -> usize {
        self.out
    }

    /// Bytes held by the packed weight.
    pub fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }

    /// `x · W (+ bias)` for `x` of `[rows, in]`, giving `[rows, out]`.
    pub fn matmul(&self, x: &[f32], rows: usize, bias: Option<&[f32]>) -> Result<Vec<f32>, String> {
        if x.len() != rows * self.inp {
            return Err(format!(
                "{} input values are not {rows} rows of {}",
                x.len(),
                self.inp
            ));
        }
        if bias.is_some_and(|b| b.len() != self.out) {
            return Err(format!("a bias that is not {} long", self.out));
        }
        if rows == 0 {
            return Ok(Vec::new());
        }
        let panels = self.out.div_ceil(PANEL);
        let mut padded_bias = vec![0f32; panels * PANEL];
        if let Some(b) = bias {
            padded_bias[..self.out].copy_from_slice(b);
        }
        let panel_len = self.inp * PANEL;
        let lanes = pulp::Arch::new().dispatch(Lanes);
        if rows > BAND {
            // Bands of at most about BAND rows, as many for each thread: 704 rows (a batch of
            // 32 sentences) in bands of 96 made 8 tasks, the last a third full, and one thread
            // waited at the end of every product (batch 32: 300-311 -> 315-321 texts/s).
            let threads = rayon::current_num_threads().max(1);
            let tasks = threads * rows.div_ceil(threads * BAND);
            let band = rows.div_ceil(tasks).next_multiple_of(TILE_ROWS_MAX);
            // Many rows: each task takes a band of rows across every panel and writes its own
            // output rows; the weight comes from L2 after the first band.
            let mut y = vec![0f32; rows * self.out];
            y.par_chunks_mut(band * self.out)
                .zip(x.par_chunks(band * self.inp))
                .for_each(|(y, x)| {
                    let shape = TileShape::for_band(lanes, x.len() / self.inp);
                    pulp::Arch::new().dispatch(Job {
                        panels: &self.data,
                        first_panel: 0,
                        inp: self.inp,
                        shape,
                        x,
                        rows: x.len() / self.inp,
                        bias: &padded_bias,
                        y,
                        y_stride: self.out,
                    })
                });
            return Ok(y);
        }
        // Few rows: each task takes a group of panels for all rows (so the weight is read once
        // in all), into a block of its own in one buffer (the last group's block as wide as
        // the others), placed after.
        let shape = TileShape::for_rows(lanes, rows);
        let tasks_wanted = 2 * rayon::current_num_threads();
        let group = (TASK_WORK / (panel_len * rows))
            .min(panels.div_ceil(tasks_wanted))
            .clamp(1, panels);
        let width = group * PANEL;
        let mut blocks = vec![0f32; panels.div_ceil(group) * rows * width];
        blocks
            .par_chunks_mut(rows * width)
            .zip(self.data.par_chunks(group * panel_len))
            .enumerate()
            .for_each(|(g, (block, chunk))| {
                pulp::Arch::new().dispatch(Job {
                    panels: chunk,
                    first_panel: g * group,
                    inp: self.inp,
                    shape,
                    x,
                    rows,
                    bias: &padded_bias,
                    y: block,
                    y_stride: width,
                })
            });
        Ok(place_columns(&blocks, rows, self.out, width))
    }
}

/// `x · Wᵀ` for `x` (`[rows, inp]`) and a weight `W` (`[out, inp]`) that is never held whole
/// in f32: `weight_rows(range)` gives rows `range` of `W` in f32 (`[range.len(), inp]`), one
/// panel's worth at a time, and each panel is packed from them just before its product, while
/// the values are still in cache. This is a quantized prompt's product: dequantizing a whole
/// matrix and handing it to candle's GEMM wrote it to fresh memory (the kernel zeroing the
/// pages was 12% of Gemma 3's prefill) and then had the GEMM pack it again (20%).
pub fn matmul_streamed<F>(
    x: &[f32],
    rows: usize,
    inp: usize,
    out: usize,
    weight_rows: F,
) -> Result<Vec<f32>, String>
where
    F: Fn(std::ops::Range<usize>) -> Result<Vec<f32>, String> + Sync,
{
    if x.len() != rows * inp || inp == 0 {
        return Err(format!(
            "{} input values are not {rows} rows of {inp}",
            x.len()
        ));
    }
    if rows == 0 || out == 0 {
        return Ok(vec![0f32; rows * out]);
    }
    let shape = TileShape::for_rows(pulp::Arch::new().dispatch(Lanes), rows);
    let no_bias = [0f32; PANEL];
    // Each panel's outputs go to a block of their own (`[rows][PANEL]`), all in one buffer:
    // blocks allocated by the workers and freed by the caller stayed with the allocator's
    // per-thread heaps and raised Gemma 3's peak by 30-50 MiB.
    let mut blocks = vec![0f32; out.div_ceil(PANEL) * rows * PANEL];
    blocks
        .par_chunks_mut(rows * PANEL)
        .enumerate()
        .try_for_each_init(
            || vec![0f32; inp * PANEL],
            |panel, (p, block)| {
                let c0 = p * PANEL;
                let width = PANEL.min(out - c0);
                let w = weight_rows(c0..c0 + width)?;
                if w.len() != width * inp {
                    return Err(format!(
                        "weight rows {c0}..{} gave {} values, not {}",
                        c0 + width,
                        w.len(),
                        width * inp
                    ));
                }
                pack_rows(&w, inp, panel);
                pulp::Arch::new().dispatch(Job {
                    panels: panel,
                    first_panel: 0,
                    inp,
                    shape,
                    x,
                    rows,
                    bias: &no_bias,
                    y: block,
                    y_stride: PANEL,
                });
                Ok(())
            },
        )?;
    Ok(place_columns(&blocks, rows, out, PANEL))
}

/// Outputs computed `width` columns at a time (`[block][rows][width]`, the last block padded
/// past `out`) laid out as `[rows][out]`.
pub(super) fn place_columns(blocks: &[f32], rows: usize, out: usize, width: usize) -> Vec<f32> {
    let mut y = vec![0f32; rows * out];
    for (b, block) in blocks.chunks_exact(rows * width).enumerate() {
        let c0 = b * width;
        let used = width.min(out - c0);
        for (dst, src) in y.chunks_exact_mut(out).zip(block.chunks_exact(width)) {
            dst[c0..c0 + used].copy_from_slice(&src[..used]);
        }
    }
    y
}

/// Weight rows `w` (`[width, inp]`, `width` ≤ [`PANEL`]) as one panel (`[inp][PANEL]`),
/// columns past `width` zero.
fn pack_rows(w: &[f32], inp: usize, panel: &mut [f32]) {
    if w.len() / inp < PANEL {
        panel.fill(0.0);
    }
    transpose(w, inp, panel, PANEL);
}

/// `src` (`[rows, cols]`) transposed into `dst` (`[cols][stride]`, `stride` ≥ `rows`):
/// `dst[c * stride + r] = src[r * cols + c]`; entries past `rows` are left as they are. With
/// AVX2, blocks of 8 × 8 are transposed in registers and stored 8 at a time: element by
/// element this was 6% of Gemma 3's prefill (packing panels) and a quarter of the encoder
/// attention kernel (transposing keys).
pub(super) fn transpose(src: &[f32], cols: usize, dst: &mut [f32], stride: usize) {
    let rows = src.len() / cols.max(1);
    debug_assert!(stride >= rows && dst.len() >= cols * stride);
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V3::try_new() {
        let (rows8, cols8) = (rows / 8 * 8, cols / 8 * 8);
        simd.vectorize(
            #[inline(always)]
            || transpose_blocks_avx2(simd, src, cols, dst, stride, rows8, cols8),
        );
        transpose_scalar(src, cols, dst, stride, 0..rows8, cols8..cols);
        transpose_scalar(src, cols, dst, stride, rows8..rows, 0..cols);
        return;
    }
    transpose_scalar(src, cols, dst, stride, 0..rows, 0..cols);
}

/// [`transpose`] of source rows `rows` and source columns `cols` (`src` rows are `width`
/// long), one entry at a time, sixteen of a row per step.
fn transpose_scalar(
    src: &[f32],
    width: usize,
    dst: &mut [f32],
    stride: usize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) {
    for c0 in cols.clone().step_by(16) {
        let c1 = (c0 + 16).min(cols.end);
        for r in rows.clone() {
            let row = &src[r * width..(r + 1) * width];
            for (c, &v) in (c0..c1).zip(&row[c0..c1]) {
                dst[c * stride + r] = v;
            }
        }
    }
}

/// [`transpose`] of the first `rows` source rows and `cols` source columns (both multiples of
/// 8; `src` rows are `width` long), 8 × 8 at a time.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn transpose_blocks_avx2(
    simd: pulp::x86::V3,
    src: &[f32],
    width: usize,
    dst: &mut [f32],
    stride: usize,
    rows: usize,
    cols: usize,
) {
    use core::arch::x86_64::__m256;
    let avx = simd.avx;
    for r0 in (0..rows).step_by(8) {
        for c0 in (0..cols).step_by(8) {
            let r: [__m256; 8] = std::array::from_fn(|i| {
                let at = (r0 + i) * width + c0;
                let lanes: [f32; 8] = src[at..at + 8].try_into().unwrap_or_default();
                pulp::bytemuck::cast(lanes)
            });
            // Pairs, then quads, then halves: column j of the block ends up in `out[j]`.
            let t0 = avx._mm256_unpacklo_ps(r[0], r[1]);
            let t1 = avx._mm256_unpackhi_ps(r[0], r[1]);
            let t2 = avx._mm256_unpacklo_ps(r[2], r[3]);
            let t3 = avx._mm256_unpackhi_ps(r[2], r[3]);
            let t4 = avx._mm256_unpacklo_ps(r[4], r[5]);
            let t5 = avx._mm256_unpackhi_ps(r[4], r[5]);
            let t6 = avx._mm256_unpacklo_ps(r[6], r[7]);
            let t7 = avx._mm256_unpackhi_ps(r[6], r[7]);
            let s0 = avx._mm256_shuffle_ps::<0x44>(t0, t2);
            let s1 = avx._mm256_shuffle_ps::<0xEE>(t0, t2);
            let s2 = avx._mm256_shuffle_ps::<0x44>(t1, t3);
            let s3 = avx._mm256_shuffle_ps::<0xEE>(t1, t3);
            let s4 = avx._mm256_shuffle_ps::<0x44>(t4, t6);
            let s5 = avx._mm256_shuffle_ps::<0xEE>(t4, t6);
            let s6 = avx._mm256_shuffle_ps::<0x44>(t5, t7);
            let s7 = avx._mm256_shuffle_ps::<0xEE>(t5, t7);
            let out = [
                avx._mm256_permute2f128_ps::<0x20>(s0, s4),
                avx._mm256_permute2f128_ps::<0x20>(s1, s5),
                avx._mm256_permute2f128_ps::<0x20>(s2, s6),
                avx._mm256_permute2f128_ps::<0x20>(s3, s7),
                avx._mm256_permute2f128_ps::<0x31>(s0, s4),
                avx._mm256_permute2f128_ps::<0x31>(s1, s5),
                avx._mm256_permute2f128_ps::<0x31>(s2, s6),
                avx._mm256_permute2f128_ps::<0x31>(s3, s7),
            ];
            for (j, v) in out.iter().enumerate() {
                let at = (c0 + j) * stride + r0;
                let lanes: [f32; 8] = pulp::bytemuck::cast(*v);
                dst[at..at + 8].copy_from_slice(&lanes);
            }
        }
    }
}

/// One task: some panels against some rows. Panel `p` of the task writes columns
/// `p * PANEL ..` of `y`'s rows (`y_stride` long; columns past the end are dropped), and takes
/// its bias from the columns of panel `first_panel + p`.
struct Job<'a> {
    panels: &'a [f32],
    first_panel: usize,
    inp: usize,
    shape: TileShape,
    /// The rows, `[rows, inp]`.
    x: &'a [f32],
    rows: usize,
    bias: &'a [f32],
    y: &'a mut [f32],
    y_stride: usize,
}

impl pulp::WithSimd for Job<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        // `V` vectors of sums per row (a pass over `V` × lanes columns of each panel); `T` rows
        // share each loaded piece of a panel row.
        match (S::F32_LANES, self.shape.narrow, self.shape.rows) {
            (16, _, 6) => self.run::<S, 4, 6>(simd),
            (16, _, 5) => self.run::<S, 4, 5>(simd),
            (16, _, 4) => self.run::<S, 4, 4>(simd),
            (16, _, 3) => self.run::<S, 4, 3>(simd),
            (16, _, 2) => self.run::<S, 4, 2>(simd),
            (16, _, _) => self.run::<S, 4, 1>(simd),
            (8, true, 6) => self.run::<S, 2, 6>(simd),
            (8, true, 5) => self.run::<S, 2, 5>(simd),
            (8, true, 4) => self.run::<S, 2, 4>(simd),
            (8, true, 3) => self.run::<S, 2, 3>(simd),
            (8, true, 2) => self.run::<S, 2, 2>(simd),
            (8, _, _) => self.run::<S, 8, 1>(simd),
            (4, _, _) => self.run::<S, 16, 1>(simd),
            _ => self.run::<S, 64, 1>(simd),
        }
    }
}

/// The lanes of an f32 vector on this CPU's best instruction set.
struct Lanes;

impl pulp::WithSimd for Lanes {
    type Output = usize;

    #[inline(always)]
    fn with_simd<S: Simd>(self, _: S) -> usize {
        S::F32_LANES
    }
}

/// How many rows a tile has, and whether a pass takes a whole panel's width or a quarter.
#[derive(Clone, Copy)]
struct TileShape {
    rows: usize,
    narrow: bool,
}

impl TileShape {
    /// For tasks that stream their panels from memory (few rows: each task a group of panels
    /// for all rows): a whole panel row of sums per tile row, one pass per panel. That is 6
    /// rows × 4 vectors of AVX-512's 32 registers; with AVX2, one row's 8 vectors of 16.
    fn for_rows(lanes: usize, rows: usize) -> Self {
        let most = if lanes == 16 { TILE_ROWS_MAX } else { 1 };
        Self {
            rows: most.min(rows).max(1),
            narrow: false,
        }
    }

    /// For bands of many rows, whose panels come from cache: with AVX2, 6 rows × 16 columns
    /// (2 vectors each) in four passes per panel, so that each loaded piece of a panel row
    /// serves six rows instead of one. Batch 32 on the AVX2 kernels (forced on the Zen 4
    /// VM): 237 -> 277 texts/s; 2 rows × 32 columns gave 251, 3 × 32 spilled its sums to the
    /// stack (145). On few rows, where the panels come from memory, four passes were slower
    /// (batch 1: 194 -> 186).
    fn for_band(lanes: usize, rows: usize) -> Self {
        if lanes == 8 {
            Self {
                rows: TILE_ROWS_MAX.min(rows).max(1),
                narrow: true,
            }
        } else {
            Self::for_rows(lanes, rows)
        }
    }
}

impl Job<'_> {
    #[inline(always)]
    fn run<S: Simd, const V: usize, const T: usize>(self, simd: S) {
        let (inp, x) = (self.inp, self.x);
        let prefetch = Prefetch::new();
        let (full, rest) = (self.rows / T, self.rows % T);
        // Columns per pass over a panel: all 64, or a quarter (`TileShape::for_band`).
        let cols = V * S::F32_LANES;
        // Partial sums of every tile between chunks of the inputs (set to the bias per pass).
        let mut part = vec![[[simd.splat_f32s(0.0); V]; T]; full];
        for (p, panel) in self.panels.chunks_exact(inp * PANEL).enumerate() {
            for c0 in (0..PANEL).step_by(cols) {
                let y0 = p * PANEL + c0;
                let width = cols.min(self.y_stride.saturating_sub(y0));
                if width == 0 {
                    break;
                }
                let col = (self.first_panel + p) * PANEL + c0;
                let (b, _) = S::as_simd_f32s(&self.bias[col..col + cols]);
                let start: [S::f32s; V] = std::array::from_fn(|j| b[j]);
                part.fill([start; T]);
                let mut last = [start; T];
                for k0 in (0..inp).step_by(KC) {
                    let k1 = (k0 + KC).min(inp);
                    let w = Columns {
                        rows: &panel[k0 * PANEL..k1 * PANEL],
                        first: c0,
                    };
                    // The first tile of the first pass streams the panel from memory: it asks
                    // for rows ahead.
                    let ahead = match c0 {
                        0 => panel.get((k0 + AHEAD) * PANEL..).unwrap_or(&[]),
                        _ => &[],
                    };
                    for (t, acc) in part.iter_mut().enumerate() {
                        let xs = std::array::from_fn(|i| &x[(t * T + i) * inp..][k0..k1]);
                        let ahead = if t == 0 { Some(ahead) } else { None };
                        chunk(simd, w, xs, acc, prefetch, ahead);
                    }
                    if rest > 0 {
                        // The last rows, fewer than a tile: a tile of their own height.
                        let first = full * T;
                        let xs = |i: usize| &x[(first + i) * inp..][k0..k1];
                        let ahead = (full == 0).then_some(ahead);
                        let last = &mut last;
                        match rest {
                            1 => first_rows::<S, V, T, 1>(simd, w, xs, last, prefetch, ahead),
                            2 => first_rows::<S, V, T, 2>(simd, w, xs, last, prefetch, ahead),
                            3 => first_rows::<S, V, T, 3>(simd, w, xs, last, prefetch, ahead),
                            4 => first_rows::<S, V, T, 4>(simd, w, xs, last, prefetch, ahead),
                            5 => first_rows::<S, V, T, 5>(simd, w, xs, last, prefetch, ahead),
                            _ => unreachable!("tiles have at most {TILE_ROWS_MAX} rows"),
                        }
                    }
                }
                let sums = part.iter().flatten().chain(&last[..rest]);
                for (r, sums) in sums.enumerate() {
                    let at = r * self.y_stride + y0;
                    let dst = &mut self.y[at..at + width];
                    if width == cols {
                        // Stored as vectors: through a copy of runtime length, each row was a
                        // call to `memcpy`.
                        S::as_mut_simd_f32s(dst).0[..V].copy_from_slice(sums);
                    } else {
                        let mut lanes = [0f32; PANEL];
                        S::as_mut_simd_f32s(&mut lanes).0[..V].copy_from_slice(sums);
                        dst.copy_from_slice(&lanes[..width]);
                    }
                }
            }
        }
    }
}

/// Panel rows (`[k][PANEL]`) and the first of the columns a pass takes from them.
#[derive(Clone, Copy)]
struct Columns<'a> {
    rows: &'a [f32],
    first: usize,
}

/// One chunk of the inputs for a tile of `R` rows: `acc[i] += Σ xs[i][k] · w[k]` over the
/// chunk's inputs `k` (`w`: their panel rows, from column `w.first`), the sums kept in
/// registers throughout.
/// `ahead`, if given, is the panel from `AHEAD` rows past the chunk, to prefetch from.
#[inline(always)]
fn chunk<S: Simd, const V: usize, const R: usize>(
    simd: S,
    w: Columns,
    xs: [&[f32]; R],
    acc: &mut [[S::f32s; V]; R],
    prefetch: Prefetch,
    ahead: Option<&[f32]>,
) {
    let n = w.rows.len() / PANEL;
    // Cut to the chunk's length, so the loop below indexes them without checks.
    let xs = xs.map(|row| &row[..n]);
    let mut sums = *acc;
    for (k, wk) in w.rows.chunks_exact(PANEL).enumerate() {
        if let Some(ahead) = ahead {
            prefetch.row(ahead, k * PANEL);
        }
        let (wk, _) = S::as_simd_f32s(&wk[w.first..]);
        for (row, x) in sums.iter_mut().zip(&xs) {
            let xv = simd.splat_f32s(x[k]);
            for (a, &wv) in row.iter_mut().zip(wk) {
                *a = simd.mul_add_f32s(wv, xv, *a);
            }
        }
    }
    *acc = sums;
}

/// [`chunk`] for the first `R` of a tile's `T` rows (`R` < `T`: the rows left after the
/// whole tiles).
#[inline(always)]
fn first_rows<'x, S: Simd, const V: usize, const T: usize, const R: usize>(
    simd: S,
    w: Columns,
    xs: impl Fn(usize) -> &'x [f32],
    acc: &mut [[S::f32s; V]; T],
    prefetch: Prefetch,
    ahead: Option<&[f32]>,
) {
    if let Some(acc) = acc
        .get_mut(..R)
        .and_then(|a| <&mut [_; R]>::try_from(a).ok())
    {
        chunk(simd, w, std::array::from_fn(xs), acc, prefetch, ahead);
    }
}

/// Panel rows ahead of the one in use to ask for: 4 KiB.
const AHEAD: usize = 16;

/// Software prefetch of panel rows, where the CPU has it (x86-64): the first tile of rows
/// streams each panel from memory, and on the AVX-512 Xeon VM the hardware prefetcher alone
/// left the quantized kernels waiting on their loads (see `qmatmul::prefetch_rows_ahead`).
#[derive(Clone, Copy)]
struct Prefetch {
    #[cfg(target_arch = "x86_64")]
    v3: Option<pulp::x86::V3>,
}

impl Prefetch {
    fn new() -> Self {
        Self {
            #[cfg(target_arch = "x86_64")]
            v3: pulp::x86::V3::try_new(),
        }
    }

    /// Asks for the 64 floats (four cache lines) at `at`, if they exist.
    #[inline(always)]
    fn row(self, panel: &[f32], at: usize) {
        #[cfg(target_arch = "x86_64")]
        if let (Some(v3), Some(row)) = (self.v3, panel.get(at..at + PANEL)) {
            use core::arch::x86_64::_MM_HINT_T0;
            for line in row.chunks_exact(16) {
                v3.sse._mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast());
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (panel, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(
        x: &[f32],
        wt: &[f32],
        rows: usize,
        inp: usize,
        out: usize,
        bias: &[f32],
    ) -> Vec<f32> {
        let mut y = vec![0f32; rows * out];
        for r in 0..rows {
            for c in 0..out {
                let mut s = 0f64;
                for k in 0..inp {
                    s += f64::from(x[r * inp + k]) * f64::from(wt[k * out + c]);
                }
                y[r * out + c] = (s + f64::from(bias[c])) as f32;
            }
        }
        y
    }

    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn products_match_a_plain_dot_product_for_every_shape() {
        // Rows across the tile sizes and both task layouts; widths that are and are not
        // multiples of a panel.
        for &(rows, inp, out) in &[
            (1, 7, 5),
            (3, 64, 16),
            (13, 40, 50),
            (22, 96, 100),
            (64, 33, 17),
            (70, 48, 160),
            (150, 24, 40),
            // Groups of two panels, the last group with one.
            (2, 16, 266),
        ] {
            let (x, wt, bias) = (values(rows * inp, 1), values(inp * out, 2), values(out, 3));
            let packed = Panels::pack(&wt, inp, out).unwrap();
            assert_eq!(packed.unpack(), wt);
            let want = reference(&x, &wt, rows, inp, out, &bias);
            let got = packed.matmul(&x, rows, Some(&bias)).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4, "{rows}x{inp}x{out}: {g} vs {w}");
            }
            let no_bias = packed.matmul(&x, rows, None).unwrap();
            let want = reference(&x, &wt, rows, inp, out, &vec![0.0; out]);
            for (g, w) in no_bias.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4);
            }
        }
    }

    /// Packing rows into a panel is a transpose, whichever path runs and whatever the shape.
    #[test]
    fn rows_pack_into_a_transposed_panel() {
        for &(width, inp) in &[(64, 640), (61, 13), (5, 7), (8, 8), (16, 24), (64, 3)] {
            let w = values(width * inp, 7);
            let mut panel = vec![f32::NAN; inp * PANEL];
            pack_rows(&w, inp, &mut panel);
            for k in 0..inp {
                for c in 0..PANEL {
                    let want = if c < width { w[c * inp + k] } else { 0.0 };
                    assert_eq!(panel[k * PANEL + c], want, "{width}x{inp} at k {k} c {c}");
                }
            }
        }
    }

    /// Any stride at least the number of rows; entries past the rows stay as they were.
    #[test]
    fn transposes_into_any_stride() {
        for &(rows, cols, stride) in &[(19, 13, 24), (16, 32, 16), (3, 40, 5), (8, 8, 9)] {
            let src = values(rows * cols, 8);
            let mut dst = vec![f32::NAN; cols * stride];
            transpose(&src, cols, &mut dst, stride);
            for c in 0..cols {
                for r in 0..stride {
                    let got = dst[c * stride + r];
                    if r < rows {
                        assert_eq!(got, src[r * cols + c], "{rows}x{cols} at r {r} c {c}");
                    } else {
                        assert!(got.is_nan());
                    }
                }
            }
        }
    }

    /// A weight given `[out, inp]` a few rows at a time gives the same product as the packed
    /// one, for widths that are and are not multiples of a panel; a source that fails or gives
    /// the wrong number of values is an error.
    #[test]
    fn streamed_weights_give_the_same_product() {
        for &(rows, inp, out) in &[(1, 7, 5), (9, 40, 64), (22, 96, 100), (150, 24, 130)] {
            let (x, wt) = (values(rows * inp, 4), values(inp * out, 5));
            // `W` as its rows: the transpose of `wt`.
            let w: Vec<f32> = (0..out)
                .flat_map(|c| (0..inp).map(move |k| (c, k)))
                .map(|(c, k)| wt[k * out + c])
                .collect();
            let got = matmul_streamed(&x, rows, inp, out, |r| {
                assert!(r.len() <= PANEL && r.end <= out);
                Ok(w[r.start * inp..r.end * inp].to_vec())
            })
            .unwrap();
            let want = reference(&x, &wt, rows, inp, out, &vec![0.0; out]);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4, "{rows}x{inp}x{out}: {g} vs {w}");
            }
        }
        let x = values(3 * 8, 6);
        let failing = matmul_streamed(&x, 3, 8, 100, |r| {
            if r.start >= PANEL {
                Err("unreadable".to_string())
            } else {
                Ok(vec![0.0; r.len() * 8])
            }
        });
        assert_eq!(failing.unwrap_err(), "unreadable");
        let short = matmul_streamed(&x, 3, 8, 10, |r| Ok(vec![0.0; r.len() * 8 - 1]));
        assert!(short.unwrap_err().contains("not 80"));
        assert!(matmul_streamed(&x, 4, 8, 10, |_| Ok(vec![])).is_err());
    }

    /// The product on one given instruction set, whatever this CPU's best is: the AVX2 and
    /// portable paths are checked on an AVX-512 machine too.
    fn product_on<S: Simd>(simd: S, p: &Panels, x: &[f32], rows: usize, bias: &[f32]) -> Vec<f32> {
        let mut padded = vec![0f32; p.out.div_ceil(PANEL) * PANEL];
        padded[..p.out].copy_from_slice(bias);
        let band = product_shaped(
            simd,
            p,
            x,
            rows,
            &padded,
            TileShape::for_band(S::F32_LANES, rows),
        );
        let few = product_shaped(
            simd,
            p,
            x,
            rows,
            &padded,
            TileShape::for_rows(S::F32_LANES, rows),
        );
        assert_eq!(band, few, "both tile shapes sum in the same order");
        band
    }

    fn product_shaped<S: Simd>(
        simd: S,
        p: &Panels,
        x: &[f32],
        rows: usize,
        padded: &[f32],
        shape: TileShape,
    ) -> Vec<f32> {
        let mut y = vec![0f32; rows * p.out];
        simd.vectorize(Job {
            panels: &p.data,
            first_panel: 0,
            inp: p.inp,
            shape,
            x,
            rows,
            bias: padded,
            y: &mut y,
            y_stride: p.out,
        });
        y
    }

    #[test]
    fn every_instruction_set_gives_the_same_products() {
        let (rows, inp, out) = (9, 200, 70);
        let (x, wt, bias) = (values(rows * inp, 4), values(inp * out, 5), values(out, 6));
        let packed = Panels::pack(&wt, inp, out).unwrap();
        let want = reference(&x, &wt, rows, inp, out, &bias);
        let check = |got: Vec<f32>, isa: &str| {
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-4, "{isa}: {g} vs {w}");
            }
        };
        check(
            product_on(pulp::Scalar::new(), &packed, &x, rows, &bias),
            "portable",
        );
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(v3) = pulp::x86::V3::try_new() {
                check(product_on(v3, &packed, &x, rows, &bias), "AVX2");
            }
            if let Some(v4) = pulp::x86::V4::try_new() {
                check(product_on(v4, &packed, &x, rows, &bias), "AVX-512");
            }
        }
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        assert!(Panels::pack(&[0.0; 10], 3, 4).is_err());
        let p = Panels::pack(&[0.0; 12], 3, 4).unwrap();
        assert!(p.matmul(&[0.0; 7], 2, None).is_err());
        assert!(p.matmul(&[0.0; 6], 2, Some(&[0.0; 3])).is_err());
        assert_eq!(p.matmul(&[], 0, None).unwrap(), Vec::<f32>::new());
    }
}
