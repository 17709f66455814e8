//! Loading a model, watched: what a loader is given ([`LoadSpec`]: the model as detected, the
//! device, the weight format asked for) and how it reports ([`Loading`]: bytes of weights read and
//! layers built, as [`LoadProgress`] events, and a cancel checked between tensors and layers).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;
use ts_rs::TS;

use crate::cancel::CancelToken;
use crate::error::Result;
use crate::families::registry::{detect, Detected};
use crate::quant::Quantization;

/// How far a load has come: the weights read from disk, then the layers built from them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct LoadProgress {
    /// Bytes of weight files read so far, and in all (0 while unknown).
    #[ts(type = "number")]
    pub bytes_read: u64,
    #[ts(type = "number")]
    pub bytes_total: u64,
    /// Transformer layers built so far, and in all (0 while unknown).
    pub layers_built: u32,
    pub layers_total: u32,
}

type Sink = dyn Fn(LoadProgress) + Send + Sync;

/// How much of a weight file is read between progress reports and cancel checks.
const READ_CHUNK: usize = 16 << 20;

/// The watcher of one load: counts progress, tells the sink, and holds the cancel flag the loader
/// checks. Cheap to clone (the counts are shared).
#[derive(Clone, Default)]
pub struct Loading {
    cancel: CancelToken,
    sink: Option<Arc<Sink>>,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    bytes_read: AtomicU64,
    bytes_total: AtomicU64,
    layers_built: AtomicU64,
    layers_total: AtomicU64,
}

impl std::fmt::Debug for Loading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loading")
            .field("progress", &self.progress())
            .field("cancelled", &self.cancel.is_cancelled())
            .finish()
    }
}

impl Loading {
    /// A load nobody watches or cancels (tests, one-shot CLI commands).
    pub fn quiet() -> Self {
        Self::default()
    }

    /// A load that reports to `sink` and stops when `cancel` is raised.
    pub fn watched(
        cancel: CancelToken,
        sink: impl Fn(LoadProgress) + Send + Sync + 'static,
    ) -> Self {
        Self {
            cancel,
            sink: Some(Arc::new(sink)),
            counts: Arc::default(),
        }
    }

    pub fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    /// `Err(Cancelled)` once the load is cancelled.
    pub fn check(&self) -> Result<()> {
        self.cancel.check()
    }

    /// [`Self::check`] for loaders that return candle's errors.
    pub fn check_candle(&self) -> candle_core::Result<()> {
        self.cancel.check_candle()
    }

    pub fn progress(&self) -> LoadProgress {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let c = &self.counts;
        LoadProgress {
            bytes_read: get(&c.bytes_read),
            bytes_total: get(&c.bytes_total),
            layers_built: u32::try_from(get(&c.layers_built)).unwrap_or(u32::MAX),
            layers_total: u32::try_from(get(&c.layers_total)).unwrap_or(u32::MAX),
        }
    }

    fn report(&self) {
        if let Some(sink) = &self.sink {
            sink(self.progress());
        }
    }

    /// The weights to read come to `bytes`.
    pub fn expect_bytes(&self, bytes: u64) {
        self.counts.bytes_total.store(bytes, Ordering::Relaxed);
        self.report();
    }

    /// `bytes` more were read; checks for a cancel.
    pub fn read(&self, bytes: u64) -> candle_core::Result<()> {
        self.counts.bytes_read.fetch_add(bytes, Ordering::Relaxed);
        self.report();
        self.check_candle()
    }

    /// The model has `layers` layers to build.
    pub fn expect_layers(&self, layers: usize) {
        self.counts
            .layers_total
            .store(layers as u64, Ordering::Relaxed);
        self.report();
    }

    /// One more layer is built; checks for a cancel.
    pub fn layer_built(&self) -> candle_core::Result<()> {
        self.counts.layers_built.fetch_add(1, Ordering::Relaxed);
        self.report();
        self.check_candle()
    }

    /// Fills `buf` from `reader` a chunk at a time, counting each chunk as read and stopping at
    /// a cancel between chunks (a model's largest tensor can be gigabytes).
    pub fn read_exact(
        &self,
        reader: &mut impl std::io::Read,
        buf: &mut [u8],
    ) -> candle_core::Result<()> {
        for chunk in buf.chunks_mut(READ_CHUNK) {
            reader.read_exact(chunk)?;
            self.read(chunk.len() as u64)?;
        }
        Ok(())
    }

    /// Builds layers `0..n` with `build`, counting each one built and stopping at a cancel. The
    /// total is set with [`Self::expect_layers`] first (a model may have several stacks).
    pub fn build_layers<T>(
        &self,
        n: usize,
        mut build: impl FnMut(usize) -> candle_core::Result<T>,
    ) -> candle_core::Result<Vec<T>> {
        (0..n)
            .map(|i| {
                let layer = build(i)?;
                self.layer_built()?;
                Ok(layer)
            })
            .collect()
    }
}

/// What to load: the model (detected once), where, in what weight format, and who watches.
#[derive(Debug)]
pub struct LoadSpec {
    pub model: Detected,
    pub device: candle_core::Device,
    pub quantization: Quantization,
    pub loading: Loading,
}

impl LoadSpec {
    /// The model at `path`, on the CPU, weights as stored, unwatched.
    pub fn new(path: &Path) -> Result<Self> {
        Ok(Self {
            model: detect(path)?,
            device: candle_core::Device::Cpu,
            quantization: Quantization::AsStored,
            loading: Loading::quiet(),
        })
    }

    pub fn with_quantization(mut self, quantization: Quantization) -> Self {
        self.quantization = quantization;
        self
    }

    pub fn with_device(mut self, device: candle_core::Device) -> Self {
        self.device = device;
        self
    }

    pub fn watched_by(mut self, loading: Loading) -> Self {
        self.loading = loading;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn progress_reaches_the_sink_and_a_cancel_stops_the_next_step() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let cancel = CancelToken::new();
        let sink = Arc::clone(&seen);
        let loading = Loading::watched(cancel.clone(), move |p| sink.lock().unwrap().push(p));
        loading.expect_bytes(100);
        loading.read(40).unwrap();
        loading.expect_layers(2);
        loading.layer_built().unwrap();
        let last = *seen.lock().unwrap().last().unwrap();
        assert_eq!(
            last,
            LoadProgress {
                bytes_read: 40,
                bytes_total: 100,
                layers_built: 1,
                layers_total: 2
            }
        );
        cancel.cancel();
        let err = loading.layer_built().unwrap_err();
        assert!(crate::cancel::is_cancellation(&err));
        assert!(loading.check().is_err());
    }
}
