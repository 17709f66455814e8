//! The Tauri commands the UI runs models with. Each converts its arguments, hands the work to the
//! engine's runtime on a blocking thread (so the window never freezes) and converts the answer
//! back; the runtime decides everything else (queueing, loading, memory, cancelling). Errors cross
//! as `{code, message}` ([`ErrorPayload`]).

use serde::Serialize;
use tauri::ipc::Channel;
use tauri::State;
use ts_rs::TS;
use wick_engine::cancel::CancelToken;
use wick_engine::device::{DeviceChoice, DeviceInfo};
use wick_engine::quant::Quantization;
use wick_engine::runtime::{LoadedPipeline, Run, RunEvent, Runtime, TokenEvents};
use wick_engine::tasks::compare::{compare, Comparison};
use wick_engine::tasks::inside::{self, AttentionMaps, LogitLens};
use wick_engine::tasks::pipeline::Detail;
use wick_engine::tasks::{Task, TaskInfo, TASKS};
use wick_engine::tokenize::chat::Message;
use wick_engine::tokenize::{ChatInspection, TokenizerComparison, TokenizerInfo};
use wick_engine::{ErrorCode, ErrorPayload, Inspection, TokenizeOptions, WickError};

use crate::AppState;

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
    /// What the device picker offers: every device this build and machine have, the CPU first.
    pub devices: Vec<DeviceInfo>,
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
        devices: wick_engine::device::available_devices(),
    }
}

#[tauri::command]
pub async fn tokenize(
    state: State<'_, AppState>,
    model: String,
    text: String,
    options: TokenizeOptions,
) -> CommandResult<TokenizeResponse> {
    let runtime = state.runtime.clone();
    blocking(move || {
        let tokenizer = runtime.tokenizer(&model)?;
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

/// The inspector's "Compare with": the same text through two models' tokenizers.
#[tauri::command]
pub async fn tokenize_compare(
    state: State<'_, AppState>,
    model: String,
    other: String,
    text: String,
    options: TokenizeOptions,
) -> CommandResult<TokenizerComparison> {
    let runtime = state.runtime.clone();
    blocking(move || {
        let a = runtime.tokenizer(&model)?;
        let b = runtime.tokenizer(&other)?;
        Ok(a.compare_with(&b, &text, &options)?)
    })
    .await
}

/// The inspector's Chat mode: a conversation through the model's own chat template, as tokens.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ChatTokenizeResponse {
    pub tokenizer: TokenizerInfo,
    pub chat: ChatInspection,
    /// Milliseconds spent rendering and tokenizing (not loading).
    pub elapsed_ms: f64,
}

#[tauri::command]
pub async fn tokenize_chat(
    state: State<'_, AppState>,
    model: String,
    messages: Vec<Message>,
    add_generation_prompt: bool,
) -> CommandResult<ChatTokenizeResponse> {
    let runtime = state.runtime.clone();
    blocking(move || {
        let template = runtime.chat_template(&model)?;
        let template = template.as_ref().as_ref().ok_or_else(|| {
            WickError::InvalidInput(
                "this model has no chat template: it is not a chat model".into(),
            )
        })?;
        let tokenizer = runtime.tokenizer(&model)?;
        let started = std::time::Instant::now();
        let chat = tokenizer.inspect_chat(
            template,
            &messages,
            add_generation_prompt,
            &CancelToken::new(),
        )?;
        Ok(ChatTokenizeResponse {
            tokenizer: tokenizer.info().clone(),
            chat,
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
    /// Where it ran, as the runtime reports it (no silent fallbacks: this is what happened),
    /// and in what precision.
    pub device: String,
    pub dtype: String,
    /// The Hub commit the model came from (for `org/name` models).
    pub commit: Option<String>,
    /// Milliseconds spent running (not waiting for the device, not loading).
    pub elapsed_ms: f64,
}

impl PipelineResponse {
    fn new(
        run: &Run,
        loaded: &LoadedPipeline,
        output: (serde_json::Value, Detail, Vec<String>),
        started: std::time::Instant,
    ) -> Self {
        let (json, detail, notes) = output;
        Self {
            json,
            detail,
            notes,
            architecture: loaded.architecture().to_string(),
            device: run.device_name().to_string(),
            dtype: loaded.dtype_label(),
            commit: loaded.key.commit.clone(),
            elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        }
    }
}

/// Which run this is and what it runs on: `run` names it for [`cancel_run`] (each run its own
/// id), `device` is the picker's choice.
#[derive(Debug, serde::Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct RunTarget {
    pub run: String,
    pub model: String,
    /// `auto`, `cpu`, `cuda:N`, `metal`.
    pub device: String,
    pub quantization: Quantization,
}

/// Runs an encoder pipeline. `inputs` and `kwargs` are the pipeline call's arguments, as JSON;
/// `events` gets the run's queue position and load progress.
#[tauri::command]
pub async fn run_pipeline(
    state: State<'_, AppState>,
    target: RunTarget,
    task: Task,
    inputs: serde_json::Value,
    kwargs: serde_json::Map<String, serde_json::Value>,
    batch_size: Option<usize>,
    events: Channel<RunEvent>,
) -> CommandResult<PipelineResponse> {
    in_run(&state.runtime, target, events, move |run, target| {
        let loaded = run.pipeline(task, &target.model, target.quantization)?;
        let started = std::time::Instant::now();
        let output =
            loaded.call_with_detail(&inputs, &kwargs, batch_size.unwrap_or(8), &run.control())?;
        let detail = output
            .detail
            .ok_or_else(|| WickError::ModelFailed("the pipeline returned no detail".into()))?;
        Ok(PipelineResponse::new(
            run,
            &loaded,
            (output.json, detail, output.notes),
            started,
        ))
    })
    .await
}

/// Runs a generation task, streaming each token over `events` as it is generated; the answer is
/// the same as [`run_pipeline`]'s.
#[tauri::command]
pub async fn generate(
    state: State<'_, AppState>,
    target: RunTarget,
    task: Task,
    inputs: serde_json::Value,
    kwargs: serde_json::Map<String, serde_json::Value>,
    events: Channel<RunEvent>,
) -> CommandResult<PipelineResponse> {
    in_run(&state.runtime, target, events, move |run, target| {
        let loaded = run.pipeline(task, &target.model, target.quantization)?;
        let started = std::time::Instant::now();
        let mut tokens = TokenEvents::new(run);
        let (json, results, notes) = loaded.stream(
            &inputs,
            &kwargs,
            &mut |prompt, piece| {
                // A provisional beam (`usize::MAX`) is not shown.
                if piece.sequence != usize::MAX {
                    tokens.push(prompt, piece.sequence, piece.token.clone());
                }
                true
            },
            &run.control(),
        )?;
        tokens.flush();
        Ok(PipelineResponse::new(
            run,
            &loaded,
            (json, Detail::Generation { results }, notes),
            started,
        ))
    })
    .await
}

/// Runs `inputs` (a prompt or a chat) through two variants of a model (`target`'s weights and
/// `b`), one run holding the device for both: per-token agreement and KL divergence, speed and
/// weight memory side by side.
#[tauri::command]
pub async fn compare_variants(
    state: State<'_, AppState>,
    target: RunTarget,
    b: Quantization,
    inputs: serde_json::Value,
    max_new_tokens: usize,
    events: Channel<RunEvent>,
) -> CommandResult<Comparison> {
    in_run(&state.runtime, target, events, move |run, target| {
        let load = |q| run.pipeline(Task::TextGeneration, &target.model, q);
        let (pa, pb) = (load(target.quantization)?, load(b)?);
        let not_generator = || WickError::InvalidInput("not a text-generation model".into());
        let ga = pa.text_generator().ok_or_else(not_generator)?;
        let gb = pb.text_generator().ok_or_else(not_generator)?;
        let (prompts, _) = wick_engine::tasks::text_generation::prompts(&inputs)?;
        let prompt = prompts
            .into_iter()
            .next()
            .ok_or_else(|| WickError::InvalidInput("no prompt".into()))?;
        let options = ga.options(&serde_json::Map::new())?;
        compare(
            ga,
            gb,
            &prompt,
            &options,
            max_new_tokens.clamp(1, 512),
            &run.control(),
        )
    })
    .await
}

/// What the inspector shows inside a causal model for one prompt.
#[derive(Debug, Clone, Copy, serde::Deserialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum InsideView {
    Attention,
    LogitLens,
}

/// The answer of [`inspect_model`]: one of the two views.
#[derive(Debug, Serialize, TS)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[ts(export)]
pub enum InsideResponse {
    Attention(AttentionMaps),
    LogitLens(LogitLens),
}

/// The inspector's views inside a causal model (attention maps, the logit lens): a compute run
/// like any other (it waits for the device, loads the model, cancels).
#[tauri::command]
pub async fn inspect_model(
    state: State<'_, AppState>,
    target: RunTarget,
    view: InsideView,
    text: String,
    top_k: usize,
    events: Channel<RunEvent>,
) -> CommandResult<InsideResponse> {
    in_run(&state.runtime, target, events, move |run, target| {
        let pipeline =
            inside::load_to_inspect(|task| run.pipeline(task, &target.model, target.quantization))?;
        let cancel = run.cancel_token().clone();
        Ok(match view {
            InsideView::Attention => {
                InsideResponse::Attention(inside::attention_of(&pipeline, &text, &cancel)?)
            }
            InsideView::LogitLens => {
                InsideResponse::LogitLens(inside::logit_lens_of(&pipeline, &text, top_k, &cancel)?)
            }
        })
    })
    .await
}

/// Cancels a run wherever it is: waiting for the device, loading, computing (a generation keeps
/// the tokens it made). Unknown runs are ignored: it may have finished already.
#[tauri::command]
pub async fn cancel_run(state: State<'_, AppState>, run: String) -> CommandResult<()> {
    state.runtime.cancel(&run);
    Ok(())
}

/// Starts `target`'s run in the runtime (it waits for the device; its events go to `events`)
/// and does `work` in it, off the async runtime.
async fn in_run<T: Send + 'static>(
    runtime: &Runtime,
    target: RunTarget,
    events: Channel<RunEvent>,
    work: impl FnOnce(&Run, &RunTarget) -> wick_engine::Result<T> + Send + 'static,
) -> CommandResult<T> {
    let runtime = runtime.clone();
    blocking(move || {
        let device = DeviceChoice::parse(&target.device)?;
        let run = runtime.begin(&target.run, device, move |event| {
            // A closed window drops the channel; closing the window cancels its runs.
            let _ = events.send(event);
        })?;
        Ok(work(&run, &target)?)
    })
    .await
}

/// Runs engine work off the async runtime; its errors are already in the IPC shape.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> CommandResult<T> + Send + 'static,
) -> CommandResult<T> {
    match tauri::async_runtime::spawn_blocking(work).await {
        Ok(result) => result.inspect_err(|e| {
            if e.code != ErrorCode::Cancelled {
                tracing::warn!(code = ?e.code, "{}", e.message);
            }
        }),
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
