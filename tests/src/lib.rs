//! Shared helpers for Wick's integration and end-to-end tests.

use std::path::{Path, PathBuf};

/// A fetched starter/test model folder. Panics with the command to run when it is missing:
/// these tests are about real models, and skipping them silently would hide a broken setup.
pub fn model_dir(name: &str) -> PathBuf {
    wick_engine::source::starter_model(name).unwrap_or_else(|| {
        panic!(
            "test model `{name}` is missing from {}: run `python3 scripts/fetch_models.py` first",
            wick_engine::source::starter_models_dir().display()
        )
    })
}

/// The repository root (for fixtures and built binaries).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// A file under `tests/fixtures`.
pub fn fixture(rel: &str) -> PathBuf {
    repo_root().join("tests").join("fixtures").join(rel)
}

/// A binary built into the workspace's target folder (`wick`, `wick-app`).
pub fn target_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("debug").join(name)
}
