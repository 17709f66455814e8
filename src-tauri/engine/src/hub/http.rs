//! Talking to the Hub over HTTP: the endpoint, the token, redirects, retries, and turning status
//! codes into errors a person can act on.

use std::time::Duration;

use ureq::http::{Response, StatusCode};
use ureq::Body;

use super::cache::{hf_home, non_empty_env, HubCache};
use crate::error::{Result, WickError};

/// Where the Hub is, when `HF_ENDPOINT` does not say.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How many times a request is tried when the Hub answers 5xx/429 or the connection drops.
const ATTEMPTS: u32 = 5;

/// A connection to the Hub (or anything speaking its protocol), with the user's settings.
#[derive(Debug, Clone)]
pub struct HubClient {
    agent: ureq::Agent,
    /// `HF_ENDPOINT`, without a trailing slash.
    pub endpoint: String,
    token: Option<String>,
    /// `HF_HUB_OFFLINE`: use the cache only.
    pub offline: bool,
    pub cache: HubCache,
    /// The first pause between retries; doubled each time.
    pub retry_delay: Duration,
    /// How many files download at once.
    pub parallel_files: usize,
}

/// A request's outcome before the body is read: the response, or what went wrong.
pub(crate) type Answer = Response<Body>;

impl HubClient {
    /// The Hub as the environment describes it: `HF_ENDPOINT`, `HF_TOKEN` (else the token file
    /// `hf auth login` writes, `$HF_TOKEN_PATH` or `$HF_HOME/token`), `HF_HUB_OFFLINE`, and the
    /// cache from `HF_HUB_CACHE` / `HF_HOME`.
    pub fn from_env() -> Self {
        let endpoint = non_empty_env("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.into());
        let offline = non_empty_env("HF_HUB_OFFLINE").is_some_and(|v| {
            matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        });
        Self::new(&endpoint, token_from_env(), HubCache::from_env()).offline(offline)
    }

    pub fn new(endpoint: &str, token: Option<String>, cache: HubCache) -> Self {
        let token = token.filter(|t| !t.trim().is_empty());
        let endpoint = endpoint.trim_end_matches('/').to_string();
        if token.is_some() && !may_carry_token(&endpoint) {
            tracing::warn!(
                "HF_ENDPOINT {endpoint} is plain http on another machine: the token (HF_TOKEN) \
                 is not sent to it, since anyone on the way could read it; use https"
            );
        }
        let agent = ureq::Agent::config_builder()
            // Status codes and redirects are handled here, where they become useful errors and
            // where the token is kept away from other hosts (LFS files redirect to a CDN).
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            // Byte ranges must count the bytes of the file itself.
            .accept_encoding("identity")
            .user_agent(concat!("wick/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(30)))
            .timeout_per_read(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        Self {
            agent,
            endpoint,
            token,
            offline: false,
            cache,
            retry_delay: Duration::from_millis(500),
            parallel_files: 4,
        }
    }

    pub fn offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }

    /// `{endpoint}/{repo}/resolve/{revision}/{file}`.
    pub fn resolve_url(&self, repo: &str, revision: &str, file: &str) -> String {
        format!(
            "{}/{repo}/resolve/{}/{}",
            self.endpoint,
            encode_query(revision),
            encode_path(file)
        )
    }

    /// The model's page, where gated conditions are accepted.
    pub fn page(&self, repo: &str) -> String {
        format!("{}/{repo}", self.endpoint)
    }

    /// Sends one request (no retries), following redirects as `huggingface_hub` does: a HEAD
    /// follows only relative ones (a renamed repo), since the absolute one of an LFS file points
    /// at the bytes and the metadata is in its headers; a GET follows all of them. The token
    /// goes only to the endpoint's own host.
    pub(crate) fn send(&self, method: &str, url: &str, range_from: u64) -> Result<Answer> {
        let mut url = url.to_string();
        for _ in 0..8 {
            let mut request = ureq::http::Request::builder().method(method).uri(&url);
            if let Some(token) = self
                .token
                .as_deref()
                .filter(|_| same_host(&url, &self.endpoint) && may_carry_token(&url))
            {
                request = request.header("authorization", format!("Bearer {token}"));
            }
            if range_from > 0 {
                request = request.header("range", format!("bytes={range_from}-"));
            }
            let request = request
                .body(())
                .map_err(|e| WickError::InvalidInput(format!("bad Hub address {url}: {e}")))?;
            let response = self
                .agent
                .run(request)
                .map_err(|e| self.unavailable(network_detail(&e)))?;
            if !response.status().is_redirection() {
                return Ok(response);
            }
            let Some(location) = header(&response, "location") else {
                return Ok(response);
            };
            let relative = location.starts_with('/');
            if method == "HEAD" && !relative {
                return Ok(response);
            }
            let next = redirect_target(&url, &location)?;
            url = next;
        }
        Err(self.unavailable(format!("too many redirects for {url}")))
    }

    /// [`Self::send`] with retries on 5xx, 429 and dropped connections, then a status check.
    /// `what` names the thing asked for in a 404 message; `repo` the repo in a 401 message.
    pub(crate) fn call(
        &self,
        method: &str,
        url: &str,
        range_from: u64,
        repo: &str,
        what: &str,
    ) -> Result<Answer> {
        self.with_retries(|| {
            let response = self.send(method, url, range_from)?;
            self.check_status(response, repo, what)
        })
    }

    /// Runs `attempt` until it succeeds, fails for good, or runs out of tries.
    pub(crate) fn with_retries<T>(&self, attempt: impl FnMut() -> Result<T>) -> Result<T> {
        self.with_retries_until(&|| false, &|| 0, attempt)
    }

    /// [`Self::with_retries`], giving up (as cancelled) as soon as `stop` says so, also while
    /// it waits between tries. `progress` counts bytes received: an attempt that moved it
    /// earns a fresh budget of tries, so a long download over a flaky line is not given up
    /// after five drops spread over hours, while a server that never sends a byte still is.
    pub(crate) fn with_retries_until<T>(
        &self,
        stop: &dyn Fn() -> bool,
        progress: &dyn Fn() -> u64,
        mut attempt: impl FnMut() -> Result<T>,
    ) -> Result<T> {
        let mut delay = self.retry_delay;
        let mut tries = 1;
        loop {
            let before = progress();
            match attempt() {
                Err(err @ WickError::HubUnavailable { .. }) => {
                    if progress() > before {
                        delay = self.retry_delay;
                        tries = 1;
                    } else if tries >= ATTEMPTS {
                        return Err(err);
                    }
                    tracing::warn!("{err}; retrying in {delay:?} (try {tries} of {ATTEMPTS})");
                    let until = std::time::Instant::now() + delay;
                    while std::time::Instant::now() < until {
                        if stop() {
                            return Err(WickError::Cancelled);
                        }
                        std::thread::sleep(Duration::from_millis(20).min(delay));
                    }
                    delay *= 2;
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    /// Turns a non-success status into the error a person should see.
    pub(crate) fn check_status(&self, response: Answer, repo: &str, what: &str) -> Result<Answer> {
        let status = response.status();
        if status.is_success() || status.is_redirection() {
            return Ok(response);
        }
        let code = header(&response, "x-error-code").unwrap_or_default();
        let not_found = |what: String| WickError::HubNotFound {
            what,
            endpoint: self.endpoint.clone(),
        };
        Err(match (status, code.as_str()) {
            // The Hub answers 401 both for a repo that does not exist and for a private one.
            (_, "RepoNotFound") if !self.has_token() => not_found(format!(
                "the model `{repo}` (if it is private, set HF_TOKEN to a token that can read it)"
            )),
            (_, "RepoNotFound") => not_found(format!("the model `{repo}`")),
            (_, "RevisionNotFound") => not_found(format!("that revision of `{repo}`")),
            (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN, _) => WickError::HubAuth {
                repo: repo.to_string(),
                status: status.as_u16(),
                page: self.page(repo),
            },
            (StatusCode::NOT_FOUND, _) => not_found(what.to_string()),
            (s, _) if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
                self.unavailable(format!("HTTP {}", s.as_u16()))
            }
            // Asking again will not help: say what the Hub answered.
            (s, _) => WickError::InvalidInput(format!(
                "the Hub ({}) refused the request for {what}: HTTP {}",
                self.endpoint,
                s.as_u16()
            )),
        })
    }

    pub(crate) fn unavailable(&self, detail: String) -> WickError {
        WickError::HubUnavailable {
            endpoint: self.endpoint.clone(),
            detail,
        }
    }

    /// GET of a JSON API route.
    pub(crate) fn get_json(&self, url: &str, repo: &str, what: &str) -> Result<serde_json::Value> {
        self.with_retries(|| {
            let response = self.send("GET", url, 0)?;
            let mut response = self.check_status(response, repo, what)?;
            let text = response
                .body_mut()
                .with_config()
                .limit(64 << 20)
                .read_to_string()
                .map_err(|e| self.unavailable(network_detail(&e)))?;
            serde_json::from_str(&text).map_err(|e| {
                self.unavailable(format!(
                    "the answer to {url} is not JSON the Hub sends: {e}"
                ))
            })
        })
    }
}

/// `HF_TOKEN`, else the token file (`HF_TOKEN_PATH`, else `$HF_HOME/token`).
pub fn token_from_env() -> Option<String> {
    if let Some(token) = non_empty_env("HF_TOKEN") {
        return Some(token.trim().to_string());
    }
    let path = non_empty_env("HF_TOKEN_PATH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| hf_home().join("token"));
    std::fs::read_to_string(path)
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

pub(crate) fn header(response: &Answer, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn network_detail(err: &ureq::Error) -> String {
    match err {
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection refused".into(),
        ureq::Error::Timeout(_) => "the connection timed out".into(),
        other => other.to_string(),
    }
}

/// `scheme://host:port` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// Where a redirect from `url` to `location` leads: a relative location stays on the same
/// origin. Like huggingface_hub, Wick stays on https once there: a downgrade would expose the
/// bytes (and, on the same host, the token) to anyone on the path.
fn redirect_target(url: &str, location: &str) -> Result<String> {
    let next = if location.starts_with('/') {
        format!("{}{location}", origin(url))
    } else {
        location.to_string()
    };
    if is_https(url) && !is_https(&next) {
        return Err(WickError::InvalidInput(format!(
            "{url} redirected to {next}, from https to plain http; refusing to follow"
        )));
    }
    Ok(next)
}

fn is_https(url: &str) -> bool {
    url.get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// The host of a URL, without port or user info (`[::1]` keeps its brackets).
fn host(url: &str) -> &str {
    let origin = origin(url);
    let authority = origin.find("://").map_or(origin, |i| &origin[i + 3..]);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |i| &authority[..=i]);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// A token goes over https, or over plain http only to this machine (a local mirror or the
/// tests' Hub), where nobody else can read it on the way.
fn may_carry_token(url: &str) -> bool {
    if is_https(url) {
        return true;
    }
    let host = host(url).to_ascii_lowercase();
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn same_host(url: &str, endpoint: &str) -> bool {
    origin(url).eq_ignore_ascii_case(origin(endpoint))
}

/// Percent-encodes a path for a URL, keeping the slashes between folders.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Percent-encodes a query value.
pub(crate) fn encode_query(value: &str) -> String {
    encode_path(value).replace('/', "%2F")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_etags() {
        let client = HubClient::new("http://hub.local:8080/", None, HubCache::new("/tmp/x"));
        assert_eq!(
            client.resolve_url("org/m", "refs/pr/1", "sub dir/a+b.json"),
            "http://hub.local:8080/org/m/resolve/refs%2Fpr%2F1/sub%20dir/a%2Bb.json"
        );
        assert_eq!(origin("http://hub.local:8080/a/b"), "http://hub.local:8080");
        assert!(same_host(
            "http://HUB.local:8080/x",
            "http://hub.local:8080"
        ));
        assert!(!same_host("https://cdn.example/x", "http://hub.local:8080"));
        assert!(may_carry_token("https://huggingface.co/x"));
        assert!(may_carry_token("http://127.0.0.1:8080/x"));
        assert!(may_carry_token("http://localhost:8080/x"));
        assert!(may_carry_token("http://[::1]:8080/x"));
        assert!(!may_carry_token("http://mirror.example/x"));
        assert!(!may_carry_token("http://127.0.0.1.evil.example/x"));
        assert!(!may_carry_token("http://localhost@evil.example/x"));
        assert_eq!(host("http://user@hub.local:8080/a"), "hub.local");
        assert_eq!(
            redirect_target("https://hub.example/a/b", "/c/d").unwrap(),
            "https://hub.example/c/d"
        );
        assert_eq!(
            redirect_target("https://hub.example/a", "https://cdn.example/x").unwrap(),
            "https://cdn.example/x"
        );
        assert!(redirect_target("https://hub.example/a", "http://cdn.example/x").is_err());
        assert!(redirect_target("https://hub.example/a", "HTTP://hub.example/x").is_err());
        assert!(redirect_target("http://127.0.0.1:1/a", "http://127.0.0.1:2/x").is_ok());
        assert_eq!(encode_query("text generation/x"), "text%20generation%2Fx");
    }
}
