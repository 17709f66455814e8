//! Wick and Python's `huggingface_hub` share one cache both ways: what one downloads from the
//! (local) Hub, the other uses offline without fetching again.

#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;

use wick_engine::hub::{self, HubCache, HubClient};
use wick_engine::loading::LoadSpec;
use wick_engine::tasks::pipeline::Pipeline;
use wick_engine::tasks::Task;
use wick_tests::hub_server::{test_model_repos, HubServer};

const SPLADE: &str = "prithivida/splade-tiny";
const MINILM: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The venv `scripts/fetch_models.py` makes with huggingface_hub 0.36.
fn python() -> PathBuf {
    let python = wick_engine::source::starter_models_dir().join(".hub-venv/bin/python");
    assert!(
        python.is_file(),
        "{} is missing: run `python3 scripts/fetch_models.py`",
        python.display()
    );
    python
}

/// Runs `code` with huggingface_hub against `endpoint` and `cache`; returns its stdout.
fn run_python(code: &str, endpoint: &str, cache: &Path, offline: bool) -> String {
    let mut command = Command::new(python());
    command
        .args(["-c", code])
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HUB_CACHE", cache)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .env_remove("HF_TOKEN");
    if offline {
        command.env("HF_HUB_OFFLINE", "1");
    } else {
        command.env_remove("HF_HUB_OFFLINE");
    }
    let out = command.output().expect("python runs");
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn python_downloads_wick_runs_offline() {
    let server = HubServer::start(test_model_repos());
    let cache = tempfile::tempdir().unwrap();
    let snapshot = run_python(
        &format!(
            "from huggingface_hub import snapshot_download; print(snapshot_download('{SPLADE}'))"
        ),
        &server.endpoint(),
        cache.path(),
        false,
    );
    let sent = server.file_bytes_sent();

    let offline =
        HubClient::new(&server.endpoint(), None, HubCache::new(cache.path())).offline(true);
    let never = AtomicBool::new(false);
    let downloaded = hub::fetch_model(&offline, SPLADE, "main", None, &|_| {}, &never).unwrap();
    assert_eq!(downloaded.snapshot, PathBuf::from(&snapshot));
    let pipeline = Pipeline::load(
        Task::FillMask,
        &LoadSpec::new(&downloaded.snapshot).unwrap(),
    )
    .unwrap();
    let out = pipeline
        .call(
            &serde_json::json!("Paris is the [MASK] of France."),
            &serde_json::Map::new(),
            1,
        )
        .unwrap();
    assert_eq!(out[0]["token_str"], "city");
    // Online too, Wick finds every blob already there.
    let online = HubClient::new(&server.endpoint(), None, HubCache::new(cache.path()));
    let again = hub::fetch_model(&online, SPLADE, "main", None, &|_| {}, &never).unwrap();
    assert_eq!(again.fetched, 0);
    assert_eq!(server.file_bytes_sent(), sent);
}

#[test]
fn wick_downloads_python_uses_offline() {
    let server = HubServer::start(test_model_repos());
    let cache = tempfile::tempdir().unwrap();
    let client = HubClient::new(&server.endpoint(), None, HubCache::new(cache.path()));
    let never = AtomicBool::new(false);
    let downloaded = hub::fetch_model(&client, MINILM, "main", None, &|_| {}, &never).unwrap();
    let sent = server.file_bytes_sent();

    let code = format!(
        "from huggingface_hub import snapshot_download, hf_hub_download, scan_cache_dir\n\
         print(snapshot_download('{MINILM}', local_files_only=True))\n\
         print(hf_hub_download('{MINILM}', '1_Pooling/config.json', local_files_only=True))\n\
         info = scan_cache_dir()\n\
         print(len(info.warnings), [(r.repo_id, sorted(r.refs)) for r in info.repos])"
    );
    let out = run_python(&code, &server.endpoint(), cache.path(), true);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], downloaded.snapshot.display().to_string());
    assert_eq!(
        lines[1],
        downloaded
            .snapshot
            .join("1_Pooling/config.json")
            .display()
            .to_string()
    );
    assert_eq!(lines[2], format!("0 [('{MINILM}', ['main'])]"));

    // Online, huggingface_hub checks the commit and fetches no bytes.
    let code = format!(
        "from huggingface_hub import hf_hub_download\nprint(hf_hub_download('{MINILM}', 'model.safetensors'))"
    );
    run_python(&code, &server.endpoint(), cache.path(), false);
    assert_eq!(server.file_bytes_sent(), sent);
}
