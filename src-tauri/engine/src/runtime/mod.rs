//! What the app and the CLI share to run models: loaded models kept and reused (least recently
//! used first out, within a memory budget that counts what is really held), one compute run at a
//! time per device, runs that can be cancelled at every stage, and load progress as events.
//!
//! A run goes: [`Runtime::begin`] registers its id (so it can be cancelled from the first moment),
//! resolves the device and waits its turn on it ([`RunEvent::Queued`] while others run);
//! [`Run::pipeline`] then gives the models it needs, loading them on first use with
//! [`RunEvent::Loading`] progress; the caller computes with [`Run::control`], and dropping the run
//! hands the device to the next in line.

pub mod key;
pub mod lru;
pub mod memory;
pub mod queue;
pub mod runs;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::Serialize;
use ts_rs::TS;

pub use key::ModelKey;
pub use memory::MemoryUse;

use crate::cancel::CancelToken;
use crate::device::DeviceChoice;
use crate::error::Result;
use crate::loading::{LoadProgress, LoadSpec, Loading};
use crate::quant::Quantization;
use crate::source::ModelSource;
use crate::tasks::pipeline::Pipeline;
use crate::tasks::run_generation::GeneratedToken;
use crate::tasks::{RunControl, Task};
use crate::tokenize::chat::ChatTemplate;
use crate::tokenize::WickTokenizer;
use lru::{get_or_load, Lru};
use memory::{Charge, Ledger, Meter};
use queue::{DeviceQueue, Turn};
use runs::{Registration, RunRegistry};

/// How many tokenizers stay loaded. Building one from a large GGUF takes a second, and the
/// inspector re-tokenizes on every keystroke, so recent ones are kept.
const TOKENIZER_CACHE_SIZE: usize = 4;

/// How many loaded pipelines stay in memory at most, whatever their size: one per tab in use is
/// the common case, and switching tabs must not reload.
const PIPELINE_CACHE_SIZE: usize = 6;

/// The share of installed memory loaded models and caches may take together
/// (`WICK_MEMORY_BUDGET`, in bytes, overrides); beyond it the least recently used models are
/// unloaded.
const MEMORY_BUDGET_SHARE: f64 = 0.5;

/// Context length the fit check budgets a generation's key/value cache for.
const FIT_CONTEXT: u64 = 4096;

/// What a run sends while it runs, before its answer.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[ts(export)]
pub enum RunEvent {
    /// Other runs hold the device: this many are ahead.
    Queued { ahead: usize },
    /// A model is being loaded (first use).
    Loading {
        model: String,
        progress: LoadProgress,
    },
    /// The run has the device and its models, and computes.
    Running,
    /// Generated tokens (greedy and sampling; beam search's answer comes at the end), a few at a
    /// time ([`TokenEvents`]).
    Tokens { tokens: Vec<StreamedToken> },
}

/// A generated token and where it goes: the input (prompt) and the returned sequence.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct StreamedToken {
    pub prompt: usize,
    pub sequence: usize,
    pub token: GeneratedToken,
}

/// How long generated tokens are gathered before they are sent as one event. One event a token
/// is 50-100 messages a second, each parsed and drawn by the window's web view: on a two-core
/// machine that took most of a core from the engine (SmolLM2 decoded at 60 tok/s in the window
/// against 108 on the command line). What is left costs per event, not per token (WebKit's
/// painting of the update, 10-20 ms of a core each without GPU compositing): 100 ms between
/// events kept the window at 0.78-0.89 of the command line's decode, 250 ms at 0.89-0.95
/// (BENCHMARKS.md). Four updates a second still read as a stream; the first token goes at once.
const TOKEN_EVENTS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Sends a run's generated tokens as [`RunEvent::Tokens`], the first at once and the rest
/// gathered over [`TOKEN_EVENTS_EVERY`]. Whatever is left is sent when it is dropped.
#[derive(Debug)]
pub struct TokenEvents<'r> {
    run: &'r Run,
    pending: Vec<StreamedToken>,
    sent: Option<std::time::Instant>,
}

impl<'r> TokenEvents<'r> {
    pub fn new(run: &'r Run) -> Self {
        Self {
            run,
            pending: Vec::new(),
            sent: None,
        }
    }

    pub fn push(&mut self, prompt: usize, sequence: usize, token: GeneratedToken) {
        self.pending.push(StreamedToken {
            prompt,
            sequence,
            token,
        });
        if self.sent.is_none_or(|t| t.elapsed() >= TOKEN_EVENTS_EVERY) {
            self.flush();
        }
    }

    /// Sends what was gathered.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let tokens = std::mem::take(&mut self.pending);
        self.run.send(RunEvent::Tokens { tokens });
        self.sent = Some(std::time::Instant::now());
    }
}

impl Drop for TokenEvents<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

type EventSink = Arc<dyn Fn(RunEvent) + Send + Sync>;

/// A loaded pipeline and what it was loaded as.
#[derive(Debug)]
pub struct LoadedPipeline {
    pub pipeline: Pipeline,
    pub key: ModelKey,
    /// Its share of the memory ledger, given back when the last user drops it.
    charge: Charge,
}

impl std::ops::Deref for LoadedPipeline {
    type Target = Pipeline;
    fn deref(&self) -> &Pipeline {
        &self.pipeline
    }
}

/// A loaded model, as the system panel lists it.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct LoadedModel {
    /// Names it for [`Runtime::unload`].
    #[ts(type = "number")]
    pub id: u64,
    pub task: Task,
    pub model: String,
    pub quantization: Quantization,
    pub device: String,
    /// Weights in memory (estimated), bytes.
    #[ts(type = "number")]
    pub bytes: u64,
    /// A run is using it now.
    pub in_use: bool,
}

/// The engine's runtime. Cheap to clone: clones share everything.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    tokenizers: Mutex<Lru<String, WickTokenizer>>,
    /// Chat templates of the same models (a GGUF's is read from its metadata, as slow as its
    /// tokenizer); `None` for a model without one.
    chat_templates: Mutex<Lru<String, Option<ChatTemplate>>>,
    pipelines: Mutex<Lru<ModelKey, LoadedPipeline>>,
    ledger: Arc<Ledger>,
    budget: u64,
    queue: Arc<DeviceQueue>,
    runs: Arc<RunRegistry>,
    /// Models the user chose to load although the fit check said they would not fit.
    insisted: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("memory", &self.memory())
            .field("runs", &self.inner.runs.len())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves only bookkeeping behind; keep using it.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Runtime {
    /// A runtime whose models and caches may hold `budget` bytes together.
    pub fn new(budget: u64) -> Self {
        Self {
            inner: Arc::new(Inner {
                tokenizers: Mutex::new(Lru::new(TOKENIZER_CACHE_SIZE)),
                chat_templates: Mutex::new(Lru::new(TOKENIZER_CACHE_SIZE)),
                pipelines: Mutex::new(Lru::new(PIPELINE_CACHE_SIZE)),
                ledger: Arc::default(),
                budget,
                queue: Arc::default(),
                runs: Arc::default(),
                insisted: Mutex::default(),
            }),
        }
    }

    /// A runtime with the budget `WICK_MEMORY_BUDGET` sets (bytes), else half the installed
    /// memory.
    pub fn from_env() -> Self {
        let budget = std::env::var("WICK_MEMORY_BUDGET")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| {
                let total = crate::system::SystemInfo::read().total_memory;
                if total > 0 {
                    (total as f64 * MEMORY_BUDGET_SHARE) as u64
                } else {
                    u64::MAX
                }
            });
        Self::new(budget)
    }

    /// The tokenizer of `model`, loaded on first use. Tokenizing is not a compute run: it does
    /// not wait for the device.
    pub fn tokenizer(&self, model: &str) -> Result<Arc<WickTokenizer>> {
        let model = model.trim().to_string();
        get_or_load(&self.inner.tokenizers, &model, || {
            WickTokenizer::from_model(&model)
        })
    }

    /// The chat template of `model` as generation would use it, `None` when it has none.
    pub fn chat_template(&self, model: &str) -> Result<Arc<Option<ChatTemplate>>> {
        let model = model.trim().to_string();
        get_or_load(&self.inner.chat_templates, &model, || {
            ChatTemplate::for_model(&ModelSource::parse(&model)?.resolve()?)
        })
    }

    /// Starts run `id` on `device`: registers it (a cancel reaches it from now on), then waits
    /// for the device, telling `events` how many runs are ahead while it waits. The device is
    /// the run's until the returned [`Run`] is dropped.
    pub fn begin(
        &self,
        id: &str,
        device: DeviceChoice,
        events: impl Fn(RunEvent) + Send + Sync + 'static,
    ) -> Result<Run> {
        let registration = self.inner.runs.register(id)?;
        let resolved = device.resolve()?;
        let device_name = device.name();
        let events: EventSink = Arc::new(events);
        let turn =
            self.inner
                .queue
                .acquire(&device_name, registration.cancel_token(), |ahead| {
                    events(RunEvent::Queued { ahead })
                })?;
        events(RunEvent::Running);
        Ok(Run {
            runtime: self.clone(),
            meter: Arc::new(self.inner.ledger.meter()),
            registration,
            _turn: turn,
            device: resolved,
            device_name,
            events,
        })
    }

    /// Cancels run `id` wherever it is (waiting, loading, computing); `false` when no such run
    /// is in progress.
    pub fn cancel(&self, id: &str) -> bool {
        self.inner.runs.cancel(id)
    }

    /// Cancels every run (the window closes).
    pub fn cancel_all(&self) {
        self.inner.runs.cancel_all();
    }

    /// Lets `model` (as the user named it) load although the fit check refuses it.
    pub fn insist(&self, model: &str) {
        let name = ModelSource::parse(model)
            .map_or_else(|_| model.trim().to_string(), |s| key::source_name(&s));
        lock(&self.inner.insisted).insert(name);
    }

    fn insisted(&self, name: &str) -> bool {
        lock(&self.inner.insisted).contains(name)
    }

    /// The loaded models, most recently used first.
    pub fn loaded(&self) -> Vec<LoadedModel> {
        lock(&self.inner.pipelines)
            .loaded()
            .into_iter()
            .map(|(id, key, value)| LoadedModel {
                id,
                task: key.task,
                model: key.model_name(),
                quantization: key.weights,
                device: key.device.clone(),
                bytes: value.charge.bytes(),
                // The map's reference and the one just taken.
                in_use: Arc::strong_count(&value) > 2,
            })
            .collect()
    }

    /// Unloads one model by its [`LoadedModel::id`], or all with `None`. A run using one keeps
    /// it (and it stays counted) until the run ends.
    pub fn unload(&self, id: Option<u64>) {
        lock(&self.inner.pipelines).remove(id);
    }

    /// What models and running generations hold now, and the budget.
    pub fn memory(&self) -> MemoryUse {
        self.inner.ledger.usage(self.inner.budget)
    }

    /// Unloads idle models, least recently used first, while more than the budget is held.
    fn enforce_budget(&self, keep: Option<&ModelKey>) {
        let mut pipelines = lock(&self.inner.pipelines);
        while self.inner.ledger.total() > self.inner.budget {
            match pipelines.evict_one(keep) {
                Some(key) => tracing::info!(%key, "unloading (over the memory budget)"),
                None => break,
            }
        }
    }

    /// Unloads idle models, oldest first, until `needed` bytes are freed; `false` (and nothing
    /// unloaded) when even all of them would not free that much.
    fn make_room(&self, needed: u64, keep: &ModelKey) -> bool {
        let mut pipelines = lock(&self.inner.pipelines);
        let idle: u64 = pipelines.idle(keep).iter().map(|p| p.charge.bytes()).sum();
        if idle < needed {
            return false;
        }
        let start = self.inner.ledger.models();
        while start.saturating_sub(self.inner.ledger.models()) < needed {
            match pipelines.evict_one(Some(keep)) {
                Some(key) => tracing::info!(%key, "unloading to make room"),
                None => break,
            }
        }
        true
    }
}

/// One run: its id and cancel flag, its turn on the device, and the models it loads.
pub struct Run {
    runtime: Runtime,
    registration: Registration,
    meter: Arc<Meter>,
    device: candle_core::Device,
    device_name: String,
    events: EventSink,
    // Last: the device passes to the next run only after everything above is released.
    _turn: Turn,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Run")
            .field("id", &self.registration.id())
            .field("device", &self.device_name)
            .finish()
    }
}

impl Run {
    pub fn id(&self) -> &str {
        self.registration.id()
    }

    pub fn cancel_token(&self) -> &CancelToken {
        self.registration.cancel_token()
    }

    /// The device the run computes on (`cpu`, `cuda:0`), as results report it.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// Lets `model` load although the fit check refuses it ([`Runtime::insist`]).
    pub fn insist(&self, model: &str) {
        self.runtime.insist(model);
    }

    /// Sends an event to whoever started the run.
    pub fn send(&self, event: RunEvent) {
        (self.events)(event);
    }

    /// What the run's computation is controlled by: its cancel flag, and a meter that counts
    /// its key/value caches in the memory budget as they grow.
    pub fn control(&self) -> RunControl {
        let (meter, runtime) = (Arc::clone(&self.meter), self.runtime.clone());
        RunControl::new(self.cancel_token().clone()).metered(move |bytes| {
            meter.set(bytes);
            runtime.enforce_budget(None);
        })
    }

    /// The `task` pipeline of `model` (a folder, a file, or a Hub repo in the cache) with its
    /// weights as `quantization` says, on the run's device: the loaded one, or loaded now
    /// (after the fit check, with progress events, stopping at a cancel).
    pub fn pipeline(
        &self,
        task: Task,
        model: &str,
        quantization: Quantization,
    ) -> Result<Arc<LoadedPipeline>> {
        self.pipeline_from(task, ModelSource::parse(model)?, quantization)
    }

    /// [`Self::pipeline`] for a model already parsed.
    pub fn pipeline_from(
        &self,
        task: Task,
        source: ModelSource,
        quantization: Quantization,
    ) -> Result<Arc<LoadedPipeline>> {
        self.cancel_token().check()?;
        let path = source.resolve()?;
        let commit = match &source {
            ModelSource::Hub { repo, revision } => {
                crate::hub::HubCache::from_env().commit_for(repo, revision)
            }
            ModelSource::Local(_) => None,
        };
        let key = ModelKey {
            task,
            source,
            commit,
            path,
            weights: quantization,
            device: self.device_name.clone(),
        };
        let loaded = get_or_load(&self.runtime.inner.pipelines, &key, || self.load(&key))?;
        self.runtime.enforce_budget(Some(&key));
        self.send(RunEvent::Running);
        Ok(loaded)
    }

    fn load(&self, key: &ModelKey) -> Result<LoadedPipeline> {
        let name = key.model_name();
        let events = Arc::clone(&self.events);
        let model = name.clone();
        let loading = Loading::watched(self.cancel_token().clone(), move |progress| {
            events(RunEvent::Loading {
                model: model.clone(),
                progress,
            })
        });
        // The model is read once (config.json or the GGUF header): the fit check and the load
        // both start from it.
        let spec = LoadSpec::new(&key.path)?
            .with_quantization(key.weights)
            .with_device(self.device.clone())
            .watched_by(loading);
        let fit = crate::facts::fit_of(&spec.model, key.weights, FIT_CONTEXT);
        if let Some(refusal) = fit.refusal(&name) {
            let short = fit.total.saturating_sub(fit.available);
            if !self.runtime.insisted(&name) && !self.runtime.make_room(short, key) {
                return Err(refusal);
            }
        }
        tracing::info!(%key, bytes = fit.weights, "loading");
        let pipeline = Pipeline::load(key.task, &spec)?;
        Ok(LoadedPipeline {
            pipeline,
            key: key.clone(),
            charge: self.runtime.inner.ledger.charge_model(fit.weights),
        })
    }
}
