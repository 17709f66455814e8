//! Commands for getting models: Hub search, model facts and the fit estimate, downloads with
//! progress over a channel, the cache, loaded models, and what this machine has.

use serde::Serialize;
use tauri::ipc::Channel;
use tauri::State;
use ts_rs::TS;
use wick_engine::cancel::CancelToken;
use wick_engine::facts::{hub_facts, local_facts, ModelFacts};
use wick_engine::hub::{self, CachedRepo, DownloadEvent, HubClient, ModelSummary, SearchQuery};
use wick_engine::quant::Quantization;
use wick_engine::runtime::{LoadedModel, MemoryUse};
use wick_engine::system::SystemInfo;
use wick_engine::{ErrorPayload, ModelSource};

use crate::commands::blocking;
use crate::AppState;

type CommandResult<T> = Result<T, ErrorPayload>;

/// The system panel: the machine, the Hub settings, and what is loaded.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct SystemReport {
    pub system: SystemInfo,
    /// `HF_ENDPOINT`.
    pub endpoint: String,
    pub offline: bool,
    pub has_token: bool,
    pub loaded: Vec<LoadedModel>,
    /// What loaded models and running generations hold, against the budget.
    pub memory: MemoryUse,
}

#[tauri::command]
pub async fn system_report(state: State<'_, AppState>) -> CommandResult<SystemReport> {
    let runtime = state.runtime.clone();
    blocking(move || {
        let client = HubClient::from_env();
        Ok(SystemReport {
            system: SystemInfo::read(),
            endpoint: client.endpoint.clone(),
            offline: client.offline,
            has_token: client.has_token(),
            loaded: runtime.loaded(),
            memory: runtime.memory(),
        })
    })
    .await
}

#[tauri::command]
pub async fn search_models(query: SearchQuery) -> CommandResult<Vec<ModelSummary>> {
    blocking(move || Ok(HubClient::from_env().search(&query)?)).await
}

/// Facts about a model (a folder, a GGUF file, or a Hub repo), with the fit estimate for
/// `quantization` and `context`. A Hub repo in the cache is described offline.
#[tauri::command]
pub async fn model_facts(
    model: String,
    gguf: Option<String>,
    quantization: Option<Quantization>,
    context: Option<u64>,
) -> CommandResult<ModelFacts> {
    blocking(move || {
        let quantization = quantization.unwrap_or_default();
        let context = context.unwrap_or(4096);
        let source = ModelSource::parse(&model)?;
        Ok(match &source {
            ModelSource::Local(path) => local_facts(path, quantization, context)?,
            ModelSource::Hub { repo, revision } => match source.resolve() {
                Ok(dir) if gguf.is_none() => {
                    let mut facts = local_facts(&dir, quantization, context)?;
                    facts.source = model.clone();
                    facts
                }
                _ => hub_facts(
                    &HubClient::from_env(),
                    repo,
                    revision,
                    gguf.as_deref(),
                    quantization,
                    context,
                )?,
            },
        })
    })
    .await
}

/// The answer to a finished download.
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct DownloadResult {
    /// What to put in the model picker to use it: `org/name`, or the GGUF file's path.
    pub model: String,
    pub commit: String,
    pub path: String,
}

/// Downloads `model` (`org/name[@revision]`) into the Hugging Face cache, sending progress on
/// `events`; `id` names it for [`cancel_download`]. The channel always ends with `done`,
/// `failed` or `cancelled`.
#[tauri::command]
pub async fn download_model(
    state: State<'_, AppState>,
    id: String,
    model: String,
    gguf: Option<String>,
    events: Channel<DownloadEvent>,
) -> CommandResult<DownloadResult> {
    let downloads = state.downloads.clone();
    blocking(move || {
        let registration = downloads.register(&id)?;
        let result = download(
            &model,
            gguf.as_deref(),
            &events,
            registration.cancel_token(),
        );
        drop(registration);
        match &result {
            Err(e) if e.code == wick_engine::ErrorCode::Cancelled => {
                let _ = events.send(DownloadEvent::Cancelled);
            }
            Err(e) => {
                let _ = events.send(DownloadEvent::Failed { error: e.clone() });
            }
            Ok(_) => {}
        }
        result
    })
    .await
}

fn download(
    model: &str,
    gguf: Option<&str>,
    events: &Channel<DownloadEvent>,
    cancel: &CancelToken,
) -> CommandResult<DownloadResult> {
    let (repo, revision) = ModelSource::parse_hub(model)?;
    let client = HubClient::from_env();
    let sink = |event: DownloadEvent| {
        let _ = events.send(event);
    };
    let downloaded = hub::fetch_model(&client, &repo, &revision, gguf, &sink, cancel.flag())?;
    // A GGUF repo may hold several variants; the picker names the file that was fetched.
    let path = downloaded.model_path();
    let model = if path != downloaded.snapshot {
        path.display().to_string()
    } else if revision == "main" {
        repo
    } else {
        format!("{repo}@{revision}")
    };
    Ok(DownloadResult {
        model,
        commit: downloaded.commit,
        path: downloaded.snapshot.display().to_string(),
    })
}

/// Cancels a download; what was fetched stays for a resume.
#[tauri::command]
pub async fn cancel_download(state: State<'_, AppState>, id: String) -> CommandResult<()> {
    state.downloads.cancel(&id);
    Ok(())
}

#[tauri::command]
pub async fn cached_models() -> CommandResult<Vec<CachedRepo>> {
    blocking(|| Ok(HubClient::from_env().cache.list())).await
}

/// Deletes a cached model (or one revision); returns the bytes freed.
#[tauri::command]
pub async fn remove_cached_model(repo: String, revision: Option<String>) -> CommandResult<u64> {
    blocking(move || {
        Ok(HubClient::from_env()
            .cache
            .remove(&repo, revision.as_deref())?)
    })
    .await
}

/// Unloads a model (by its id from `system_report`), or every model; a run using it keeps it
/// until the run ends.
#[tauri::command]
pub async fn unload_model(state: State<'_, AppState>, id: Option<u64>) -> CommandResult<()> {
    state.runtime.unload(id);
    Ok(())
}

/// Loads `model` next time even though the fit check says it will not fit.
#[tauri::command]
pub async fn load_anyway(state: State<'_, AppState>, model: String) -> CommandResult<()> {
    state.runtime.insist(&model);
    Ok(())
}
