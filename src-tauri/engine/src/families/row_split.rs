//! candle's quantized products, for the GGML types Wick has no kernel of its own for (the
//! K-quants, Q4_0, Q5_1), run on rayon's pool in row slices.
//!
//! candle 0.11 runs its quantized matmul on a pool of its own whose threads spin between calls.
//! In Gemma 3 decode (whose down projections are Q4_K and Q6_K) that thread spent 25% of the
//! CPU spinning while rayon's workers ran Wick's kernels on the same two cores. Wick gives that
//! pool no threads of its own (`system::fix_thread_count` sets `CANDLE_NUM_THREADS=1`), so
//! candle's product runs on the calling thread, and each matrix is cut by rows at load into a
//! few matrices that rayon multiplies in parallel. Memory is unchanged: the slices replace the
//! original.

use std::sync::Arc;

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor, D};
use rayon::prelude::*;

/// Fewest rows worth a slice of their own.
const MIN_ROWS: usize = 64;

/// A `[n, k]` quantized matrix as row slices, top to bottom.
#[derive(Debug)]
pub struct RowSplit {
    slices: Vec<(Arc<QTensor>, QMatMul)>,
    dtype: GgmlDType,
    n: usize,
    k: usize,
}

impl RowSplit {
    /// Cuts `q` (`[n, k]`, on the CPU) into `parts` slices of whole rows (fewer for small
    /// matrices).
    pub fn new(q: QTensor, parts: usize) -> candle_core::Result<Self> {
        let (n, k) = q.shape().dims2()?;
        let dtype = q.dtype();
        let parts = parts.clamp(1, (n / MIN_ROWS).max(1));
        let slices = if parts == 1 {
            let q = Arc::new(q);
            vec![(Arc::clone(&q), QMatMul::from_arc(q)?)]
        } else {
            let data = q.data()?;
            let row_bytes = data.len() / n;
            let per = n.div_ceil(parts);
            let slices = (0..n)
                .step_by(per)
                .map(|first| {
                    let rows = per.min(n - first);
                    let bytes = &data[first * row_bytes..(first + rows) * row_bytes];
                    let q = Arc::new(qtensor_from_ggml(
                        dtype,
                        bytes,
                        vec![rows, k],
                        &Device::Cpu,
                    )?);
                    Ok((Arc::clone(&q), QMatMul::from_arc(q)?))
                })
                .collect::<candle_core::Result<Vec<_>>>()?;
            drop(data);
            slices
        };
        Ok(Self {
            slices,
            dtype,
            n,
            k,
        })
    }

    pub fn dtype(&self) -> GgmlDType {
        self.dtype
    }

    /// `(n, k)`.
    pub fn dims(&self) -> (usize, usize) {
        (self.n, self.k)
    }

    /// Bytes the weights take in memory.
    pub fn bytes(&self) -> usize {
        self.slices
            .iter()
            .map(|(q, _)| q.storage_size_in_bytes())
            .sum()
    }

    /// `x · Wᵀ`, the slices in parallel, their outputs side by side.
    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        if let [(_, only)] = self.slices.as_slice() {
            return only.forward(xs);
        }
        let parts = self
            .slices
            .par_iter()
            .map(|(_, m)| m.forward(xs))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::cat(&parts, D::Minus1)
    }

    /// The whole matrix in f32, `[n, k]`.
    pub fn dequantize(&self, device: &Device) -> candle_core::Result<Tensor> {
        let parts = self
            .slices
            .par_iter()
            .map(|(q, _)| q.dequantize(device))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::cat(&parts, 0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Sliced or not, the product and the dequantized weights are candle's, to the bit.
    #[test]
    fn slices_give_the_whole_matrix_result() {
        let (n, k) = (200, 512);
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        let x = Tensor::randn(0f32, 1.0, (2, 3, k), &Device::Cpu).unwrap();
        let q = || QTensor::quantize(&w, GgmlDType::Q4K).unwrap();
        let whole = QMatMul::from_qtensor(q()).unwrap();
        let split = RowSplit::new(q(), 4).unwrap();
        assert_eq!(split.slices.len(), 3, "at least 64 rows a slice");
        assert_eq!(split.bytes(), q().storage_size_in_bytes());
        let values = |t: Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
        let got = split.forward(&x).unwrap();
        assert_eq!(got.dims(), &[2, 3, n]);
        assert_eq!(values(got), values(whole.forward(&x).unwrap()));
        assert_eq!(
            values(split.dequantize(&Device::Cpu).unwrap()),
            values(q().dequantize(&Device::Cpu).unwrap())
        );
    }
}
