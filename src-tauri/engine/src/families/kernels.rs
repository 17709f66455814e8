//! Fused CPU kernels for the encoder's hot spots, found by profiling (BENCHMARKS.md): candle runs
//! exact GELU through a scalar `erf`, and attention as many tiny per-head matmuls plus copies,
//! each elementwise step on its own thread pool. These do each job in one pass over contiguous
//! f32 data, spread over rayon's pool (the one the GEMMs already use). Other devices and dtypes
//! take candle's own ops, so results never depend on whether a kernel exists.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, CustomOp3, DType, Layout, Shape, Tensor};
use rayon::prelude::*;

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
    p * f32::from_bits(((k as i32 + 127) as u32) << 23)
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

fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("kernel expects f32")
    };
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("kernel expects a contiguous tensor".into()))?;
    Ok(&data[start..end])
}

/// `gelu(x + bias)` over the last dimension.
struct BiasGelu {
    bias: Arc<Vec<f32>>,
}

impl CustomOp1 for BiasGelu {
    fn name(&self) -> &'static str {
        "wick-bias-gelu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous_f32(s, l)?;
        let n = self.bias.len();
        if n == 0 || src.len() % n != 0 {
            candle_core::bail!("bias of {n} does not divide {} values", src.len());
        }
        let rows = (CHUNK / n).max(1) * n;
        let mut out = vec![0f32; src.len()];
        out.par_chunks_mut(rows)
            .zip(src.par_chunks(rows))
            .for_each(|(o, i)| {
                for (o_row, i_row) in o.chunks_exact_mut(n).zip(i.chunks_exact(n)) {
                    for ((o, &x), &b) in o_row.iter_mut().zip(i_row).zip(self.bias.iter()) {
                        *o = gelu(x + b);
                    }
                }
            });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }
}

/// `gelu(x + bias)` with exact GELU; `bias` is `[n]` for `x` of `[.., n]`.
pub fn bias_gelu(x: &Tensor, bias: Option<&Tensor>) -> candle_core::Result<Tensor> {
    let fused = x.device().is_cpu() && x.dtype() == DType::F32;
    match bias {
        Some(b) if fused => {
            let op = BiasGelu {
                bias: Arc::new(b.to_dtype(DType::F32)?.to_vec1::<f32>()?),
            };
            x.contiguous()?.apply_op1_no_bwd(&op)
        }
        None if fused => {
            let n = x.dim(candle_core::D::Minus1)?;
            let op = BiasGelu {
                bias: Arc::new(vec![0.0; n]),
            };
            x.contiguous()?.apply_op1_no_bwd(&op)
        }
        Some(b) => x.broadcast_add(b)?.gelu_erf(),
        None => x.gelu_erf(),
    }
}

/// Multi-head self-attention over `[batch, tokens, heads * dim]` queries, keys and values whose
/// padding is at the end of each row (`lengths` real tokens): one task per (row, head).
struct Attention {
    heads: usize,
    lengths: Arc<Vec<usize>>,
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "wick-attention"
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
        let (q, k, v) = (
            contiguous_f32(qs, ql)?,
            contiguous_f32(ks, kl)?,
            contiguous_f32(vs, vl)?,
        );
        let (b, t, h) = ql.shape().dims3()?;
        if kl.shape().dims3()? != (b, t, h) || vl.shape().dims3()? != (b, t, h) {
            candle_core::bail!("attention: q, k and v shapes differ");
        }
        let (heads, d) = (self.heads, h / self.heads);
        if self.lengths.len() != b || heads * d != h {
            candle_core::bail!(
                "attention: {b} rows, {} lengths, {h} wide, {heads} heads",
                self.lengths.len()
            );
        }
        let scale = 1.0 / (d as f32).sqrt();
        let units: Vec<Vec<f32>> = (0..b * heads)
            .into_par_iter()
            .map(|unit| {
                let (row, head) = (unit / heads, unit % heads);
                let len = self.lengths[row].clamp(1, t);
                // Where token `tok` of this row and head sits in q, k and v.
                let at = |tok: usize| -> std::ops::Range<usize> {
                    let s = (row * t + tok) * h + head * d;
                    s..s + d
                };
                let mut ctx = vec![0f32; t * d];
                let mut scores = vec![0f32; len];
                for i in 0..t {
                    let qi = &q[at(i)];
                    let mut max = f32::NEG_INFINITY;
                    for (j, s) in scores.iter_mut().enumerate() {
                        *s = dot(qi, &k[at(j)]) * scale;
                        max = max.max(*s);
                    }
                    let mut sum = 0.0;
                    for s in scores.iter_mut() {
                        *s = exp(*s - max);
                        sum += *s;
                    }
                    let out = &mut ctx[i * d..(i + 1) * d];
                    for (j, s) in scores.iter().enumerate() {
                        let p = s / sum;
                        for (o, &x) in out.iter_mut().zip(&v[at(j)]) {
                            *o += p * x;
                        }
                    }
                }
                ctx
            })
            .collect();
        let mut out = vec![0f32; b * t * h];
        for (unit, ctx) in units.iter().enumerate() {
            let (row, head) = (unit / heads, unit % heads);
            for i in 0..t {
                let dst = (row * t + i) * h + head * d;
                out[dst..dst + d].copy_from_slice(&ctx[i * d..(i + 1) * d]);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, t, h))))
    }
}

/// A dot product with eight independent sums, so it vectorises.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
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

/// Fused attention when on the CPU in f32; `None` means "use candle's ops".
pub fn attention(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    heads: usize,
    lengths: &Arc<Vec<usize>>,
) -> candle_core::Result<Option<Tensor>> {
    if !q.device().is_cpu() || q.dtype() != DType::F32 {
        return Ok(None);
    }
    let op = Attention {
        heads,
        lengths: Arc::clone(lengths),
    };
    q.contiguous()?
        .apply_op3_no_bwd(&k.contiguous()?, &v.contiguous()?, &op)
        .map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

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

    #[test]
    fn fused_attention_matches_candle_ops_with_padding() {
        let dev = Device::Cpu;
        let (b, t, heads, d) = (2, 5, 3, 8);
        let q = Tensor::randn(0f32, 1.0, (b, t, heads * d), &dev).unwrap();
        let k = Tensor::randn(0f32, 1.0, (b, t, heads * d), &dev).unwrap();
        let v = Tensor::randn(0f32, 1.0, (b, t, heads * d), &dev).unwrap();
        let lengths = Arc::new(vec![5, 3]);
        let fused = attention(&q, &k, &v, heads, &lengths).unwrap().unwrap();
        let mask = Tensor::new(&[[1u32, 1, 1, 1, 1], [1, 1, 1, 0, 0]], &dev).unwrap();
        let bias = super::super::layers::attention_bias(&mask).unwrap();
        let split = |x: &Tensor| super::super::layers::split_heads(x, heads).unwrap();
        let plain =
            super::super::layers::attend(&split(&q), &split(&k), &split(&v), &bias).unwrap();
        let plain = super::super::layers::merge_heads(&plain).unwrap();
        let diff = (fused - plain).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
    }
}
