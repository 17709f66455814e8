//! A small W3C WebDriver client: just the calls the end-to-end tests make.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub type Result<T> = std::result::Result<T, String>;

/// A running WebKitWebDriver with one session on the Wick app.
pub struct Driver {
    process: Child,
    base: String,
    agent: ureq::Agent,
}

/// A session: the app's window.
pub struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

impl Driver {
    /// Starts WebKitWebDriver. `TAURI_WEBVIEW_AUTOMATION` lets it attach to a Tauri webview;
    /// without it, creating a session hangs. `env` reaches the app it launches.
    pub fn start(env: &[(&str, &str)]) -> Result<Self> {
        let port = free_port()?;
        let process = Command::new("WebKitWebDriver")
            .arg(format!("--port={port}"))
            .env("TAURI_WEBVIEW_AUTOMATION", "true")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                format!("cannot start WebKitWebDriver (apt package webkit2gtk-driver): {e}")
            })?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let driver = Self {
            process,
            base: format!("http://127.0.0.1:{port}"),
            agent,
        };
        let started = Instant::now();
        while driver.get("/status").is_err() {
            if started.elapsed() > Duration::from_secs(20) {
                return Err("WebKitWebDriver did not answer within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(driver)
    }

    fn get(&self, path: &str) -> Result<Value> {
        let resp = self
            .agent
            .get(&format!("{}{path}", self.base))
            .call()
            .map_err(|e| e.to_string())?;
        Self::value(resp)
    }

    fn post(&self, path: &str, body: Value) -> Result<Value> {
        let resp = self
            .agent
            .post(&format!("{}{path}", self.base))
            .send_json(body)
            .map_err(|e| e.to_string())?;
        Self::value(resp)
    }

    fn delete(&self, path: &str) -> Result<Value> {
        let resp = self
            .agent
            .delete(&format!("{}{path}", self.base))
            .call()
            .map_err(|e| e.to_string())?;
        Self::value(resp)
    }

    /// WebDriver answers `{"value": ...}`; errors carry `value.error` and `value.message`.
    fn value(mut resp: ureq::http::Response<ureq::Body>) -> Result<Value> {
        let status = resp.status();
        let body: Value = resp
            .body_mut()
            .read_json()
            .map_err(|e| format!("HTTP {status}: unreadable body: {e}"))?;
        let value = body.get("value").cloned().unwrap_or(Value::Null);
        if status.is_success() {
            Ok(value)
        } else {
            Err(format!(
                "HTTP {status}: {} {}",
                value["error"].as_str().unwrap_or("?"),
                value["message"].as_str().unwrap_or("")
            ))
        }
    }

    /// Launches the app and opens a session on its window.
    pub fn open_app(&self, app: &Path) -> Result<Session<'_>> {
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "webkitgtk:browserOptions": { "binary": app.display().to_string(), "args": [] }
                }
            }
        });
        let value = self.post("/session", caps)?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| format!("no session id in {value}"))?
            .to_string();
        Ok(Session { driver: self, id })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

impl Session<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.id)
    }

    /// Runs JavaScript in the window and returns its result.
    pub fn script(&self, script: &str, args: Value) -> Result<Value> {
        self.driver.post(
            &self.path("/execute/sync"),
            json!({ "script": script, "args": args }),
        )
    }

    /// Runs JavaScript that finishes by calling its last argument (WebDriver's asynchronous
    /// script), and returns what it was called with: one request that waits in the page, where
    /// polling would send a request every few hundred milliseconds.
    pub fn script_async(&self, script: &str, args: Value) -> Result<Value> {
        self.driver.post(
            &self.path("/execute/async"),
            json!({ "script": script, "args": args }),
        )
    }

    /// Finds an element by CSS selector, waiting up to `timeout` for it to appear.
    pub fn find(&self, css: &str, timeout: Duration) -> Result<String> {
        let started = Instant::now();
        loop {
            let found = self.driver.post(
                &self.path("/element"),
                json!({ "using": "css selector", "value": css }),
            );
            match found {
                Ok(v) => {
                    if let Some(id) = v.as_object().and_then(|o| o.values().next()) {
                        return id
                            .as_str()
                            .map(str::to_string)
                            .ok_or_else(|| format!("odd element reference {v}"));
                    }
                }
                Err(e) if started.elapsed() > timeout => {
                    return Err(format!("`{css}` did not appear: {e}"))
                }
                Err(_) => {}
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    pub fn click(&self, element: &str) -> Result<()> {
        self.driver
            .post(&self.path(&format!("/element/{element}/click")), json!({}))
            .map(drop)
    }

    pub fn clear(&self, element: &str) -> Result<()> {
        self.driver
            .post(&self.path(&format!("/element/{element}/clear")), json!({}))
            .map(drop)
    }

    /// Types text as key presses, the way a person would; a newline is the Enter key.
    /// (WebKitWebDriver cannot type characters outside the BMP, such as emoji: see `paste`.)
    pub fn type_text(&self, element: &str, text: &str) -> Result<()> {
        let keys = text.replace('\n', "\u{E007}");
        self.driver
            .post(
                &self.path(&format!("/element/{element}/value")),
                json!({ "text": keys }),
            )
            .map(drop)
    }

    /// Puts text into a field as a paste does: the value changes at once, then `input` fires.
    pub fn paste(&self, css: &str, text: &str) -> Result<()> {
        self.script(
            "const el = document.querySelector(arguments[0]); el.focus(); el.value = arguments[1]; \
             el.dispatchEvent(new Event('input', { bubbles: true })); return true;",
            json!([css, text]),
        )
        .map(drop)
    }

    /// Scrolls an element into view and clicks it.
    pub fn scroll_and_click(&self, element: &str) -> Result<()> {
        self.driver.post(
            &self.path("/execute/sync"),
            json!({
                "script": "arguments[0].scrollIntoView({block: 'nearest', inline: 'nearest'}); return true;",
                "args": [{ "element-6066-11e4-a52e-4f735466cecf": element }]
            }),
        )?;
        self.click(element)
    }

    /// Saves a PNG of the window, once the page has painted its latest state: WebKit's
    /// snapshot can otherwise show regions from an older frame.
    pub fn screenshot(&self, file: &Path) -> Result<()> {
        self.driver.post(
            &self.path("/execute/async"),
            json!({
                "script": "const done = arguments[arguments.length - 1]; \
                           requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                "args": []
            }),
        )?;
        std::thread::sleep(Duration::from_millis(250));
        let value = self.driver.get(&self.path("/screenshot"))?;
        let b64 = value.as_str().ok_or("screenshot is not a string")?;
        let png = decode_base64(b64)?;
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        }
        std::fs::write(file, png).map_err(|e| format!("{}: {e}", file.display()))
    }

    /// Polls `script` until `accept` says its value is final, or `timeout` passes.
    pub fn wait_for(
        &self,
        what: &str,
        script: &str,
        timeout: Duration,
        accept: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let started = Instant::now();
        loop {
            let value = self.script(script, json!([]))?;
            if accept(&value) {
                return Ok(value);
            }
            if started.elapsed() > timeout {
                return Err(format!("timed out waiting for {what}; last value: {value}"));
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    pub fn close(self) -> Result<()> {
        self.driver.delete(&self.path("")).map(drop)
    }
}

/// Standard base64 (the screenshot encoding), decoded without pulling in a crate for it.
fn decode_base64(text: &str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
    {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("invalid base64 byte {c}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}
