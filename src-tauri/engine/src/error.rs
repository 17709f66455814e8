//! One error type for the whole engine.
//!
//! Every variant maps to a stable, machine-readable [`ErrorCode`] so a UI (or a script reading
//! `wick --json`) can act on the kind of failure without parsing English. The message is written
//! for a person: it says what went wrong and, where we know, what to do about it.

use std::path::PathBuf;

use serde::Serialize;
use ts_rs::TS;

/// Result alias used across the engine.
pub type Result<T, E = WickError> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WickError {
    #[error("{}: no such file or folder", path.display())]
    NotFound { path: PathBuf },

    #[error(
        "no tokenizer found in {}: expected a tokenizer.json or a .gguf file",
        path.display()
    )]
    NoTokenizer { path: PathBuf },

    #[error("{} is not valid: {reason}", path.display())]
    InvalidTokenizer { path: PathBuf, reason: String },

    #[error("{} is not a readable GGUF file: {reason}", path.display())]
    InvalidGguf { path: PathBuf, reason: String },

    #[error("{} uses a tokenizer Wick cannot build yet: {reason}", path.display())]
    UnsupportedTokenizer { path: PathBuf, reason: String },

    #[error(
        "`{repo}` is not in the local Hugging Face cache ({}); download it first or pass a local folder",
        cache.display()
    )]
    NotCached { repo: String, cache: PathBuf },

    #[error("{} is not a model Wick can load: {reason}", path.display())]
    InvalidModel { path: PathBuf, reason: String },

    #[error("`{found}` models are not supported yet (supported: {supported})")]
    UnsupportedArchitecture { found: String, supported: String },

    #[error("`{model_type}` models cannot run {task} in Wick yet; they can run: {supported}")]
    UnsupportedTask {
        model_type: String,
        task: String,
        supported: String,
    },

    #[error("{architecture} has {has}; this task needs {needs}. Pick a model fine-tuned for it")]
    MissingHead {
        architecture: String,
        has: String,
        needs: String,
    },

    #[error("the model failed to run: {0}")]
    ModelFailed(String),

    #[error("{0}")]
    InvalidInput(String),

    #[error("tokenization failed: {0}")]
    Tokenize(String),

    #[error(
        "`{repo}` needs a Hugging Face token (HTTP {status}): it is gated or private. Set HF_TOKEN \
         or save a token with `hf auth login`; for a gated model, also accept its conditions at \
         {page}"
    )]
    HubAuth {
        repo: String,
        status: u16,
        page: String,
    },

    #[error("{what} was not found on the Hub ({endpoint}): check the name and the revision")]
    HubNotFound { what: String, endpoint: String },

    #[error(
        "the Hub ({endpoint}) could not be reached: {detail}. Check the connection and retry; \
         what was downloaded so far is kept and the download resumes"
    )]
    HubUnavailable { endpoint: String, detail: String },

    #[error(
        "`{repo}` is not in the local Hugging Face cache and HF_HUB_OFFLINE is set, so it cannot \
         be downloaded; unset HF_HUB_OFFLINE or pass a local folder"
    )]
    Offline { repo: String },

    #[error(
        "not enough disk space in {}: {} needed, {} free. Free some space (or point HF_HUB_CACHE \
         elsewhere) and retry; the partial download is kept",
        path.display(), human_bytes(*needed), human_bytes(*available)
    )]
    DiskFull {
        path: PathBuf,
        needed: u64,
        available: u64,
    },

    /// A write failed because the disk filled up (how much was needed is not known there).
    #[error(
        "not enough disk space in {}: the disk filled up while writing. Free some space (or point \
         HF_HUB_CACHE elsewhere) and retry; what was written so far is kept",
        path.display()
    )]
    DiskFilledUp { path: PathBuf },

    #[error("{file} is corrupt: its sha256 is {actual}, the Hub says {expected}; it was deleted, download it again")]
    Corrupt {
        file: String,
        expected: String,
        actual: String,
    },

    #[error(
        "{what} needs about {} of memory and {} is free; pick a smaller quantization or a shorter \
         context, or load it anyway",
        human_bytes(*needed), human_bytes(*available)
    )]
    DoesNotFit {
        what: String,
        needed: u64,
        available: u64,
    },

    #[error("device {device} is not available: {reason}")]
    DeviceUnavailable { device: String, reason: String },

    #[error("cancelled")]
    Cancelled,

    // The cause is in the message (what a person reads), so it is not also a `#[source]`.
    #[error("cannot read {}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// A value in config.json or GGUF metadata that is missing or makes no sense. The loader that
/// reads the file turns it into [`WickError::InvalidModel`] naming the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl From<String> for ConfigError {
    fn from(reason: String) -> Self {
        Self(reason)
    }
}

impl From<&str> for ConfigError {
    fn from(reason: &str) -> Self {
        Self(reason.to_string())
    }
}

/// `1.5 GiB`, `12.0 MiB`, `800 B`: sizes as a person reads them.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Stable error codes, shared with the UI (`ErrorCode` in the generated TypeScript bindings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
#[non_exhaustive]
pub enum ErrorCode {
    NotFound,
    NoTokenizer,
    InvalidTokenizer,
    InvalidGguf,
    UnsupportedTokenizer,
    NotCached,
    InvalidModel,
    UnsupportedArchitecture,
    UnsupportedTask,
    MissingHead,
    ModelFailed,
    InvalidInput,
    TokenizeFailed,
    Io,
    /// The Hub refused: gated or private, a token is needed (401/403).
    HubAuth,
    HubNotFound,
    /// Network failure or 5xx after retries.
    HubUnavailable,
    Offline,
    DiskFull,
    Corrupt,
    DoesNotFit,
    /// The device asked for is not in this machine or this build, or Wick cannot run on it.
    DeviceUnavailable,
    Cancelled,
    /// Used by front ends for failures outside the engine (a lost window, a dropped channel).
    Internal,
}

impl WickError {
    /// The machine-readable kind of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::NoTokenizer { .. } => ErrorCode::NoTokenizer,
            Self::InvalidTokenizer { .. } => ErrorCode::InvalidTokenizer,
            Self::InvalidGguf { .. } => ErrorCode::InvalidGguf,
            Self::UnsupportedTokenizer { .. } => ErrorCode::UnsupportedTokenizer,
            Self::NotCached { .. } => ErrorCode::NotCached,
            Self::InvalidModel { .. } => ErrorCode::InvalidModel,
            Self::UnsupportedArchitecture { .. } => ErrorCode::UnsupportedArchitecture,
            Self::UnsupportedTask { .. } => ErrorCode::UnsupportedTask,
            Self::MissingHead { .. } => ErrorCode::MissingHead,
            Self::ModelFailed(_) => ErrorCode::ModelFailed,
            Self::InvalidInput(_) => ErrorCode::InvalidInput,
            Self::Tokenize(_) => ErrorCode::TokenizeFailed,
            Self::Io { .. } => ErrorCode::Io,
            Self::HubAuth { .. } => ErrorCode::HubAuth,
            Self::HubNotFound { .. } => ErrorCode::HubNotFound,
            Self::HubUnavailable { .. } => ErrorCode::HubUnavailable,
            Self::Offline { .. } => ErrorCode::Offline,
            Self::DiskFull { .. } | Self::DiskFilledUp { .. } => ErrorCode::DiskFull,
            Self::Corrupt { .. } => ErrorCode::Corrupt,
            Self::DoesNotFit { .. } => ErrorCode::DoesNotFit,
            Self::DeviceUnavailable { .. } => ErrorCode::DeviceUnavailable,
            Self::Cancelled => ErrorCode::Cancelled,
        }
    }

    /// Wraps an I/O error with the path it happened on, turning "not found" into [`Self::NotFound`]
    /// and a full disk into [`Self::DiskFull`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Self::NotFound { path }
        } else if source.kind() == std::io::ErrorKind::StorageFull {
            Self::DiskFilledUp { path }
        } else {
            Self::Io {
                path,
                cause: source,
            }
        }
    }

    /// The serializable form that crosses process and IPC boundaries.
    pub fn payload(&self) -> ErrorPayload {
        ErrorPayload {
            code: self.code(),
            message: self.to_string(),
        }
    }
}

impl From<WickError> for ErrorPayload {
    fn from(err: WickError) -> Self {
        err.payload()
    }
}

/// How an error crosses a boundary: `{ "code": "...", "message": "..." }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct ErrorPayload {
    pub code: ErrorCode,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_json_shape_is_stable() {
        let err = WickError::NoTokenizer {
            path: PathBuf::from("/models/x"),
        };
        let json = serde_json::to_value(err.payload()).expect("serializes");
        assert_eq!(
            json,
            serde_json::json!({
                "code": "no_tokenizer",
                "message": "no tokenizer found in /models/x: expected a tokenizer.json or a .gguf file"
            })
        );
    }

    #[test]
    fn a_full_disk_says_so() {
        use std::io::Write;
        // /dev/full answers every write with ENOSPC, as a full disk does.
        let Ok(mut full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
            return; // not Linux
        };
        let io = full.write_all(&[0u8; 4096]).and_then(|()| full.flush());
        let err = WickError::io("/dev/full", io.expect_err("/dev/full is always full"));
        assert_eq!(err.code(), ErrorCode::DiskFull);
        assert!(
            err.to_string()
                .starts_with("not enough disk space in /dev/full"),
            "{err}"
        );
        assert_eq!(human_bytes(800), "800 B");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn missing_file_becomes_not_found() {
        let err = WickError::io("/nope", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(err.code(), ErrorCode::NotFound);
        let err = WickError::io(
            "/x",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(err.code(), ErrorCode::Io);
    }
}
