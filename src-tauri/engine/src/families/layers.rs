//! Building blocks shared by the encoder families: activations named as `transformers` names
//! them, weight loading with clear errors, and multi-head attention over a padded batch (or,
//! on the CPU, over its real tokens packed together).

use std::ops::Range;
use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Shape, Tensor, D};
use candle_nn::{LayerNorm, VarBuilder};
use serde::Deserialize;

use super::panels::{Panels, PANEL};

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
            Self::GeluNew => super::kernels::gelu_tanh_tensor(xs),
            Self::Relu => xs.relu(),
            Self::Silu => candle_nn::ops::silu(xs),
            Self::Tanh => xs.tanh(),
        }
    }
}

/// A dense layer, `x · Wᵀ + b`, stored for fast CPU matmuls. Inputs of any rank are flattened
/// to one `[rows, in]` matrix, so a whole batch is one product instead of one per sequence with
/// the weight repacked each time (what `candle_nn::Linear` does with a 3-D input).
#[derive(Debug, Clone)]
pub struct Dense {
    weight: Weight,
    bias: Option<Tensor>,
    /// The bias as plain numbers, for the fused kernels.
    bias_values: Option<Arc<Vec<f32>>>,
}

/// How a dense layer holds its weight.
#[derive(Debug, Clone)]
enum Weight {
    /// On the CPU in f32: packed in column panels for Wick's own product (`panels.rs`), which
    /// reads the weight once per product where candle's GEMM streamed it several times.
    Panels(Arc<Panels>),
    /// Elsewhere, and for views that share another tensor's memory (a head tied to the
    /// embeddings): `[in, out]` for candle's matmul.
    Tensor(Tensor),
}

impl Dense {
    /// From a weight laid out `[in, out]` (GPT-2's `Conv1D` stores it so; a transposed view of
    /// an embedding matrix works too, and stays a view).
    pub fn new(wt: Tensor, bias: Option<Tensor>) -> candle_core::Result<Self> {
        let bias_values = bias
            .as_ref()
            .map(|b| b.to_dtype(DType::F32)?.to_vec1::<f32>().map(Arc::new))
            .transpose()?;
        // Packed only where no panel needs padding (every real model's widths are multiples
        // of 64): a tiny model's 32-wide layers would double in memory, and a classifier's
        // few labels gain nothing.
        let packable = wt.device().is_cpu()
            && wt.dtype() == DType::F32
            && wt.is_contiguous()
            && wt.dims2()?.1 % PANEL == 0;
        let weight = if packable {
            let (inp, out) = wt.dims2()?;
            // Packed straight from the tensor's memory: a copy on the way would add a weight's
            // worth to the load's peak.
            let (storage, layout) = wt.storage_and_layout();
            let candle_core::Storage::Cpu(cpu) = &*storage else {
                candle_core::bail!("a CPU tensor without CPU storage")
            };
            let values = super::kernels::contiguous_f32(cpu, layout)?;
            Weight::Panels(Arc::new(
                Panels::pack(values, inp, out).map_err(candle_core::Error::Msg)?,
            ))
        } else {
            Weight::Tensor(wt)
        };
        Ok(Self {
            weight,
            bias,
            bias_values,
        })
    }

    fn load(
        vb: &VarBuilder,
        name: &str,
        inp: usize,
        out: usize,
        bias: bool,
    ) -> candle_core::Result<Self> {
        let vb = vb.pp(name);
        let w = vb.get((out, inp), "weight")?;
        let b = bias.then(|| vb.get(out, "bias")).transpose()?;
        Self::new(w.t()?.contiguous()?, b)
    }

    /// The weight as a `[in, out]` tensor (unpacked from panels: a copy).
    fn weight_tensor(&self) -> candle_core::Result<Tensor> {
        match &self.weight {
            Weight::Tensor(t) => Ok(t.clone()),
            Weight::Panels(p) => {
                Tensor::from_vec(p.unpack(), (p.inp(), p.out()), &candle_core::Device::Cpu)
            }
        }
    }

    /// Several layers over the same input as one wider layer (query, key and value become one
    /// product); outputs side by side in the given order.
    pub fn concat(parts: &[&Dense]) -> candle_core::Result<Self> {
        let wts = parts
            .iter()
            .map(|p| p.weight_tensor())
            .collect::<candle_core::Result<Vec<_>>>()?;
        let biases: Option<Vec<&Tensor>> = parts.iter().map(|p| p.bias.as_ref()).collect();
        Self::new(
            Tensor::cat(&wts, 1)?.contiguous()?,
            biases.map(|b| Tensor::cat(&b, 0)).transpose()?,
        )
    }

    pub fn out_features(&self) -> usize {
        match &self.weight {
            Weight::Panels(p) => p.out(),
            Weight::Tensor(t) => t.dims().get(1).copied().unwrap_or(0),
        }
    }

    /// Bytes the weight and bias hold; 0 for a weight that is a view of another tensor.
    pub fn bytes(&self) -> usize {
        let tensor = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        let weight = match &self.weight {
            Weight::Panels(p) => p.bytes(),
            Weight::Tensor(t) if t.is_contiguous() => tensor(t),
            Weight::Tensor(_) => 0,
        };
        weight + self.bias.as_ref().map_or(0, tensor)
    }

    /// Whether the weight is a view of another tensor's memory (a tied head).
    pub fn is_view(&self) -> bool {
        matches!(&self.weight, Weight::Tensor(t) if !t.is_contiguous())
    }

    pub fn bias_values(&self) -> Option<&Arc<Vec<f32>>> {
        self.bias_values.as_ref()
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }

    /// `x · Wᵀ`, plus the bias where `bias` says so.
    fn product(&self, xs: &Tensor, bias: bool) -> candle_core::Result<Tensor> {
        let dims = xs.dims().to_vec();
        let (rows, inp) = match dims.split_last() {
            Some((inp, lead)) => (lead.iter().product::<usize>(), *inp),
            None => return Err(candle_core::Error::Msg("dense layer on a scalar".into())),
        };
        let mut out_dims = dims;
        if let Some(last) = out_dims.last_mut() {
            *last = self.out_features();
        }
        let flat = xs.reshape((rows, inp))?;
        let y = match &self.weight {
            Weight::Panels(p) if xs.device().is_cpu() && xs.dtype() == DType::F32 => {
                let op = PanelProduct {
                    panels: Arc::clone(p),
                    bias: if bias { self.bias_values.clone() } else { None },
                };
                return flat.contiguous()?.apply_op1_no_bwd(&op)?.reshape(out_dims);
            }
            Weight::Panels(_) => flat.matmul(&self.weight_tensor()?.to_dtype(xs.dtype())?)?,
            Weight::Tensor(t) => flat.matmul(t)?,
        };
        let y = match (&self.bias, bias) {
            (Some(b), true) => y.broadcast_add(b)?,
            _ => y,
        };
        y.reshape(out_dims)
    }

    /// `x · Wᵀ` without the bias (for kernels that fuse the bias into what follows).
    pub fn forward_no_bias(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.product(xs, false)
    }
}

impl Module for Dense {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        self.product(xs, true)
    }
}

/// A dense layer's product on packed panels, as a candle op: `[rows, in]` -> `[rows, out]`.
struct PanelProduct {
    panels: Arc<Panels>,
    bias: Option<Arc<Vec<f32>>>,
}

impl CustomOp1 for PanelProduct {
    fn name(&self) -> &'static str {
        "wick-panel-product"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let x = super::kernels::contiguous_f32(s, l)?;
        let (rows, _) = l.shape().dims2()?;
        let y = self
            .panels
            .matmul(x, rows, self.bias.as_deref().map(Vec::as_slice))
            .map_err(candle_core::Error::Msg)?;
        Ok((CpuStorage::F32(y), Shape::from((rows, self.panels.out()))))
    }
}

pub fn linear(vb: &VarBuilder, name: &str, inp: usize, out: usize) -> candle_core::Result<Dense> {
    Dense::load(vb, name, inp, out, true)
}

pub fn linear_no_bias(
    vb: &VarBuilder,
    name: &str,
    inp: usize,
    out: usize,
) -> candle_core::Result<Dense> {
    Dense::load(vb, name, inp, out, false)
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
struct Packing {
    /// Each sequence's rows among the real tokens.
    spans: Arc<Vec<Range<usize>>>,
    /// The real tokens' rows in the flattened `[batch * tokens]` batch; `None` when nothing is
    /// padding, so the batch is already its own packing.
    index: Option<Tensor>,
    /// `[batch, tokens, hidden]`.
    dims: (usize, usize, usize),
}

impl Packing {
    /// `None` where the batch is not on the CPU in f32, or a row's padding is not all at its end.
    fn new(xs: &Tensor, mask: &Tensor) -> candle_core::Result<Option<Self>> {
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
    fn gather(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t, h) = self.dims;
        let flat = xs.reshape((b * t, h))?;
        match &self.index {
            Some(index) => flat.index_select(index, 0),
            None => Ok(flat),
        }
    }

    /// The real tokens' rows back in `[batch, tokens, hidden]`, padding positions zero.
    fn scatter(&self, rows: &Tensor) -> candle_core::Result<Tensor> {
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

/// Scaled dot-product attention: `softmax(q kᵀ / √d + bias) v`, all `[batch, heads, tokens, dim]`.
pub fn attend(q: &Tensor, k: &Tensor, v: &Tensor, bias: &Tensor) -> candle_core::Result<Tensor> {
    let d = q.dim(D::Minus1)?;
    let scores = (q.matmul(&k.t()?)? / (d as f64).sqrt())?;
    let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(bias)?)?;
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

    /// The attention context before the output projection, shaped as `xs` is.
    pub fn context(&self, xs: &Tensor, tokens: &Tokens) -> candle_core::Result<Tensor> {
        let bias = match tokens {
            Tokens::Packed(spans) => {
                let raw = self.qkv.forward_no_bias(xs)?;
                return super::kernels::attention(&raw, &self.qkv_bias, self.heads, spans)?
                    .ok_or_else(|| candle_core::Error::Msg("packed rows off the CPU".into()));
            }
            Tokens::Padded(bias) => bias,
        };
        let qkv = self.qkv.forward(xs)?;
        let h = self.qkv.out_features() / 3;
        let part = |i: usize| -> candle_core::Result<Tensor> {
            split_heads(&qkv.narrow(D::Minus1, i * h, h)?.contiguous()?, self.heads)
        };
        merge_heads(&attend(&part(0)?, &part(1)?, &part(2)?, bias)?)
    }
}

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
            Activation::Gelu => super::kernels::bias_gelu(
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
        let fused = super::kernels::residual_norm(
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
                let y = match &dense.bias {
                    Some(b) => y.broadcast_add(b)?,
                    None => y,
                };
                self.inner.forward(&(y + residual)?)
            }
        }
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
    pub fn forward(&self, xs: &Tensor, tokens: &Tokens) -> candle_core::Result<Tensor> {
        let ctx = self.attention.context(xs, tokens)?;
        let h = self.attention_norm.after(&self.attention.out, &ctx, xs)?;
        let inner = self.ffn.inner_activation(&h)?;
        self.output_norm.after(&self.ffn.out, &inner, &h)
    }
}

/// Runs post-norm layers over embedded inputs (`[batch, tokens, hidden]`), masking the
/// batch's padding; on the CPU, over the real tokens only. Padding positions of the result are
/// then zero: no pipeline reads them.
pub fn run_layers(
    layers: &[PostNormLayer],
    xs: Tensor,
    mask: &Tensor,
) -> candle_core::Result<Tensor> {
    let run = |mut xs: Tensor, tokens: Tokens| -> candle_core::Result<Tensor> {
        for layer in layers {
            xs = layer.forward(&xs, &tokens)?;
        }
        Ok(xs)
    };
    match Packing::new(&xs, mask)? {
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
        let packed = run_layers(std::slice::from_ref(&layer), xs.clone(), &mask).unwrap();
        let padded = layer
            .forward(&xs, &Tokens::Padded(attention_bias(&mask).unwrap()))
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
        let packed = run_layers(std::slice::from_ref(&layer), xs.clone(), &full).unwrap();
        let padded = layer
            .forward(&xs, &Tokens::Padded(attention_bias(&full).unwrap()))
            .unwrap();
        let diff = (packed - padded).unwrap().abs().unwrap().max_all().unwrap();
        assert!(diff.to_scalar::<f32>().unwrap() < 1e-4);
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
