//! The post-norm encoder layer of BERT, RoBERTa and DistilBERT, and running a stack of them over
//! a batch (on the CPU, over its real tokens only).

use candle_core::{Module, Tensor};

use super::activation::Activation;
use super::attention::{attention_bias, AttentionSink, Packing, SelfAttention, Tokens};
use super::dense::Dense;
use super::norm::Norm;
use crate::cancel::CancelToken;

/// The feed-forward block: `out(act(inner(x)))`.
#[derive(Debug, Clone)]
pub struct FeedForward {
    pub inner: Dense,
    pub act: Activation,
    pub out: Dense,
}

impl FeedForward {
    /// `act(inner(x))`: bias and exact GELU in one pass (the scalar erf was a tenth of the run).
    pub fn inner_activation(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self.act {
            Activation::Gelu => crate::kernels::activation::bias_gelu(
                self.inner.forward_no_bias(xs)?,
                self.inner.bias(),
                self.inner.bias_values(),
            ),
            act => act.apply(&self.inner.forward(xs)?),
        }
    }

    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.out.forward(&self.inner_activation(xs)?)
    }
}

/// A post-norm encoder layer (BERT, RoBERTa, DistilBERT):
/// `h = norm1(x + attention(x))`, `out = norm2(h + ffn(h))`.
#[derive(Debug, Clone)]
pub struct PostNormLayer {
    pub attention: SelfAttention,
    pub attention_norm: Norm,
    pub ffn: FeedForward,
    pub output_norm: Norm,
}

impl PostNormLayer {
    pub fn forward(
        &self,
        xs: &Tensor,
        tokens: &Tokens,
        sink: Option<&AttentionSink>,
    ) -> candle_core::Result<Tensor> {
        let ctx = self.attention.context(xs, tokens, sink)?;
        let h = self.attention_norm.after(&self.attention.out, &ctx, xs)?;
        let inner = self.ffn.inner_activation(&h)?;
        self.output_norm.after(&self.ffn.out, &inner, &h)
    }
}

/// Runs post-norm layers over embedded inputs (`[batch, tokens, hidden]`), masking the
/// batch's padding; on the CPU, over the real tokens only. Padding positions of the result are
/// then zero: no pipeline reads them. With a `sink` (a look inside the model) the padded path
/// runs, which computes the attention weights, and hands them to it.
pub fn run_layers(
    layers: &[PostNormLayer],
    xs: Tensor,
    mask: &Tensor,
    cancel: &CancelToken,
    sink: Option<&AttentionSink>,
) -> candle_core::Result<Tensor> {
    let run = |mut xs: Tensor, tokens: Tokens| -> candle_core::Result<Tensor> {
        for layer in layers {
            cancel.check_candle()?;
            xs = layer.forward(&xs, &tokens, sink)?;
        }
        Ok(xs)
    };
    let packing = match sink {
        Some(_) => None,
        None => Packing::new(&xs, mask)?,
    };
    match packing {
        Some(packing) => {
            let rows = run(packing.gather(&xs)?, Tokens::Packed(packing.spans.clone()))?;
            packing.scatter(&rows)
        }
        None => run(xs, Tokens::Padded(attention_bias(mask)?)),
    }
}

/// Position ids 0, 1, 2, ... for every row of a `[batch, tokens]` batch.
pub fn positions_from_zero(ids: &Tensor) -> candle_core::Result<Tensor> {
    let (b, t) = ids.dims2()?;
    Tensor::arange(0u32, t as u32, ids.device())?
        .unsqueeze(0)?
        .broadcast_as((b, t))?
        .contiguous()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::dense::linear;
    use candle_core::{DType, Device};
    use candle_nn::VarBuilder;

    /// One post-norm layer of random weights, `h` wide (a multiple of 64, so its products run
    /// on packed panels as a real model's do).
    fn random_layer(h: usize, heads: usize) -> PostNormLayer {
        let dev = Device::Cpu;
        let mut tensors = std::collections::HashMap::new();
        let mut add = |name: &str, shape: &[usize], mean: f32| {
            let t = Tensor::randn(mean, 0.2, shape, &dev).unwrap();
            tensors.insert(name.to_string(), t);
        };
        for name in ["q", "k", "v", "o"] {
            add(&format!("{name}.weight"), &[h, h], 0.0);
            add(&format!("{name}.bias"), &[h], 0.0);
        }
        add("up.weight", &[2 * h, h], 0.0);
        add("up.bias", &[2 * h], 0.0);
        add("down.weight", &[h, 2 * h], 0.0);
        add("down.bias", &[h], 0.0);
        for norm in ["n1", "n2"] {
            add(&format!("{norm}.weight"), &[h], 1.0);
            add(&format!("{norm}.bias"), &[h], 0.0);
        }
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &dev);
        let dense = |name: &str, inp: usize, out: usize| linear(&vb, name, inp, out).unwrap();
        PostNormLayer {
            attention: SelfAttention::new(
                &dense("q", h, h),
                &dense("k", h, h),
                &dense("v", h, h),
                dense("o", h, h),
                heads,
            )
            .unwrap(),
            attention_norm: Norm::load(&vb, "n1", h, 1e-12).unwrap(),
            ffn: FeedForward {
                inner: dense("up", h, 2 * h),
                act: Activation::Gelu,
                out: dense("down", 2 * h, h),
            },
            output_norm: Norm::load(&vb, "n2", h, 1e-12).unwrap(),
        }
    }

    /// The real tokens alone, one sequence after another, give what the padded batch gives
    /// through candle's masked attention; padding positions come back zero.
    #[test]
    fn packed_rows_match_the_padded_batch() {
        let dev = Device::Cpu;
        let layer = random_layer(64, 4);
        let xs = Tensor::randn(0f32, 1.0, (4, 5, 64), &dev).unwrap();
        // The last row is all padding: no rows of its own, zeros back.
        let mask = Tensor::new(
            &[
                [1u32, 1, 1, 0, 0],
                [1, 1, 1, 1, 1],
                [1, 1, 0, 0, 0],
                [0, 0, 0, 0, 0],
            ],
            &dev,
        )
        .unwrap();
        let packed = run_layers(
            std::slice::from_ref(&layer),
            xs.clone(),
            &mask,
            &CancelToken::new(),
            None,
        )
        .unwrap();
        let padded = layer
            .forward(&xs, &Tokens::Padded(attention_bias(&mask).unwrap()), None)
            .unwrap();
        let (packed, padded) = (
            packed.to_vec3::<f32>().unwrap(),
            padded.to_vec3::<f32>().unwrap(),
        );
        for (row, len) in [3, 5, 2, 0].into_iter().enumerate() {
            for tok in 0..5 {
                for (a, b) in packed[row][tok].iter().zip(&padded[row][tok]) {
                    if tok < len {
                        assert!((a - b).abs() < 1e-4, "row {row} token {tok}: {a} vs {b}");
                    } else {
                        assert_eq!(*a, 0.0, "row {row} padding {tok}");
                    }
                }
            }
        }
        // A batch without padding is its own packing.
        let full = Tensor::ones((4, 5), DType::U32, &dev).unwrap();
        let packed = run_layers(
            std::slice::from_ref(&layer),
            xs.clone(),
            &full,
            &CancelToken::new(),
            None,
        )
        .unwrap();
        let padded = layer
            .forward(&xs, &Tokens::Padded(attention_bias(&full).unwrap()), None)
            .unwrap();
        let diff = (packed - padded).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
    }
}
