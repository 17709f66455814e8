//! A quantized matrix held as row slices: for the GGML types Wick has no kernel of its own for
//! (the K-quants, Q4_0, Q5_1), candle's products run on rayon's pool slice by slice; and large
//! tables (a token embedding matrix, which is also the tied output head) are read from the
//! file a slice at a time.
//!
//! Reading: candle turns a tensor's bytes into its typed blocks by copying them, so reading
//! Gemma 3's 170 MiB Q8_0 embedding table in one piece held 340 MiB at once and set the
//! process's peak (413 MiB against llama.cpp's 315). Slices of about 8 MiB bound that copy.
//!
//! candle 0.11 runs its quantized matmul on a pool of its own whose threads spin between calls.
//! In Gemma 3 decode (whose down projections are Q4_K and Q6_K) that thread spent 25% of the
//! CPU spinning while rayon's workers ran Wick's kernels on the same two cores. Wick gives that
//! pool no threads of its own (`system::fix_thread_count` sets `CANDLE_NUM_THREADS=1`), so
//! candle's product runs on the calling thread, and each matrix is cut by rows at load into a
//! few matrices that rayon multiplies in parallel. Memory is unchanged: the slices replace the
//! original.

use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, OnceLock};

use candle_core::quantized::{
    ggml_file::qtensor_from_ggml, gguf_file, GgmlDType, QMatMul, QTensor,
};
use candle_core::{Device, Module, Tensor, D};
use rayon::prelude::*;

/// Fewest rows worth a slice of their own.
const MIN_ROWS: usize = 64;
/// Fewest prompt rows per call in [`RowSplit::forward_rows`].
const ROWS_PER_CALL: usize = 16;
/// Rows in one of candle's int8 tiles.
const TILE_ROWS: usize = 16;
/// Bytes per slice when a table is read from a file.
const READ_SLICE_BYTES: usize = 8 << 20;

/// One slice: `rows` rows of `k` from GGUF's bytes, on the CPU, with its candle product.
fn slice(
    dtype: GgmlDType,
    bytes: &[u8],
    rows: usize,
    k: usize,
) -> candle_core::Result<(Arc<QTensor>, QMatMul)> {
    let q = Arc::new(qtensor_from_ggml(
        dtype,
        bytes,
        vec![rows, k],
        &Device::Cpu,
    )?);
    Ok((Arc::clone(&q), QMatMul::from_arc(q)?))
}

/// A `[n, k]` quantized matrix as row slices, top to bottom.
#[derive(Debug)]
pub struct RowSplit {
    slices: Vec<(Arc<QTensor>, QMatMul)>,
    dtype: GgmlDType,
    n: usize,
    k: usize,
    /// Whether candle took [`RowSplit::forward_rows`]' fused path, once asked. On x86 the
    /// answer depends on the CPU, the slices' type and shapes, and (Q6_K) calls of more than
    /// one row, all fixed for a matrix once every call has two rows or more; later prompts
    /// skip the question. (candle's aarch64 path takes single rows only: `forward_rows` is
    /// for prompts, so there it answers no, once.)
    fused: OnceLock<bool>,
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
            // Whole tiles of 16 rows: candle 0.11.1 repacks Q4_K, Q6_K and Q8_0 matrices whose
            // rows come in 16s into tiles for its int8 kernels, and multiplies others a row at
            // a time.
            let per = n.div_ceil(parts).next_multiple_of(TILE_ROWS);
            let slices = (0..n)
                .step_by(per)
                .map(|first| {
                    let rows = per.min(n - first);
                    let bytes = &data[first * row_bytes..(first + rows) * row_bytes];
                    slice(dtype, bytes, rows, k)
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
            fused: OnceLock::new(),
        })
    }

    /// Reads GGUF tensor `name` (`[n, k]` as candle sees it) in slices of about 8 MiB, telling
    /// `read` the bytes of each (which may stop the read with an error: a cancelled load).
    pub fn read_gguf<R: Read + Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        name: &str,
        read: &mut dyn FnMut(u64) -> candle_core::Result<()>,
    ) -> candle_core::Result<Self> {
        Self::read_gguf_in(content, reader, name, READ_SLICE_BYTES, read)
    }

    fn read_gguf_in<R: Read + Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        name: &str,
        slice_bytes: usize,
        read: &mut dyn FnMut(u64) -> candle_core::Result<()>,
    ) -> candle_core::Result<Self> {
        let info = content
            .tensor_infos
            .get(name)
            .ok_or_else(|| candle_core::Error::Msg(format!("no tensor {name} in the file")))?;
        let (n, k) = info.shape.dims2()?;
        let dtype = info.ggml_dtype;
        // An empty row makes a tensor of any row count take no bytes: the count is unchecked.
        if n == 0 || k == 0 {
            candle_core::bail!("{name} is [{n}, {k}]: an empty matrix");
        }
        if k % dtype.block_size() != 0 {
            candle_core::bail!("{name}: rows of {k} are not whole {dtype:?} blocks");
        }
        let row_bytes = crate::kernels::qmatmul::row_bytes(dtype, k);
        let start = content.tensor_data_offset.saturating_add(info.offset);
        let file_size = reader.seek(SeekFrom::End(0))?;
        let needed = (n as u64).saturating_mul(row_bytes as u64);
        if start.saturating_add(needed) > file_size {
            candle_core::bail!(
                "{name} needs {needed} bytes at offset {start}; the file ends at {file_size} \
                 (truncated?)"
            );
        }
        reader.seek(SeekFrom::Start(start))?;
        let per = (slice_bytes / row_bytes.max(1)).max(MIN_ROWS);
        let mut buffer = vec![0u8; per.min(n) * row_bytes];
        let mut slices = Vec::with_capacity(n.div_ceil(per));
        for first in (0..n).step_by(per) {
            let rows = per.min(n - first);
            let bytes = &mut buffer[..rows * row_bytes];
            reader.read_exact(bytes)?;
            slices.push(slice(dtype, bytes, rows, k)?);
            read(bytes.len() as u64)?;
        }
        Ok(Self {
            slices,
            dtype,
            n,
            k,
            fused: OnceLock::new(),
        })
    }

    /// Rows `ids`, dequantized, as `[ids.len(), k]`.
    pub fn rows(&self, ids: &[u32], device: &Device) -> candle_core::Result<Tensor> {
        let row_bytes = crate::kernels::qmatmul::row_bytes(self.dtype, self.k);
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let mut local = id as usize;
            let slice = self.slices.iter().find_map(|(q, _)| {
                let rows = q.shape().dims()[0];
                if local < rows {
                    Some(q)
                } else {
                    local -= rows;
                    None
                }
            });
            let Some(q) = slice else {
                candle_core::bail!("token id {id} is outside the vocabulary ({})", self.n);
            };
            let data = q.data()?;
            let bytes = &data[local * row_bytes..(local + 1) * row_bytes];
            out.push(
                qtensor_from_ggml(self.dtype, bytes, vec![self.k], device)?.dequantize(device)?,
            );
        }
        Tensor::stack(&out, 0)
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

    /// `x · Wᵀ`, the slices' outputs side by side: through Wick's kernels one slice after the
    /// other (each kernel is parallel), or candle's products, slices in parallel.
    pub fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let parts = if crate::kernels::qmatmul::has_kernel(self.dtype) && xs.device().is_cpu() {
            self.slices
                .iter()
                .map(|(q, _)| crate::kernels::qmatmul::forward(q, xs))
                .collect::<candle_core::Result<Vec<_>>>()?
        } else {
            if let [(_, only)] = self.slices.as_slice() {
                return only.forward(xs);
            }
            self.slices
                .par_iter()
                .map(|(_, m)| m.forward(xs))
                .collect::<candle_core::Result<Vec<_>>>()?
        };
        if let [only] = parts.as_slice() {
            return Ok(only.clone());
        }
        Tensor::cat(&parts, D::Minus1)
    }

    /// A prompt's `x · Wᵀ` on candle's int8 tiles with the activations quantized once for all
    /// slices: each rayon task takes some prompt rows through every slice in one call
    /// (`QTensor::gemv_fused_shared_lhs`, despite its name any number of rows). Calling each
    /// slice's product instead quantizes the whole prompt once per slice, which took more
    /// time than the products themselves in Gemma 3's prefill (11% against 9%). `None` where
    /// candle has no such path (it needs AVX512-VNNI, and whole tiles).
    pub fn forward_rows(&self, xs: &Tensor) -> candle_core::Result<Option<Tensor>> {
        let k = self.k;
        let m = xs.elem_count() / k.max(1);
        if m == 0 || !xs.device().is_cpu() || matches!(self.fused.get(), Some(false)) {
            return Ok(None);
        }
        let x = xs
            .reshape((m, k))?
            .to_dtype(candle_core::DType::F32)?
            .contiguous()?;
        let qs: Vec<&QTensor> = self.slices.iter().map(|(q, _)| q.as_ref()).collect();
        let per = m
            .div_ceil(2 * rayon::current_num_threads())
            .max(ROWS_PER_CALL);
        // Rows spread evenly over the calls: cut in calls of `per`, a last call of one row
        // had no path for Q6_K (candle keeps single rows on compact weights) and sent the
        // whole prompt back to per-slice products.
        let calls = m.div_ceil(per);
        let (base, extra) = (m / calls, m % calls);
        let chunks = (0..calls)
            .into_par_iter()
            .map(|c| {
                let first = c * base + c.min(extra);
                let rows = x.narrow(0, first, base + usize::from(c < extra))?;
                match QTensor::gemv_fused_shared_lhs(&qs, &rows)? {
                    Some(parts) if parts.len() == 1 => Ok(parts.into_iter().next()),
                    Some(parts) => Tensor::cat(&parts, 1).map(Some),
                    None => Ok(None),
                }
            })
            .collect::<candle_core::Result<Option<Vec<Tensor>>>>()?;
        // Every call had two rows or more: the answer holds for any prompt of this matrix
        // on this CPU.
        if m >= 2 {
            let _ = self.fused.set(chunks.is_some());
        }
        let Some(chunks) = chunks else {
            return Ok(None);
        };
        let dims = crate::kernels::qmatmul::out_dims(xs, self.n);
        Ok(Some(Tensor::cat(&chunks, 0)?.reshape(dims)?))
    }

    /// Rows `range` in f32, `[range.len(), k]`, on the calling thread.
    pub fn dequantize_rows(&self, range: std::ops::Range<usize>) -> candle_core::Result<Vec<f32>> {
        let row_bytes = crate::kernels::qmatmul::row_bytes(self.dtype, self.k);
        let mut out = Vec::with_capacity(range.len() * self.k);
        let mut first = 0;
        for (q, _) in &self.slices {
            let rows = q.shape().dims()[0];
            let (lo, hi) = (range.start.max(first), range.end.min(first + rows));
            if lo < hi {
                let data = q.data()?;
                let bytes = &data[(lo - first) * row_bytes..(hi - first) * row_bytes];
                out.extend(crate::kernels::qmatmul::dequantize_rows(
                    self.dtype, bytes, self.k,
                )?);
            }
            first += rows;
        }
        if out.len() != range.len() * self.k {
            candle_core::bail!("rows {range:?} are outside the matrix's {}", self.n);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A table written to a GGUF file and read back in slices: the same rows, the same
    /// products as the whole tensor, and a truncated file is an error, not a panic.
    #[test]
    fn reads_a_gguf_table_in_slices() {
        let (n, k) = (3000, 64 * 32);
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, GgmlDType::Q8_0).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.gguf");
        let mut file = std::fs::File::create(&path).unwrap();
        gguf_file::write(&mut file, &[], &[("table", &q)]).unwrap();
        drop(file);
        let mut reader = std::fs::File::open(&path).unwrap();
        let content = gguf_file::Content::read(&mut reader).unwrap();
        let table =
            RowSplit::read_gguf_in(&content, &mut reader, "table", 1 << 20, &mut |_| Ok(()))
                .unwrap();
        assert_eq!(table.slices.len(), 7, "1 MiB slices of 2176-byte rows");
        assert_eq!(table.bytes(), q.storage_size_in_bytes());
        let values = |t: Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
        let whole = values(q.dequantize(&Device::Cpu).unwrap());
        let ids = [0u32, 2999, 1234, 2500];
        let rows = values(table.rows(&ids, &Device::Cpu).unwrap());
        for (i, id) in ids.iter().enumerate() {
            let id = *id as usize;
            assert_eq!(rows[i * k..(i + 1) * k], whole[id * k..(id + 1) * k]);
        }
        assert!(table.rows(&[3000], &Device::Cpu).is_err());
        assert_eq!(table.dequantize_rows(0..n).unwrap(), whole);
        // Across a slice boundary (481 rows a slice).
        assert_eq!(
            table.dequantize_rows(400..600).unwrap(),
            whole[400 * k..600 * k]
        );
        assert!(table.dequantize_rows(2990..3001).is_err());
        let x = Tensor::randn(0f32, 1.0, (1, k), &Device::Cpu).unwrap();
        let want = values(QMatMul::from_qtensor(q).unwrap().forward(&x).unwrap());
        for (g, w) in values(table.forward(&x).unwrap()).iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{g} vs {w}");
        }
        // Cut short: a clear error.
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        let mut reader = std::fs::File::open(&path).unwrap();
        let content = gguf_file::Content::read(&mut reader).unwrap();
        let err = RowSplit::read_gguf(&content, &mut reader, "table", &mut |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    /// A prompt through every slice at once gives the slices' own products (to rounding), on
    /// CPUs where candle has the path; elsewhere it says so, and says so at once after.
    #[test]
    fn prompt_rows_through_all_slices_match_the_slices() {
        let (n, k) = (320, 512);
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        let values = |t: Tensor| -> Vec<f32> { t.flatten_all().unwrap().to_vec1().unwrap() };
        // 33 rows used to end in a call of one row, which Q6_K has no fused path for.
        for (dtype, rows) in [(GgmlDType::Q4K, 37), (GgmlDType::Q6K, 33)] {
            let split = RowSplit::new(QTensor::quantize(&w, dtype).unwrap(), 2).unwrap();
            let x = Tensor::randn(0f32, 1.0, (1, rows, k), &Device::Cpu).unwrap();
            let got = split.forward_rows(&x).unwrap();
            assert_eq!(split.fused.get(), Some(&got.is_some()));
            #[cfg(target_arch = "x86_64")]
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni") {
                assert!(
                    got.is_some(),
                    "AVX512-VNNI has candle's fused path for {dtype:?}"
                );
            }
            match got {
                Some(got) => {
                    assert_eq!(got.dims(), &[1, rows, n]);
                    let want = values(split.forward(&x).unwrap());
                    for (g, w) in values(got).iter().zip(&want) {
                        assert!((g - w).abs() <= 1e-3 * w.abs().max(1.0), "{g} vs {w}");
                    }
                }
                None => assert!(split.forward_rows(&x).unwrap().is_none()),
            }
        }
    }

    /// Sliced or not, the product is candle's (to rounding: slices of whole 16-row tiles take
    /// candle's int8 tile kernels where the CPU has them), the dequantized weights to the bit.
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
        for (g, w) in values(got).iter().zip(&values(whole.forward(&x).unwrap())) {
            assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "{g} vs {w}");
        }
        assert_eq!(
            split.dequantize_rows(0..n).unwrap(),
            values(q().dequantize(&Device::Cpu).unwrap())
        );
    }
}
