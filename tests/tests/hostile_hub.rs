//! A mirror that answers like the Hub but lies: paths where hashes and names belong, sizes no
//! disk holds, redirects away, bytes that are not the file. Whatever it says, nothing is written
//! outside the cache, and each download ends with an error that names the cause.

#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use wick_engine::hub::{self, HubCache, HubClient};
use wick_engine::WickError;
use wick_tests::hub_server::{test_model_repos, Hostile, HubServer};

const SPLADE: &str = "prithivida/splade-tiny";
const SMOLLM: &str = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF";

fn server(hostile: Hostile) -> HubServer {
    let repos = test_model_repos();
    assert!(
        repos.iter().any(|r| r.id == SPLADE),
        "the test models are missing: run `python3 scripts/fetch_models.py`"
    );
    let server = HubServer::start(repos);
    server.faults().hostile = Some(hostile);
    server
}

/// A sandbox: the cache is `<root>/a/b/c/hub`, so that a path climbing a few levels out of it
/// still lands inside `<root>`, where the test can see it.
struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/b/c/hub")).unwrap();
        Self { root }
    }

    fn cache(&self) -> PathBuf {
        self.root.path().join("a/b/c/hub")
    }

    fn client(&self, server: &HubServer) -> HubClient {
        let mut client = HubClient::new(&server.endpoint(), None, HubCache::new(self.cache()));
        client.retry_delay = Duration::from_millis(10);
        client
    }

    /// Every path under the sandbox root that is not inside the cache.
    fn outside_the_cache(&self) -> BTreeSet<PathBuf> {
        fn walk(dir: &Path, cache: &Path, out: &mut BTreeSet<PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap().flatten() {
                let path = entry.path();
                if path.starts_with(cache) {
                    continue;
                }
                out.insert(path.clone());
                if entry.file_type().unwrap().is_dir() {
                    walk(&path, cache, out);
                }
            }
        }
        let mut out = BTreeSet::new();
        walk(self.root.path(), &self.cache(), &mut out);
        // Only the folders leading to the cache were there before.
        for keep in ["a", "a/b", "a/b/c"] {
            out.remove(&self.root.path().join(keep));
        }
        out
    }
}

fn fetch(
    client: &HubClient,
    repo: &str,
    gguf: Option<&str>,
) -> wick_engine::Result<hub::Downloaded> {
    let never = AtomicBool::new(false);
    hub::fetch_model(client, repo, "main", gguf, &|_| {}, &never)
}

#[test]
fn path_etags_are_refused_and_write_nothing_outside() {
    for etag in [
        "\"../../../../evil\"",
        "../../../evil",
        "W/\"../../../../../evil\"",
        "/tmp/wick-hostile-evil",
        "\"..\"",
        "\"\"",
    ] {
        let sandbox = Sandbox::new();
        let server = server(Hostile::Etag(etag.to_string()));
        let err = fetch(&sandbox.client(&server), SPLADE, None).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("ETag") && message.contains("not a git or sha256 hash"),
            "{etag}: {message}"
        );
        assert_eq!(sandbox.outside_the_cache(), BTreeSet::new(), "{etag}");
    }
    assert!(!Path::new("/tmp/wick-hostile-evil").exists());
}

#[test]
fn path_commits_are_refused() {
    for commit in ["../../../../evil", "/tmp/wick-hostile-commit", "main"] {
        let sandbox = Sandbox::new();
        let server = server(Hostile::Commit(commit.to_string()));
        let err = fetch(&sandbox.client(&server), SPLADE, None).unwrap_err();
        assert!(
            matches!(err, WickError::HubUnavailable { .. }),
            "{commit}: {err}"
        );
        assert!(
            err.to_string().contains("does not answer like the Hub"),
            "{err}"
        );
        assert_eq!(sandbox.outside_the_cache(), BTreeSet::new(), "{commit}");
    }
}

#[test]
fn path_file_names_are_never_fetched_or_linked() {
    for name in [
        "../../../../../x/evil.gguf",
        "/tmp/wick-hostile/evil.gguf",
        "..\\..\\..\\evil.gguf",
        "C:/evil.gguf",
    ] {
        let sandbox = Sandbox::new();
        let server = server(Hostile::FileName(name.to_string()));
        let client = sandbox.client(&server);
        // The listing leaves the name out...
        let info = client.model_info(SMOLLM, "main").unwrap();
        assert!(info.files.iter().all(|f| f.name != name), "{name}");
        // ...asking for it by name is refused before any request...
        let never = AtomicBool::new(false);
        let err = client
            .download(SMOLLM, "main", &[name.to_string()], &|_| {}, &never)
            .unwrap_err();
        assert!(err.to_string().contains("not a safe file name"), "{err}");
        // ...and the honest files still come.
        let done = fetch(&client, SPLADE, None).unwrap();
        assert!(done.snapshot.join("config.json").is_file());
        assert_eq!(sandbox.outside_the_cache(), BTreeSet::new(), "{name}");
    }
    assert!(!Path::new("/tmp/wick-hostile").exists());
}

#[test]
fn lying_sizes_are_errors_not_overflows() {
    for size in [u64::MAX, 1 << 63, (1 << 50) + 1] {
        let sandbox = Sandbox::new();
        let server = server(Hostile::Size(size));
        let err = fetch(&sandbox.client(&server), SPLADE, None).unwrap_err();
        assert!(
            err.to_string().contains("more than any model file"),
            "{size}: {err}"
        );
        assert_eq!(sandbox.outside_the_cache(), BTreeSet::new());
    }
}

#[test]
fn a_redirect_away_is_not_followed_into_the_cache() {
    let sandbox = Sandbox::new();
    let server = server(Hostile::RedirectTo(
        "http://127.0.0.1:9/../../../../evil".to_string(),
    ));
    let err = fetch(&sandbox.client(&server), SPLADE, None).unwrap_err();
    // A HEAD does not follow an absolute redirect: the answer lacks the Hub's headers.
    assert!(
        err.to_string().contains("does not answer like the Hub"),
        "{err}"
    );
    assert_eq!(sandbox.outside_the_cache(), BTreeSet::new());
}

#[test]
fn git_files_are_checked_against_their_git_hash() {
    let sandbox = Sandbox::new();
    let server = server(Hostile::CorruptGitFiles);
    let err = fetch(&sandbox.client(&server), SPLADE, None).unwrap_err();
    match err {
        WickError::Corrupt { file, .. } => {
            assert!(file.ends_with(".json") || file.ends_with(".txt"), "{file}")
        }
        other => panic!("expected a corrupt file, got {other}"),
    }
    assert_eq!(sandbox.outside_the_cache(), BTreeSet::new());
    // Whatever was linked into the snapshot before the stop is the served file, byte for byte.
    let served = server.repo(SPLADE).unwrap();
    let snapshots = sandbox
        .cache()
        .join("models--prithivida--splade-tiny/snapshots");
    for linked in walk_files(&snapshots) {
        let name = linked.file_name().unwrap().to_string_lossy().into_owned();
        let file = served.file(&name).unwrap();
        assert_eq!(
            std::fs::read(&linked).unwrap(),
            std::fs::read(&file.path).unwrap(),
            "{name}"
        );
    }
}

#[test]
fn the_cli_info_and_download_stay_in_the_cache() {
    let sandbox = Sandbox::new();
    let server = server(Hostile::Etag("\"../../../../cli-evil\"".to_string()));
    for args in [vec!["info", SPLADE], vec!["download", SPLADE]] {
        let out = Command::new(wick_tests::target_binary("wick"))
            .args(&args)
            .env("HF_ENDPOINT", server.endpoint())
            .env("HF_HUB_CACHE", sandbox.cache())
            .env_remove("HF_TOKEN")
            .env_remove("HF_HUB_OFFLINE")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(out.status.code().is_some(), "{args:?}: killed by a signal");
        if args[0] == "download" {
            assert_eq!(out.status.code(), Some(1), "{stderr}");
            assert!(stderr.contains("not a git or sha256 hash"), "{stderr}");
        }
    }
    assert_eq!(sandbox.outside_the_cache(), BTreeSet::new());
}

fn walk_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            out.extend(walk_files(&path));
        } else {
            out.push(path);
        }
    }
    out
}
