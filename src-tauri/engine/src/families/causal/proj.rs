//! A projection `x · Wᵀ + b` of a causal model, and which kernel runs it: candle's dense
//! matmul, Wick's own quantized kernels (`families::qmatmul`, `families::q4_1_packed`), or
//! candle's quantized product in row slices on rayon (`families::row_split`). Prompts (several
//! rows) take one f32 GEMM over the weights dequantized instead.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};

use crate::families::layers::Dense;
use crate::families::q4_1_packed::PackedQ4_1;
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
            Proj::Dense(d) => return tensor(d.weight()) + d.bias().map_or(0, tensor),
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
                        dequantized_forward(dequantize(q, xs.device())?, q.dtype(), xs)?
                    }
                    QMatMul::QTensor(q)
                        if crate::families::qmatmul::has_kernel(q.dtype())
                            && xs.device().is_cpu() =>
                    {
                        own_kernel_forward(q, xs)?
                    }
                    _ => weight.forward(xs)?,
                },
                bias,
            ),
            Proj::PackedQ4_1 { weight, bias } => {
                let (n, _) = weight.dims();
                let x: Vec<f32> = xs.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
                let y = if xs.device().is_cpu() && rows >= PACKED_PREFILL_ROWS {
                    weight.matmul_dequantized(&x, rows, xs.device())?
                } else {
                    Tensor::from_vec(weight.matmul(&x, rows), (rows, n), xs.device())?
                };
                (y.reshape(out_dims(xs, n))?, bias)
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

/// `xs`'s shape with the last dimension `n`.
fn out_dims(xs: &Tensor, n: usize) -> Vec<usize> {
    let mut dims = xs.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = n;
    }
    dims
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

/// `q` in f32, through Wick's parallel dequantization where it has one.
fn dequantize(q: &QTensor, device: &Device) -> candle_core::Result<Tensor> {
    let (n, k) = q.shape().dims2()?;
    match crate::families::qmatmul::dequantize(q.dtype(), &q.data()?, n, k) {
        Some(values) => Tensor::from_vec(values, (n, k), device),
        None => q.dequantize(device),
    }
}

/// `xs · wᵀ` for weights `w` (`[n, k]`) dequantized from `dtype`.
fn dequantized_forward(w: Tensor, dtype: GgmlDType, xs: &Tensor) -> candle_core::Result<Tensor> {
    let (n, k) = w.dims2()?;
    let m = xs.elem_count() / k.max(1);
    let mut x = xs.reshape((m, k))?.to_dtype(DType::F32)?;
    // Types whose products quantize activations in blocks of 32 get the same rounding here.
    if matches!(
        dtype,
        GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_0
    ) && k % 32 == 0
    {
        let mut values: Vec<f32> = x.flatten_all()?.to_vec1()?;
        crate::families::qmatmul::round_like_q8(&mut values);
        x = Tensor::from_vec(values, (m, k), xs.device())?;
    }
    x.matmul(&w.t()?)?.reshape(out_dims(xs, n))
}

/// `x · Wᵀ` with Q4_1, Q5_0 or Q8_0 weights in GGUF's layout through Wick's kernels (candle's
/// first two are scalar; its Q8_0 one converts scales through calls). Tied heads take this path:
/// they share the embedding table, which stays in GGUF's layout for row lookups.
fn own_kernel_forward(q: &QTensor, xs: &Tensor) -> candle_core::Result<Tensor> {
    let (n, k) = q.shape().dims2()?;
    let m = xs.elem_count() / k.max(1);
    let x: Vec<f32> = xs.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let y = crate::families::qmatmul::matmul(q.dtype(), &q.data()?, n, k, &x, m)
        .ok_or_else(|| candle_core::Error::Msg(format!("no Wick kernel for {:?}", q.dtype())))?;
    Tensor::from_vec(y, out_dims(xs, n), xs.device())
}
