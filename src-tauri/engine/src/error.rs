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

    // The cause is in the message (what a person reads), so it is not also a `#[source]`.
    #[error("cannot read {}: {cause}", path.display())]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
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
        }
    }

    /// Wraps an I/O error with the path it happened on, turning "not found" into [`Self::NotFound`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            Self::NotFound { path }
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
