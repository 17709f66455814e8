//! The Tauri commands the UI calls. All are async and hand engine work to a blocking thread,
//! so the window never freezes; errors cross as `{code, message}` ([`ErrorPayload`]).

use serde::Serialize;
use tauri::State;
use ts_rs::TS;
use wick_engine::tasks::pipeline::Detail;
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
            dtype: "f32".into(),
            elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    })
    .await
}

/// Runs engine work off the async runtime; its errors are already in the IPC shape.
async fn blocking<T: Send + 'static>(
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
