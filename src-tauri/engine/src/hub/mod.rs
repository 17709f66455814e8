//! Where weights come from: the Hugging Face Hub (or anything speaking its protocol at
//! `HF_ENDPOINT`), downloaded into the standard cache that Python's `huggingface_hub` also uses.
//!
//! - [`cache`]: the cache layout (blobs, refs, snapshots), listing and removal.
//! - [`http`]: endpoint, token, redirects, retries, status codes as errors.
//! - [`names`]: the checks every repo id, revision, file name and hash passes before it becomes
//!   a path.
//! - [`download`]: resumable, verified, cancellable, parallel file downloads.
//! - [`api`]: model info and search.
//! - [`plan`]: which files of a repo a model needs.
//! - [`progress`]: download events.

pub mod api;
pub mod cache;
pub mod download;
pub mod http;
pub mod names;
pub mod plan;
pub mod progress;

use std::sync::atomic::AtomicBool;

pub use api::{ModelInfo, ModelSummary, RepoFile, SearchQuery};
pub use cache::{CachedRepo, HubCache};
pub use download::{Downloaded, FileMeta};
pub use http::HubClient;
pub use plan::{files_to_fetch, gguf_variants, GgufVariant};
pub use progress::{DownloadEvent, PlannedFile};

use crate::error::{Result, WickError};

/// Makes `repo@revision` ready to load: asks the Hub which files it has, fetches the ones a model
/// needs (`gguf` picks a quantization in a repo of GGUF files), and returns the snapshot.
///
/// Offline (`HF_HUB_OFFLINE`), or when the Hub cannot be reached, a snapshot already in the cache
/// is used as is.
pub fn fetch_model(
    client: &HubClient,
    repo: &str,
    revision: &str,
    gguf: Option<&str>,
    sink: &(dyn Fn(DownloadEvent) + Sync),
    cancel: &AtomicBool,
) -> Result<Downloaded> {
    names::check_repo_id(repo)?;
    names::check_revision(revision)?;
    let cached = || -> Result<Downloaded> {
        let snapshot = cache::resolve_cached(&client.cache.root, repo, revision)?;
        let commit = client
            .cache
            .commit_for(repo, revision)
            .unwrap_or_else(|| revision.to_string());
        Ok(Downloaded::from_cache(commit, snapshot, sink))
    };
    if client.offline {
        return cached().map_err(|_| WickError::Offline {
            repo: format!("{repo}@{revision}"),
        });
    }
    let info = match client.model_info(repo, revision) {
        Ok(info) => info,
        Err(err @ WickError::HubUnavailable { .. }) => {
            tracing::warn!("{err}; trying the cache");
            return cached().map_err(|_| err);
        }
        Err(err) => return Err(err),
    };
    let files = files_to_fetch(repo, &info.files, gguf)?;
    // Ask for the commit the info answered with, so every file comes from the same one.
    let revision_to_fetch = info.sha.as_deref().filter(|s| cache::is_commit(s));
    let downloaded = client.download(
        repo,
        revision_to_fetch.unwrap_or(revision),
        &files,
        sink,
        cancel,
    )?;
    client.cache.write_ref(repo, revision, &downloaded.commit)?;
    Ok(downloaded)
}
