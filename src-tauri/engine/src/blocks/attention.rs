//! Multi-head self-attention over a padded batch (candle's ops, any device) or, on the CPU, over
//! its real tokens packed together (Wick's attention kernel).

use std::ops::Range;
use std::sync::Arc;

use candle_core::{DType, Module, Tensor, D};

use super::dense::Dense;

/// The additive attention bias for a `[batch, tokens]` 0/1 mask: 0 where a key may be attended
/// to, the lowest f32 where it is padding (as `transformers` fills masked scores), shaped
/// `[batch, 1, 1, tokens]` to broadcast over heads and queries.
pub fn attention_bias(mask: &Tensor) -> candle_core::Result<Tensor> {
    let (b, t) = mask.dims2()?;
    let mask = mask.to_dtype(DType::F32)?;
    let bias = ((mask - 1.0)? * -(f32::MIN as f64))?;
    bias.reshape((b, 1, 1, t))
}

/// Where a run that looks inside the model collects each layer's attention weights
/// (`[heads, tokens, tokens]` for a batch of one, in layer order).
pub type AttentionSink = Arc<std::sync::Mutex<Vec<Tensor>>>;

/// Adds one layer's weights (`[batch, heads, t, t]`) to `sink`.
pub fn record(sink: &AttentionSink, probs: &Tensor) -> candle_core::Result<()> {
    let (b, h, t, s) = probs.dims4()?;
    let weights = probs.reshape((b * h, t, s))?.to_dtype(DType::F32)?;
    sink.lock()
        .map_err(|_| candle_core::Error::Msg("attention sink poisoned".into()))?
        .push(weights);
    Ok(())
}

/// Where each sequence's tokens lie among the rows the layers work on.
#[derive(Debug, Clone)]
pub enum Tokens {
    /// `[batch, tokens, hidden]`, padding included, masked by an additive bias
    /// (`[batch, 1, 1, tokens]`, [`attention_bias`]): candle's ops, on any device.
    Padded(Tensor),
    /// `[rows, hidden]`: every sequence's real tokens one after another, one span of rows
    /// each, padding left out: the fused CPU kernels.
    Packed(Arc<Vec<Range<usize>>>),
}

/// A right-padded batch on the CPU in f32, seen as its real tokens only. Batches sorted by
/// length still pad: the benchmark corpus in batches of 32 is 5.2% padding, and
/// every layer multiplied it through like real tokens.
pub(crate) struct Packing {
    /// Each sequence's rows among the real tokens.
    pub(crate) spans: Arc<Vec<Range<usize>>>,
    /// The real tokens' rows in the flattened `[batch * tokens]` batch; `None` when nothing is
    /// padding, so the batch is already its own packing.
    index: Option<Tensor>,
    /// `[batch, tokens, hidden]`.
    dims: (usize, usize, usize),
}

impl Packing {
    /// `None` where the batch is not on the CPU in f32, or a row's padding is not all at its end.
    pub(crate) fn new(xs: &Tensor, mask: &Tensor) -> candle_core::Result<Option<Self>> {
        if !xs.device().is_cpu() || xs.dtype() != DType::F32 {
            return Ok(None);
        }
        let dims = xs.dims3()?;
        let (mut spans, mut index, mut start) = (Vec::new(), Vec::new(), 0);
        for (row, flags) in mask
            .to_dtype(DType::U32)?
            .to_vec2::<u32>()?
            .iter()
            .enumerate()
        {
            let len = flags.iter().take_while(|&&m| m == 1).count();
            if flags[len..].iter().any(|&m| m != 0) {
                return Ok(None);
            }
            spans.push(start..start + len);
            index.extend((0..len).map(|tok| (row * dims.1 + tok) as u32));
            start += len;
        }
        let index = if index.len() == dims.0 * dims.1 {
            None
        } else {
            let n = index.len();
            Some(Tensor::from_vec(index, n, xs.device())?)
        };
        Ok(Some(Self {
            spans: Arc::new(spans),
            index,
            dims,
        }))
    }

    /// `[batch, tokens, hidden]` -> the real tokens' rows, `[rows, hidden]`.
    pub(crate) fn gather(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, h) = self.dims;
        let flat = xs.reshape((b * t, h))?;
        match &self.index {
            Some(index) => flat.index_select(index, 0),
            None => Ok(flat),
        }
    }

    /// The real tokens' rows back in `[batch, tokens, hidden]`, padding positions zero.
    pub(crate) fn scatter(&self, rows: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, h) = self.dims;
        let flat = match &self.index {
            Some(index) => {
                Tensor::zeros((b * t, h), rows.dtype(), rows.device())?.index_add(index, rows, 0)?
            }
            None => rows.clone(),
        };
        flat.reshape((b, t, h))
    }
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

/// Scaled dot-product attention: `softmax(q kᵀ / √d + bias) v`, all `[batch, heads, tokens, dim]`;
/// the weights go to `sink` when one is given.
pub fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: &Tensor,
    sink: Option<&AttentionSink>,
) -> candle_core::Result<Tensor> {
    let d = q.dim(D::Minus1)?;
    let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?;
    let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(bias)?)?;
    if let Some(sink) = sink {
        record(sink, &probs)?;
    }
    probs.matmul(v)
}

/// A BERT-style self-attention block: query, key and value projections (kept as one layer, so
/// they are one GEMM) and the output projection.
#[derive(Debug, Clone)]
pub struct SelfAttention {
    qkv: Dense,
    /// The projections' bias as the fused kernel adds it (zeros for a layer without one).
    qkv_bias: Arc<Vec<f32>>,
    /// The output projection. Its bias is added by whatever follows (the residual norm).
    pub out: Dense,
    heads: usize,
}

impl SelfAttention {
    pub fn new(
        q: &Dense,
        k: &Dense,
        v: &Dense,
        out: Dense,
        heads: usize,
    ) -> candle_core::Result<Self> {
        let qkv = Dense::concat(&[q, k, v])?;
        let qkv_bias = match qkv.bias_values() {
            Some(b) => Arc::clone(b),
            None => Arc::new(vec![0f32; qkv.out_features()]),
        };
        Ok(Self {
            qkv,
            qkv_bias,
            out,
            heads,
        })
    }

    /// The attention context before the output projection, shaped as `xs` is. `sink` gets the
    /// weights (only the padded path computes them; [`super::run_layers`] takes it when asked).
    pub fn context(
        &self,
        xs: &Tensor,
        tokens: &Tokens,
        sink: Option<&AttentionSink>,
    ) -> candle_core::Result<Tensor> {
        let bias = match tokens {
            Tokens::Packed(spans) => {
                let raw = self.qkv.forward_no_bias(xs)?;
                return crate::kernels::attention::attention(
                    &raw,
                    &self.qkv_bias,
                    self.heads,
                    spans,
                )?
                .ok_or_else(|| candle_core::Error::Msg("packed rows off the CPU".into()));
            }
            Tokens::Padded(bias) => bias,
        };
        let qkv = self.qkv.forward(xs)?;
        let h = self.qkv.out_features() / 3;
        let part = |i: usize| -> candle_core::Result<Tensor> {
            split_heads(&qkv.narrow(D::Minus1, i * h, h)?.contiguous()?, self.heads)
        };
        merge_heads(&attend(&part(0)?, &part(1)?, &part(2)?, bias, sink)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn padding_keys_get_no_attention() {
        let dev = Device::Cpu;
        let mask = Tensor::new(&[[1u32, 1, 0]], &dev).unwrap();
        let bias = attention_bias(&mask).unwrap();
        let q = Tensor::ones((1, 1, 3, 2), DType::F32, &dev).unwrap();
        let v = Tensor::new(&[[[[1f32, 0.], [3., 0.], [100., 0.]]]], &dev).unwrap();
        let out = attend(&q, &q, &v, &bias, None).unwrap();
        let rows = out.squeeze(0).unwrap().squeeze(0).unwrap();
        let rows = rows.to_vec2::<f32>().unwrap();
        // Equal scores over the two real keys: the mean of their values, padding ignored.
        assert!((rows[0][0] - 2.0).abs() < 1e-6, "{rows:?}");
    }
}
