//! Layer norms, plain and fused with the residual sum that precedes them.

use std::sync::Arc;

use candle_core::{DType, Module, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use super::dense::Dense;

pub fn layer_norm(
    vb: &VarBuilder,
    name: &str,
    size: usize,
    eps: f64,
) -> candle_core::Result<LayerNorm> {
    candle_nn::layer_norm(size, eps, vb.pp(name))
}

/// A layer norm that can also take the residual sum and the preceding layer's bias in the same
/// pass: `norm(y + bias + residual)`.
#[derive(Debug, Clone)]
pub struct Norm {
    inner: LayerNorm,
    gamma: Arc<Vec<f32>>,
    beta: Arc<Vec<f32>>,
    eps: f64,
}

impl Norm {
    pub fn load(vb: &VarBuilder, name: &str, size: usize, eps: f64) -> candle_core::Result<Self> {
        let vbn = vb.pp(name);
        let values = |t: Tensor| t.to_dtype(DType::F32)?.to_vec1::<f32>().map(Arc::new);
        Ok(Self {
            gamma: values(vbn.get(size, "weight")?)?,
            beta: values(vbn.get(size, "bias")?)?,
            inner: layer_norm(vb, name, size, eps)?,
            eps,
        })
    }

    /// `norm(dense(x) + residual)`, with the dense layer's bias folded into the norm's pass.
    pub fn after(
        &self,
        dense: &Dense,
        x: &Tensor,
        residual: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let y = dense.forward_no_bias(x)?;
        let fused = crate::kernels::norm::residual_norm(
            y,
            residual,
            dense.bias_values(),
            &self.gamma,
            &self.beta,
            self.eps,
        )?;
        match fused {
            Ok(out) => Ok(out),
            Err(y) => {
                let y = match dense.bias() {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                };
                self.inner.forward(&(y + residual)?)
            }
        }
    }
}
