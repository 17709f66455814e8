//! Where a model lives: a local folder (or file), or a Hub repo found in the local Hugging Face cache.
//!
//! This module only resolves a name to files already on disk, using the standard cache layout
//! (see [`crate::hub::cache`]) so that anything Python's `huggingface_hub` downloaded is usable by
//! Wick as is; fetching from the Hub is [`crate::hub`]'s job.

use std::path::PathBuf;

use crate::error::{Result, WickError};
use crate::hub::cache::{cache_home, non_empty_env};
pub use crate::hub::cache::{hub_cache_dir, resolve_cached};

/// A model as the user named it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModelSource {
    /// A folder (or a single file such as a `.gguf` or `tokenizer.json`).
    Local(PathBuf),
    /// A Hub repository, `org/name`, at a branch, tag or commit.
    Hub { repo: String, revision: String },
}

impl ModelSource {
    /// Reads what a user typed: an existing path wins; otherwise `org/name[@revision]` is a Hub repo.
    pub fn parse(spec: &str) -> Result<Self> {
        let spec = spec.trim();
        if spec.is_empty() {
            return Err(WickError::InvalidInput(
                "no model given: pass a folder or a Hub repo such as org/name".into(),
            ));
        }
        let path = expand_home(spec);
        if path.exists() || looks_like_path(spec) {
            return Ok(Self::Local(path));
        }
        let (repo, revision) = match spec.split_once('@') {
            Some((repo, rev)) if !rev.is_empty() => (repo, rev),
            Some(_) => {
                return Err(WickError::InvalidInput(format!(
                    "`{spec}`: empty revision after @"
                )))
            }
            None => (spec, "main"),
        };
        // A revision names a ref file under refs/; it must not climb out of the cache.
        if revision
            .split('/')
            .any(|part| part == ".." || part.is_empty())
        {
            return Err(WickError::InvalidInput(format!(
                "`{spec}`: invalid revision `{revision}`"
            )));
        }
        let parts: Vec<&str> = repo.split('/').collect();
        let valid_part = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if !(1..=2).contains(&parts.len()) || !parts.iter().all(|p| valid_part(p)) {
            return Err(WickError::InvalidInput(format!(
                "`{spec}` is neither an existing path nor a Hub repo name (org/name)"
            )));
        }
        Ok(Self::Hub {
            repo: repo.to_string(),
            revision: revision.to_string(),
        })
    }

    /// `(repo, revision)` of a Hub source; a local path is an error saying a download takes a
    /// Hub repo.
    pub fn parse_hub(spec: &str) -> Result<(String, String)> {
        match Self::parse(spec)? {
            Self::Hub { repo, revision } => Ok((repo, revision)),
            Self::Local(path) => Err(WickError::InvalidInput(format!(
                "{} is a local path; downloads take a Hub repo such as org/name",
                path.display()
            ))),
        }
    }

    /// The folder or file on disk that holds this model's files.
    pub fn resolve(&self) -> Result<PathBuf> {
        match self {
            Self::Local(path) => {
                if path.exists() {
                    Ok(path.clone())
                } else {
                    Err(WickError::NotFound { path: path.clone() })
                }
            }
            Self::Hub { repo, revision } => resolve_cached(&hub_cache_dir(), repo, revision),
        }
    }
}

/// `~/x` means the home folder, as in a shell.
fn expand_home(spec: &str) -> PathBuf {
    match (spec.strip_prefix("~/"), non_empty_env("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(spec),
    }
}

/// Relative and absolute paths that do not exist still read as paths, so the user gets "not
/// found" rather than "not in the Hub cache".
fn looks_like_path(spec: &str) -> bool {
    spec.starts_with('.')
        || spec.starts_with('/')
        || spec.starts_with('~')
        || spec.contains('\\')
        || spec.ends_with(".json")
        || spec.ends_with(".gguf")
}

/// Where `scripts/fetch_models.py` keeps Wick's starter and test models:
/// `$WICK_MODELS_DIR`, else `~/.cache/wick/models`.
pub fn starter_models_dir() -> PathBuf {
    non_empty_env("WICK_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_home().join("wick").join("models"))
}

/// The file `scripts/fetch_models.py` writes last into a model folder it completed.
const STARTER_COMPLETE_MARKER: &str = ".wick-complete";

/// A starter model folder by name (e.g. `all-minilm-l6-v2`), if it was fetched completely.
pub fn starter_model(name: &str) -> Option<PathBuf> {
    let dir = starter_models_dir().join(name);
    dir.join(STARTER_COMPLETE_MARKER).is_file().then_some(dir)
}

/// Every completely fetched starter model, as (name, folder), sorted by name.
pub fn starter_models() -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(starter_models_dir()) else {
        return Vec::new();
    };
    let mut models: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(STARTER_COMPLETE_MARKER).is_file())
        .filter_map(|p| Some((p.file_name()?.to_string_lossy().into_owned(), p)))
        .collect();
    models.sort();
    models
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_repo_names_and_revisions() {
        assert_eq!(
            ModelSource::parse("sentence-transformers/all-MiniLM-L6-v2").ok(),
            Some(ModelSource::Hub {
                repo: "sentence-transformers/all-MiniLM-L6-v2".into(),
                revision: "main".into()
            })
        );
        assert_eq!(
            ModelSource::parse("gpt2@v1.0").ok(),
            Some(ModelSource::Hub {
                repo: "gpt2".into(),
                revision: "v1.0".into()
            })
        );
        assert!(ModelSource::parse("").is_err());
        assert!(ModelSource::parse("a/b/c").is_err());
        assert!(ModelSource::parse("org/na me").is_err());
        assert!(ModelSource::parse("org/name@../../etc").is_err());
        assert!(matches!(
            ModelSource::parse("./missing-folder"),
            Ok(ModelSource::Local(_))
        ));
    }
}
