//! End-to-end cases for the text-generation tab on SmolLM2-135M-Instruct (GGUF Q4_1): a chat
//! reply streams in and equals the engine's own greedy answer, token details show alternatives,
//! a branch regenerates from a chosen alternative, and Stop ends a long run within a token.

use std::path::Path;

use serde_json::{json, Map, Value};
use wick_engine::tasks::text_generation::TextGenerator;
use wick_tests::model_dir;

use crate::encoder_tabs::{open_tab, run, set, RUNS};
use crate::webdriver::{Result, Session};
use crate::{ensure, UI_TIMEOUT};
use wick_engine::loading::LoadSpec;
use wick_engine::tasks::RunControl;

const QUESTION: &str = "What is the capital of France?";

/// The engine's greedy reply to one user message (what the tab must show).
fn engine_reply(model: &Path, messages: Value, max_new_tokens: usize) -> Result<String> {
    let generator = LoadSpec::new(model)
        .and_then(|spec| TextGenerator::load(&spec))
        .map_err(|e| e.to_string())?;
    let kwargs: Map<String, Value> = json!({"max_new_tokens": max_new_tokens, "do_sample": false})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let (_, results, _) = generator
        .call(&messages, &kwargs, &mut |_, _| true, &RunControl::default())
        .map_err(|e| e.to_string())?;
    Ok(results
        .first()
        .and_then(|r| r.sequences.first())
        .map(|s| s.text.clone())
        .unwrap_or_default())
}

fn reply_text(s: &Session) -> Result<String> {
    let v = s.script(
        "const t = document.querySelector('.msg.live [data-testid=token-stream]'); \
         return t ? Array.from(t.querySelectorAll('.tok')).map(e => e.textContent).join('') : '';",
        json!([]),
    )?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

fn greedy(s: &Session, max_new_tokens: usize) -> Result<()> {
    s.scroll_and_click(&s.find(".presets button:first-child", UI_TIMEOUT)?)?;
    set(
        s,
        ".params input[type=number]",
        &json!(max_new_tokens.to_string()),
    )
}

pub fn chat(s: &Session, out: &Path) -> Result<()> {
    let model = model_dir("smollm2-135m-instruct");
    open_tab(s, "text-generation", &model)?;
    s.scroll_and_click(&s.find("#mode-chat", UI_TIMEOUT)?)?;
    greedy(s, 24)?;
    set(s, "#task-input", &json!(QUESTION))?;
    run(s)?;
    let got = reply_text(s)?;
    let want = engine_reply(&model, json!([{"role": "user", "content": QUESTION}]), 24)?;
    ensure(got == want, || {
        format!("the tab shows {got:?}, the engine says {want:?}")
    })?;
    ensure(!got.trim().is_empty(), || "empty reply".into())?;
    let stats = s.script(
        "return document.querySelector('[data-testid=run-meta]')?.textContent ?? '';",
        json!([]),
    )?;
    let stats = stats.as_str().unwrap_or_default();
    ensure(stats.contains("Q4_1") && stats.contains("tok/s"), || {
        format!("stats {stats}")
    })?;
    // Focusing a token shows its probability and the alternatives.
    s.script(
        "document.querySelector('.msg.live .tok[data-index=\"1\"]').focus(); return true;",
        json!([]),
    )?;
    let rows = s.wait_for(
        "the token's alternatives",
        "return document.querySelectorAll('[data-testid=token-detail] tbody tr').length;",
        UI_TIMEOUT,
        |v| v.as_u64().unwrap_or(0) >= 2,
    )?;
    ensure(rows.as_u64().unwrap_or(0) <= 8, || format!("{rows} rows"))?;
    s.screenshot(&out.join("tab-text-generation.png"))
}

/// Clicking an alternative regenerates the reply from that token with it.
pub fn branch(s: &Session, out: &Path) -> Result<()> {
    let before = s.script(RUNS, json!([]))?;
    let alt = s.script(
        "const b = document.querySelector('[data-testid=token-detail] button.alt:not([disabled])'); \
         if (!b) return null; const t = b.textContent; b.click(); return t;",
        json!([]),
    )?;
    ensure(alt.is_string(), || "no alternative to click".into())?;
    s.wait_for("the branch to finish", RUNS, UI_TIMEOUT, |v| *v != before)?;
    let prefix = s.script(
        "return document.querySelector('.msg.live .prefix')?.textContent ?? '';",
        json!([]),
    )?;
    let prefix = prefix.as_str().unwrap_or_default();
    let alt = alt
        .as_str()
        .unwrap_or_default()
        .replace('␣', " ")
        .replace('↵', "\n");
    ensure(prefix.ends_with(&alt), || {
        format!("the branch starts {prefix:?}, not with {alt:?}")
    })?;
    s.screenshot(&out.join("tab-text-generation-branch.png"))
}

/// Starts a long sampled completion (400 tokens) in the open text-generation tab and waits for
/// its first few tokens; returns the tab's finished-run count from before it.
pub(crate) fn start_long_completion(s: &Session) -> Result<Value> {
    s.scroll_and_click(&s.find("#mode-completion", UI_TIMEOUT)?)?;
    s.scroll_and_click(&s.find(".presets button:nth-child(2)", UI_TIMEOUT)?)?;
    set(s, ".params input[type=number]", &json!("400"))?;
    set(s, "#task-input", &json!("Once upon a time"))?;
    let before = s.script(RUNS, json!([]))?;
    s.scroll_and_click(&s.find("#run", UI_TIMEOUT)?)?;
    s.wait_for(
        "a few tokens",
        "return Number(document.querySelector('[data-testid=completion] [data-testid=token-stream]')?.dataset.count ?? 0);",
        UI_TIMEOUT,
        |v| v.as_u64().unwrap_or(0) >= 3,
    )?;
    Ok(before)
}

/// Stop ends a long sampled run after the token in progress.
pub fn stop(s: &Session, out: &Path) -> Result<()> {
    let before = start_long_completion(s)?;
    s.scroll_and_click(&s.find("[data-testid=run-cancel]", UI_TIMEOUT)?)?;
    s.wait_for("the run to stop", RUNS, UI_TIMEOUT, |v| *v != before)?;
    let reason = s.script(
        "return document.querySelector('[data-testid=stop-reason]')?.textContent ?? '';",
        json!([]),
    )?;
    ensure(reason == "stopped", || format!("stop reason {reason}"))?;
    let count = s.script(
        "return Number(document.querySelector('[data-testid=token-stream]').dataset.count);",
        json!([]),
    )?;
    ensure(count.as_u64().unwrap_or(400) < 100, || {
        format!("{count} tokens after Stop")
    })?;
    s.screenshot(&out.join("tab-text-generation-stop.png"))
}

fn output_text(s: &Session) -> Result<String> {
    let v = s.script(
        "const t = document.querySelector('[data-testid=output] [data-testid=token-stream]'); \
         return t ? Array.from(t.querySelectorAll('.tok')).map(e => e.textContent).join('') : '';",
        json!([]),
    )?;
    Ok(v.as_str().unwrap_or_default().to_string())
}

/// The engine's answer for the same call.
fn engine_text2text(
    task: wick_engine::tasks::Task,
    model: &Path,
    text: &str,
    kwargs: Value,
) -> Result<String> {
    let pipeline = LoadSpec::new(model)
        .and_then(|spec| wick_engine::tasks::pipeline::Pipeline::load(task, &spec))
        .map_err(|e| e.to_string())?;
    let kwargs: Map<String, Value> = kwargs.as_object().cloned().unwrap_or_default();
    let (_, results, _) = pipeline
        .stream(
            &json!(text),
            &kwargs,
            &mut |_, _| true,
            &RunControl::default(),
        )
        .map_err(|e| e.to_string())?;
    Ok(results
        .first()
        .and_then(|r| r.sequences.first())
        .map(|s| s.text.clone())
        .unwrap_or_default())
}

pub fn translation(s: &Session, out: &Path) -> Result<()> {
    let model = model_dir("flan-t5-small-titles");
    open_tab(s, "translation", &model)?;
    let text = "The weather is nice today.";
    set(s, "#task-input", &json!(text))?;
    set(s, "#decoding", &json!("greedy"))?;
    run(s)?;
    let got = output_text(s)?;
    let want = engine_text2text(
        wick_engine::tasks::Task::Translation,
        &model,
        text,
        json!({"num_beams": 1, "do_sample": false, "max_new_tokens": 128, "src_lang": "en", "tgt_lang": "de"}),
    )?;
    ensure(got == want && got.contains("Wetter"), || {
        format!("the tab shows {got:?}, the engine says {want:?}")
    })?;
    s.screenshot(&out.join("tab-translation.png"))
}

pub fn summarization(s: &Session, out: &Path) -> Result<()> {
    let model = model_dir("flan-t5-small-titles");
    open_tab(s, "summarization", &model)?;
    let text = "Researchers at the university have built a small robot that can climb walls using tiny hooks inspired by insects. They hope it will help inspect bridges and tall buildings.";
    set(s, "#task-input", &json!(text))?;
    run(s)?;
    let got = output_text(s)?;
    let want = engine_text2text(
        wick_engine::tasks::Task::Summarization,
        &model,
        text,
        json!({"max_new_tokens": 128}),
    )?;
    ensure(got == want && !got.is_empty(), || {
        format!("the tab shows {got:?}, the engine says {want:?}")
    })?;
    s.screenshot(&out.join("tab-summarization.png"))
}

/// The comparison panel runs the prompt on the GGUF's own Q4_1 and on f32 weights.
pub fn compare_variants(s: &Session, out: &Path) -> Result<()> {
    let model = model_dir("smollm2-135m-instruct");
    open_tab(s, "text-generation", &model)?;
    s.scroll_and_click(&s.find("#mode-completion", UI_TIMEOUT)?)?;
    set(s, "#task-input", &json!("The capital of France is"))?;
    s.script(
        "document.querySelector('[data-testid=compare]').open = true; return true;",
        json!([]),
    )?;
    set(s, "#compare-b", &json!("f32"))?;
    set(s, "[data-testid=compare] input[type=number]", &json!("8"))?;
    let runs = "return Number(document.querySelector('[data-testid=compare]').dataset.runs);";
    let before = s.script(runs, json!([]))?;
    s.scroll_and_click(&s.find("#compare-run", UI_TIMEOUT)?)?;
    s.wait_for("the comparison", runs, UI_TIMEOUT, |v| *v != before)?;
    let summary = s.script(
        "return document.querySelector('[data-testid=compare-summary]')?.textContent ?? \
         document.querySelector('[data-testid=compare] .error-banner')?.textContent ?? '';",
        json!([]),
    )?;
    let summary = summary.as_str().unwrap_or_default().to_string();
    ensure(
        summary.contains("agreement") && summary.contains("KL"),
        || format!("comparison: {summary}"),
    )?;
    let count = s.script(
        "return document.querySelectorAll('[data-testid=compare-tokens] .t').length;",
        json!([]),
    )?;
    ensure(count.as_u64().unwrap_or(0) >= 1, || {
        format!("{count} tokens")
    })?;
    s.screenshot(&out.join("tab-text-generation-compare.png"))
}

/// num_return_sequences draws every sequence (a picker switches between them) and stop strings
/// end each: three sampled completions with a seed equal the engine's three for the same call.
pub fn sequences(s: &Session, out: &Path) -> Result<()> {
    let model = model_dir("smollm2-135m-instruct");
    open_tab(s, "text-generation", &model)?;
    s.scroll_and_click(&s.find("#mode-completion", UI_TIMEOUT)?)?;
    s.scroll_and_click(&s.find(".presets button:nth-child(2)", UI_TIMEOUT)?)?;
    set(s, ".params input[type=number]", &json!("24"))?;
    set(s, ".params input[placeholder=random]", &json!("7"))?;
    set(s, "#num-return-sequences", &json!("3"))?;
    set(s, "#stop-strings", &json!("."))?;
    const PROMPT: &str = "My favourite animal is";
    set(s, "#task-input", &json!(PROMPT))?;
    run(s)?;
    let mut shown = Vec::new();
    for i in 1..=3 {
        s.scroll_and_click(&s.find(
            &format!("[data-testid=sequences] button:nth-child({i})"),
            UI_TIMEOUT,
        )?)?;
        let text = s.script(
            "const t = document.querySelector('[data-testid=completion] [data-testid=token-stream]'); \
             return Array.from(t.querySelectorAll('.tok')).map(e => e.textContent).join('');",
            json!([]),
        )?;
        shown.push(text.as_str().unwrap_or_default().to_string());
    }
    let generator = LoadSpec::new(&model)
        .and_then(|spec| TextGenerator::load(&spec))
        .map_err(|e| e.to_string())?;
    let kwargs: Map<String, Value> = json!({
        "max_new_tokens": 24, "do_sample": true, "temperature": 0.7, "top_k": 50, "top_p": 0.95,
        "repetition_penalty": 1.1, "seed": 7, "num_return_sequences": 3, "stop_strings": ["."],
        "return_full_text": false,
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    let (_, results, _) = generator
        .call(
            &json!(PROMPT),
            &kwargs,
            &mut |_, _| true,
            &RunControl::default(),
        )
        .map_err(|e| e.to_string())?;
    let want: Vec<String> = results
        .first()
        .map(|r| r.sequences.iter().map(|q| q.text.clone()).collect())
        .unwrap_or_default();
    ensure(shown == want && want.len() == 3, || {
        format!("the window drew {shown:?}, the engine says {want:?}")
    })?;
    ensure(
        want.iter()
            .all(|t| t.trim_end().ends_with('.') || t.len() > 60),
        || format!("stop string not honoured: {want:?}"),
    )?;
    s.screenshot(&out.join("tab-text-generation-sequences.png"))?;
    // Leave the settings as the next cases expect them.
    set(s, "#num-return-sequences", &json!("1"))?;
    set(s, "#stop-strings", &json!(""))
}
