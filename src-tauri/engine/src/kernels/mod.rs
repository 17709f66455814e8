//! The CPU numerics, with no model knowledge: Wick's own kernels for the hot spots profiling found
//! (BENCHMARKS.md). Blocks and families call them; they never import a family.
//!
//! - [`panels`]: f32 matrix products on weights packed in column panels;
//! - [`activation`], [`norm`], [`attention`]: fused element-wise, layer-norm and encoder
//!   attention kernels; [`cached_attention`]: attention over a decoder's key/value cache;
//! - [`qmatmul`], [`q4_1_packed`], [`q5_0_int8`], [`row_split`]: products with GGUF-quantized
//!   weights and the packed layouts they read.
//!
//! Each kernel does its job in one pass over contiguous f32 data, spread over rayon's pool (the
//! one the GEMMs already use), and is compiled for the best instruction set the CPU has
//! ([`simd`]). Other devices and dtypes take candle's own ops, so results never depend on
//! whether a kernel exists.

pub mod activation;
pub mod attention;
pub mod cached_attention;
pub mod math;
pub mod norm;
pub mod panels;
pub mod q4_1_packed;
pub mod q5_0_int8;
pub mod qmatmul;
pub mod row_split;

use candle_core::{CpuStorage, DType, Layout, Tensor};

/// Runs `work` on one of rayon's worker threads. A forward pass is hundreds of small parallel
/// loops (Wick's kernels, candle's ops, gemm): started from a thread outside the pool, each one
/// hands its work over and sleeps until it is done, two context switches per loop. From inside
/// the pool the caller takes part instead. Measured on SmolLM2 decode: 40-44 -> 60-66 tok/s.
pub fn on_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return work();
    }
    rayon::scope(|_| work())
}

/// Runs `work` compiled for the best instruction set this CPU has, chosen at run time (AVX2 and
/// FMA on most x86-64 machines), so the plain loops in these kernels vectorise 8 wide without
/// building the whole binary for one CPU. `pulp` (already under candle's GEMM) does the
/// detection and the safe dispatch.
#[inline(always)]
pub(crate) fn simd<R>(work: impl FnOnce() -> R) -> R {
    struct Op<F>(F);
    impl<R, F: FnOnce() -> R> pulp::WithSimd for Op<F> {
        type Output = R;
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _: S) -> R {
            (self.0)()
        }
    }
    pulp::Arch::new().dispatch(Op(work))
}

/// Elements per parallel task: enough to amortise the hand-off.
const CHUNK: usize = 16 * 1024;

pub(crate) fn contiguous_f32<'a>(s: &'a CpuStorage, l: &Layout) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("kernel expects f32")
    };
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("kernel expects a contiguous tensor".into()))?;
    Ok(&data[start..end])
}

/// The f32 values of a contiguous tensor's storage, to overwrite in place.
fn contiguous_f32_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> candle_core::Result<&'a mut [f32]> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("kernel expects f32")
    };
    let (start, end) = l
        .contiguous_offsets()
        .ok_or_else(|| candle_core::Error::Msg("kernel expects a contiguous tensor".into()))?;
    Ok(&mut data[start..end])
}

/// A tensor whose storage the caller gives up, on the CPU in f32 and contiguous, so a kernel can
/// overwrite it: no new activation to allocate and zero (the allocator's `memset` of fresh
/// buffers was 6% of a batch-32 embedding run). `None`: use candle's ops.
fn owned_cpu_f32(x: Tensor) -> candle_core::Result<Option<Tensor>> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return Ok(None);
    }
    // `contiguous` returns the same storage when it already is; a strided view is copied first,
    // so the overwrite never reaches a tensor the caller did not give.
    x.contiguous().map(Some)
}
