//! The Hugging Face cache on disk, in exactly the layout Python's `huggingface_hub` uses, so that
//! either tool can use what the other downloaded:
//!
//! ```text
//! $HF_HUB_CACHE/models--org--name/
//!     blobs/<etag>                 file contents, named by the Hub's etag (sha256 for LFS files)
//!     blobs/<etag>.incomplete      a download in progress (resumed from its length)
//!     refs/<branch or tag>         the commit that name pointed at when last fetched
//!     snapshots/<commit>/<file>    relative symlinks into blobs/
//! $HF_HUB_CACHE/.locks/models--org--name/<etag>.lock
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use ts_rs::TS;

use super::names::{blob_name, check_file_name, check_repo_id, check_revision};
use crate::error::{Result, WickError};

/// The Hugging Face hub cache folder, as `huggingface_hub` computes it.
pub fn hub_cache_dir() -> PathBuf {
    if let Some(dir) = non_empty_env("HF_HUB_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(home) = non_empty_env("HF_HOME") {
        return PathBuf::from(home).join("hub");
    }
    cache_home().join("huggingface").join("hub")
}

/// `$HF_HOME`, else `~/.cache/huggingface` (where the token file lives).
pub fn hf_home() -> PathBuf {
    non_empty_env("HF_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache_home().join("huggingface"))
}

/// `$XDG_CACHE_HOME`, else `~/.cache` (empty variables count as unset, as in Python's tools).
pub(crate) fn cache_home() -> PathBuf {
    non_empty_env("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty_env("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"))
}

pub(crate) fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub use super::names::{is_commit, is_sha256};

/// Finds `repo` at `revision` in a hub cache: a branch or tag goes through `refs/`, a full
/// commit hash names the snapshot directly.
pub fn resolve_cached(cache: &Path, repo: &str, revision: &str) -> Result<PathBuf> {
    check_repo_id(repo)?;
    check_revision(revision)?;
    let cache = HubCache::new(cache);
    let not_cached = || WickError::NotCached {
        repo: format!("{repo}@{revision}"),
        cache: cache.root.clone(),
    };
    let commit = cache.commit_for(repo, revision).ok_or_else(not_cached)?;
    let snapshot = cache.snapshot(repo, &commit);
    if snapshot.is_dir() {
        Ok(snapshot)
    } else {
        Err(not_cached())
    }
}

/// One cache root.
#[derive(Debug, Clone)]
pub struct HubCache {
    pub root: PathBuf,
}

impl HubCache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache the environment names (`HF_HUB_CACHE`, `HF_HOME`, `~/.cache/huggingface/hub`).
    pub fn from_env() -> Self {
        Self::new(hub_cache_dir())
    }

    fn folder_name(repo: &str) -> String {
        format!("models--{}", repo.replace('/', "--"))
    }

    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root.join(Self::folder_name(repo))
    }

    pub fn blob(&self, repo: &str, etag: &str) -> PathBuf {
        self.repo_dir(repo).join("blobs").join(etag)
    }

    pub fn incomplete(&self, repo: &str, etag: &str) -> PathBuf {
        self.repo_dir(repo)
            .join("blobs")
            .join(format!("{etag}.incomplete"))
    }

    /// The lock file `huggingface_hub` takes (with flock) while it writes a blob; Wick takes the
    /// same one, so a Python download and a Wick download of one file never interleave.
    pub fn lock_file(&self, repo: &str, etag: &str) -> PathBuf {
        self.root
            .join(".locks")
            .join(Self::folder_name(repo))
            .join(format!("{etag}.lock"))
    }

    pub fn snapshot(&self, repo: &str, commit: &str) -> PathBuf {
        self.repo_dir(repo).join("snapshots").join(commit)
    }

    /// The commit a branch or tag pointed at when last fetched (a commit names itself).
    pub fn commit_for(&self, repo: &str, revision: &str) -> Option<String> {
        if is_commit(revision) {
            return Some(revision.to_string());
        }
        // A revision names a file under refs/: nothing that climbs out of it is looked up.
        check_revision(revision).ok()?;
        let text = std::fs::read_to_string(self.repo_dir(repo).join("refs").join(revision)).ok()?;
        let commit = text.trim();
        is_commit(commit).then(|| commit.to_string())
    }

    /// Records that `revision` points at `commit` (nothing to record for a commit itself).
    pub fn write_ref(&self, repo: &str, revision: &str, commit: &str) -> Result<()> {
        if revision == commit {
            return Ok(());
        }
        check_revision(revision)?;
        if !is_commit(commit) {
            return Err(WickError::InvalidInput(format!(
                "`{commit}` is not a commit hash; `{revision}` was not recorded"
            )));
        }
        let path = self.repo_dir(repo).join("refs").join(revision);
        if std::fs::read_to_string(&path).is_ok_and(|t| t.trim() == commit) {
            return Ok(());
        }
        create_parent(&path)?;
        std::fs::write(&path, commit).map_err(|e| WickError::io(&path, e))
    }

    /// The file in a snapshot, if it is there and its blob is complete.
    pub fn cached_file(&self, repo: &str, commit: &str, filename: &str) -> Option<PathBuf> {
        let path = self.snapshot(repo, commit).join(filename);
        // `is_file` follows the link: a dangling one (blob deleted) is not a cached file.
        path.is_file().then_some(path)
    }

    /// Points `snapshots/<commit>/<filename>` at `blobs/<etag>` with a relative link, as
    /// `huggingface_hub` does (a copy where links are not allowed).
    pub fn link(&self, repo: &str, commit: &str, filename: &str, etag: &str) -> Result<PathBuf> {
        // The download checked all three already; a link is where a bad one would escape.
        check_file_name(filename)?;
        if !is_commit(commit) || blob_name(etag).as_deref() != Some(etag) {
            return Err(WickError::InvalidInput(format!(
                "refusing to link `{filename}`: `{commit}` / `{etag}` are not the hashes the Hub sends"
            )));
        }
        let pointer = self.snapshot(repo, commit).join(filename);
        create_parent(&pointer)?;
        let blob = self.blob(repo, etag);
        // snapshots/<commit>/<dirs…>/<file> climbs two levels plus one per folder in the name.
        let depth = 2 + filename.matches('/').count();
        let mut target = PathBuf::new();
        for _ in 0..depth {
            target.push("..");
        }
        target.push("blobs");
        target.push(etag);
        if std::fs::read_link(&pointer).is_ok_and(|t| t == target) {
            return Ok(pointer); // another download of the same repo got here first
        }
        #[cfg(unix)]
        {
            // A link under a temporary name, renamed over the pointer: a reader never finds
            // the file missing, and two downloads linking at once do not collide.
            let temp = pointer.with_file_name(format!(
                ".{}.{}.tmp",
                pointer
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                std::process::id()
            ));
            let _ = std::fs::remove_file(&temp);
            std::os::unix::fs::symlink(&target, &temp).map_err(|e| WickError::io(&temp, e))?;
            std::fs::rename(&temp, &pointer).map_err(|e| WickError::io(&pointer, e))?;
        }
        #[cfg(not(unix))]
        {
            let _ = target;
            std::fs::copy(&blob, &pointer).map_err(|e| WickError::io(&pointer, e))?;
        }
        debug_assert!(blob.exists());
        Ok(pointer)
    }

    /// Every repo in the cache, sorted by name.
    pub fn list(&self) -> Vec<CachedRepo> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        let mut repos: Vec<CachedRepo> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = name.strip_prefix("models--")?.replace("--", "/");
                Some(self.describe(&id))
            })
            .collect();
        repos.sort_by(|a, b| a.repo.cmp(&b.repo));
        repos
    }

    /// What the cache holds of one repo.
    pub fn describe(&self, repo: &str) -> CachedRepo {
        let dir = self.repo_dir(repo);
        let mut size = 0;
        let mut incomplete = 0;
        for blob in read_dir_paths(&dir.join("blobs")) {
            let len = blob.metadata().map_or(0, |m| m.len());
            if blob.extension().is_some_and(|e| e == "incomplete") {
                incomplete += len;
            } else {
                size += len;
            }
        }
        let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        collect_refs(&dir.join("refs"), &mut refs);
        let mut revisions: Vec<CachedRevision> = read_dir_paths(&dir.join("snapshots"))
            .into_iter()
            .filter_map(|snap| {
                let commit = snap.file_name()?.to_string_lossy().into_owned();
                let files = files_under(&snap)
                    .into_iter()
                    .map(|(name, _)| name)
                    .collect();
                Some(CachedRevision {
                    refs: refs.remove(&commit).unwrap_or_default(),
                    commit,
                    files,
                })
            })
            .collect();
        revisions.sort_by_key(|r| std::cmp::Reverse(r.refs.len()));
        CachedRepo {
            repo: repo.to_string(),
            path: dir.display().to_string(),
            size_bytes: size,
            incomplete_bytes: incomplete,
            revisions,
        }
    }

    /// Deletes a repo, or one of its revisions (a commit, branch or tag) together with the blobs
    /// no other revision uses. Returns the bytes freed.
    ///
    /// Only files under the repo's own `blobs/` are deleted: a snapshot link pointing anywhere
    /// else (a hand-made cache, an older tool's bug) is removed as a link, its target left alone.
    pub fn remove(&self, repo: &str, revision: Option<&str>) -> Result<u64> {
        check_repo_id(repo)?;
        if let Some(revision) = revision {
            check_revision(revision)?;
        }
        let dir = self.repo_dir(repo);
        if !dir.is_dir() {
            return Err(WickError::NotCached {
                repo: repo.to_string(),
                cache: self.root.clone(),
            });
        }
        let Some(revision) = revision else {
            let freed = self.describe(repo);
            std::fs::remove_dir_all(&dir).map_err(|e| WickError::io(&dir, e))?;
            return Ok(freed.size_bytes + freed.incomplete_bytes);
        };
        let commit = self
            .commit_for(repo, revision)
            .ok_or_else(|| WickError::NotCached {
                repo: format!("{repo}@{revision}"),
                cache: self.root.clone(),
            })?;
        let doomed = self.snapshot(repo, &commit);
        // Canonical, so that the prefix check below compares like with like.
        let blobs_dir = std::fs::canonicalize(dir.join("blobs")).ok();
        let kept_blobs: HashSet<PathBuf> = read_dir_paths(&dir.join("snapshots"))
            .into_iter()
            .filter(|s| *s != doomed)
            .flat_map(|s| linked_blobs(&s))
            .collect();
        let mut freed = 0;
        for blob in linked_blobs(&doomed) {
            let ours = blobs_dir
                .as_deref()
                .is_some_and(|blobs| blob.parent() == Some(blobs));
            if !ours {
                tracing::warn!(
                    "{} points outside the cache's blobs; only the link is removed",
                    blob.display()
                );
                continue;
            }
            if !kept_blobs.contains(&blob) {
                freed += blob.metadata().map_or(0, |m| m.len());
                std::fs::remove_file(&blob).map_err(|e| WickError::io(&blob, e))?;
            }
        }
        std::fs::remove_dir_all(&doomed).map_err(|e| WickError::io(&doomed, e))?;
        let mut refs = BTreeMap::new();
        collect_refs(&dir.join("refs"), &mut refs);
        for name in refs.remove(&commit).unwrap_or_default() {
            let path = dir.join("refs").join(name);
            std::fs::remove_file(&path).map_err(|e| WickError::io(&path, e))?;
        }
        Ok(freed)
    }
}

/// A cached repo as `wick cache ls` and the app's model picker show it.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct CachedRepo {
    pub repo: String,
    pub path: String,
    /// Complete blobs, bytes.
    #[ts(type = "number")]
    pub size_bytes: u64,
    /// Partial downloads waiting to be resumed, bytes.
    #[ts(type = "number")]
    pub incomplete_bytes: u64,
    pub revisions: Vec<CachedRevision>,
}

#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct CachedRevision {
    pub commit: String,
    /// Branches and tags that point here (`main`).
    pub refs: Vec<String>,
    pub files: Vec<String>,
}

fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent).map_err(|e| WickError::io(parent, e)),
        None => Ok(()),
    }
}

fn read_dir_paths(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// refs/ may nest (`refs/pr/1`); maps commit -> names.
fn collect_refs(dir: &Path, out: &mut BTreeMap<String, Vec<String>>) {
    for (name, path) in files_under(dir) {
        if let Ok(text) = std::fs::read_to_string(&path) {
            out.entry(text.trim().to_string()).or_default().push(name);
        }
    }
}

/// Every file under `dir`, recursively, as (`sub/dir/name` relative to `dir`, path), sorted.
pub(crate) fn files_under(dir: &Path) -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
        let mut paths = read_dir_paths(dir);
        paths.sort();
        for path in paths {
            let Some(name) = path
                .file_name()
                .map(|n| format!("{prefix}{}", n.to_string_lossy()))
            else {
                continue;
            };
            // A real folder only: a link to a folder is listed, not followed, so a link out of
            // the cache or a loop of links cannot lead the walk (or a removal) anywhere.
            let is_real_dir = path.symlink_metadata().is_ok_and(|m| m.is_dir());
            if is_real_dir {
                walk(&path, &format!("{name}/"), out);
            } else {
                out.push((name, path));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out
}

/// The blobs a snapshot's links point at (absolute paths).
fn linked_blobs(snapshot: &Path) -> Vec<PathBuf> {
    files_under(snapshot)
        .into_iter()
        .filter_map(|(_, path)| std::fs::canonicalize(path).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
    const OTHER: &str = "fedcba9876543210fedcba9876543210fedcba98";
    // Blob names are the Hub's hashes: git sha1s here.
    const AAA: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const BBB: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const CCC: &str = "cccccccccccccccccccccccccccccccccccccccc";

    fn put_blob(cache: &HubCache, repo: &str, etag: &str, data: &[u8]) {
        let blob = cache.blob(repo, etag);
        std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
        std::fs::write(blob, data).unwrap();
    }

    #[test]
    fn links_resolve_and_remove_like_huggingface_hub() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = HubCache::new(tmp.path());
        let repo = "org/name";
        put_blob(&cache, repo, AAA, b"config");
        put_blob(&cache, repo, BBB, b"weights v1");
        put_blob(&cache, repo, CCC, b"weights v2");
        cache.link(repo, COMMIT, "config.json", AAA).unwrap();
        cache.link(repo, COMMIT, "onnx/model.bin", BBB).unwrap();
        cache.link(repo, OTHER, "config.json", AAA).unwrap();
        cache.link(repo, OTHER, "onnx/model.bin", CCC).unwrap();
        cache.write_ref(repo, "main", OTHER).unwrap();
        cache.write_ref(repo, "v1", COMMIT).unwrap();

        let nested = cache.snapshot(repo, COMMIT).join("onnx/model.bin");
        assert_eq!(
            std::fs::read_link(&nested).unwrap(),
            Path::new("../../../blobs").join(BBB)
        );
        assert_eq!(std::fs::read(&nested).unwrap(), b"weights v1");
        assert_eq!(
            resolve_cached(tmp.path(), repo, "main").unwrap(),
            cache.snapshot(repo, OTHER)
        );
        assert_eq!(
            resolve_cached(tmp.path(), repo, COMMIT).unwrap(),
            cache.snapshot(repo, COMMIT)
        );
        assert!(resolve_cached(tmp.path(), repo, "dev").is_err());

        let listed = cache.list();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].repo, repo);
        assert_eq!(listed[0].size_bytes, 6 + 10 + 10);
        let v1 = listed[0]
            .revisions
            .iter()
            .find(|r| r.commit == COMMIT)
            .unwrap();
        assert_eq!(v1.refs, vec!["v1".to_string()]);
        assert_eq!(v1.files, vec!["config.json", "onnx/model.bin"]);

        // Removing v1 frees only the blob that main does not share, and its ref.
        assert_eq!(cache.remove(repo, Some("v1")).unwrap(), 10);
        assert!(!cache.blob(repo, BBB).exists());
        assert!(cache.blob(repo, AAA).exists());
        assert!(cache.commit_for(repo, "v1").is_none());
        assert_eq!(cache.remove(repo, None).unwrap(), 16);
        assert!(cache.list().is_empty());
        assert_eq!(
            cache.remove(repo, None).unwrap_err().code(),
            crate::ErrorCode::NotCached
        );
    }

    #[test]
    fn a_dangling_link_is_not_a_cached_file() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = HubCache::new(tmp.path());
        put_blob(&cache, "m", AAA, b"x");
        cache.link("m", COMMIT, "config.json", AAA).unwrap();
        assert!(cache.cached_file("m", COMMIT, "config.json").is_some());
        std::fs::remove_file(cache.blob("m", AAA)).unwrap();
        assert!(cache.cached_file("m", COMMIT, "config.json").is_none());
    }

    #[test]
    fn nothing_from_outside_becomes_a_path_out_of_the_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = HubCache::new(tmp.path().join("hub"));
        put_blob(&cache, "m", AAA, b"x");
        for (commit, name, etag) in [
            (COMMIT, "../../../../../x/evil.gguf", AAA),
            (COMMIT, "/tmp/evil.gguf", AAA),
            (COMMIT, "C:\\evil.gguf", AAA),
            (COMMIT, "config.json", "../../../../evil"),
            ("../../../evil", "config.json", AAA),
        ] {
            assert!(
                cache.link("m", commit, name, etag).is_err(),
                "{name} {etag}"
            );
        }
        assert!(cache.write_ref("m", "../../../evil", COMMIT).is_err());
        assert!(cache.write_ref("m", "main", "../../x").is_err());
        assert!(cache.commit_for("m", "../../../etc/passwd").is_none());
        assert!(cache.remove("../x", None).is_err());
        assert!(cache.remove("m", Some("../../..")).is_err());
        let outside: Vec<PathBuf> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(outside, vec![tmp.path().join("hub")]);
    }

    #[cfg(unix)]
    #[test]
    fn removal_deletes_only_blobs_and_survives_link_loops() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = HubCache::new(tmp.path().join("hub"));
        let precious = tmp.path().join("precious.txt");
        let precious_dir = tmp.path().join("precious-dir");
        std::fs::write(&precious, b"keep me").unwrap();
        std::fs::create_dir(&precious_dir).unwrap();
        std::fs::write(precious_dir.join("inner.txt"), b"keep me too").unwrap();
        put_blob(&cache, "m", AAA, b"config");
        cache.link("m", COMMIT, "config.json", AAA).unwrap();
        let snapshot = cache.snapshot("m", COMMIT);
        // What a hostile or hand-edited cache may hold: links out of it, to a folder, a loop.
        std::os::unix::fs::symlink(&precious, snapshot.join("evil.gguf")).unwrap();
        std::os::unix::fs::symlink(&precious_dir, snapshot.join("evil-dir")).unwrap();
        std::os::unix::fs::symlink(&snapshot, snapshot.join("loop")).unwrap();
        std::os::unix::fs::symlink("self", snapshot.join("self")).unwrap();
        cache.write_ref("m", "main", COMMIT).unwrap();

        assert!(!cache.describe("m").revisions.is_empty());
        assert_eq!(cache.remove("m", Some("main")).unwrap(), 6);
        assert_eq!(std::fs::read(&precious).unwrap(), b"keep me");
        assert_eq!(
            std::fs::read(precious_dir.join("inner.txt")).unwrap(),
            b"keep me too"
        );
        assert!(!snapshot.exists());
        assert!(!cache.blob("m", AAA).exists());
    }
}
