//! A local HTTP server that speaks the Hugging Face Hub's protocol, serving real model files, for
//! testing downloads without the Hub (which this machine cannot reach).
//!
//! Routes, as the Hub answers them (what `huggingface_hub` 0.36 and Wick read):
//! - `HEAD|GET /{repo}/resolve/{revision}/{file}`: `X-Repo-Commit`, `ETag` (git blob id) and the
//!   bytes for small files; for LFS files a `302` to a CDN host with `X-Linked-Etag` (sha256) and
//!   `X-Linked-Size`.
//! - `GET /cdn/{sha256}` on `localhost` (another origin than `127.0.0.1`, as a CDN is: the token
//!   must not follow): the bytes, with `Range` → `206 Content-Range`.
//! - `GET /api/models/{repo}[/revision/{rev}][?blobs=true]`: model info with `siblings`.
//! - `GET /api/models?search=&pipeline_tag=&sort=&limit=`: search.
//!
//! It can be told to cut a connection mid-file, answer an error status, require a token (gated
//! repos), or send slowly, and it counts the file bytes it sent.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// The token gated test repos accept.
pub const TEST_TOKEN: &str = "hf_wick_test_token";

/// One file in a served repo.
#[derive(Debug, Clone)]
pub struct ServedFile {
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    /// The git blob id, the etag of a non-LFS file.
    pub git_oid: String,
    pub lfs: bool,
}

/// One served repo.
#[derive(Debug, Clone)]
pub struct ServedRepo {
    pub id: String,
    pub commit: String,
    pub files: Vec<ServedFile>,
    pub pipeline_tag: Option<String>,
    pub library_name: Option<String>,
    pub downloads: u64,
    pub likes: u64,
    pub gated: bool,
}

impl ServedRepo {
    /// A repo serving every file under `dir` (except Wick's own markers), with a commit hash
    /// derived from the contents.
    pub fn from_folder(id: &str, dir: &Path) -> Self {
        let mut names = Vec::new();
        collect(dir, "", &mut names);
        names.retain(|n| !n.starts_with(".wick") && n != "wick-model.json" && n != "expected.json");
        names.sort();
        let files: Vec<ServedFile> = names.iter().map(|n| served_file(n, &dir.join(n))).collect();
        let mut commit = Sha256::new();
        for f in &files {
            commit.update(f.name.as_bytes());
            commit.update(f.sha256.as_bytes());
        }
        Self {
            id: id.to_string(),
            commit: hex(&commit.finalize())[..40].to_string(),
            files,
            pipeline_tag: None,
            library_name: None,
            downloads: 0,
            likes: 0,
            gated: false,
        }
    }

    pub fn tag(mut self, pipeline_tag: &str, downloads: u64, likes: u64) -> Self {
        self.pipeline_tag = Some(pipeline_tag.to_string());
        self.downloads = downloads;
        self.likes = likes;
        self
    }

    pub fn gated(mut self) -> Self {
        self.gated = true;
        self
    }

    pub fn file(&self, name: &str) -> Option<&ServedFile> {
        self.files.iter().find(|f| f.name == name)
    }
}

fn collect(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.path().is_dir() {
            collect(&entry.path(), &format!("{name}/"), out);
        } else {
            out.push(name);
        }
    }
}

fn served_file(name: &str, path: &Path) -> ServedFile {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut git = sha1_smol::Sha1::new();
    git.update(format!("blob {}\0", data.len()).as_bytes());
    git.update(&data);
    let lower = name.to_ascii_lowercase();
    let lfs = data.len() > 10 << 20
        || [".safetensors", ".gguf", ".bin", ".model", ".onnx", ".spm"]
            .iter()
            .any(|e| lower.ends_with(e));
    ServedFile {
        name: name.to_string(),
        path: path.to_path_buf(),
        size: data.len() as u64,
        sha256: hex(&Sha256::digest(&data)),
        git_oid: git.digest().to_string(),
        lfs,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Misbehaviour on request.
#[derive(Debug, Default)]
pub struct Faults {
    /// Close the connection after this many body bytes of a file, this many times.
    pub cut_after: Option<(u64, u32)>,
    /// Answer every request with this status, this many times.
    pub fail_status: Option<(u16, u32)>,
    /// Send file bytes at about this rate.
    pub bytes_per_second: Option<u64>,
    /// Answer like a hostile mirror: the protocol's shape, with paths where hashes belong.
    pub hostile: Option<Hostile>,
}

/// What a hostile mirror puts where the Hub puts names, hashes and sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hostile {
    /// This instead of every `ETag` and `X-Linked-Etag` (a path such as `../../../x`).
    Etag(String),
    /// This instead of the commit, in `X-Repo-Commit` and the model info's `sha`.
    Commit(String),
    /// One more sibling in the model info with this name, served with config.json's bytes.
    FileName(String),
    /// This instead of every file's size, in `X-Linked-Size` and the `Content-Length` of a
    /// HEAD.
    Size(u64),
    /// A resolve answers 302 to this URL.
    RedirectTo(String),
    /// Files kept in git (not LFS) are sent with their first byte changed.
    CorruptGitFiles,
}

#[derive(Debug)]
struct Shared {
    repos: Vec<ServedRepo>,
    faults: Mutex<Faults>,
    file_bytes_sent: AtomicU64,
    requests: Mutex<Vec<String>>,
    port: u16,
}

/// A running server; stops when dropped.
#[derive(Debug)]
pub struct HubServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
}

impl HubServer {
    pub fn start(repos: Vec<ServedRepo>) -> Self {
        Self::start_on(repos, 0)
    }

    /// Starts on `port` (0: any free port) of 127.0.0.1.
    pub fn start_on(repos: Vec<ServedRepo>, port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind a local port");
        let addr = listener.local_addr().expect("local address");
        let shared = Arc::new(Shared {
            repos,
            faults: Mutex::default(),
            file_bytes_sent: AtomicU64::new(0),
            requests: Mutex::default(),
            port: addr.port(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        // The CDN answers as `localhost`, which a client may resolve to ::1 first: listen there too.
        let listeners = std::iter::once(listener)
            .chain(TcpListener::bind(("::1", addr.port())).ok())
            .collect::<Vec<_>>();
        for listener in listeners {
            let (s, st) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if st.load(Ordering::Relaxed) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let s = Arc::clone(&s);
                        std::thread::spawn(move || {
                            let _ = handle(stream, &s);
                        });
                    }
                }
            });
        }
        Self { addr, shared, stop }
    }

    /// `http://127.0.0.1:PORT`: what `HF_ENDPOINT` is set to.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.shared.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// File bytes sent so far (bodies of resolve and CDN answers).
    pub fn file_bytes_sent(&self) -> u64 {
        self.shared.file_bytes_sent.load(Ordering::Relaxed)
    }

    /// `METHOD path [range] [auth]` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.shared
            .requests
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    pub fn repo(&self, id: &str) -> Option<&ServedRepo> {
        self.shared.repos.iter().find(|r| r.id == id)
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
        let _ = TcpStream::connect(("::1", self.addr.port()));
    }
}

#[derive(Clone)]
struct Request {
    method: String,
    /// Percent-decoded.
    path: String,
    /// As sent (a revision `refs%2Fpr%2F1` keeps its slashes encoded here).
    raw_path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
}

fn read_request(stream: &TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    Ok(Request {
        method,
        path: percent_decode(path),
        raw_path: path.to_string(),
        query,
        headers,
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response under construction.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
    /// A `Content-Length` other than the body's (a lying HEAD).
    announced_len: Option<u64>,
}

enum Body {
    Bytes(Vec<u8>),
    File { path: PathBuf, start: u64, len: u64 },
}

impl Reply {
    fn new(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Body::Bytes(Vec::new()),
            announced_len: None,
        }
    }

    fn json(status: u16, value: &serde_json::Value) -> Self {
        let mut r = Self::new(status);
        r.body = Body::Bytes(value.to_string().into_bytes());
        r.header("Content-Type", "application/json")
    }

    fn error(status: u16, code: &str, message: &str) -> Self {
        Self::json(status, &serde_json::json!({ "error": message })).header("X-Error-Code", code)
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

fn handle(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let request = read_request(&stream)?;
    if let Ok(mut log) = shared.requests.lock() {
        log.push(format!(
            "{} {} {} {}",
            request.method,
            request.path,
            request.headers.get("range").map_or("", String::as_str),
            request.headers.get("authorization").map_or("", |_| "auth"),
        ));
    }
    let failure = {
        let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
        match faults.fail_status {
            Some((status, n)) if n > 0 => {
                faults.fail_status = (n > 1).then_some((status, n - 1));
                Some(status)
            }
            _ => None,
        }
    };
    let reply = match failure {
        Some(status) => Reply::error(status, "", "injected failure"),
        None => route(&request, shared),
    };
    send(&mut stream, &request, reply, shared)
}

fn route(request: &Request, shared: &Shared) -> Reply {
    let hostile = shared
        .faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .hostile
        .clone();
    match hostile {
        Some(hostile) => make_hostile(request, shared, &hostile),
        None => honest_route(request, shared),
    }
}

/// The honest answer, then changed as `hostile` asks.
fn make_hostile(request: &Request, shared: &Shared, hostile: &Hostile) -> Reply {
    let raw = request.raw_path.trim_start_matches('/');
    let resolve = raw.contains("/resolve/");
    match hostile {
        Hostile::FileName(name) if resolve && percent_decode(raw).ends_with(name.as_str()) => {
            // The extra file: config.json's bytes under the hostile name.
            let (repo, _) = raw.split_once("/resolve/").unwrap_or((raw, ""));
            let mut honest = request.clone();
            honest.raw_path = format!("/{repo}/resolve/main/config.json");
            return honest_route(&honest, shared);
        }
        Hostile::RedirectTo(url) if resolve => {
            return Reply::new(302)
                .header("Location", url)
                .header("X-Repo-Commit", &shared.repos[0].commit);
        }
        _ => {}
    }
    let mut reply = honest_route(request, shared);
    match hostile {
        Hostile::Etag(etag) => {
            for (name, value) in &mut reply.headers {
                if name.eq_ignore_ascii_case("etag") || name.eq_ignore_ascii_case("x-linked-etag") {
                    *value = etag.clone();
                }
            }
        }
        Hostile::Commit(commit) => {
            for (name, value) in &mut reply.headers {
                if name.eq_ignore_ascii_case("x-repo-commit") {
                    *value = commit.clone();
                }
            }
            if let Body::Bytes(bytes) = &mut reply.body {
                if let Ok(mut info) = serde_json::from_slice::<serde_json::Value>(bytes) {
                    if info.get("sha").is_some() {
                        info["sha"] = serde_json::json!(commit);
                        *bytes = info.to_string().into_bytes();
                    }
                }
            }
        }
        Hostile::FileName(extra) => {
            if let Body::Bytes(bytes) = &mut reply.body {
                if let Ok(mut info) = serde_json::from_slice::<serde_json::Value>(bytes) {
                    if let Some(siblings) = info.get_mut("siblings").and_then(|s| s.as_array_mut())
                    {
                        siblings.push(serde_json::json!({ "rfilename": extra, "size": 2 }));
                        *bytes = info.to_string().into_bytes();
                    }
                }
            }
        }
        Hostile::Size(size) => {
            for (name, value) in &mut reply.headers {
                if name.eq_ignore_ascii_case("x-linked-size") {
                    *value = size.to_string();
                }
            }
            if request.method == "HEAD" {
                reply.announced_len = Some(*size);
            }
        }
        Hostile::CorruptGitFiles => {
            if let Body::File { path, start, len } = &reply.body {
                let is_git_file = reply.headers.iter().all(|(n, _)| n != "X-Linked-Etag")
                    && !request.path.contains("/cdn/");
                if is_git_file && *start == 0 {
                    if let Ok(mut data) = std::fs::read(path) {
                        data.truncate(*len as usize);
                        if let Some(first) = data.first_mut() {
                            *first ^= 0x20;
                        }
                        reply.body = Body::Bytes(data);
                    }
                }
            }
        }
        Hostile::RedirectTo(_) => {}
    }
    reply
}

fn honest_route(request: &Request, shared: &Shared) -> Reply {
    let path = request.path.trim_start_matches('/');
    if path == "api/models" {
        return search(request, shared);
    }
    if let Some(rest) = path.strip_prefix("api/models/") {
        let (repo_id, revision) = match rest.split_once("/revision/") {
            Some((repo, rev)) => (repo, rev),
            None => (rest, "main"),
        };
        return match find_repo(request, shared, repo_id) {
            Ok(repo) if revision == "main" || revision == repo.commit => {
                Reply::json(200, &model_info(repo, request.query.contains_key("blobs")))
            }
            Ok(repo) => Reply::error(
                404,
                "RevisionNotFound",
                &format!("Invalid rev id: {revision}"),
            )
            .header("X-Repo-Commit", &repo.commit),
            Err(reply) => reply,
        };
    }
    if let Some(sha) = path.strip_prefix("cdn/") {
        let file = shared
            .repos
            .iter()
            .flat_map(|r| &r.files)
            .find(|f| f.lfs && f.sha256 == sha);
        return match file {
            Some(file) => file_body(request, file).header("ETag", &format!("\"{}\"", file.sha256)),
            None => Reply::error(404, "EntryNotFound", "no such blob"),
        };
    }
    let raw = request.raw_path.trim_start_matches('/');
    if let Some((repo_id, rest)) = raw.split_once("/resolve/") {
        let repo_id = percent_decode(repo_id);
        let repo_id = repo_id.as_str();
        let repo = match find_repo(request, shared, repo_id) {
            Ok(repo) => repo,
            Err(reply) => return reply,
        };
        let Some((revision, file_name)) = rest.split_once('/') else {
            return Reply::error(400, "", "bad path");
        };
        let (revision, file_name) = (percent_decode(revision), percent_decode(file_name));
        let (revision, file_name) = (revision.as_str(), file_name.as_str());
        if revision != "main" && revision != repo.commit {
            return Reply::error(404, "RevisionNotFound", "Invalid rev id");
        }
        let Some(file) = repo.file(file_name) else {
            return Reply::error(404, "EntryNotFound", "Entry not found")
                .header("X-Repo-Commit", &repo.commit);
        };
        return if file.lfs {
            // The CDN is another origin: localhost instead of 127.0.0.1.
            Reply::new(302)
                .header(
                    "Location",
                    &format!("http://localhost:{}/cdn/{}", shared.port, file.sha256),
                )
                .header("X-Repo-Commit", &repo.commit)
                .header("X-Linked-Etag", &format!("\"{}\"", file.sha256))
                .header("X-Linked-Size", &file.size.to_string())
                .header("ETag", &format!("\"{}\"", file.git_oid))
        } else {
            file_body(request, file)
                .header("X-Repo-Commit", &repo.commit)
                .header("ETag", &format!("\"{}\"", file.git_oid))
        };
    }
    Reply::error(404, "", "no such route")
}

fn find_repo<'a>(request: &Request, shared: &'a Shared, id: &str) -> Result<&'a ServedRepo, Reply> {
    let Some(repo) = shared.repos.iter().find(|r| r.id == id) else {
        return Err(Reply::error(404, "RepoNotFound", "Repository not found"));
    };
    let authorized = request
        .headers
        .get("authorization")
        .is_some_and(|a| a == &format!("Bearer {TEST_TOKEN}"));
    if repo.gated && !authorized {
        return Err(Reply::error(
            401,
            "GatedRepo",
            "Access to this model is restricted; you must be authenticated",
        ));
    }
    Ok(repo)
}

fn model_info(repo: &ServedRepo, blobs: bool) -> serde_json::Value {
    let siblings: Vec<serde_json::Value> = repo
        .files
        .iter()
        .map(|f| {
            if !blobs {
                return serde_json::json!({ "rfilename": f.name });
            }
            let mut s = serde_json::json!({
                "rfilename": f.name, "size": f.size,
                "blobId": if f.lfs { f.sha256.clone() } else { f.git_oid.clone() },
            });
            if f.lfs {
                s["lfs"] =
                    serde_json::json!({"sha256": f.sha256, "size": f.size, "pointerSize": 134});
            }
            s
        })
        .collect();
    serde_json::json!({
        "_id": repo.commit[..24], "id": repo.id, "modelId": repo.id, "sha": repo.commit,
        "private": false, "gated": if repo.gated { serde_json::json!("auto") } else { serde_json::json!(false) },
        "disabled": false, "downloads": repo.downloads, "likes": repo.likes,
        "tags": repo.pipeline_tag.iter().collect::<Vec<_>>(),
        "pipeline_tag": repo.pipeline_tag, "library_name": repo.library_name,
        "createdAt": "2026-01-01T00:00:00.000Z", "lastModified": "2026-01-01T00:00:00.000Z",
        "siblings": siblings,
    })
}

fn search(request: &Request, shared: &Shared) -> Reply {
    let words = request
        .query
        .get("search")
        .map_or("", String::as_str)
        .to_ascii_lowercase();
    let tag = request
        .query
        .get("pipeline_tag")
        .or_else(|| request.query.get("filter"));
    let mut found: Vec<&ServedRepo> = shared
        .repos
        .iter()
        .filter(|r| r.id.to_ascii_lowercase().contains(&words))
        .filter(|r| tag.is_none_or(|t| r.pipeline_tag.as_ref() == Some(t)))
        .collect();
    let by_likes = request.query.get("sort").is_some_and(|s| s == "likes");
    found.sort_by_key(|r| std::cmp::Reverse(if by_likes { r.likes } else { r.downloads }));
    let limit = request
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(30);
    let list: Vec<serde_json::Value> = found
        .iter()
        .take(limit)
        .map(|r| {
            serde_json::json!({
                "_id": r.commit[..24], "id": r.id, "modelId": r.id, "likes": r.likes,
                "downloads": r.downloads, "pipeline_tag": r.pipeline_tag, "private": false,
                "library_name": r.library_name,
                "tags": r.pipeline_tag.iter().collect::<Vec<_>>(),
                "createdAt": "2026-01-01T00:00:00.000Z", "lastModified": "2026-01-01T00:00:00.000Z",
            })
        })
        .collect();
    Reply::json(200, &serde_json::Value::Array(list))
}

/// The bytes of a file, honouring `Range: bytes=N-[M]`.
fn file_body(request: &Request, file: &ServedFile) -> Reply {
    let range = request
        .headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'))
        .map(|(a, b)| (a.parse::<u64>().ok(), b.parse::<u64>().ok()));
    match range {
        Some((Some(start), end)) => {
            if start >= file.size {
                return Reply::new(416).header("Content-Range", &format!("bytes */{}", file.size));
            }
            let end = end.unwrap_or(file.size - 1).min(file.size - 1);
            let mut reply = Reply::new(206).header(
                "Content-Range",
                &format!("bytes {start}-{end}/{}", file.size),
            );
            reply.body = Body::File {
                path: file.path.clone(),
                start,
                len: end + 1 - start,
            };
            reply
        }
        _ => {
            let mut reply = Reply::new(200);
            reply.body = Body::File {
                path: file.path.clone(),
                start: 0,
                len: file.size,
            };
            reply
        }
    }
    .header("Accept-Ranges", "bytes")
}

fn send(
    stream: &mut TcpStream,
    request: &Request,
    reply: Reply,
    shared: &Shared,
) -> std::io::Result<()> {
    let reason = match reply.status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        401 => "Unauthorized",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let len = match &reply.body {
        Body::Bytes(b) => b.len() as u64,
        Body::File { len, .. } => *len,
    };
    let len = reply.announced_len.unwrap_or(len);
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Length: {len}\r\nConnection: close\r\n",
        reply.status
    );
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    if request.method == "HEAD" {
        return stream.flush();
    }
    match reply.body {
        Body::Bytes(bytes) => stream.write_all(&bytes)?,
        Body::File { path, start, len } => {
            let (cut, rate) = {
                let mut faults = shared.faults.lock().unwrap_or_else(|p| p.into_inner());
                let cut = match faults.cut_after {
                    // Only a file longer than the cut point is cut (and counts).
                    Some((at, n)) if n > 0 && at < len => {
                        faults.cut_after = (n > 1).then_some((at, n - 1));
                        Some(at)
                    }
                    _ => None,
                };
                (cut, faults.bytes_per_second)
            };
            let mut file = std::fs::File::open(path)?;
            file.seek(SeekFrom::Start(start))?;
            let mut left = cut.map_or(len, |c| c.min(len));
            let mut buffer = vec![0u8; if rate.is_some() { 16 << 10 } else { 256 << 10 }];
            while left > 0 {
                let want = buffer.len().min(left as usize);
                let n = file.read(&mut buffer[..want])?;
                if n == 0 {
                    break;
                }
                stream.write_all(&buffer[..n])?;
                shared
                    .file_bytes_sent
                    .fetch_add(n as u64, Ordering::Relaxed);
                left -= n as u64;
                if let Some(rate) = rate {
                    std::thread::sleep(Duration::from_secs_f64(n as f64 / rate.max(1) as f64));
                }
            }
            if cut.is_some() {
                // Drop the connection without finishing the body.
                stream.flush()?;
                return stream.shutdown(std::net::Shutdown::Both);
            }
        }
    }
    stream.flush()
}

/// The real models of the test-model cache as Hub repos (those fetched).
pub fn test_model_repos() -> Vec<ServedRepo> {
    let specs: [(&str, &str, &str, u64, u64); 6] = [
        (
            "sentence-transformers/all-MiniLM-L6-v2",
            "all-minilm-l6-v2",
            "sentence-similarity",
            90_000,
            3_000,
        ),
        (
            "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF",
            "smollm2-135m-instruct",
            "text-generation",
            50_000,
            800,
        ),
        (
            "google/gemma-3-270m-GGUF",
            "gemma3-270m",
            "text-generation",
            40_000,
            1_200,
        ),
        (
            "prithivida/splade-tiny",
            "splade-tiny",
            "fill-mask",
            2_000,
            40,
        ),
        (
            "wick/rampart-ner",
            "rampart-ner",
            "token-classification",
            1_000,
            20,
        ),
        (
            "google/flan-t5-small",
            "flan-t5-small-titles",
            "text2text-generation",
            60_000,
            500,
        ),
    ];
    let mut repos: Vec<ServedRepo> = specs
        .iter()
        .filter_map(|(id, folder, tag, downloads, likes)| {
            let dir = wick_engine::source::starter_model(folder)?;
            Some(ServedRepo::from_folder(id, &dir).tag(tag, *downloads, *likes))
        })
        .collect();
    if let Some(dir) = wick_engine::source::starter_model("splade-tiny") {
        repos.push(
            ServedRepo::from_folder("wick/gated-splade", &dir)
                .tag("fill-mask", 5, 1)
                .gated(),
        );
    }
    repos
}
