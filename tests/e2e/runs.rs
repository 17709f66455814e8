//! End-to-end cases for how runs are run: the device picker, a second run waiting for the first
//! (with Cancel), and a model load shown as progress and cancelled half way.

use std::path::Path;

use serde_json::{json, Value};
use wick_tests::model_dir;

use crate::encoder_tabs::{open_tab, run, set, RUNS};
use crate::generation_tab::start_long_completion;
use crate::webdriver::{Result, Session};
use crate::{ensure, UI_TIMEOUT};

/// The picker lists the CPU, usable, and a GPU this build or machine cannot use, disabled with
/// the reason; a run on the CPU says it ran there.
pub fn device_picker(s: &Session, out: &Path) -> Result<()> {
    let options = s.script(
        "return Array.from(document.querySelectorAll('#device option'))\
         .map(o => ({value: o.value, disabled: o.disabled, text: o.textContent.trim(), title: o.title}));",
        json!([]),
    )?;
    let options = options.as_array().cloned().unwrap_or_default();
    ensure(options.len() >= 2, || format!("device options {options:?}"))?;
    ensure(
        options[0]["value"] == "cpu" && options[0]["disabled"] == false,
        || format!("the CPU first and usable: {:?}", options[0]),
    )?;
    let gpu = &options[1];
    let text = gpu["text"].as_str().unwrap_or_default();
    ensure(
        gpu["disabled"] == true
            && text.contains("unavailable")
            && (text.contains("no CUDA support")
                || text.contains("no such device")
                || text.contains("CPU only so far")),
        || format!("the GPU should be disabled with its reason: {gpu:?}"),
    )?;
    ensure(gpu["title"] != Value::Null && gpu["title"] != "", || {
        format!("the reason is also the option's tooltip: {gpu:?}")
    })?;
    set(s, "#device", &json!("cpu"))?;
    open_tab(s, "fill-mask", &model_dir("splade-tiny"))?;
    set(s, "#task-input", &json!("Paris is the [MASK] of France."))?;
    run(s)?;
    let device = s.script(
        "return document.querySelector('[data-testid=run-meta] .pill:nth-child(2)')?.textContent ?? '';",
        json!([]),
    )?;
    ensure(
        device.as_str().is_some_and(|d| d.starts_with("cpu ·")),
        || format!("the result says it ran on {device}"),
    )?;
    s.screenshot(&out.join("device-picker.png"))
}

/// A comparison started while a generation runs waits for it (the window says so, with a
/// Cancel), and cancelling it leaves the generation running.
pub fn second_run_waits(s: &Session, out: &Path) -> Result<()> {
    open_tab(s, "text-generation", &model_dir("smollm2-135m-instruct"))?;
    let before = start_long_completion(s)?;
    s.script(
        "document.querySelector('[data-testid=compare]').open = true; return true;",
        json!([]),
    )?;
    let compare_runs =
        "return Number(document.querySelector('[data-testid=compare]').dataset.runs);";
    let compare_before = s.script(compare_runs, json!([]))?;
    s.scroll_and_click(&s.find("#compare-run", UI_TIMEOUT)?)?;
    let status = s.wait_for(
        "the comparison to wait for the generation",
        "const r = document.querySelector('[data-testid=compare] [data-testid=run-status]'); \
         return r ? [r.dataset.phase, r.textContent.trim()] : null;",
        UI_TIMEOUT,
        |v| v.get(0).and_then(Value::as_str) == Some("queued"),
    )?;
    ensure(
        status[1]
            .as_str()
            .is_some_and(|t| t.contains("Waiting for the other run")),
        || format!("status {status}"),
    )?;
    s.screenshot(&out.join("run-queued.png"))?;
    s.scroll_and_click(&s.find("[data-testid=compare] [data-testid=run-cancel]", UI_TIMEOUT)?)?;
    s.wait_for("the comparison to end", compare_runs, UI_TIMEOUT, |v| {
        *v != compare_before
    })?;
    let note = s.script(
        "return document.querySelector('[data-testid=compare] .notice')?.textContent ?? '';",
        json!([]),
    )?;
    ensure(note == "Cancelled.", || format!("compare note {note}"))?;
    let still = s.script(RUNS, json!([]))?;
    ensure(still == before, || {
        "the generation ended with the comparison".into()
    })?;
    s.scroll_and_click(&s.find("[data-testid=run-cancel]", UI_TIMEOUT)?)?;
    s.wait_for("the generation to stop", RUNS, UI_TIMEOUT, |v| *v != before)?;
    Ok(())
}

/// Loading Gemma 3 dequantized to f32 (seconds of work) shows a progress bar of bytes and
/// layers; Stop ends the load, and the window says the run stopped before its first token.
pub fn load_progress_and_cancel(s: &Session, out: &Path) -> Result<()> {
    let model = model_dir("gemma3-270m");
    open_tab(s, "text-generation", &model)?;
    s.scroll_and_click(&s.find("#mode-completion", UI_TIMEOUT)?)?;
    set(s, "#quantization", &json!("f32"))?;
    set(s, "#task-input", &json!("The capital of France is"))?;
    let before = s.script(RUNS, json!([]))?;
    s.scroll_and_click(&s.find("#run", UI_TIMEOUT)?)?;
    let progress = s.wait_for(
        "the load's progress",
        "const r = document.querySelector('[data-testid=run-status]'); \
         const b = r && r.querySelector('[role=progressbar]'); \
         return r && r.dataset.phase === 'loading' && b \
           ? [Number(b.getAttribute('aria-valuenow')), r.textContent.trim()] : null;",
        UI_TIMEOUT,
        |v| !v.is_null(),
    )?;
    ensure(
        progress[1]
            .as_str()
            .is_some_and(|t| t.contains("Loading") && t.contains("MiB")),
        || format!("progress {progress}"),
    )?;
    s.screenshot(&out.join("load-progress.png"))?;
    s.scroll_and_click(&s.find("[data-testid=run-cancel]", UI_TIMEOUT)?)?;
    s.wait_for("the load to stop", RUNS, UI_TIMEOUT, |v| *v != before)?;
    let shown = s.script(
        "return [document.querySelector('[data-testid=cancelled]')?.textContent ?? '', \
         document.querySelector('.run-card .error-banner')?.textContent ?? ''];",
        json!([]),
    )?;
    ensure(
        shown[0] == "Stopped before the first token." && shown[1] == "",
        || format!("after the cancel: {shown}"),
    )?;
    // Back to the weights as stored for the next cases.
    set(s, "#quantization", &json!("as_stored"))
}
