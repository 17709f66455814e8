//! Fused CPU kernels for the encoder's hot spots, found by profiling (BENCHMARKS.md): candle runs
//! exact GELU through a scalar `erf`, and attention as many tiny per-head matmuls plus copies,
//! each elementwise step on its own thread pool. These do each job in one pass over contiguous
//! f32 data, spread over rayon's pool (the one the GEMMs already use). Other devices and dtypes
//! take candle's own ops, so results never depend on whether a kernel exists.

use std::ops::Range;
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, InplaceOp1, InplaceOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

/// Runs `work` compiled for the best instruction set this CPU has, chosen at run time (AVX2 and
/// FMA on most x86-64 machines), so the plain loops in these kernels vectorise 8 wide without
/// building the whole binary for one CPU. `pulp` (already under candle's GEMM) does the
/// detection and the safe dispatch.
#[inline(always)]
pub(crate) fn simd<R>(work: impl FnOnce() -> R) -> R {
    struct Op<F>(F);
    impl<R, F: FnOnce() -> R> pulp::WithSimd for Op<F> {
        type Output = R;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> R {
            (self.0)()
        }
    }
    pulp::Arch::new().dispatch(Op(work))
}

/// Elements per parallel task: enough to amortise the hand-off.
const CHUNK: usize = 16 * 1024;

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;

/// Adding and subtracting 1.5 * 2^23 rounds an f32 to the nearest integer with plain
/// arithmetic: `floor` would be a libm call on the baseline x86-64 target (no SSE4.1), which
/// stops loops from vectorising.
const ROUNDER: f32 = 12_582_912.0;

/// `e^x` in f32 (relative error below 3e-7), without branches or calls so loops over it
/// vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let k = (x * LOG2E + ROUNDER) - ROUNDER;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * pow2(k)
}

/// `2^k` for a whole number `k` in [-126, 127], built from bits. `k as i32` would be Rust's
/// saturating conversion, which LLVM turns into per-lane scalar code on AVX-512 (a third of the
/// GELU kernel's time there). Instead, adding 2^23 puts `k + 127` in the low mantissa bits, and
/// shifting those into the exponent field drops the rest.
#[inline(always)]
fn pow2(k: f32) -> f32 {
    const MAGIC: f32 = 8_388_608.0 + 127.0;
    f32::from_bits((k + MAGIC).to_bits() << 23)
}

/// `erf(x)` (Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    (1.0 - poly * exp(-a * a)).copysign(x)
}

/// Exact (erf) GELU, as `transformers`' "gelu".
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// The tanh form of GELU (`transformers`' "gelu_new" / "gelu_pytorch_tanh"), written as
/// `x · sigmoid(2u)`, which equals `0.5 x (1 + tanh(u))` for `u = √(2/π) (x + 0.044715 x³)`:
/// one [`exp`] instead of libm's `tanhf` (through `expm1f`), which was 10% of Gemma 3's prefill.
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let u = SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x);
    x / (1.0 + exp(-2.0 * u))
}

/// [`gelu_tanh`] over contiguous f32, in parallel chunks.
struct GeluTanh;

impl CustomOp1 for GeluTanh {
    fn name(&self) -> &'static str {
        "wick-gelu-tanh"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(s, l)?;
        let mut out = vec![0f32; src.len()];
        out.par_chunks_mut(CHUNK)
            .zip(src.par_chunks(CHUNK))
            .for_each(|(o, i)| {
                simd(
                    #[inline(always)]
                    || {
                        for (o, &x) in o.iter_mut().zip(i) {
                            *o = gelu_tanh(x);
                        }
                    },
                )
            });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// [`gelu_tanh`] over a tensor: Wick's kernel for f32 on the CPU, candle's `gelu` elsewhere.
pub fn gelu_tanh_tensor(x: &Tensor) -> candle_core::Result<Tensor> {
    if x.device().is_cpu() && x.dtype() == DType::F32 {
        return x.contiguous()?.apply_op1_no_bwd(&GeluTanh);
    }
    x.gelu()
}

pub(crate) fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("kernel expects f32")
    };
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("kernel expects a contiguous tensor".into()))?;
    Ok(&data[start..end])
}

/// The f32 values of a contiguous tensor's storage, to overwrite in place.
fn contiguous_f32_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> candle_core::Result<&'a mut [f32]> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("kernel expects f32")
    };
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("kernel expects a contiguous tensor".into()))?;
    Ok(&mut data[start..end])
}

/// A tensor whose storage the caller gives up, on the CPU in f32 and contiguous, so a kernel can
/// overwrite it: no new activation to allocate and zero (the allocator's `memset` of fresh
/// buffers was 6% of a batch-32 embedding run). `None`: use candle's ops.
fn owned_cpu_f32(x: Tensor) -> candle_core::Result<Option<Tensor>> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return Ok(None);
    }
    // `contiguous` returns the same storage when it already is; a strided view is copied first,
    // so the overwrite never reaches a tensor the caller did not give.
    x.contiguous().map(Some)
}

/// `gelu(x + bias)` over the last dimension, in place.
struct BiasGelu {
    bias: Arc<Vec<f32>>,
}

impl InplaceOp1 for BiasGelu {
    fn name(&self) -> &'static str {
        "wick-bias-gelu"
    }

    fn cpu_fwd(&self, s: &mut CpuStorage, l: &Layout) -> candle_core::Result<()> {
        let xs = contiguous_f32_mut(s, l)?;
        let n = self.bias.len();
        if n == 0 || xs.len() % n != 0 {
            candle_core::bail!("bias of {n} does not divide {} values", xs.len());
        }
        let rows = (CHUNK / n).max(1) * n;
        xs.par_chunks_mut(rows).for_each(|xs| {
            simd(
                #[inline(always)]
                || {
                    for row in xs.chunks_exact_mut(n) {
                        for (x, &b) in row.iter_mut().zip(self.bias.iter()) {
                            *x = gelu(*x + b);
                        }
                    }
                },
            )
        });
        Ok(())
    }
}

/// `gelu(x + bias)` with exact GELU; `bias` is `[n]` for `x` of `[.., n]` (`values` is the
/// same bias as plain numbers, which the kernel uses). Takes `x` because the kernel writes
/// the result over it.
pub fn bias_gelu(
    x: Tensor,
    bias: Option<&Tensor>,
    values: Option<&Arc<Vec<f32>>>,
) -> candle_core::Result<Tensor> {
    let n = x.dim(candle_core::D::Minus1)?;
    let Some(x) = owned_cpu_f32(x.clone())? else {
        return match bias {
            Some(b) => x.broadcast_add(b)?.gelu_erf(),
            None => x.gelu_erf(),
        };
    };
    let op = BiasGelu {
        bias: values.cloned().unwrap_or_else(|| Arc::new(vec![0.0; n])),
    };
    x.inplace_op1(&op)?;
    Ok(x)
}

/// `layer_norm(y + bias + residual)` row by row, written over `y`.
struct ResidualNorm {
    bias: Option<Arc<Vec<f32>>>,
    gamma: Arc<Vec<f32>>,
    beta: Arc<Vec<f32>>,
    eps: f32,
}

impl InplaceOp2 for ResidualNorm {
    fn name(&self) -> &'static str {
        "wick-residual-norm"
    }

    fn cpu_fwd(
        &self,
        ys: &mut CpuStorage,
        yl: &Layout,
        rs: &CpuStorage,
        rl: &Layout,
    ) -> candle_core::Result<()> {
        let (y, r) = (contiguous_f32_mut(ys, yl)?, contiguous_f32(rs, rl)?);
        let n = self.gamma.len();
        if y.len() != r.len() || n == 0 || y.len() % n != 0 {
            candle_core::bail!(
                "residual norm: {} and {} values, rows of {n}",
                y.len(),
                r.len()
            );
        }
        let rows = (CHUNK / n).max(1) * n;
        let zeros;
        let bias: &[f32] = match &self.bias {
            Some(b) => b,
            None => {
                zeros = vec![0f32; n];
                &zeros
            }
        };
        y.par_chunks_mut(rows)
            .zip(r.par_chunks(rows))
            .for_each(|(y, r)| {
                simd(
                    #[inline(always)]
                    || {
                        for (y, r) in y.chunks_exact_mut(n).zip(r.chunks_exact(n)) {
                            // Separate passes, and sums over 16 lanes: a running scalar sum
                            // in the same loop kept the whole pass scalar.
                            for ((y, &r), &b) in y.iter_mut().zip(r).zip(bias) {
                                *y += b + r;
                            }
                            let mean = sum(y) / n as f32;
                            for y in y.iter_mut() {
                                *y -= mean;
                            }
                            let inv = 1.0 / (dot(y, y) / n as f32 + self.eps).sqrt();
                            for ((y, &g), &b) in
                                y.iter_mut().zip(self.gamma.iter()).zip(self.beta.iter())
                            {
                                *y = *y * inv * g + b;
                            }
                        }
                    },
                )
            });
        Ok(())
    }
}

/// `layer_norm(y + bias + residual)` on the CPU in f32, written over `y` (which is why it is
/// taken); `Err(y)` gives `y` back untouched where candle's ops must do it.
pub fn residual_norm(
    y: Tensor,
    residual: &Tensor,
    bias: Option<&Arc<Vec<f32>>>,
    gamma: &Arc<Vec<f32>>,
    beta: &Arc<Vec<f32>>,
    eps: f64,
) -> candle_core::Result<Result<Tensor, Tensor>> {
    if residual.dtype() != DType::F32 {
        return Ok(Err(y));
    }
    let Some(out) = owned_cpu_f32(y.clone())? else {
        return Ok(Err(y));
    };
    let op = ResidualNorm {
        bias: bias.cloned(),
        gamma: Arc::clone(gamma),
        beta: Arc::clone(beta),
        eps: eps as f32,
    };
    out.inplace_op2(&residual.contiguous()?, &op)?;
    Ok(Ok(out))
}

/// Multi-head self-attention from one `[rows, 3 * hidden]` tensor of query, key and value
/// projections (bias not yet added), each sequence's tokens being one span of the rows (padding
/// left out): one task per (sequence, head), each gathering its query, key and value rows first.
struct Attention {
    heads: usize,
    spans: Arc<Vec<Range<usize>>>,
    bias: Arc<Vec<f32>>,
}

impl CustomOp1 for Attention {
    fn name(&self) -> &'static str {
        "wick-attention"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let qkv = contiguous_f32(s, l)?;
        let (n, w) = l.shape().dims2()?;
        let h = w / 3;
        let (heads, d) = (self.heads, h / self.heads.max(1));
        let spans_fit = self.spans.iter().all(|s| s.start <= s.end && s.end <= n);
        if !spans_fit || d == 0 || heads * d != h || 3 * h != w || self.bias.len() != w {
            candle_core::bail!(
                "attention: {n} rows, spans {:?}, {w} wide, {heads} heads, {} biases",
                self.spans,
                self.bias.len()
            );
        }
        let scale = 1.0 / (d as f32).sqrt();
        let units: Vec<Vec<f32>> = (0..self.spans.len() * heads)
            .into_par_iter()
            .map(|unit| {
                simd(
                    #[inline(always)]
                    || {
                        let (span, head) = (&self.spans[unit / heads], unit % heads);
                        head_attention(
                            HeadRows {
                                qkv,
                                width: w,
                                span: span.clone(),
                                cols: [0, h, 2 * h].map(|c| c + head * d),
                                d,
                            },
                            &self.bias,
                            scale,
                        )
                    },
                )
            })
            .collect();
        let mut out = vec![0f32; n * h];
        for (unit, ctx) in units.iter().enumerate() {
            let (span, head) = (&self.spans[unit / heads], unit % heads);
            for (row, c) in span.clone().zip(ctx.chunks_exact(d)) {
                let dst = row * h + head * d;
                out[dst..dst + d].copy_from_slice(c);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((n, h))))
    }
}

/// One head's query, key and value columns for one sequence's rows of a `[rows, width]`
/// projection matrix.
struct HeadRows<'a> {
    qkv: &'a [f32],
    width: usize,
    span: Range<usize>,
    /// Where the head's query, key and value columns start.
    cols: [usize; 3],
    /// Columns per head.
    d: usize,
}

impl HeadRows<'_> {
    /// Part `part` (0 query, 1 key, 2 value) of every token, bias added: `[len, d]`.
    #[inline(always)]
    fn rows(&self, part: usize, bias: &[f32]) -> Vec<f32> {
        let (col, d) = (self.cols[part], self.d);
        let bias = &bias[col..col + d];
        let mut out = Vec::with_capacity(self.span.len() * d);
        for row in self.span.clone() {
            let at = row * self.width + col;
            out.extend(self.qkv[at..at + d].iter().zip(bias).map(|(x, b)| x + b));
        }
        out
    }

    /// The keys transposed, bias added: `[d, lanes]`, the `lanes - len` last columns zero.
    #[inline(always)]
    fn keys_transposed(&self, bias: &[f32], lanes: usize) -> Vec<f32> {
        let mut kt = vec![0f32; self.d * lanes];
        super::panels::transpose(&self.rows(1, bias), self.d, &mut kt, lanes);
        kt
    }
}

/// Keys scored, or value columns summed, per step of the attention kernel: one AVX-512 vector.
const LANES: usize = 16;

/// Queries taken together by the attention kernel: each step then has this many independent
/// sums in flight, where one alone would wait on the latency of every multiply-add.
const QUERIES: usize = 4;

/// `softmax(q kᵀ · scale) v` for one head of one sequence, `[len, d]`. Every loop runs across
/// lanes, [`QUERIES`] queries at a time, with sums held in registers: scores for 16 keys at a
/// time from the transposed keys, then the weighted values 16 columns at a time. Dot products
/// with a sum across lanes per score made this kernel 8% of a batch of 32 sentences, for 1-2%
/// of its FLOPs.
#[inline(always)]
fn head_attention(rows: HeadRows, bias: &[f32], scale: f32) -> Vec<f32> {
    let (len, d) = (rows.span.len(), rows.d);
    let lanes = len.next_multiple_of(LANES);
    let (q, v) = (rows.rows(0, bias), rows.rows(2, bias));
    let kt = rows.keys_transposed(bias, lanes);
    let mut ctx = vec![0f32; len * d];
    let mut probs = vec![0f32; QUERIES * lanes];
    for (qs, out) in q.chunks(QUERIES * d).zip(ctx.chunks_mut(QUERIES * d)) {
        let n = qs.len() / d;
        let probs = &mut probs[..n * lanes];
        // Scores, unscaled: `[n, lanes]` = `[n, d]` · `[d, lanes]` (keys past the sequence
        // score 0 and are left out of the softmax).
        let whole = Product {
            a: qs,
            a_stride: d,
            k: d,
            b: &kt,
            n: lanes,
        };
        whole.first_rows(n, probs);
        for p in probs.chunks_exact_mut(lanes) {
            softmax_in_place(&mut p[..len], scale);
        }
        // Context: `[n, d]` = `[n, len]` · `[len, d]`.
        let whole = Product {
            a: probs,
            a_stride: lanes,
            k: len,
            b: &v,
            n: d,
        };
        if d.is_multiple_of(LANES) {
            whole.first_rows(n, out);
        } else {
            // Heads narrower than a vector, or not a whole number of them: tiny models only.
            for (p, o) in probs.chunks_exact(lanes).zip(out.chunks_exact_mut(d)) {
                for (&pj, vj) in p[..len].iter().zip(v.chunks_exact(d)) {
                    for (a, &x) in o.iter_mut().zip(vj) {
                        *a = pj.mul_add(x, *a);
                    }
                }
            }
        }
    }
    ctx
}

/// A small product `a · b` for the attention kernel: `a` has rows `a_stride` apart, of which
/// the first `k` columns are used; `b` is `[k, n]` (at least `k` rows), `n` a multiple of
/// [`LANES`].
#[derive(Clone, Copy)]
struct Product<'a> {
    a: &'a [f32],
    a_stride: usize,
    k: usize,
    b: &'a [f32],
    n: usize,
}

impl Product<'_> {
    /// The first `count` (at most [`QUERIES`]) rows of the product into `out` (`[count, n]`):
    /// all together when there are [`QUERIES`], else one at a time. (Loops, not closures: a
    /// closure is not inlined into the vectorised caller, and `mul_add` outside it is a call
    /// to libm.)
    #[inline(always)]
    fn first_rows(self, count: usize, out: &mut [f32]) {
        if count == QUERIES {
            return self.rows::<QUERIES>(out);
        }
        for (r, o) in out.chunks_exact_mut(self.n).take(count).enumerate() {
            Self {
                a: &self.a[r * self.a_stride..],
                ..self
            }
            .rows::<1>(o);
        }
    }

    /// The first `R` rows of the product into `out` (`[R, n]`), 16 columns at a time with the
    /// `R` rows' sums in registers.
    #[inline(always)]
    fn rows<const R: usize>(self, out: &mut [f32]) {
        let n = self.n;
        debug_assert!(n.is_multiple_of(LANES));
        for j0 in (0..n).step_by(LANES) {
            let mut acc = [[0f32; LANES]; R];
            for (c, b) in self.b.chunks_exact(n).take(self.k).enumerate() {
                let Ok(b) = <&[f32; LANES]>::try_from(&b[j0..j0 + LANES]) else {
                    continue;
                };
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = self.a[r * self.a_stride + c];
                    for (s, &y) in acc.iter_mut().zip(b) {
                        *s = x.mul_add(y, *s);
                    }
                }
            }
            for (r, acc) in acc.iter().enumerate() {
                out[r * n + j0..r * n + j0 + LANES].copy_from_slice(acc);
            }
        }
    }
}

/// `softmax(s · scale)` in place.
#[inline(always)]
fn softmax_in_place(s: &mut [f32], scale: f32) {
    let max = max(s);
    for x in s.iter_mut() {
        *x = exp((*x - max) * scale);
    }
    let inv = 1.0 / sum(s);
    for x in s.iter_mut() {
        *x *= inv;
    }
}

/// The largest of `a` (-inf for none).
#[inline(always)]
fn max(a: &[f32]) -> f32 {
    fold_lanes(a, f32::NEG_INFINITY, |m, x| if x > m { x } else { m })
}

/// The sum of `a`.
#[inline(always)]
fn sum(a: &[f32]) -> f32 {
    fold_lanes(a, 0.0, |s, x| s + x)
}

/// `a` reduced by `op` over 16 independent lanes, then the lanes and the tail, so it
/// vectorises: a running sum or maximum stays scalar (float addition is not associative, and
/// `f32::max` keeps NaN rules), as the compiler must keep its order.
#[inline(always)]
fn fold_lanes(a: &[f32], identity: f32, op: impl Fn(f32, f32) -> f32 + Copy) -> f32 {
    let mut acc = [identity; 16];
    let chunks = a.chunks_exact(16);
    let tail = chunks.remainder().iter().fold(identity, |m, &x| op(m, x));
    for x in chunks {
        for (m, &x) in acc.iter_mut().zip(x) {
            *m = op(*m, x);
        }
    }
    op(acc.iter().fold(identity, |m, &x| op(m, x)), tail)
}

/// A dot product with eight independent sums, so it vectorises.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Fused attention from raw (bias-free) `[rows, 3 * hidden]` projections, each sequence's
/// tokens one span of the rows, giving `[rows, hidden]` (rows in no span are zero), when on the
/// CPU in f32; `None` means "use candle's ops".
pub fn attention(
    qkv: &Tensor,
    bias: &Arc<Vec<f32>>,
    heads: usize,
    spans: &Arc<Vec<Range<usize>>>,
) -> candle_core::Result<Option<Tensor>> {
    if !qkv.device().is_cpu() || qkv.dtype() != DType::F32 {
        return Ok(None);
    }
    let op = Attention {
        heads,
        spans: Arc::clone(spans),
        bias: Arc::clone(bias),
    };
    qkv.contiguous()?.apply_op1_no_bwd(&op).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, IndexOp};

    #[test]
    fn exp_erf_and_gelu_are_accurate() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            let e = exp(x.min(80.0));
            assert!((e / x.min(80.0).exp() - 1.0).abs() < 3e-7, "exp({x})");
            let want = Tensor::new(&[x], &Device::Cpu).unwrap().gelu_erf().unwrap();
            let want = want.to_vec1::<f32>().unwrap()[0];
            assert!(
                (gelu(x) - want).abs() < 2e-6 * (1.0 + x.abs()),
                "gelu({x}) {} vs {want}",
                gelu(x)
            );
        }
    }

    /// Against candle's `gelu` (the tanh form through libm's `tanhf`), elementwise and as a
    /// tensor op, over the range activations take and far outside it.
    #[test]
    fn gelu_tanh_matches_candles() {
        let xs: Vec<f32> = (-3000..=3000).map(|i| i as f32 / 100.0).collect();
        let t = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
        let want: Vec<f32> = t.gelu().unwrap().to_vec1().unwrap();
        let got: Vec<f32> = gelu_tanh_tensor(&t).unwrap().to_vec1().unwrap();
        for ((x, g), w) in xs.iter().zip(&got).zip(&want) {
            assert!(
                (g - w).abs() < 1e-6 * (1.0 + x.abs()),
                "gelu_tanh({x}) {g} vs {w}"
            );
            assert_eq!(*g, gelu_tanh(*x));
        }
    }

    /// Heads narrower than a vector (the tiny models') and whole vectors wide (real models'),
    /// sequences of whole and partial groups of queries, the second one padded.
    #[test]
    fn fused_attention_matches_candle_ops_with_padding() {
        let dev = Device::Cpu;
        for (t, heads, d) in [(5, 3, 8), (9, 2, 32), (21, 1, 48)] {
            let b = 2;
            let q = Tensor::randn(0f32, 1.0, (b, t, heads * d), &dev).unwrap();
            let k = Tensor::randn(0f32, 1.0, (b, t, heads * d), &dev).unwrap();
            let v = Tensor::randn(0f32, 1.0, (b, t, heads * d), &dev).unwrap();
            let zero = Arc::new(vec![0f32; 3 * heads * d]);
            // The second row's last two tokens are padding, left out of the rows.
            let real = t - 2;
            let qkv = Tensor::cat(&[&q, &k, &v], 2).unwrap();
            let rows = Tensor::cat(&[qkv.i(0).unwrap(), qkv.i((1, ..real)).unwrap()], 0).unwrap();
            // An empty sequence between them has no rows and changes nothing.
            let spans = Arc::new(vec![0..t, t..t, t..t + real]);
            let fused = attention(&rows, &zero, heads, &spans).unwrap().unwrap();
            let flags: Vec<u32> = (0..2 * t).map(|i| u32::from(i < t + real)).collect();
            let mask = Tensor::from_vec(flags, (2, t), &dev).unwrap();
            let bias = super::super::layers::attention_bias(&mask).unwrap();
            let split = |x: &Tensor| super::super::layers::split_heads(x, heads).unwrap();
            let plain =
                super::super::layers::attend(&split(&q), &split(&k), &split(&v), &bias).unwrap();
            let plain = super::super::layers::merge_heads(&plain).unwrap();
            let plain =
                Tensor::cat(&[plain.i(0).unwrap(), plain.i((1, ..real)).unwrap()], 0).unwrap();
            let diff = (fused - plain).unwrap().abs().unwrap().max_all().unwrap();
            assert!(
                diff.to_scalar::<f32>().unwrap() < 1e-5,
                "t {t} heads {heads} d {d}"
            );
        }
    }

    #[test]
    fn residual_norm_and_bias_gelu_match_candle_ops() {
        let dev = Device::Cpu;
        let (rows, n) = (7, 48);
        let y = Tensor::randn(0f32, 2.0, (rows, n), &dev).unwrap();
        let r = Tensor::randn(0f32, 1.0, (rows, n), &dev).unwrap();
        let values = |t: &Tensor| Arc::new(t.to_vec1::<f32>().unwrap());
        let bias = Tensor::randn(0f32, 0.5, n, &dev).unwrap();
        let gamma = Tensor::randn(1f32, 0.1, n, &dev).unwrap();
        let beta = Tensor::randn(0f32, 0.1, n, &dev).unwrap();
        let fused = residual_norm(
            y.copy().unwrap(),
            &r,
            Some(&values(&bias)),
            &values(&gamma),
            &values(&beta),
            1e-12,
        )
        .unwrap()
        .unwrap_or_else(|_| panic!("the kernel runs on the CPU"));
        let sum = y.broadcast_add(&bias).unwrap().add(&r).unwrap();
        let plain = candle_nn::ops::layer_norm(&sum, &gamma, &beta, 1e-12).unwrap();
        let diff = (fused - plain).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);

        let fused = bias_gelu(y.copy().unwrap(), Some(&bias), Some(&values(&bias))).unwrap();
        let plain = y.broadcast_add(&bias).unwrap().gelu_erf().unwrap();
        let diff = (fused - plain).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
    }
}
