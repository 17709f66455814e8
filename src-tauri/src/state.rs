//! What the app keeps between commands: recently used tokenizers and loaded pipelines.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use wick_engine::families::causal::Quantization;
use wick_engine::tasks::pipeline::Pipeline;
use wick_engine::tasks::Task;
use wick_engine::{ErrorPayload, ModelSource, WickTokenizer};

/// How many tokenizers stay loaded. Building one from a large GGUF takes a second, and the
/// inspector re-tokenizes on every keystroke, so recent ones are kept.
const TOKENIZER_CACHE_SIZE: usize = 4;

/// How many loaded pipelines (model weights) stay in memory: one per encoder tab in use is the
/// common case, and switching tabs must not reload.
const PIPELINE_CACHE_SIZE: usize = 3;

/// One value, loaded at most once: requests that arrive while it loads wait for that load
/// instead of starting their own.
type Slot<V> = Arc<OnceLock<Result<Arc<V>, ErrorPayload>>>;

/// Cheap to clone: commands move a clone onto the blocking thread that does the work.
#[derive(Debug, Clone)]
pub struct AppState {
    tokenizers: Arc<Mutex<Cache<WickTokenizer>>>,
    pipelines: Arc<Mutex<Cache<Pipeline>>>,
    /// Generations in progress, by run name, with their stop flags.
    runs: Arc<Mutex<HashMap<String, Arc<AtomicBool>>>>,
}

impl Default for AppState {
    fn default() -> Self {
        Self {
            tokenizers: Arc::new(Mutex::new(Cache::new(TOKENIZER_CACHE_SIZE))),
            pipelines: Arc::new(Mutex::new(Cache::new(PIPELINE_CACHE_SIZE))),
            runs: Arc::default(),
        }
    }
}

impl AppState {
    /// Returns the tokenizer for `model`, loading it on a miss. Runs on a blocking thread.
    pub fn tokenizer(&self, model: &str) -> Result<Arc<WickTokenizer>, ErrorPayload> {
        get_or_load(&self.tokenizers, model, || WickTokenizer::from_model(model))
    }

    /// Returns the `task` pipeline for `model`, loading it on a miss. Runs on a blocking thread.
    pub fn pipeline(&self, task: Task, model: &str) -> Result<Arc<Pipeline>, ErrorPayload> {
        self.pipeline_with(task, model, Quantization::AsStored)
    }

    /// [`Self::pipeline`] with the weights converted at load; each conversion is its own entry.
    pub fn pipeline_with(
        &self,
        task: Task,
        model: &str,
        quantization: Quantization,
    ) -> Result<Arc<Pipeline>, ErrorPayload> {
        let key = format!("{}\u{0}{model}\u{0}{quantization:?}", task.id());
        get_or_load(&self.pipelines, &key, || {
            let dir = ModelSource::parse(model)?.resolve()?;
            Pipeline::load_with(task, &dir, quantization)
        })
    }
}

impl AppState {
    /// Registers a run and returns its stop flag.
    pub fn start_run(&self, run: &str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        lock_runs(&self.runs).insert(run.to_string(), Arc::clone(&flag));
        flag
    }

    pub fn stop_run(&self, run: &str) {
        if let Some(flag) = lock_runs(&self.runs).get(run) {
            flag.store(true, Ordering::Relaxed);
        }
    }

    pub fn end_run(&self, run: &str) {
        lock_runs(&self.runs).remove(run);
    }
}

fn lock_runs(
    runs: &Mutex<HashMap<String, Arc<AtomicBool>>>,
) -> std::sync::MutexGuard<'_, HashMap<String, Arc<AtomicBool>>> {
    runs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Looks `key` up in `cache`, loading it with `load` outside the cache lock (one slow load does
/// not hold up other keys). Failures are not remembered: the user may fix the folder and retry.
fn get_or_load<V>(
    cache: &Mutex<Cache<V>>,
    key: &str,
    load: impl FnOnce() -> wick_engine::Result<V>,
) -> Result<Arc<V>, ErrorPayload> {
    let slot = lock(cache).slot(key);
    let result = slot
        .get_or_init(|| load().map(Arc::new).map_err(ErrorPayload::from))
        .clone();
    if result.is_err() {
        lock(cache).forget(key, &slot);
    }
    result
}

fn lock<V>(cache: &Mutex<Cache<V>>) -> std::sync::MutexGuard<'_, Cache<V>> {
    // A panic while holding the lock leaves only a cache behind; keep using it.
    cache
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A small least-recently-used map of single-flight slots.
#[derive(Debug)]
struct Cache<V> {
    /// Values by key, with a use counter for eviction.
    entries: HashMap<String, (u64, Slot<V>)>,
    clock: u64,
    capacity: usize,
}

impl<V> Cache<V> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            clock: 0,
            capacity,
        }
    }

    /// The slot for `key`, new if needed, marked as just used; evicts the least recently used
    /// beyond the capacity (a model still in use elsewhere stays alive until that use ends).
    fn slot(&mut self, key: &str) -> Slot<V> {
        self.clock += 1;
        let clock = self.clock;
        let slot = match self.entries.get_mut(key) {
            Some((used, slot)) => {
                *used = clock;
                Arc::clone(slot)
            }
            None => {
                let slot = Slot::default();
                self.entries
                    .insert(key.to_string(), (clock, Arc::clone(&slot)));
                slot
            }
        };
        while self.entries.len() > self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (used, _))| *used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.entries.remove(&k),
                None => break,
            };
        }
        slot
    }

    fn forget(&mut self, key: &str, slot: &Slot<V>) {
        if self
            .entries
            .get(key)
            .is_some_and(|(_, s)| Arc::ptr_eq(s, slot))
        {
            self.entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_not_cached_and_the_cache_is_bounded() {
        let state = AppState::default();
        let err = state.tokenizer("/nonexistent/model").unwrap_err();
        assert_eq!(err.code, wick_engine::ErrorCode::NotFound);
        assert!(lock(&state.tokenizers).entries.is_empty());
        let err = state
            .pipeline(Task::FillMask, "/nonexistent/model")
            .unwrap_err();
        assert_eq!(err.code, wick_engine::ErrorCode::NotFound);
        assert!(lock(&state.pipelines).entries.is_empty());

        let mut cache = Cache::<()>::new(TOKENIZER_CACHE_SIZE);
        for i in 0..10 {
            cache.slot(&format!("m{i}"));
        }
        assert_eq!(cache.entries.len(), TOKENIZER_CACHE_SIZE);
        assert!(cache.entries.contains_key("m9"));
        assert!(!cache.entries.contains_key("m0"));
    }

    #[test]
    fn a_pipeline_is_loaded_once_and_reused() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/tiny/bert-sequence-classification");
        let model = dir.to_str().unwrap();
        let state = AppState::default();
        let a = state.pipeline(Task::TextClassification, model).unwrap();
        let b = state.pipeline(Task::TextClassification, model).unwrap();
        assert!(
            Arc::ptr_eq(&a, &b),
            "the second call reuses the loaded model"
        );
    }
}
