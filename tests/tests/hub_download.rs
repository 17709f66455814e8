//! Downloads from a local server that speaks the Hub's protocol, serving the real test models:
//! the cache layout, resume after a dropped connection and after a killed process, sha256
//! checks, cancellation, retries, and the message a user sees for each failure.

#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use wick_engine::hub::{self, DownloadEvent, HubCache, HubClient, SearchQuery};
use wick_engine::loading::LoadSpec;
use wick_engine::{ErrorCode, WickError};
use wick_tests::hub_server::{test_model_repos, HubServer, TEST_TOKEN};

const SPLADE: &str = "prithivida/splade-tiny";
const SMOLLM: &str = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF";
const SMOLLM_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

fn server() -> HubServer {
    let repos = test_model_repos();
    assert!(
        repos.iter().any(|r| r.id == SPLADE) && repos.iter().any(|r| r.id == SMOLLM),
        "the test models are missing: run `python3 scripts/fetch_models.py`"
    );
    HubServer::start(repos)
}

fn client(server: &HubServer, cache: &Path, token: Option<&str>) -> HubClient {
    let mut client = HubClient::new(
        &server.endpoint(),
        token.map(str::to_string),
        HubCache::new(cache),
    );
    client.retry_delay = Duration::from_millis(20);
    client
}

/// Runs a download, collecting its events.
fn fetch(
    client: &HubClient,
    repo: &str,
) -> (wick_engine::Result<hub::Downloaded>, Vec<DownloadEvent>) {
    let events = Mutex::new(Vec::new());
    let sink = |e: DownloadEvent| events.lock().unwrap().push(e);
    let never = AtomicBool::new(false);
    let result = hub::fetch_model(client, repo, "main", None, &sink, &never);
    (result, events.into_inner().unwrap())
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

#[test]
fn downloads_into_the_standard_cache_layout_and_reuses_it() {
    let server = server();
    let cache = tempfile::tempdir().unwrap();
    let client = client(&server, cache.path(), None);
    let served = server.repo(SPLADE).unwrap().clone();

    let (result, events) = fetch(&client, SPLADE);
    let downloaded = result.unwrap();
    assert_eq!(downloaded.commit, served.commit);
    let repo_dir = cache.path().join("models--prithivida--splade-tiny");
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("refs/main")).unwrap(),
        served.commit
    );
    for name in ["config.json", "tokenizer.json", "model.safetensors"] {
        let pointer = downloaded.snapshot.join(name);
        let link = std::fs::read_link(&pointer).unwrap();
        let file = served.file(name).unwrap();
        let etag = if file.lfs {
            &file.sha256
        } else {
            &file.git_oid
        };
        assert_eq!(link, Path::new("../../blobs").join(etag), "{name}");
        assert!(same_bytes(&pointer, &file.path), "{name}");
    }
    assert!(
        !downloaded.snapshot.join("LICENSE").exists(),
        "only what the model needs"
    );
    // Events: started first, done last, every file done once, progress never backwards.
    assert!(matches!(
        events.first(),
        Some(DownloadEvent::Started { .. })
    ));
    assert!(matches!(events.last(), Some(DownloadEvent::Done { .. })));
    let files_done = events
        .iter()
        .filter(|e| matches!(e, DownloadEvent::FileDone { .. }))
        .count();
    assert_eq!(files_done, 4);
    assert!(events.iter().any(|e| matches!(e, DownloadEvent::FileDone { file, verified: true, .. } if file == "model.safetensors")));

    // The model loads from the snapshot, and a second download fetches nothing.
    let pipeline = wick_engine::tasks::pipeline::Pipeline::load(
        wick_engine::tasks::Task::FillMask,
        &LoadSpec::new(&downloaded.snapshot).unwrap(),
    )
    .unwrap();
    drop(pipeline);
    let sent = server.file_bytes_sent();
    let (again, _) = fetch(&client, SPLADE);
    assert_eq!(again.unwrap().fetched, 0);
    assert_eq!(server.file_bytes_sent(), sent);
    // Offline, the cache answers.
    let offline = client.clone().offline(true);
    assert!(fetch(&offline, SPLADE).0.is_ok());
    let err = fetch(&offline, SMOLLM).0.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Offline);
    assert!(err.to_string().contains("HF_HUB_OFFLINE is set"), "{err}");
}

#[test]
fn a_dropped_connection_resumes_with_a_range_request() {
    let server = server();
    let cache = tempfile::tempdir().unwrap();
    let client = client(&server, cache.path(), None);
    let size = server
        .repo(SPLADE)
        .unwrap()
        .file("model.safetensors")
        .unwrap()
        .size;
    server.faults().cut_after = Some((5 << 20, 2));

    let (result, _) = fetch(&client, SPLADE);
    let downloaded = result.unwrap();
    let blob = downloaded.snapshot.join("model.safetensors");
    assert_eq!(blob.metadata().unwrap().len(), size);
    // The two cut connections were picked up where they stopped, not started over.
    let ranges: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|r| r.contains("/cdn/") && r.contains("bytes="))
        .collect();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert!(
        server.file_bytes_sent() < size + (1 << 20),
        "{} sent for {size}",
        server.file_bytes_sent()
    );
    assert!(hub::download::verify_blobs(&client, SPLADE)
        .unwrap()
        .is_empty());
}

#[test]
fn a_flaky_line_that_keeps_sending_is_not_given_up_on() {
    // Twelve drops, more than the five tries a silent server gets: each one came after a
    // megabyte arrived, so each earns a fresh budget (huggingface_hub's behaviour).
    let server = server();
    let cache = tempfile::tempdir().unwrap();
    let client = client(&server, cache.path(), None);
    server.faults().cut_after = Some((1 << 20, 12));
    let (result, _) = fetch(&client, SPLADE);
    let downloaded = result.unwrap();
    let served = server
        .repo(SPLADE)
        .unwrap()
        .file("model.safetensors")
        .unwrap()
        .clone();
    assert!(same_bytes(
        &downloaded.snapshot.join("model.safetensors"),
        &served.path
    ));
    let ranges = server
        .requests()
        .into_iter()
        .filter(|r| r.contains("/cdn/") && r.contains("bytes="))
        .count();
    assert_eq!(ranges, 12);
}

#[test]
fn cancel_keeps_the_partial_file_and_the_next_run_resumes() {
    let server = server();
    let cache = tempfile::tempdir().unwrap();
    let client = client(&server, cache.path(), None);
    let served = server.repo(SMOLLM).unwrap().clone();
    let file = served.file(SMOLLM_FILE).unwrap().clone();
    server.faults().bytes_per_second = Some(20 << 20);

    let cancel = AtomicBool::new(false);
    let sink = |e: DownloadEvent| {
        if let DownloadEvent::Progress { fetched, .. } = e {
            if fetched > 8 << 20 {
                cancel.store(true, Ordering::Relaxed);
            }
        }
    };
    let started = Instant::now();
    let err = hub::fetch_model(&client, SMOLLM, "main", None, &sink, &cancel).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "cancel took {:?}",
        started.elapsed()
    );
    let cache_view = HubCache::new(cache.path());
    let partial = cache_view.incomplete(SMOLLM, &file.sha256);
    let kept = partial.metadata().unwrap().len();
    assert!(kept >= 8 << 20 && kept < file.size, "{kept}");
    assert!(
        !cache_view.blob(SMOLLM, &file.sha256).exists(),
        "a partial file never looks complete"
    );
    assert!(cache_view
        .cached_file(SMOLLM, &served.commit, SMOLLM_FILE)
        .is_none());

    server.faults().bytes_per_second = None;
    let before = server.file_bytes_sent();
    let (result, events) = fetch(&client, SMOLLM);
    assert!(
        result.unwrap().model_path().ends_with(SMOLLM_FILE),
        "the GGUF file that was fetched"
    );
    // Only the rest was asked for (the cancelled connection may still have been draining).
    assert!(server
        .requests()
        .iter()
        .any(|r| r.contains(&format!("bytes={kept}-"))));
    let second = server.file_bytes_sent() - before;
    assert!(
        second < file.size - kept + (1 << 20),
        "{second} sent for the last {}",
        file.size - kept
    );
    assert!(events.iter().any(
        |e| matches!(e, DownloadEvent::FileDone { resumed_from, .. } if *resumed_from == kept)
    ));
    assert!(hub::download::verify_blobs(&client, SMOLLM)
        .unwrap()
        .is_empty());
}

#[test]
fn a_killed_download_resumes_and_verifies() {
    let server = server();
    let cache = tempfile::tempdir().unwrap();
    let file = server
        .repo(SMOLLM)
        .unwrap()
        .file(SMOLLM_FILE)
        .unwrap()
        .clone();
    let wick = wick_tests::target_binary("wick");
    assert!(
        wick.is_file(),
        "build the CLI first: cargo build -p wick-engine --bins"
    );
    let run = || {
        let mut command = Command::new(&wick);
        command
            .args(["download", SMOLLM])
            .env("HF_ENDPOINT", server.endpoint())
            .env("HF_HUB_CACHE", cache.path())
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("HF_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    };
    server.faults().bytes_per_second = Some(16 << 20);
    let mut child = run().spawn().unwrap();
    let partial = HubCache::new(cache.path()).incomplete(SMOLLM, &file.sha256);
    let deadline = Instant::now() + Duration::from_secs(30);
    while partial.metadata().map_or(0, |m| m.len()) < 10 << 20 {
        assert!(Instant::now() < deadline, "the download did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = partial.metadata().unwrap().len();
    assert!(kept < file.size);

    server.faults().bytes_per_second = None;
    let before = server.file_bytes_sent();
    let out = run().output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let second = server.file_bytes_sent() - before;
    assert!(
        second < file.size,
        "resumed: {second} bytes fetched the second time, file {}",
        file.size
    );
    assert!(stderr.contains("resumed from"), "{stderr}");
    let snapshot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(same_bytes(
        &Path::new(&snapshot).join(SMOLLM_FILE),
        &file.path
    ));
    let verify = Command::new(&wick)
        .args(["cache", "verify", SMOLLM])
        .env("HF_HUB_CACHE", cache.path())
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn corrupt_bytes_are_caught_and_thrown_away() {
    let server = server();
    let cache = tempfile::tempdir().unwrap();
    let client = client(&server, cache.path(), None);
    let file = server
        .repo(SPLADE)
        .unwrap()
        .file("model.safetensors")
        .unwrap()
        .clone();
    // A partial file from "an earlier run" whose bytes are wrong: resuming it cannot verify.
    let view = HubCache::new(cache.path());
    let partial = view.incomplete(SPLADE, &file.sha256);
    std::fs::create_dir_all(partial.parent().unwrap()).unwrap();
    std::fs::write(&partial, vec![7u8; 1 << 20]).unwrap();

    let err = fetch(&client, SPLADE).0.unwrap_err();
    assert_eq!(err.code(), ErrorCode::Corrupt);
    assert!(
        err.to_string()
            .starts_with("model.safetensors is corrupt: its sha256 is"),
        "{err}"
    );
    assert!(!partial.exists() && !view.blob(SPLADE, &file.sha256).exists());
    // The next run starts over and succeeds.
    let downloaded = fetch(&client, SPLADE).0.unwrap();
    // A blob damaged on disk later is found by verification.
    let blob = view.blob(SPLADE, &file.sha256);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[1000] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    assert_eq!(
        hub::download::verify_blobs(&client, SPLADE).unwrap(),
        vec![blob]
    );
    drop(downloaded);
}

#[test]
fn each_failure_says_what_to_do() {
    let server = server();
    let cache = tempfile::tempdir().unwrap();
    let anonymous = client(&server, cache.path(), None);

    // Gated: 401 with how to give a token; with the token it works, and the token is not sent
    // to the CDN host.
    let err = fetch(&anonymous, "wick/gated-splade").0.unwrap_err();
    assert_eq!(err.code(), ErrorCode::HubAuth);
    assert_eq!(
        err.to_string(),
        format!(
            "`wick/gated-splade` needs a Hugging Face token (HTTP 401): it is gated or private. Set \
             HF_TOKEN or save a token with `hf auth login`; for a gated model, also accept its \
             conditions at {}/wick/gated-splade",
            server.endpoint()
        )
    );
    let with_token = client(&server, cache.path(), Some(TEST_TOKEN));
    fetch(&with_token, "wick/gated-splade").0.unwrap();
    let requests = server.requests();
    assert!(requests
        .iter()
        .any(|r| r.contains("/resolve/") && r.ends_with("auth")));
    assert!(
        requests
            .iter()
            .filter(|r| r.contains("/cdn/"))
            .all(|r| !r.ends_with("auth")),
        "{requests:?}"
    );

    // Not found: the repo, a revision, a GGUF pick.
    let err = fetch(&anonymous, "nobody/nothing").0.unwrap_err();
    assert_eq!(err.code(), ErrorCode::HubNotFound);
    assert!(
        err.to_string()
            .starts_with("the model `nobody/nothing` (if it is private, set HF_TOKEN"),
        "{err}"
    );
    let never = AtomicBool::new(false);
    let err = hub::fetch_model(&anonymous, SPLADE, "v9", None, &|_| {}, &never).unwrap_err();
    assert_eq!(err.to_string(), format!("that revision of `{SPLADE}` was not found on the Hub ({}): check the name and the revision", server.endpoint()));
    let err =
        hub::fetch_model(&anonymous, SMOLLM, "main", Some("Q2_K"), &|_| {}, &never).unwrap_err();
    assert!(
        err.to_string()
            .contains("has no GGUF file `Q2_K`; it has: Q4_1"),
        "{err}"
    );

    // 5xx: retried, then reported with what to do.
    server.faults().fail_status = Some((503, 2));
    fetch(&anonymous, SPLADE).0.unwrap();
    server.faults().fail_status = Some((500, 100));
    let err = fetch(
        &client(&server, tempfile::tempdir().unwrap().path(), None),
        SPLADE,
    )
    .0
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::HubUnavailable);
    assert!(
        err.to_string()
            .contains("could not be reached: HTTP 500. Check the connection and retry"),
        "{err}"
    );
    server.faults().fail_status = None;

    // Nobody listening.
    let dead = HubClient::new("http://127.0.0.1:9", None, HubCache::new(cache.path()));
    let mut dead = dead;
    dead.retry_delay = Duration::from_millis(1);
    let err = dead.model_info(SPLADE, "main").unwrap_err();
    assert_eq!(err.code(), ErrorCode::HubUnavailable);

    // A server that is not a Hub (no X-Repo-Commit).
    let not_hub = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = not_hub.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in not_hub.incoming().flatten().take(8) {
            use std::io::{Read, Write};
            let mut stream = stream;
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    let odd = client(&server, cache.path(), None);
    let odd = HubClient::new(&format!("http://{addr}"), None, odd.cache.clone());
    let err = odd.file_meta(SPLADE, "main", "config.json").unwrap_err();
    assert!(
        err.to_string().contains("does not answer like the Hub"),
        "{err}"
    );
}

#[test]
fn not_enough_disk_is_refused_before_downloading() {
    // A 4 MiB filesystem for the cache, where the platform lets us mount one.
    let mount = tempfile::tempdir().unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(mount.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!(
            "cannot mount a small tmpfs here (not root?): the free-space check is not exercised"
        );
        return;
    }
    let server = server();
    let client = client(&server, mount.path(), None);
    let err = fetch(&client, SPLADE).0.unwrap_err();
    let _ = Command::new("umount").arg(mount.path()).status();
    assert_eq!(err.code(), ErrorCode::DiskFull);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "not enough disk space in {}",
            mount.path().display()
        )),
        "{text}"
    );
    assert!(text.contains("needed") && text.contains("free"), "{text}");
    assert_eq!(server.file_bytes_sent(), 0, "nothing was fetched");
    if let WickError::DiskFull {
        needed, available, ..
    } = err
    {
        assert!(needed > available);
    }
}

#[test]
fn search_and_model_info() {
    let server = server();
    let cache = tempfile::tempdir().unwrap();
    let client = client(&server, cache.path(), None);
    let found = client
        .search(&SearchQuery {
            search: "".into(),
            pipeline_tag: Some("text-generation".into()),
            sort: Some("likes".into()),
            limit: Some(10),
        })
        .unwrap();
    let ids: Vec<&str> = found.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["google/gemma-3-270m-GGUF", SMOLLM]);
    let info = client.model_info(SMOLLM, "main").unwrap();
    let gguf = info.files.iter().find(|f| f.name == SMOLLM_FILE).unwrap();
    assert_eq!(
        gguf.size,
        Some(server.repo(SMOLLM).unwrap().file(SMOLLM_FILE).unwrap().size)
    );
    assert_eq!(hub::gguf_variants(&info.files)[0].quantization, "Q4_1");

    let facts = wick_engine::facts::hub_facts(
        &client,
        SMOLLM,
        "main",
        None,
        wick_engine::quant::Quantization::AsStored,
        2048,
    )
    .unwrap();
    let described = facts.described.unwrap();
    assert_eq!(
        (described.model_type.as_str(), described.format.as_str()),
        ("llama", "gguf")
    );
    let shape = facts.shape.unwrap();
    assert_eq!((shape.layers, shape.hidden, shape.kv_heads), (30, 576, 3));
    // Only the header was read: nothing was saved to the cache.
    assert!(HubCache::new(cache.path()).list().is_empty());
}

/// The CLI end to end: search, info (before downloading), run straight from a Hub name (it
/// downloads first, as `pipeline(model="org/name")` does), cache ls and rm.
#[test]
fn cli_search_info_run_and_cache() {
    let server = server();
    let cache = tempfile::tempdir().unwrap();
    let wick = |args: &[&str]| {
        let out = Command::new(wick_tests::target_binary("wick"))
            .args(args)
            .env("HF_ENDPOINT", server.endpoint())
            .env("HF_HUB_CACHE", cache.path())
            .env_remove("HF_HUB_OFFLINE")
            .env_remove("HF_TOKEN")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), stdout, stderr)
    };
    let (ok, out, err) = wick(&["models", "search", "splade", "--task", "fill-mask"]);
    assert!(ok, "{err}");
    assert!(
        out.lines().next().unwrap_or("").starts_with(SPLADE),
        "{out}"
    );
    assert!(out.contains("wick/gated-splade"), "{out}");

    let (ok, out, err) = wick(&["info", SPLADE, "--json"]);
    assert!(ok, "{err}");
    let facts: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(facts["described"]["architecture"], "BertForMaskedLM");
    assert_eq!(facts["described"]["tasks"][0], "feature-extraction");
    assert_eq!(facts["fit"]["verdict"], "fits");
    assert!(
        HubCache::new(cache.path())
            .cached_file(
                SPLADE,
                facts["commit"].as_str().unwrap(),
                "model.safetensors"
            )
            .is_none(),
        "info downloads no weights"
    );

    let (ok, out, err) = wick(&[
        "run",
        "fill-mask",
        "--model",
        SPLADE,
        "Paris is the [MASK] of France.",
    ]);
    assert!(ok, "{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer[0]["token_str"], "city");
    assert!(
        err.contains("model.safetensors: downloaded, hash ok"),
        "{err}"
    );

    let (ok, out, _) = wick(&["cache", "ls"]);
    assert!(
        ok && out.contains(SPLADE) && out.contains("main ("),
        "{out}"
    );
    let (ok, out, err) = wick(&["cache", "rm", SPLADE]);
    assert!(ok, "{err}");
    assert!(out.starts_with(&format!("removed {SPLADE}: 17")), "{out}");
    let (ok, _, err) = wick(&["cache", "rm", SPLADE]);
    assert!(
        !ok && err.contains("is not in the local Hugging Face cache"),
        "{err}"
    );
    // Offline and not cached: the message says why.
    let out = Command::new(wick_tests::target_binary("wick"))
        .args(["run", "fill-mask", "--model", SPLADE, "x [MASK]"])
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_CACHE", cache.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("HF_HUB_OFFLINE is set"),
        "{err}"
    );
}

/// Another process (Python's huggingface_hub, or a second Wick) holding a blob's lock makes this
/// download wait for it; a cancel still ends the wait at once, and once the lock is free the
/// download goes through.
#[test]
fn waiting_for_another_process_lock_can_be_cancelled() {
    let server = server();
    let cache = tempfile::tempdir().unwrap();
    let client = client(&server, cache.path(), None);
    let sha = server
        .repo(SPLADE)
        .unwrap()
        .file("model.safetensors")
        .unwrap()
        .sha256
        .clone();
    let lock_path = HubCache::new(cache.path()).lock_file(SPLADE, &sha);
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let held = std::fs::File::create(&lock_path).unwrap();
    held.lock().unwrap();

    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    let err = std::thread::scope(|scope| {
        let fetching =
            scope.spawn(|| hub::fetch_model(&client, SPLADE, "main", None, &|_| {}, &cancel));
        std::thread::sleep(Duration::from_millis(500));
        cancel.store(true, Ordering::Relaxed);
        fetching.join().unwrap().unwrap_err()
    });
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    held.unlock().unwrap();
    fetch(&client, SPLADE).0.unwrap();
}
