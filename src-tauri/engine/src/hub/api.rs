//! The Hub's JSON API: model info (files and sizes) and search, for the model picker and
//! `wick info` / `wick models search`. Answers are kept for a few minutes, since a person
//! typing in a search box asks the same thing many times.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use super::http::{encode_query, HubClient};
use super::names::{check_file_name, check_repo_id, check_revision, is_commit};
use crate::error::Result;

/// How long an API answer is reused.
const TTL: Duration = Duration::from_secs(300);

/// One file of a repo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct RepoFile {
    /// The path in the repo (`rfilename`).
    pub name: String,
    #[ts(type = "number | null")]
    pub size: Option<u64>,
    /// The sha256 of an LFS file.
    pub lfs_sha256: Option<String>,
}

/// What the Hub says about a model.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ModelInfo {
    pub id: String,
    /// The commit the revision points at.
    pub sha: Option<String>,
    pub pipeline_tag: Option<String>,
    pub library_name: Option<String>,
    pub tags: Vec<String>,
    /// `false`, `"auto"` or `"manual"` on the Hub; here whether a token and accepted conditions
    /// are needed.
    pub gated: bool,
    pub private: bool,
    #[ts(type = "number | null")]
    pub downloads: Option<u64>,
    #[ts(type = "number | null")]
    pub likes: Option<u64>,
    pub files: Vec<RepoFile>,
}

/// One search result.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ModelSummary {
    pub id: String,
    pub pipeline_tag: Option<String>,
    pub library_name: Option<String>,
    #[ts(type = "number | null")]
    pub downloads: Option<u64>,
    #[ts(type = "number | null")]
    pub likes: Option<u64>,
    pub last_modified: Option<String>,
    pub tags: Vec<String>,
}

/// A search of `/api/models`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", default)]
#[ts(export)]
pub struct SearchQuery {
    /// Words in the model id.
    pub search: String,
    /// A pipeline task id such as `text-generation`.
    pub pipeline_tag: Option<String>,
    /// `downloads` (the default), `likes`, `lastModified` or `trendingScore`.
    pub sort: Option<String>,
    pub limit: Option<u32>,
}

impl HubClient {
    /// `/api/models/{repo}/revision/{revision}?blobs=true`: files with sizes.
    pub fn model_info(&self, repo: &str, revision: &str) -> Result<ModelInfo> {
        check_repo_id(repo)?;
        check_revision(revision)?;
        let url = format!(
            "{}/api/models/{repo}/revision/{}?blobs=true",
            self.endpoint,
            encode_query(revision)
        );
        let value = self.cached_json(&url, repo, &format!("the model `{repo}`"))?;
        Ok(parse_info(&value))
    }

    /// `/api/models?search=…&filter=…&sort=…&direction=-1&limit=…`.
    pub fn search(&self, query: &SearchQuery) -> Result<Vec<ModelSummary>> {
        let mut url = format!(
            "{}/api/models?search={}&sort={}&direction=-1&limit={}",
            self.endpoint,
            encode_query(query.search.trim()),
            encode_query(query.sort.as_deref().unwrap_or("downloads")),
            query.limit.unwrap_or(30).clamp(1, 100),
        );
        if let Some(tag) = query.pipeline_tag.as_deref().filter(|t| !t.is_empty()) {
            url.push_str(&format!("&pipeline_tag={}", encode_query(tag)));
        }
        let value = self.cached_json(&url, "", "the model search")?;
        Ok(value
            .as_array()
            .map(|models| models.iter().map(parse_summary).collect())
            .unwrap_or_default())
    }

    fn cached_json(&self, url: &str, repo: &str, what: &str) -> Result<serde_json::Value> {
        static ANSWERS: OnceLock<Mutex<HashMap<String, (Instant, serde_json::Value)>>> =
            OnceLock::new();
        let answers = ANSWERS.get_or_init(Mutex::default);
        // The token is part of the key: a private model seen with it is not seen without.
        let key = format!("{}\u{0}{url}", self.has_token());
        if let Some((at, value)) = answers.lock().ok().and_then(|a| a.get(&key).cloned()) {
            if at.elapsed() < TTL {
                return Ok(value);
            }
        }
        let value = self.get_json(url, repo, what)?;
        if let Ok(mut answers) = answers.lock() {
            answers.retain(|_, (at, _)| at.elapsed() < TTL);
            answers.insert(key, (Instant::now(), value.clone()));
        }
        Ok(value)
    }
}

fn string(value: &serde_json::Value, key: &str) -> Option<String> {
    value.get(key).and_then(|v| v.as_str()).map(str::to_string)
}

fn strings(value: &serde_json::Value, key: &str) -> Vec<String> {
    value
        .get(key)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_info(value: &serde_json::Value) -> ModelInfo {
    let files = value
        .get("siblings")
        .and_then(|s| s.as_array())
        .map(|siblings| {
            siblings
                .iter()
                .filter_map(|s| {
                    let lfs = s.get("lfs");
                    let name = string(s, "rfilename")?;
                    // A name that would climb out of the snapshot is never offered or fetched.
                    if let Err(err) = check_file_name(&name) {
                        tracing::warn!("{err}; it is left out");
                        return None;
                    }
                    Some(RepoFile {
                        name,
                        // A size no file has is a lie: unknown, not a number to add up.
                        size: s
                            .get("size")
                            .and_then(|v| v.as_u64())
                            .or_else(|| lfs.and_then(|l| l.get("size")).and_then(|v| v.as_u64()))
                            .filter(|&size| size <= super::download::MAX_FILE_SIZE),
                        lfs_sha256: lfs.and_then(|l| string(l, "sha256")),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    ModelInfo {
        id: string(value, "id").unwrap_or_default(),
        // The commit names a snapshot folder: a full hash or nothing.
        sha: string(value, "sha").filter(|sha| is_commit(sha)),
        pipeline_tag: string(value, "pipeline_tag"),
        library_name: string(value, "library_name"),
        tags: strings(value, "tags"),
        gated: value
            .get("gated")
            .is_some_and(|g| g.as_bool().unwrap_or(g.is_string())),
        private: value
            .get("private")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        downloads: value.get("downloads").and_then(|v| v.as_u64()),
        likes: value.get("likes").and_then(|v| v.as_u64()),
        files,
    }
}

fn parse_summary(value: &serde_json::Value) -> ModelSummary {
    ModelSummary {
        id: string(value, "id")
            .or_else(|| string(value, "modelId"))
            .unwrap_or_default(),
        pipeline_tag: string(value, "pipeline_tag"),
        library_name: string(value, "library_name"),
        downloads: value.get("downloads").and_then(|v| v.as_u64()),
        likes: value.get("likes").and_then(|v| v.as_u64()),
        last_modified: string(value, "lastModified"),
        tags: strings(value, "tags"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_hubs_model_info() {
        let info = parse_info(&serde_json::json!({
            "id": "org/m", "sha": "../../x", "gated": "auto", "pipeline_tag": "fill-mask",
            "siblings": [
                {"rfilename": "config.json", "size": 600, "blobId": "123"},
                {"rfilename": "../../../../../x/evil.gguf", "size": 1},
                {"rfilename": "/etc/evil.gguf", "size": 1},
                {"rfilename": "model.safetensors", "size": 9000,
                 "lfs": {"sha256": "ff", "size": 9000, "pointerSize": 134}}
            ]
        }));
        assert!(info.gated);
        assert_eq!(info.sha, None);
        assert_eq!(info.files.len(), 2);
        assert_eq!(info.files[1].lfs_sha256.as_deref(), Some("ff"));
        assert_eq!(info.files[0].size, Some(600));
    }
}
