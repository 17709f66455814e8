//! The Tauri commands the UI calls. All are async and hand engine work to a blocking thread,
//! so the window never freezes; errors cross as `{code, message}` ([`ErrorPayload`]).

use std::sync::atomic::Ordering;

use serde::Serialize;
use tauri::ipc::Channel;
use tauri::State;
use ts_rs::TS;
use wick_engine::families::causal::Quantization;
use wick_engine::tasks::compare::{compare, Comparison};
use wick_engine::tasks::pipeline::Detail;
use wick_engine::tasks::text_generation::GeneratedToken;
use wick_engine::tasks::{Task, TaskInfo, TASKS};
use wick_engine::tokenize::TokenizerInfo;
use wick_engine::{ErrorCode, ErrorPayload, Inspection, TokenizeOptions};

use crate::state::AppState;

type CommandResult<T> = Result<T, ErrorPayload>;

/// What the window shows in its header and tab bar.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct AppInfo {
    pub version: String,
    pub tasks: Vec<TaskInfo>,
    /// Models fetched by `scripts/fetch_models.py`, offered in the model picker.
    pub starter_models: Vec<StarterModel>,
}

/// A ready-to-use model folder from the starter-model cache.
#[derive(Debug, Serialize, TS)]
#[ts(export)]
pub struct StarterModel {
    pub name: String,
    pub path: String,
}

/// The inspector's answer: the tokenizer's facts and the tokens of the text.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct TokenizeResponse {
    pub tokenizer: TokenizerInfo,
    pub inspection: Inspection,
    /// Milliseconds spent tokenizing (not loading).
    pub elapsed_ms: f64,
}

#[tauri::command]
pub async fn app_info() -> AppInfo {
    AppInfo {
        version: env!("CARGO_PKG_VERSION").to_string(),
        tasks: TASKS.to_vec(),
        starter_models: starter_models(),
    }
}

#[tauri::command]
pub async fn tokenize(
    state: State<'_, AppState>,
    model: String,
    text: String,
    options: TokenizeOptions,
) -> CommandResult<TokenizeResponse> {
    let state = state.inner().clone();
    blocking(move || {
        let tokenizer = state.tokenizer(&model)?;
        let started = std::time::Instant::now();
        let inspection = tokenizer.inspect(&text, &options)?;
        Ok(TokenizeResponse {
            tokenizer: tokenizer.info().clone(),
            inspection,
            elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    })
    .await
}

/// A pipeline run: the JSON `transformers` would return, and everything behind the pictures.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct PipelineResponse {
    /// Exactly what `pipeline(task, model)(inputs, **kwargs)` returns.
    #[ts(type = "unknown")]
    pub json: serde_json::Value,
    pub detail: Detail,
    /// What was done to the inputs, e.g. truncation.
    pub notes: Vec<String>,
    /// The model class that ran (e.g. BertForTokenClassification).
    pub architecture: String,
    /// Where and in what precision it ran (no silent fallbacks: this is what happened).
    pub device: String,
    pub dtype: String,
    /// The Hub commit the model came from (for `org/name` models).
    pub commit: Option<String>,
    /// Milliseconds spent running (not loading).
    pub elapsed_ms: f64,
}

/// Runs an encoder pipeline. `inputs` and `kwargs` are the pipeline call's arguments, as JSON.
#[tauri::command]
pub async fn run_pipeline(
    state: State<'_, AppState>,
    task: Task,
    model: String,
    inputs: serde_json::Value,
    kwargs: serde_json::Map<String, serde_json::Value>,
    batch_size: Option<usize>,
) -> CommandResult<PipelineResponse> {
    let state = state.inner().clone();
    blocking(move || {
        let pipeline = state.pipeline(task, model.trim())?;
        let started = std::time::Instant::now();
        let output = pipeline.call_with_detail(&inputs, &kwargs, batch_size.unwrap_or(8))?;
        let detail = output.detail.ok_or_else(|| ErrorPayload {
            code: ErrorCode::Internal,
            message: "the pipeline returned no detail".into(),
        })?;
        Ok(PipelineResponse {
            json: output.json,
            detail,
            notes: output.notes,
            architecture: pipeline.architecture().to_string(),
            device: "cpu".into(),
            dtype: pipeline.dtype_label(),
            commit: hub_commit(&model),
            elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    })
    .await
}

/// What a streaming generation sends while it runs.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[ts(export)]
pub enum GenerationEvent {
    /// The model is being loaded (first use).
    Loading,
    /// A generated token (greedy and sampling; beam search's answer comes at the end).
    Token {
        prompt: usize,
        sequence: usize,
        token: GeneratedToken,
    },
}

/// Runs a generation task, streaming each token over `events` as it is generated. `run` names
/// the run so that [`stop_generation`] can stop it; the answer is the same as `run_pipeline`'s.
#[tauri::command]
#[allow(clippy::too_many_arguments)]
pub async fn generate(
    state: State<'_, AppState>,
    task: Task,
    model: String,
    inputs: serde_json::Value,
    kwargs: serde_json::Map<String, serde_json::Value>,
    run: String,
    quantization: Option<Quantization>,
    events: Channel<GenerationEvent>,
) -> CommandResult<PipelineResponse> {
    let state = state.inner().clone();
    blocking(move || {
        let stop = state.runs.start(&run);
        let _registered = scopeguard(|| state.runs.end(&run));
        let _ = events.send(GenerationEvent::Loading);
        let pipeline = state.pipeline_with(task, model.trim(), quantization.unwrap_or_default())?;
        let started = std::time::Instant::now();
        let (json, results, notes) = pipeline.stream(&inputs, &kwargs, &mut |prompt, piece| {
            if piece.sequence == usize::MAX {
                // A provisional beam: not shown, but a stop still applies.
                return !stop.load(Ordering::Relaxed);
            }
            // A closed window drops the channel; that stops the run too.
            let sent = events
                .send(GenerationEvent::Token {
                    prompt,
                    sequence: piece.sequence,
                    token: piece.token.clone(),
                })
                .is_ok();
            sent && !stop.load(Ordering::Relaxed)
        })?;
        Ok(PipelineResponse {
            json,
            detail: Detail::Generation { results },
            notes,
            architecture: pipeline.architecture().to_string(),
            device: "cpu".into(),
            dtype: pipeline.dtype_label(),
            commit: hub_commit(&model),
            elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    })
    .await
}

/// Runs `inputs` (a prompt or a chat) through two variants of a model: per-token agreement and
/// KL divergence, speed and weight memory side by side.
#[tauri::command]
pub async fn compare_variants(
    state: State<'_, AppState>,
    model: String,
    a: Quantization,
    b: Quantization,
    inputs: serde_json::Value,
    max_new_tokens: usize,
) -> CommandResult<Comparison> {
    let state = state.inner().clone();
    blocking(move || {
        let load = |q| -> CommandResult<std::sync::Arc<wick_engine::tasks::pipeline::Pipeline>> {
            state.pipeline_with(Task::TextGeneration, model.trim(), q)
        };
        let (pa, pb) = (load(a)?, load(b)?);
        let not_generator = || ErrorPayload {
            code: ErrorCode::Internal,
            message: "not a text generator".into(),
        };
        let ga = pa.text_generator().ok_or_else(not_generator)?;
        let gb = pb.text_generator().ok_or_else(not_generator)?;
        let (prompts, _) = wick_engine::tasks::text_generation::prompts(&inputs)?;
        let prompt = prompts.into_iter().next().ok_or_else(|| ErrorPayload {
            code: ErrorCode::InvalidInput,
            message: "no prompt".into(),
        })?;
        let options = ga.options(&serde_json::Map::new())?;
        Ok(compare(
            ga,
            gb,
            &prompt,
            &options,
            max_new_tokens.clamp(1, 512),
        )?)
    })
    .await
}

/// Stops the named generation after the token in progress. Unknown runs are ignored (it may
/// have finished already).
#[tauri::command]
pub async fn stop_generation(state: State<'_, AppState>, run: String) -> CommandResult<()> {
    state.runs.stop(&run);
    Ok(())
}

/// The commit a Hub model name resolves to in the cache (`None` for local paths).
fn hub_commit(model: &str) -> Option<String> {
    match wick_engine::ModelSource::parse(model).ok()? {
        wick_engine::ModelSource::Hub { repo, revision } => {
            wick_engine::hub::HubCache::from_env().commit_for(&repo, &revision)
        }
        wick_engine::ModelSource::Local(_) => None,
    }
}

/// Runs `f` when dropped (on success, error or panic alike).
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// Runs engine work off the async runtime; its errors are already in the IPC shape.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> CommandResult<T> + Send + 'static,
) -> CommandResult<T> {
    match tauri::async_runtime::spawn_blocking(work).await {
        Ok(result) => result.inspect_err(|e| tracing::warn!(code = ?e.code, "{}", e.message)),
        Err(join) => Err(ErrorPayload {
            code: ErrorCode::Internal,
            message: format!("the engine stopped unexpectedly: {join}"),
        }),
    }
}

/// The starter models `scripts/fetch_models.py` completed.
fn starter_models() -> Vec<StarterModel> {
    wick_engine::source::starter_models()
        .into_iter()
        .map(|(name, path)| StarterModel {
            name,
            path: path.display().to_string(),
        })
        .collect()
}
