//! Layer norm fused with the residual sum and the preceding layer's bias.

use std::sync::Arc;

use candle_core::{CpuStorage, DType, InplaceOp2, Layout, Tensor};
use rayon::prelude::*;

use super::math::{dot, sum};
use super::{contiguous_f32, contiguous_f32_mut, owned_cpu_f32, simd, CHUNK};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::activation::bias_gelu;
    use candle_core::Device;

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
