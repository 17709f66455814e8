//! A projection `x · Wᵀ + b` of a causal model, and which kernel runs it: candle's dense
//! matmul, Wick's own quantized kernels (`families::qmatmul`, `families::q4_1_packed`), or
//! candle's quantized product in row slices on rayon (`families::row_split`). Prompts (several
//! rows) take an f32 product over the weights unpacked a panel of 64 rows at a time
//! (`panels::matmul_streamed`), except Q4_K and Q6_K, which candle multiplies in int8, and
//! Q5_0 on AVX-512, which `families::q5_0_prompt` multiplies in int8.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{DType, Device, Module, Tensor};

use crate::blocks::Dense;
use crate::kernels::q4_1_packed::PackedQ4_1;
use crate::kernels::q5_0_int8;
use crate::kernels::qmatmul::{dequantize_rows, has_kernel, out_dims, row_bytes, streamed_forward};
use crate::kernels::row_split::RowSplit;

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
                        let (n, k) = q.shape().dims2()?;
                        let dtype = q.dtype();
                        let data = q.data()?;
                        // Q5_0 in 8-bit integers where the CPU has AVX-512BW (Gemma 3 prefill
                        // +18-27%, alternating); elsewhere unpacked to f32.
                        let int8 = if dtype == GgmlDType::Q5_0 && q5_0_int8::fits(n, k) {
                            let x: Vec<f32> = xs.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
                            q5_0_int8::matmul(&data, n, k, &x, rows)
                        } else {
                            None
                        };
                        if let Some(y) = int8 {
                            Tensor::from_vec(y, out_dims(xs, n), xs.device())?
                        } else {
                            let row_bytes = row_bytes(dtype, k);
                            streamed_forward(n, k, dtype, xs, |r| {
                                dequantize_rows(
                                    dtype,
                                    &data[r.start * row_bytes..r.end * row_bytes],
                                    k,
                                )
                            })?
                        }
                    }
                    // Q4_1 here only in tied heads, which share the embedding table (kept in
                    // GGUF's layout for row lookups).
                    QMatMul::QTensor(q) if has_kernel(q.dtype()) && xs.device().is_cpu() => {
                        crate::kernels::qmatmul::forward(q, xs)?
                    }
                    _ => weight.forward(xs)?,
                },
                bias,
            ),
            Proj::PackedQ4_1 { weight, bias } => {
                let (n, k) = weight.dims();
                let y = if xs.device().is_cpu() && rows >= PACKED_PREFILL_ROWS {
                    streamed_forward(n, k, GgmlDType::Q4_1, xs, |r| Ok(weight.dequantize_rows(r)))?
                } else {
                    let x: Vec<f32> = xs.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
                    Tensor::from_vec(weight.matmul(&x, rows), out_dims(xs, n), xs.device())?
                };
                (y, bias)
            }
            Proj::RowSplit { weight, bias } => (
                // candle 0.11.1 multiplies Q4_K and Q6_K prompts with int8 activations on
                // weights it repacks once into tiles of 16 rows (AVX2, AVX-VNNI or AVX512-VNNI):
                // Gemma 3 prefill 501-526 -> 562-614 tok/s against the streamed f32 product,
                // and 640-656 -> 691-698 with the activations quantized once for all slices.
                // Its other K-quants have no such path, and a dot product per row and prompt
                // row is slower than unpacking the weights.
                if prompt && !matches!(weight.dtype(), GgmlDType::Q4K | GgmlDType::Q6K) {
                    let (n, k) = weight.dims();
                    streamed_forward(n, k, weight.dtype(), xs, |r| weight.dequantize_rows(r))?
                } else if prompt {
                    match weight.forward_rows(xs)? {
                        Some(y) => y,
                        None => weight.forward(xs)?,
                    }
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

/// From this many input rows on (a prompt), quantized products unpack the weights to f32 a
/// panel at a time for an f32 product ([`streamed_forward`]): unpacking them once beats
/// `rows` integer dot products per weight row (SmolLM2 Q4_1 prefill 84 -> 250 tok/s with a
/// whole-matrix GEMM).
const PREFILL_ROWS: usize = 8;

/// The same switch for packed Q4_1, whose kernel takes input rows four at a time and stays
/// ahead longer. SmolLM2 prompt tok/s, kernel vs streamed product (2 threads, Zen 4 VM):
/// 32 rows 335-362 vs 205-227, 48 rows 325-348 vs 280-320, 64 rows 337-343 vs 312-353.
const PACKED_PREFILL_ROWS: usize = 64;
