//! Attention of new queries over a layer's cached keys and values, as one CPU kernel.
//!
//! Through candle's ops a decode step's attention was a dozen tensor ops per layer (key
//! transpose, two batched matmuls, scale, mask, softmax, dtype casts and the head transposes
//! around them), each allocating, on the one thread that runs the model: in the SmolLM2 decode
//! profile candle's matmul alone was 5% of all samples, while the second core sat idle. Here each
//! (row, token, head) is one task that reads its query, its keys and values straight from the
//! cache buffers and writes its context straight into the `[batch, tokens, heads * head_dim]`
//! layout the output projection takes. Other devices and dtypes keep candle's ops.

use candle_core::{CpuStorage, CustomOp3, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::kernels::math::{dot, exp};
use crate::kernels::{contiguous_f32, simd};

/// Which keys each query sees and how scores are scaled.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    /// Key/value heads (query heads are a multiple: grouped-query attention).
    pub kv_heads: usize,
    /// Filled positions of the cache; the rest of its capacity is ignored.
    pub len: usize,
    /// Position of the first query (the cache held `offset` tokens before this step).
    pub offset: usize,
    /// A sliding window: a query sees only the last `w` positions, itself included.
    pub window: Option<usize>,
    pub scale: f32,
}

impl Span {
    /// The keys query `token` (of this step) sees: causal, and within the window if any.
    fn keys(&self, token: usize) -> std::ops::Range<usize> {
        let pos = self.offset + token;
        let end = (pos + 1).min(self.len);
        let start = self.window.map_or(0, |w| (pos + 1).saturating_sub(w));
        start.min(end)..end
    }
}

struct CachedAttention(Span);

impl CustomOp3 for CachedAttention {
    fn name(&self) -> &'static str {
        "wick-cached-attention"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let span = self.0;
        let (q, k, v) = (
            contiguous_f32(qs, ql)?,
            contiguous_f32(ks, kl)?,
            contiguous_f32(vs, vl)?,
        );
        let (b, heads, t, d) = ql.shape().dims4()?;
        let (kb, kv_heads, capacity, kd) = kl.shape().dims4()?;
        if kb != b
            || kd != d
            || kv_heads != span.kv_heads
            || kv_heads == 0
            || heads % kv_heads != 0
            || vl.shape() != kl.shape()
            || span.len > capacity
            || span.offset + t > span.len
        {
            candle_core::bail!(
                "cached attention: queries {:?}, keys {:?}, values {:?}, {} filled, offset {}",
                ql.shape(),
                kl.shape(),
                vl.shape(),
                span.len,
                span.offset
            );
        }
        let groups = heads / kv_heads;
        let mut out = vec![0f32; b * t * heads * d];
        // A task per (row, token, head), but a few per hand-off: a decode step's are tiny.
        out.par_chunks_mut(d)
            .with_min_len(4)
            .enumerate()
            .for_each(|(unit, ctx)| {
                let (bt, head) = (unit / heads, unit % heads);
                let (row, token) = (bt / t, bt % t);
                let qi = ((row * heads + head) * t + token) * d;
                let cache = (row * kv_heads + head / groups) * capacity * d;
                let keys = span.keys(token);
                simd(
                    #[inline(always)]
                    || {
                        attend_one(
                            &q[qi..qi + d],
                            &k[cache..cache + capacity * d],
                            &v[cache..cache + capacity * d],
                            keys,
                            span.scale,
                            ctx,
                        )
                    },
                )
            });
        Ok((CpuStorage::F32(out), Shape::from((b, t, heads * d))))
    }
}

/// Keys scored at a time: their scores live on the stack. Allocating them instead made the
/// second worker thread keep a heap of its own (4-10 MiB more peak memory in the SmolLM2 bench).
const KEYS_PER_STEP: usize = 32;

/// One query's softmax-weighted sum of the values at `keys`, written to `ctx` (zeroed). The
/// softmax is taken online, a step of keys at a time: the running sum and context are rescaled
/// whenever a larger score turns up, so nothing grows with the context length.
#[inline(always)]
fn attend_one(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    keys: std::ops::Range<usize>,
    scale: f32,
    ctx: &mut [f32],
) {
    let d = q.len();
    let mut scores = [0f32; KEYS_PER_STEP];
    let (mut max, mut sum) = (f32::NEG_INFINITY, 0f32);
    let mut first = keys.start;
    while first < keys.end {
        let last = (first + KEYS_PER_STEP).min(keys.end);
        let step = &mut scores[..last - first];
        let mut step_max = f32::NEG_INFINITY;
        for (s, kj) in step.iter_mut().zip(k[first * d..last * d].chunks_exact(d)) {
            *s = dot(q, kj) * scale;
            step_max = step_max.max(*s);
        }
        if step_max > max {
            // On the first step the past is empty: zeros rescaled.
            let rescale = exp(max - step_max);
            sum *= rescale;
            for o in ctx.iter_mut() {
                *o *= rescale;
            }
            max = step_max;
        }
        for (s, vj) in step.iter_mut().zip(v[first * d..last * d].chunks_exact(d)) {
            let p = exp(*s - max);
            sum += p;
            for (o, &x) in ctx.iter_mut().zip(vj) {
                *o += p * x;
            }
        }
        first = last;
    }
    let inv = 1.0 / sum;
    for o in ctx.iter_mut() {
        *o *= inv;
    }
}

/// Attention of `q` (`[batch, heads, tokens, head_dim]`) over the first `span.len` positions of
/// the cache buffers `k` and `v` (`[batch, kv_heads, capacity, head_dim]`), returning
/// `[batch, tokens, heads * head_dim]`; `None` where the kernel does not apply (not the CPU,
/// not f32), and the caller runs candle's ops.
pub fn cached_attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    span: Span,
) -> candle_core::Result<Option<Tensor>> {
    let on_cpu_f32 = |t: &Tensor| t.device().is_cpu() && t.dtype() == DType::F32;
    if !(on_cpu_f32(q) && on_cpu_f32(k) && on_cpu_f32(v)) {
        return Ok(None);
    }
    q.contiguous()?
        .apply_op3_no_bwd(&k.contiguous()?, &v.contiguous()?, &CachedAttention(span))
        .map(Some)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use candle_core::{Device, D};

    /// Candle's ops on the same numbers: repeat the key heads, mask, softmax, weight.
    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, span: Span) -> Tensor {
        let (b, heads, t, d) = q.dims4().unwrap();
        let groups = heads / span.kv_heads;
        let repeat = |x: &Tensor| {
            let x = x.narrow(2, 0, span.len).unwrap();
            let (b, h, s, d) = x.dims4().unwrap();
            x.unsqueeze(2)
                .unwrap()
                .expand((b, h, groups, s, d))
                .unwrap()
                .reshape((b, h * groups, s, d))
                .unwrap()
        };
        let (k, v) = (repeat(k), repeat(v));
        let scores = (q.matmul(&k.t().unwrap()).unwrap() * span.scale as f64).unwrap();
        let mut mask = vec![f32::NEG_INFINITY; t * span.len];
        for token in 0..t {
            for key in span.keys(token) {
                mask[token * span.len + key] = 0.0;
            }
        }
        let mask = Tensor::from_vec(mask, (t, span.len), q.device()).unwrap();
        let probs =
            candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&mask).unwrap()).unwrap();
        probs
            .matmul(&v)
            .unwrap()
            .transpose(1, 2)
            .unwrap()
            .reshape((b, t, heads * d))
            .unwrap()
    }

    fn check(
        b: usize,
        heads: usize,
        kv_heads: usize,
        t: usize,
        offset: usize,
        window: Option<usize>,
    ) {
        let (d, capacity) = (16, 64);
        let dev = Device::Cpu;
        let q = Tensor::randn(0f32, 1.0, (b, heads, t, d), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (b, kv_heads, capacity, d), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (b, kv_heads, capacity, d), &dev).unwrap();
        let span = Span {
            kv_heads,
            len: offset + t,
            offset,
            window,
            scale: 0.25,
        };
        let got = cached_attention(&q, &k, &v, span).unwrap().unwrap();
        let want = reference(&q, &k, &v, span);
        let diff = (got - want)
            .unwrap()
            .abs()
            .unwrap()
            .max(D::Minus1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(
            diff < 1e-5,
            "{b} rows, {heads}/{kv_heads} heads, {t} tokens at {offset}: {diff}"
        );
    }

    #[test]
    fn matches_candle_for_decode_prompt_groups_and_windows() {
        check(1, 9, 3, 1, 20, None); // a decode step with grouped-query heads
        check(2, 4, 4, 7, 0, None); // a prompt, causal
        check(1, 4, 1, 5, 11, None); // a prompt after a cached one
        check(1, 4, 2, 6, 30, Some(8)); // a sliding-window layer
        check(3, 2, 2, 1, 40, Some(4));
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let dev = Device::Cpu;
        let q = Tensor::zeros((1, 4, 1, 8), DType::F32, &dev).unwrap();
        let k = Tensor::zeros((1, 3, 16, 8), DType::F32, &dev).unwrap();
        let span = Span {
            kv_heads: 3,
            len: 4,
            offset: 3,
            window: None,
            scale: 1.0,
        };
        // 4 query heads do not group over 3 key heads.
        assert!(cached_attention(&q, &k, &k, span).is_err());
        let k = Tensor::zeros((1, 2, 16, 8), DType::F32, &dev).unwrap();
        let past_capacity = Span {
            kv_heads: 2,
            len: 17,
            offset: 16,
            ..span
        };
        assert!(cached_attention(&q, &k, &k, past_capacity).is_err());
    }
}
