//! Building blocks shared by the encoder families: activations named as `transformers` names
//! them, weight loading with clear errors, and multi-head attention over a padded batch.

use candle_core::{DType, Module, Tensor, D};
use candle_nn::{LayerNorm, Linear, VarBuilder};
use serde::Deserialize;

/// `hidden_act` / `activation` values of config.json. `gelu` is the exact (erf) GELU, as in
/// `transformers`; the tanh approximation goes by its own names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    Gelu,
    #[serde(alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluNew,
    Relu,
    #[serde(alias = "swish")]
    Silu,
    Tanh,
}

impl Activation {
    pub fn apply(self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Gelu => xs.gelu_erf(),
            Self::GeluNew => xs.gelu(),
            Self::Relu => xs.relu(),
            Self::Silu => candle_nn::ops::silu(xs),
            Self::Tanh => xs.tanh(),
        }
    }
}

pub fn linear(vb: &VarBuilder, name: &str, inp: usize, out: usize) -> candle_core::Result<Linear> {
    candle_nn::linear(inp, out, vb.pp(name))
}

pub fn linear_no_bias(
    vb: &VarBuilder,
    name: &str,
    inp: usize,
    out: usize,
) -> candle_core::Result<Linear> {
    candle_nn::linear_no_bias(inp, out, vb.pp(name))
}

pub fn layer_norm(
    vb: &VarBuilder,
    name: &str,
    size: usize,
    eps: f64,
) -> candle_core::Result<LayerNorm> {
    candle_nn::layer_norm(size, eps, vb.pp(name))
}

/// The additive attention bias for a `[batch, tokens]` 0/1 mask: 0 where a key may be attended
/// to, the lowest f32 where it is padding (as `transformers` fills masked scores), shaped
/// `[batch, 1, 1, tokens]` to broadcast over heads and queries.
pub fn attention_bias(mask: &Tensor) -> candle_core::Result<Tensor> {
    let (b, t) = mask.dims2()?;
    let mask = mask.to_dtype(DType::F32)?;
    let bias = ((mask - 1.0)? * -(f32::MIN as f64))?;
    bias.reshape((b, 1, 1, t))
}

/// `[batch, tokens, heads * dim]` -> `[batch, heads, tokens, dim]`.
pub fn split_heads(xs: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (b, t, h) = xs.dims3()?;
    xs.reshape((b, t, heads, h / heads))?
        .transpose(1, 2)?
        .contiguous()
}

/// `[batch, heads, tokens, dim]` -> `[batch, tokens, heads * dim]`.
pub fn merge_heads(xs: &Tensor) -> candle_core::Result<Tensor> {
    let (b, heads, t, d) = xs.dims4()?;
    xs.transpose(1, 2)?.contiguous()?.reshape((b, t, heads * d))
}

/// Scaled dot-product attention: `softmax(q kᵀ / √d + bias) v`, all `[batch, heads, tokens, dim]`.
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    let d = q.dim(D::Minus1)?;
    let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?;
    let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(bias)?)?;
    probs.matmul(v)
}

/// A BERT-style self-attention block's projections: query, key, value and output.
#[derive(Debug, Clone)]
pub struct SelfAttention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub out: Linear,
    pub heads: usize,
}

impl SelfAttention {
    pub fn forward(&self, xs: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
        let q = split_heads(&self.q.forward(xs)?, self.heads)?;
        let k = split_heads(&self.k.forward(xs)?, self.heads)?;
        let v = split_heads(&self.v.forward(xs)?, self.heads)?;
        self.out.forward(&merge_heads(&attend(&q, &k, &v, bias)?)?)
    }
}

/// The feed-forward block: `out(act(inner(x)))`.
#[derive(Debug, Clone)]
pub struct FeedForward {
    pub inner: Linear,
    pub act: Activation,
    pub out: Linear,
}

impl FeedForward {
    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.out.forward(&self.act.apply(&self.inner.forward(xs)?)?)
    }
}

/// A post-norm encoder layer (BERT, RoBERTa, DistilBERT):
/// `h = norm1(x + attention(x))`, `out = norm2(h + ffn(h))`.
#[derive(Debug, Clone)]
pub struct PostNormLayer {
    pub attention: SelfAttention,
    pub attention_norm: LayerNorm,
    pub ffn: FeedForward,
    pub output_norm: LayerNorm,
}

impl PostNormLayer {
    pub fn forward(&self, xs: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
        let h = self
            .attention_norm
            .forward(&(self.attention.forward(xs, bias)? + xs)?)?;
        self.output_norm.forward(&(self.ffn.forward(&h)? + &h)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn gelu_is_exact_and_gelu_new_is_the_tanh_form() {
        let x = Tensor::new(&[-1.5f32, 0.5, 2.0], &Device::Cpu).unwrap();
        let exact = Activation::Gelu
            .apply(&x)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        // torch.nn.functional.gelu([-1.5, 0.5, 2.0]), torch 2.9.1
        let want = [-0.100_210_86f32, 0.345_731_2, 1.954_5];
        for (a, b) in exact.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{a} vs {b}");
        }
        let approx: Activation = serde_json::from_str("\"gelu_new\"").unwrap();
        assert_eq!(approx, Activation::GeluNew);
        let a = approx.apply(&x).unwrap().to_vec1::<f32>().unwrap();
        assert!((a[0] - -0.100_428_43).abs() < 1e-6, "{}", a[0]);
    }

    #[test]
    fn padding_keys_get_no_attention() {
        let dev = Device::Cpu;
        let mask = Tensor::new(&[[1u32, 1, 0]], &dev).unwrap();
        let bias = attention_bias(&mask).unwrap();
        let q = Tensor::ones((1, 1, 3, 2), DType::F32, &dev).unwrap();
        let v = Tensor::new(&[[[[1f32, 0.], [3., 0.], [100., 0.]]]], &dev).unwrap();
        let out = attend(&q, &q, &v, &bias).unwrap();
        let rows = out.squeeze(0).unwrap().squeeze(0).unwrap();
        let rows = rows.to_vec2::<f32>().unwrap();
        // Equal scores over the two real keys: the mean of their values, padding ignored.
        assert!((rows[0][0] - 2.0).abs() < 1e-6, "{rows:?}");
    }
}
