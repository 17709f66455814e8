//! Encoder self-attention over packed rows: each sequence's real tokens one span of the rows,
//! one task per (sequence, head).

use std::ops::Range;
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::math::{exp, max, sum};
use super::{contiguous_f32, simd};

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
    use crate::blocks::attention::{attend, attention_bias, merge_heads, split_heads};
    use candle_core::{Device, IndexOp};

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
            let bias = attention_bias(&mask).unwrap();
            let split = |x: &Tensor| split_heads(x, heads).unwrap();
            let plain = attend(&split(&q), &split(&k), &split(&v), &bias, None).unwrap();
            let plain = merge_heads(&plain).unwrap();
            let plain =
                Tensor::cat(&[plain.i(0).unwrap(), plain.i((1, ..real)).unwrap()], 0).unwrap();
            let diff = (fused - plain).unwrap().abs().unwrap().max_all().unwrap();
            assert!(
                diff.to_scalar::<f32>().unwrap() < 1e-5,
                "t {t} heads {heads} d {d}"
            );
        }
    }
}
