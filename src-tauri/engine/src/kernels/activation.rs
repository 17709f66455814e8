//! GELU in both of `transformers`' forms, element-wise and fused with the preceding bias.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, InplaceOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::math::{erf, exp};
use super::{contiguous_f32, contiguous_f32_mut, owned_cpu_f32, simd, CHUNK};

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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

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
}
