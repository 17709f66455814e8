//! End-to-end cases for getting models: search the (local) Hub in the real window, watch a
//! download's progress bar, cancel one, download another and run it, and see it loaded in the
//! system panel.

use std::path::Path;

use serde_json::{json, Value};
use wick_tests::hub_server::HubServer;

use crate::encoder_tabs::{run, set};
use crate::webdriver::{Result, Session};
use crate::{ensure, UI_TIMEOUT};

/// The local Hub the app talks to (`HF_ENDPOINT`), started before the window.
pub(crate) static HUB: std::sync::OnceLock<HubServer> = std::sync::OnceLock::new();

fn hub() -> Result<&'static HubServer> {
    HUB.get()
        .ok_or_else(|| "the local Hub did not start".to_string())
}

/// Searches the drawer's Hub search for `words` across all tasks and clicks `id`.
fn search_and_pick(s: &Session, words: &str, id: &str) -> Result<()> {
    set(
        s,
        "[data-testid=model-browser] select[aria-label=Task]",
        &json!(""),
    )?;
    let field = s.find("[data-testid=model-browser] input[type=search]", UI_TIMEOUT)?;
    s.clear(&field)?;
    s.type_text(&field, &format!("{words}\u{E007}"))?;
    let result = s.find(
        &format!("[data-testid=hub-results] [data-id='{id}']"),
        UI_TIMEOUT,
    )?;
    s.scroll_and_click(&result)?;
    // The facts of the model, read from its files on the Hub, with the fit badge.
    s.wait_for(
        "the model's facts",
        "const f = document.querySelector('[data-testid=model-facts]'); \
         return f && f.querySelector('[data-testid=fit-badge]') ? f.textContent : null;",
        UI_TIMEOUT,
        |v| v.is_string(),
    )
    .map(drop)
}

fn download_state(s: &Session, model: &str) -> Result<Value> {
    s.script(
        "const d = document.querySelector(`[data-testid=downloads] .download[data-model='${arguments[0]}']`); \
         if (!d) return null; \
         const bar = d.querySelector('[role=progressbar]'); \
         return [d.querySelector('.badge').textContent, Number(bar.getAttribute('aria-valuenow')), \
                 d.querySelector('.status').textContent];",
        json!([model]),
    )
}

/// Search, pick, download with a visible progress bar, cancel; then download a second model,
/// which becomes the tab's model and runs.
pub(crate) fn search_download_cancel_run(s: &Session, out: &Path) -> Result<()> {
    let hub = hub()?;
    s.scroll_and_click(&s.find("#tab-fill-mask", UI_TIMEOUT)?)?;
    s.scroll_and_click(&s.find("[data-testid=open-models]", UI_TIMEOUT)?)?;
    s.find("[data-testid=model-browser]", UI_TIMEOUT)?;

    // A slow download of SmolLM2, cancelled part way.
    let smollm = "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF";
    search_and_pick(s, "smollm", smollm)?;
    let facts = s.script(
        "return document.querySelector('[data-testid=model-facts]').textContent;",
        json!([]),
    )?;
    let facts = facts.as_str().unwrap_or_default();
    ensure(
        facts.contains("llama") && facts.contains("gguf") && facts.contains("Fits"),
        || format!("facts were: {facts}"),
    )?;
    hub.faults().bytes_per_second = Some(6 << 20);
    let download = s.find("[data-testid=model-facts] .btn.primary", UI_TIMEOUT)?;
    s.scroll_and_click(&download)?;
    let state = wait_download(s, smollm, |v| {
        v[0] == "running" && v[1].as_f64().unwrap_or(0.0) >= 10.0
    })?;
    let status = state[2].as_str().unwrap_or_default();
    ensure(status.contains("MiB/s") && status.contains("left"), || {
        format!("status: {status}")
    })?;
    s.screenshot(&out.join("hub-download-progress.png"))?;
    let cancel = s.find(
        &format!("[data-testid=downloads] .download[data-model='{smollm}'] button"),
        UI_TIMEOUT,
    )?;
    s.scroll_and_click(&cancel)?;
    let state = wait_download(s, smollm, |v| v[0] == "cancelled")?;
    ensure(state[1].as_f64().unwrap_or(100.0) < 100.0, || {
        format!("cancelled at {state}")
    })?;
    hub.faults().bytes_per_second = None;

    // splade-tiny at full speed: done, verified, and set as the fill-mask tab's model.
    let splade = "prithivida/splade-tiny";
    search_and_pick(s, "splade", splade)?;
    s.scroll_and_click(&s.find("[data-testid=model-facts] .btn.primary", UI_TIMEOUT)?)?;
    s.wait_for(
        "the model picker to take the downloaded model",
        "return document.querySelector('#model-path').value;",
        UI_TIMEOUT,
        |v| v == splade,
    )?;
    s.wait_for(
        "the drawer to close",
        "return document.querySelector('[data-testid=model-browser]') === null;",
        UI_TIMEOUT,
        |v| *v == json!(true),
    )?;
    s.find("[data-testid=fit-badge]", UI_TIMEOUT)?;
    run(s)?;
    let candidates = s.script(
        "return document.querySelectorAll('[data-testid=mask-candidates] .bar-row').length;",
        json!([]),
    )?;
    ensure(candidates.as_u64().unwrap_or(0) >= 3, || {
        format!("{candidates} candidates shown")
    })?;
    s.screenshot(&out.join("hub-downloaded-model-runs.png"))?;

    // The drawer remembers both downloads and lists the cache.
    s.scroll_and_click(&s.find("[data-testid=open-models]", UI_TIMEOUT)?)?;
    let done = wait_download(s, splade, |v| v[0] == "done")?;
    let status = done[2].as_str().unwrap_or_default();
    ensure(status.contains("verified"), || {
        format!("splade status: {status}")
    })?;
    s.wait_for(
        "the cache list",
        "return Array.from(document.querySelectorAll('[data-testid=cached-models] .cached-row .mono'))\
         .map(e => e.textContent);",
        UI_TIMEOUT,
        |v| v.as_array().is_some_and(|a| a.iter().any(|x| x == splade) && a.iter().any(|x| x == smollm)),
    )?;
    s.screenshot(&out.join("hub-drawer.png"))?;
    s.scroll_and_click(&s.find(
        "[data-testid=model-browser] .drawer-head button",
        UI_TIMEOUT,
    )?)?;
    Ok(())
}

fn wait_download(s: &Session, model: &str, done: impl Fn(&Value) -> bool) -> Result<Value> {
    let started = std::time::Instant::now();
    loop {
        let state = download_state(s, model)?;
        if !state.is_null() && done(&state) {
            return Ok(state);
        }
        if started.elapsed() > UI_TIMEOUT {
            return Err(format!("download of {model} stuck at {state}"));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// The system panel shows the machine and the model loaded by the previous case.
pub(crate) fn system_panel(s: &Session, out: &Path) -> Result<()> {
    s.scroll_and_click(&s.find("[data-testid=open-system]", UI_TIMEOUT)?)?;
    let loaded = s.wait_for(
        "the loaded models",
        "const l = document.querySelector('[data-testid=loaded-models]'); return l ? l.textContent : null;",
        UI_TIMEOUT,
        |v| v.as_str().is_some_and(|t| t.contains("splade")),
    )?;
    let panel = s.script(
        "return document.querySelector('[data-testid=system-panel]').textContent;",
        json!([]),
    )?;
    let panel = panel.as_str().unwrap_or_default();
    ensure(panel.contains("free of") && panel.contains("cpu"), || {
        format!("panel: {panel}")
    })?;
    drop(loaded);
    s.screenshot(&out.join("system-panel.png"))?;
    s.scroll_and_click(&s.find("[data-testid=system-panel] .drawer-head button", UI_TIMEOUT)?)
}
