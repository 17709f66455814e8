//! Dense (linear) layers, with the weight packed for Wick's CPU product where it can be.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Shape, Tensor};
use candle_nn::VarBuilder;

use crate::kernels::panels::{Panels, PANEL};

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
            let values = crate::kernels::contiguous_f32(cpu, layout)?;
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
        let x = crate::kernels::contiguous_f32(s, l)?;
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
