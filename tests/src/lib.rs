//! Shared helpers for Wick's integration and end-to-end tests.

use std::path::{Path, PathBuf};

pub mod hub_server;

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

/// The workspace's target folder.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// A binary of the test build in the workspace's target folder (`wick`).
pub fn target_binary(name: &str) -> PathBuf {
    target_dir().join("debug").join(name)
}

/// The app as `scripts/run.sh` builds it (release): what the end-to-end tests and the window
/// benchmark drive, so they measure what users run.
pub fn app_binary() -> PathBuf {
    target_dir().join("release").join("wick-app")
}

/// The `wick` command line as users run it (release), for benchmarks beside the window.
pub fn release_binary(name: &str) -> PathBuf {
    target_dir().join("release").join(name)
}

/// Compares pipeline JSON: numbers within 1e-4 (the parity tolerance), everything else exactly,
/// object keys in the same order. `path` names the place in failure messages.
pub fn assert_close(got: &serde_json::Value, want: &serde_json::Value, path: &str) {
    use serde_json::Value;
    const TOLERANCE: f64 = 1e-4;
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            assert!((a - b).abs() <= TOLERANCE, "{path}: {a} vs {b}");
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "{path}: length\n got {got}\nwant {want}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                assert_close(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(a), Value::Object(b)) => {
            let (ka, kb): (Vec<_>, Vec<_>) = (a.keys().collect(), b.keys().collect());
            assert_eq!(ka, kb, "{path}: keys");
            for (k, v) in a {
                assert_close(v, &b[k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

/// The recorded cases of a tiny fixture (`tests/fixtures/tiny/<name>/expected.json`).
pub fn fixture_cases(name: &str) -> Vec<serde_json::Value> {
    let path = fixture(&format!("tiny/{name}/expected.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JSON list of token ids.
pub fn token_ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|x| x.as_u64().map(|n| n as u32))
                .collect()
        })
        .unwrap_or_default()
}
