//! What may become a path in the cache. Repo ids, revisions, file names, commits and ETags come
//! from the user, from the Hub's JSON and from a mirror's headers; all of them end up as folder
//! and file names under the cache root. Each is checked here, by the rules the Hub itself keeps,
//! before any of them is joined to a path: a mirror that answers `../../..` where a hash belongs
//! gets an error, not a file outside the cache.

use crate::error::{Result, WickError};

/// The longest repo id the Hub accepts (`huggingface_hub.utils.validate_repo_id`).
const MAX_REPO_ID: usize = 96;

/// Longer revisions or file names than this are not something the Hub serves.
const MAX_NAME: usize = 1024;

/// Checks a repo id as `huggingface_hub`'s `validate_repo_id` does: `name` or `namespace/name`,
/// each part letters, digits, `-`, `_` and `.`, not starting or ending with `-` or `.`, no
/// `--` or `..`, not ending in `.git`, at most 96 characters.
pub fn check_repo_id(repo: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(WickError::InvalidInput(format!(
            "`{}` is not a Hub repo id ({why}); repo ids look like `org/name`",
            printable(repo)
        )))
    };
    if repo.is_empty() {
        return bad("it is empty");
    }
    if repo.len() > MAX_REPO_ID {
        return bad("longer than 96 characters");
    }
    let parts: Vec<&str> = repo.split('/').collect();
    if parts.len() > 2 {
        return bad("more than one `/`");
    }
    for part in &parts {
        if part.is_empty() {
            return bad("an empty part");
        }
        if !part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return bad("only letters, digits, `-`, `_` and `.` are allowed");
        }
        if part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
            return bad("a part starts or ends with `-` or `.`");
        }
    }
    if repo.contains("--") || repo.contains("..") {
        return bad("`--` and `..` are not allowed");
    }
    if repo.ends_with(".git") {
        return bad("it ends in `.git`");
    }
    Ok(())
}

/// Checks a revision: a branch, tag, `refs/pr/N` or commit. Git's ref rules, as far as they
/// matter for a path: relative, no `..`, no empty or `.` parts, no backslash or control
/// characters (a revision names a file under `refs/`).
pub fn check_revision(revision: &str) -> Result<()> {
    check_relative(revision).map_err(|why| {
        WickError::InvalidInput(format!(
            "`{}` is not a revision ({why}); use a branch, a tag or a commit hash",
            printable(revision)
        ))
    })
}

/// Checks a file name in a repo (a sibling's `rfilename`): a relative path with `/` between
/// folders, nothing that climbs out of the snapshot or names a drive.
pub fn check_file_name(name: &str) -> Result<()> {
    check_relative(name).map_err(|why| {
        WickError::InvalidInput(format!(
            "the Hub listed a file named `{}`, which is not a safe file name ({why})",
            printable(name)
        ))
    })
}

/// Whether `text` is a full commit hash (40 hex digits), which names a snapshot.
pub fn is_commit(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `text` is an LFS sha256 (64 hex digits).
pub fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// An ETag as the Hub sends it, made a blob name: quotes and the weak `W/` prefix stripped, then
/// a git sha1 (40 hex, for files stored in git) or a sha256 (64 hex, for LFS files), lowercased.
/// Anything else (a path, a URL, a random token) is refused: it would become a file name.
pub fn blob_name(etag: &str) -> Option<String> {
    let bare = etag.trim();
    let bare = bare.strip_prefix("W/").unwrap_or(bare);
    let bare = bare.strip_prefix('"').unwrap_or(bare);
    let bare = bare.strip_suffix('"').unwrap_or(bare);
    (is_commit(bare) || is_sha256(bare)).then(|| bare.to_ascii_lowercase())
}

/// The relative-path rules shared by revisions and file names; the reason on failure.
fn check_relative(path: &str) -> std::result::Result<(), &'static str> {
    if path.is_empty() {
        return Err("it is empty");
    }
    if path.len() > MAX_NAME {
        return Err("it is too long");
    }
    if path.chars().any(char::is_control) {
        return Err("it holds control characters");
    }
    if path.contains('\\') {
        return Err("it holds a backslash");
    }
    if path.starts_with('/') {
        return Err("it is an absolute path");
    }
    // `C:`, `C:foo`: a drive on Windows, where a path component may not hold `:` anyway.
    if path.contains(':') {
        return Err("it holds `:` (a drive or stream name on Windows)");
    }
    for part in path.split('/') {
        match part {
            "" => return Err("it has an empty part"),
            "." | ".." => return Err("it has a `.` or `..` part"),
            _ => {}
        }
    }
    Ok(())
}

/// `text` for a message: control characters escaped, at most 120 characters.
fn printable(text: &str) -> String {
    let escaped: String = text.escape_debug().collect();
    match escaped.char_indices().nth(120) {
        Some((cut, _)) => format!("{}…", &escaped[..cut]),
        None => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_follow_the_hub() {
        for good in [
            "gpt2",
            "HuggingFaceTB/SmolLM2-135M-Instruct",
            "google/gemma-3-270m-it",
            "sentence-transformers/all-MiniLM-L6-v2",
            "a_b.c/d_e.f",
        ] {
            assert!(check_repo_id(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../x",
            "a/../b",
            "a/b/c",
            "/abs",
            "a/",
            "a--b/c",
            "a/b.git",
            "-a/b",
            "a/b.",
            "a b/c",
            "a\\b",
            "C:/x",
            "a/b\0",
            &"x".repeat(97),
        ] {
            assert!(check_repo_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_names_and_revisions_stay_relative() {
        for good in [
            "config.json",
            "onnx/model.onnx",
            "a/b/c.bin",
            "refs/pr/1",
            "v1.0",
        ] {
            assert!(check_file_name(good).is_ok(), "{good}");
            assert!(check_revision(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "../../../../../x/evil.gguf",
            "a/../../b",
            "/etc/passwd",
            "./config.json",
            "a//b",
            "a/",
            "..",
            "C:\\Windows\\evil.dll",
            "C:evil",
            "\\\\server\\share\\x",
            "sub\\..\\..\\x",
            "a\nb",
        ] {
            assert!(check_file_name(bad).is_err(), "{bad:?}");
            assert!(check_revision(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn etags_must_be_hashes() {
        let sha1 = "0123456789abcdef0123456789abcdef01234567";
        let sha256 = "a".repeat(64);
        assert_eq!(blob_name(&format!("\"{sha1}\"")).as_deref(), Some(sha1));
        assert_eq!(blob_name(&format!("W/\"{sha1}\"")).as_deref(), Some(sha1));
        assert_eq!(blob_name(&sha256.to_uppercase()), Some(sha256.clone()));
        for bad in [
            "",
            "\"\"",
            "../../../../tmp/x",
            "\"../../..\"",
            "/tmp/evil",
            "W/\"abc\"",
            &format!("{sha1}/../x"),
            &format!("{}g", &sha256[..63]),
        ] {
            assert_eq!(blob_name(bad), None, "{bad:?}");
        }
    }
}
