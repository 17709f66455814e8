//! A projection `x · Wᵀ + b` of a causal model, and which kernel runs it: candle's dense
//! matmul, Wick's own quantized kernels (`families::qmatmul`, `families::q4_1_packed`), or
//! candle's quantized product in row slices on rayon (`families::row_split`). Prompts (several
//! rows) take one f32 GEMM over the weights dequantized instead.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};

use crate::families::layers::Dense;
use crate::families::q4_1_packed::PackedQ4_1;
use crate::families::qmatmul::{
    dequantize_tensor, dequantized_forward, dequantized_forward_in_blocks, has_kernel, out_dims,
};
use crate::families::row_split::RowSplit;

/// A projection `x · Wᵀ + b`, dense (f32 and friends) or quantized.
#[derive(Debug, Clone)]
pub enum Proj {
    Dense(Dense),
    /// Held as candle holds it: on other devices, and for the CPU types Wick's own kernels
    /// take in GGUF's layout (Q5_0, Q8_0, and Q4_1 in tied heads, which share the embedding
    /// table).
    Quantized {
        weight: QMatMul,
        bias: Option<Tensor>,
    },
    /// GGUF Q4_1 weights in Wick's own layout (candle's Q4_1 product is scalar).
    PackedQ4_1 {
        weight: Arc<PackedQ4_1>,
        bias: Option<Tensor>,
    },
    /// Other quantized types on the CPU: candle's product, in row slices on rayon.
    RowSplit {
        weight: Arc<RowSplit>,
        bias: Option<Tensor>,
    },
}

impl Proj {
    /// A quantized `[n, k]` weight (from GGUF, or quantized at load) held for the kernel that
    /// will run it on `device`; `name` is for errors.
    pub fn quantized(
        q: QTensor,
        bias: Option<Tensor>,
        device: &Device,
        name: &str,
    ) -> candle_core::Result<Proj> {
        if !device.is_cpu() {
            return Ok(Proj::Quantized {
                weight: QMatMul::from_qtensor(q)?,
                bias,
            });
        }
        Ok(match q.dtype() {
            GgmlDType::Q4_1 => {
                let (n, k) = q.shape().dims2()?;
                let packed = PackedQ4_1::from_ggml(&q.data()?, n, k)
                    .map_err(|e| candle_core::Error::Msg(format!("{name}: {e}")))?;
                // `q` is dropped here: the packed copy is the same size.
                Proj::PackedQ4_1 {
                    weight: Arc::new(packed),
                    bias,
                }
            }
            t if t.block_size() == 1 || matches!(t, GgmlDType::Q5_0 | GgmlDType::Q8_0) => {
                Proj::Quantized {
                    weight: QMatMul::from_qtensor(q)?,
                    bias,
                }
            }
            _ => Proj::RowSplit {
                weight: Arc::new(RowSplit::new(q, rayon::current_num_threads())?),
                bias,
            },
        })
    }

    /// Bytes the weights take in memory.
    pub fn bytes(&self) -> usize {
        let tensor = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        let (weight, bias) = match self {
            Proj::Dense(d) => return d.bytes(),
            Proj::Quantized { weight, bias } => (
                match weight {
                    QMatMul::QTensor(q) => q.storage_size_in_bytes(),
                    QMatMul::Tensor(t) | QMatMul::TensorF16(t) => tensor(t),
                },
                bias,
            ),
            Proj::PackedQ4_1 { weight, bias } => (weight.bytes(), bias),
            Proj::RowSplit { weight, bias } => (weight.bytes(), bias),
        };
        weight + bias.as_ref().map_or(0, tensor)
    }

    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let rows = xs.elem_count() / xs.dim(candle_core::D::Minus1)?.max(1);
        let prompt = xs.device().is_cpu() && rows >= PREFILL_ROWS;
        let (y, bias) = match self {
            Proj::Dense(d) => return d.forward(xs),
            Proj::Quantized { weight, bias } => (
                match weight {
                    QMatMul::QTensor(q) if prompt => {
                        dequantized_forward(dequantize_tensor(q, xs.device())?, q.dtype(), xs)?
                    }
                    // Q4_1 here only in tied heads, which share the embedding table (kept in
                    // GGUF's layout for row lookups).
                    QMatMul::QTensor(q) if has_kernel(q.dtype()) && xs.device().is_cpu() => {
                        crate::families::qmatmul::forward(q, xs)?
                    }
                    _ => weight.forward(xs)?,
                },
                bias,
            ),
            Proj::PackedQ4_1 { weight, bias } => {
                let (n, k) = weight.dims();
                let y = if xs.device().is_cpu() && rows >= PACKED_PREFILL_ROWS {
                    dequantized_forward_in_blocks(n, k, GgmlDType::Q4_1, xs, |r| {
                        let len = r.len();
                        Tensor::from_vec(weight.dequantize_rows(r), (len, k), xs.device())
                    })?
                } else {
                    let x: Vec<f32> = xs.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
                    Tensor::from_vec(weight.matmul(&x, rows), out_dims(xs, n), xs.device())?
                };
                (y, bias)
            }
            Proj::RowSplit { weight, bias } => (
                if prompt {
                    dequantized_forward(weight.dequantize(xs.device())?, weight.dtype(), xs)?
                } else {
                    weight.forward(xs)?
                },
                bias,
            ),
        };
        match bias {
            Some(b) => y.broadcast_add(b),
            None => Ok(y),
        }
    }
}

/// From this many input rows on (a prompt), quantized products go through a dequantized f32
/// GEMM: unpacking the weights once beats `rows` integer dot products per weight row
/// (SmolLM2 Q4_1 prefill 84 -> 250 tok/s).
const PREFILL_ROWS: usize = 8;

/// The same switch for packed Q4_1, whose kernel takes input rows four at a time and stays
/// ahead of the GEMM longer. SmolLM2 prompt tok/s, kernel vs GEMM (2 threads): 32 rows 258
/// vs 162, 64 rows 273 vs 245, 96 rows 203 vs 312, 192 rows 186 vs 303. A 37-token chat
/// prompt's first token came 131-137 ms after Run instead of 156-177 ms.
const PACKED_PREFILL_ROWS: usize = 80;
