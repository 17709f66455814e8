//! What the app keeps between commands: recently used tokenizers, loaded pipelines (the model
//! manager: each loaded once, reused across tabs, evicted least-recently-used beyond a memory
//! budget), runs and downloads in progress.

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

/// How many loaded pipelines stay in memory at most, whatever their size: one per tab in use is
/// the common case, and switching tabs must not reload.
const PIPELINE_CACHE_SIZE: usize = 6;

/// The share of installed memory loaded models may take together (`WICK_MEMORY_BUDGET`, in
/// bytes, overrides); beyond it the least recently used are unloaded.
const MEMORY_BUDGET_SHARE: f64 = 0.5;

/// Context length the fit check budgets a generation's key/value cache for.
const FIT_CONTEXT: u64 = 4096;

/// One value, loaded at most once: requests that arrive while it loads wait for that load
/// instead of starting their own.
type Slot<V> = Arc<OnceLock<Result<Arc<V>, ErrorPayload>>>;

/// Cheap to clone: commands move a clone onto the blocking thread that does the work.
#[derive(Debug, Clone)]
pub struct AppState {
    tokenizers: Arc<Mutex<Cache<WickTokenizer>>>,
    pipelines: Arc<Mutex<Cache<Pipeline>>>,
    /// Generations in progress, by run name.
    pub runs: StopFlags,
    /// Downloads in progress, by id.
    pub downloads: StopFlags,
    /// Models the user chose to load although the fit check said they would not fit.
    insisted: Arc<Mutex<std::collections::HashSet<String>>>,
}

impl Default for AppState {
    fn default() -> Self {
        Self {
            tokenizers: Arc::new(Mutex::new(Cache::new(TOKENIZER_CACHE_SIZE))),
            pipelines: Arc::new(Mutex::new(
                Cache::new(PIPELINE_CACHE_SIZE).with_budget(memory_budget()),
            )),
            runs: StopFlags::default(),
            downloads: StopFlags::default(),
            insisted: Arc::default(),
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
        let dir = ModelSource::parse(model)
            .and_then(|s| s.resolve())
            .map_err(ErrorPayload::from)?;
        // The folder is part of the key: when a Hub branch moves to a new snapshot, that
        // snapshot is loaded (and the commit a result reports is the one that ran).
        // The quantization as the UI names it (`as_stored`, `q4_k`): the system panel shows it.
        let weights = serde_json::to_value(quantization)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let key = format!(
            "{}\u{0}{model}\u{0}{weights}\u{0}{}",
            task.id(),
            dir.display()
        );
        let mut bytes = 0;
        let pipeline = get_or_load(&self.pipelines, &key, || {
            let fit = wick_engine::facts::local_facts(&dir, quantization, FIT_CONTEXT)?.fit;
            if let Some(refusal) = fit.refusal(model) {
                if !lock(&self.insisted).contains(model) {
                    // Idle models can make room: unload them, oldest first, before refusing.
                    let short = fit.total.saturating_sub(fit.available);
                    let mut cache = lock(&self.pipelines);
                    if cache.idle_bytes(&key) < short {
                        return Err(refusal);
                    }
                    cache.free(short, &key);
                }
            }
            bytes = fit.weights;
            tracing::info!(model, task = task.id(), bytes, "loading");
            Pipeline::load_with(task, &dir, quantization)
        })?;
        if bytes > 0 {
            lock(&self.pipelines).loaded(&key, bytes);
        }
        Ok(pipeline)
    }

    /// Lets `model` load although the fit check refuses it.
    pub fn insist(&self, model: &str) {
        lock(&self.insisted).insert(model.trim().to_string());
    }

    /// The loaded pipelines, most recently used first.
    pub fn loaded(&self) -> Vec<LoadedModel> {
        let cache = lock(&self.pipelines);
        let mut loaded: Vec<(u64, LoadedModel)> = cache
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.slot.get(), Some(Ok(_))))
            .map(|(key, e)| {
                let mut parts = key.split('\u{0}');
                let task = parts.next().unwrap_or_default().to_string();
                let model = parts.next().unwrap_or_default().to_string();
                let quantization = parts.next().unwrap_or_default().to_string();
                (
                    e.used,
                    LoadedModel {
                        key: key.clone(),
                        task,
                        model,
                        quantization,
                        bytes: e.bytes,
                    },
                )
            })
            .collect();
        loaded.sort_by_key(|(used, _)| std::cmp::Reverse(*used));
        loaded.into_iter().map(|(_, m)| m).collect()
    }

    /// Unloads one pipeline (runs using it finish first), or all with `None`.
    pub fn unload(&self, key: Option<&str>) {
        let mut cache = lock(&self.pipelines);
        match key {
            Some(key) => {
                cache.entries.remove(key);
            }
            None => cache.entries.clear(),
        }
    }

    /// The memory budget for loaded models, bytes.
    pub fn memory_budget(&self) -> u64 {
        lock(&self.pipelines).budget.unwrap_or(u64::MAX)
    }
}

/// A loaded model, as the system panel lists it.
#[derive(Debug, Clone, serde::Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct LoadedModel {
    pub key: String,
    pub task: String,
    pub model: String,
    pub quantization: String,
    /// Weights in memory (estimated), bytes.
    #[ts(type = "number")]
    pub bytes: u64,
}

fn memory_budget() -> Option<u64> {
    if let Some(bytes) = std::env::var("WICK_MEMORY_BUDGET")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return Some(bytes);
    }
    let total = wick_engine::system::SystemInfo::read().total_memory;
    (total > 0).then_some((total as f64 * MEMORY_BUDGET_SHARE) as u64)
}

/// Named stop flags: the generations or downloads in progress, so that a later command can
/// stop one by name.
#[derive(Debug, Clone, Default)]
pub struct StopFlags(Arc<Mutex<HashMap<String, Arc<AtomicBool>>>>);

impl StopFlags {
    /// Registers `name` and returns its flag.
    pub fn start(&self, name: &str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        lock(&self.0).insert(name.to_string(), Arc::clone(&flag));
        flag
    }

    /// Raises the flag of `name`; unknown names are ignored (it may have finished already).
    pub fn stop(&self, name: &str) {
        if let Some(flag) = lock(&self.0).get(name) {
            flag.store(true, Ordering::Relaxed);
        }
    }

    pub fn end(&self, name: &str) {
        lock(&self.0).remove(name);
    }
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

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves only a cache or a set of flags behind; keep using it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A least-recently-used map of single-flight slots, bounded by a count and, optionally, by
/// the bytes its values take.
#[derive(Debug)]
struct Cache<V> {
    entries: HashMap<String, Entry<V>>,
    clock: u64,
    capacity: usize,
    budget: Option<u64>,
}

#[derive(Debug)]
struct Entry<V> {
    /// The clock at the last use, for eviction.
    used: u64,
    slot: Slot<V>,
    /// Memory the value takes, once known (0 before).
    bytes: u64,
}

impl<V> Entry<V> {
    /// Loaded (or failed) and not used by any run: safe to drop.
    fn is_idle(&self) -> bool {
        match self.slot.get() {
            Some(Ok(value)) => Arc::strong_count(value) == 1,
            Some(Err(_)) => true,
            None => false,
        }
    }
}

impl<V> Cache<V> {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            clock: 0,
            capacity,
            budget: None,
        }
    }

    fn with_budget(mut self, budget: Option<u64>) -> Self {
        self.budget = budget;
        self
    }

    /// The slot for `key`, new if needed, marked as just used; evicts the least recently used
    /// beyond the capacity (a model still in use elsewhere stays alive until that use ends).
    fn slot(&mut self, key: &str) -> Slot<V> {
        self.clock += 1;
        let clock = self.clock;
        let slot = match self.entries.get_mut(key) {
            Some(entry) => {
                entry.used = clock;
                Arc::clone(&entry.slot)
            }
            None => {
                let slot = Slot::default();
                self.entries.insert(
                    key.to_string(),
                    Entry {
                        used: clock,
                        slot: Arc::clone(&slot),
                        bytes: 0,
                    },
                );
                slot
            }
        };
        self.evict(key);
        slot
    }

    /// Records the size of a loaded value and unloads others beyond the budget.
    fn loaded(&mut self, key: &str, bytes: u64) {
        if let Some(entry) = self.entries.get_mut(key) {
            entry.bytes = bytes;
        }
        self.evict(key);
    }

    /// Drops least recently used entries while over the count or the budget. Never `keep`, a
    /// value still loading, or one a run is using (dropping it would free nothing, and the
    /// next request would load a second copy beside it).
    fn evict(&mut self, keep: &str) {
        loop {
            let total: u64 = self.entries.values().map(|e| e.bytes).sum();
            let over_budget = self.budget.is_some_and(|b| total > b);
            if self.entries.len() <= self.capacity && !over_budget {
                break;
            }
            let oldest = self
                .entries
                .iter()
                .filter(|(k, e)| k.as_str() != keep && e.is_idle())
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    tracing::info!(key = %k.replace('\u{0}', " "), "unloading (least recently used)");
                    self.entries.remove(&k);
                }
                None => break,
            }
        }
    }

    /// Bytes held by loaded values nobody is using (other than `keep`).
    fn idle_bytes(&self, keep: &str) -> u64 {
        self.entries
            .iter()
            .filter(|(k, e)| k.as_str() != keep && e.is_idle())
            .map(|(_, e)| e.bytes)
            .sum()
    }

    /// Unloads idle values, least recently used first, until `needed` bytes are freed.
    fn free(&mut self, needed: u64, keep: &str) {
        let mut freed = 0;
        while freed < needed {
            let oldest = self
                .entries
                .iter()
                .filter(|(k, e)| k.as_str() != keep && e.is_idle() && e.bytes > 0)
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone());
            let Some(k) = oldest else { break };
            tracing::info!(key = %k.replace('\u{0}', " "), "unloading to make room");
            freed += self.entries.remove(&k).map_or(0, |e| e.bytes);
        }
    }

    fn forget(&mut self, key: &str, slot: &Slot<V>) {
        if self
            .entries
            .get(key)
            .is_some_and(|e| Arc::ptr_eq(&e.slot, slot))
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
            load(&mut cache, &format!("m{i}"));
        }
        assert_eq!(cache.entries.len(), TOKENIZER_CACHE_SIZE);
        assert!(cache.entries.contains_key("m9"));
        assert!(!cache.entries.contains_key("m0"));
    }

    #[test]
    fn models_beyond_the_memory_budget_are_unloaded_oldest_first() {
        let mut cache = Cache::<()>::new(10).with_budget(Some(100));
        for (key, bytes) in [("a", 40), ("b", 40)] {
            load(&mut cache, key);
            cache.loaded(key, bytes);
        }
        cache.slot("a"); // a is now more recent than b
        load(&mut cache, "c");
        cache.loaded("c", 40);
        let mut keys: Vec<&String> = cache.entries.keys().collect();
        keys.sort();
        assert_eq!(keys, ["a", "c"], "b was the least recently used");
        // A model in use is never unloaded, however old.
        // (Taken without `slot`, which would make it the most recent.)
        let in_use = cache.entries["a"].slot.get().cloned();
        load(&mut cache, "d");
        cache.loaded("d", 40);
        assert!(cache.entries.contains_key("a"), "a is in use");
        assert!(
            !cache.entries.contains_key("c"),
            "c was the oldest idle one"
        );
        drop(in_use);
        // A model bigger than the budget alone still loads (the fit check guards that).
        load(&mut cache, "huge");
        cache.loaded("huge", 500);
        assert_eq!(cache.entries.keys().collect::<Vec<_>>(), ["huge"]);

        // Making room for a model that does not fit beside the idle ones: oldest first.
        let mut cache = Cache::<()>::new(10);
        for key in ["x", "y", "z"] {
            load(&mut cache, key);
            cache.loaded(key, 30);
        }
        assert_eq!(cache.idle_bytes("new"), 90);
        cache.free(50, "new");
        let mut keys: Vec<&String> = cache.entries.keys().collect();
        keys.sort();
        assert_eq!(keys, ["z"], "x then y were unloaded to free 60 >= 50 bytes");
    }

    /// What `get_or_load` does: a slot, filled.
    fn load(cache: &mut Cache<()>, key: &str) {
        let _ = cache.slot(key).get_or_init(|| Ok(Arc::new(())));
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
