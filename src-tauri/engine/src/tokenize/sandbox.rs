//! Chat templates rendered in a helper process, where a template that exhausts memory takes down
//! only the helper. Fuel and the output cap ([`super::template`]) stop loops and endless output,
//! but a template that doubles a string 40 times allocates terabytes in a few instructions, and
//! in Rust a failed allocation aborts the process: the app window would die with it.
//!
//! The helper is this same executable, started with [`HELPER_ENV`] set: each binary calls
//! [`serve_if_helper`] first thing in `main`, and [`isolate_templates`] to have its renders sent
//! there. The helper stays up between renders (starting the app's executable, which links
//! WebKit, takes tens of milliseconds), runs under an address-space limit, and is killed and
//! started again when a render is cancelled, takes too long or kills it. A library user who
//! does not opt in renders in its own process, with fuel and the output cap.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::template::{render_here, template_error, RenderRequest};
use crate::cancel::CancelToken;
use crate::error::{Result, WickError};

/// Set (to `1`) in the helper's environment.
pub const HELPER_ENV: &str = "WICK_CHAT_TEMPLATE_HELPER";

/// The helper's address-space limit. A render needs a few MiB; the rest is the executable's own
/// mappings (the app links WebKit and GTK).
const MEMORY_LIMIT: u64 = 2 << 30;

/// A render that has not answered in this long is stopped (fuel normally stops it sooner).
const DEADLINE: Duration = Duration::from_secs(30);

/// The executable to start as the helper, once [`isolate_templates`] was called.
static HELPER_EXE: OnceLock<PathBuf> = OnceLock::new();

/// The running helper, shared by all renders of the process (one at a time).
static HELPER: Mutex<Option<Helper>> = Mutex::new(None);

#[derive(Serialize, Deserialize)]
enum Answer {
    Rendered(String),
    Failed(String),
}

/// Called first thing in `main`: in the helper process, serves renders until its input closes
/// and exits; anywhere else, returns at once.
pub fn serve_if_helper() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    limit_memory();
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    for line in stdin.lines() {
        let Ok(line) = line else { break };
        let answer = match serde_json::from_str::<RenderRequest>(&line) {
            Ok(request) => match render_here(&request, None) {
                Ok(text) => Answer::Rendered(text),
                Err(err) => Answer::Failed(err.to_string()),
            },
            Err(err) => Answer::Failed(format!("a bad request from Wick: {err}")),
        };
        let sent = serde_json::to_string(&answer)
            .map(|json| writeln!(stdout, "{json}").and_then(|()| stdout.flush()));
        if !matches!(sent, Ok(Ok(()))) {
            break;
        }
    }
    std::process::exit(0);
}

/// Renders of this process go to a helper process from now on (the CLI and the app call this).
pub fn isolate_templates() {
    match std::env::current_exe() {
        Ok(exe) => {
            let _ = HELPER_EXE.set(exe);
        }
        Err(err) => tracing::warn!("chat templates render in this process: {err}"),
    }
}

/// Starts the helper now, on a thread of its own, so that the first chat does not wait for it:
/// the app's executable takes about a quarter of a second to start (it links WebKit), which
/// would land on the first token of the first chat. The CLI starts it when a template is used.
pub fn start_helper_early() {
    let Some(exe) = HELPER_EXE.get() else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("chat-template-helper-start".into())
        .spawn(move || {
            let mut slot = HELPER.lock().unwrap_or_else(|p| p.into_inner());
            if slot.is_none() {
                match Helper::start(exe) {
                    Ok(helper) => *slot = Some(helper),
                    Err(err) => tracing::warn!("the chat template helper did not start: {err}"),
                }
            }
        });
    if let Err(err) = spawned {
        tracing::warn!("the chat template helper did not start: {err}");
    }
}

/// Renders `request` in the helper when templates are isolated, else here.
pub fn render(request: &RenderRequest, cancel: &CancelToken) -> Result<String> {
    let Some(exe) = HELPER_EXE.get() else {
        return render_here(request, Some(cancel));
    };
    let line = serde_json::to_string(request)
        .map_err(|e| WickError::ModelFailed(format!("chat template request: {e}")))?;
    let mut slot = HELPER.lock().unwrap_or_else(|p| p.into_inner());
    // A helper that died since the last render (or was killed) is started again, once.
    for attempt in 0..2 {
        if slot.is_none() {
            match Helper::start(exe) {
                Ok(helper) => *slot = Some(helper),
                Err(err) => {
                    tracing::warn!("no chat template helper ({err}); rendering here");
                    return render_here(request, Some(cancel));
                }
            }
        }
        let Some(helper) = slot.as_mut() else {
            continue;
        };
        if helper.send(&line).is_err() && attempt == 0 {
            *slot = None;
            continue;
        }
        let outcome = helper.answer(cancel);
        if !matches!(outcome, Outcome::Answered(_)) {
            if let Some(mut helper) = slot.take() {
                helper.stop();
            }
        }
        return match outcome {
            Outcome::Answered(Answer::Rendered(text)) => Ok(text),
            Outcome::Answered(Answer::Failed(message)) => Err(WickError::InvalidInput(message)),
            Outcome::Cancelled => Err(WickError::Cancelled),
            Outcome::TimedOut => Err(template_error(format!(
                "it did not finish in {} s",
                DEADLINE.as_secs()
            ))),
            Outcome::Died(how) => Err(template_error(format!(
                "rendering it {how} (it likely tried to use more than {} GiB of memory)",
                MEMORY_LIMIT >> 30
            ))),
        };
    }
    render_here(request, Some(cancel))
}

enum Outcome {
    Answered(Answer),
    Cancelled,
    TimedOut,
    /// How the helper ended.
    Died(String),
}

struct Helper {
    child: Child,
    input: ChildStdin,
    /// The helper's answers, one per line, read on a thread so that waiting can be cancelled.
    answers: Receiver<String>,
}

impl Helper {
    fn start(exe: &PathBuf) -> std::io::Result<Self> {
        let mut child = Command::new(exe)
            .env(HELPER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // An abort's "memory allocation failed" must not reach the user's terminal.
            .stderr(Stdio::null())
            .spawn()?;
        let (Some(input), Some(output)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(std::io::Error::other("no pipes to the helper"));
        };
        let (send, answers) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("chat-template-answers".into())
            .spawn(move || {
                for line in BufReader::new(output).lines() {
                    let Ok(line) = line else { break };
                    if send.send(line).is_err() {
                        break;
                    }
                }
            })?;
        Ok(Self {
            child,
            input,
            answers,
        })
    }

    fn send(&mut self, line: &str) -> std::io::Result<()> {
        writeln!(self.input, "{line}")?;
        self.input.flush()
    }

    fn answer(&mut self, cancel: &CancelToken) -> Outcome {
        let deadline = Instant::now() + DEADLINE;
        loop {
            match self.answers.recv_timeout(Duration::from_millis(10)) {
                Ok(line) => {
                    return match serde_json::from_str(&line) {
                        Ok(answer) => Outcome::Answered(answer),
                        Err(_) => Outcome::Died("answered nonsense".into()),
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let how = match self.child.wait() {
                        Ok(status) => describe_exit(status),
                        Err(err) => err.to_string(),
                    };
                    return Outcome::Died(how);
                }
                Err(RecvTimeoutError::Timeout) => {
                    if cancel.is_cancelled() {
                        return Outcome::Cancelled;
                    }
                    if Instant::now() > deadline {
                        return Outcome::TimedOut;
                    }
                }
            }
        }
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stop();
    }
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("stopped the helper process with signal {signal}");
        }
    }
    format!("ended the helper process ({status})")
}

/// The helper's own address-space limit, so that a runaway allocation fails there (and ends the
/// helper) instead of swapping the machine to a halt first.
fn limit_memory() {
    #[cfg(unix)]
    {
        use rlimit::Resource;
        // Never above a limit the helper inherited (`prlimit`, a container): lowering is allowed.
        let (soft, hard) = Resource::AS
            .get()
            .unwrap_or((rlimit::INFINITY, rlimit::INFINITY));
        let limit = MEMORY_LIMIT.min(soft).min(hard);
        if Resource::AS.set(limit, limit).is_err() {
            tracing::warn!("the chat template helper runs without a memory limit");
        }
    }
}
