//! End-to-end cases for the six encoder tabs: each runs a real model (or, for tasks no registry
//! ships a trained model for, the tiny fixture checkpoint) in the real window, checks the
//! picture against the engine's own answer, and saves a screenshot.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};
use wick_engine::loading::LoadSpec;
use wick_engine::tasks::pipeline::Pipeline;
use wick_engine::tasks::Task;
use wick_tests::{fixture, model_dir};

use crate::webdriver::{Result, Session};
use crate::{choose_model, ensure, UI_TIMEOUT};

/// Opens a task's tab and points it at `model`.
pub(crate) fn open_tab(s: &Session, task: &str, model: &Path) -> Result<()> {
    s.scroll_and_click(&s.find(&format!("#tab-{task}"), UI_TIMEOUT)?)?;
    s.find("#run", UI_TIMEOUT)?;
    choose_model(s, model)
}

/// Sets a field's value as typing would (Svelte listens to input and change).
pub(crate) fn set(s: &Session, css: &str, value: &Value) -> Result<()> {
    s.script(
        "const e = document.querySelector(arguments[0]); \
         if (e.type === 'checkbox') { e.checked = arguments[1]; } else { e.value = arguments[1]; } \
         e.dispatchEvent(new Event('input', {bubbles: true})); \
         e.dispatchEvent(new Event('change', {bubbles: true})); return true;",
        json!([css, value]),
    )
    .map(drop)
}

pub(crate) const RUNS: &str = "return Number(document.querySelector('.run-card').dataset.runs);";

/// Clicks Run and waits for this run to finish (the card counts finished runs).
pub(crate) fn run(s: &Session) -> Result<()> {
    let before = s.script(RUNS, json!([]))?;
    s.scroll_and_click(&s.find("#run", UI_TIMEOUT)?)?;
    s.wait_for("the run to finish", RUNS, UI_TIMEOUT, |v| *v != before)?;
    s.script(
        "return document.querySelector('.run-card .error-banner')?.textContent ?? 'ok';",
        json!([]),
    )
    .and_then(|v| {
        if v == "ok" {
            Ok(())
        } else {
            Err(format!("the run failed: {v}"))
        }
    })
}

/// What the engine itself answers for the same call.
fn engine(task: Task, model: &Path, inputs: Value, kwargs: Value) -> Result<Value> {
    let kwargs: Map<String, Value> = kwargs.as_object().cloned().unwrap_or_default();
    LoadSpec::new(model)
        .and_then(|spec| Pipeline::load(task, &spec))
        .and_then(|p| p.call(&inputs, &kwargs, 8))
        .map_err(|e| e.to_string())
}

fn texts(s: &Session, css: &str) -> Result<Vec<String>> {
    let v = s.script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(e => e.textContent.trim());",
        json!([css]),
    )?;
    Ok(serde_json::from_value(v).unwrap_or_default())
}

fn bar_labels(s: &Session, testid: &str) -> Result<Vec<String>> {
    let v = s.script(
        "return Array.from(document.querySelectorAll(`[data-testid=${arguments[0]}] .bar-row`))\
         .map(e => e.dataset.label);",
        json!([testid]),
    )?;
    Ok(serde_json::from_value(v).unwrap_or_default())
}

const NER_TEXT: &str = "Hi, I am John Smith. Email me at john.smith@gmail.com or call +1 555 0100.";

pub fn ner(s: &Session, out: &Path) -> Result<()> {
    let model = model_dir("rampart-ner");
    open_tab(s, "token-classification", &model)?;
    set(s, "#task-input", &json!(NER_TEXT))?;
    set(s, "#aggregation-strategy", &json!("first"))?;
    run(s)?;
    let want = engine(
        Task::TokenClassification,
        &model,
        json!(NER_TEXT),
        json!({"aggregation_strategy": "first"}),
    )?;
    let want: Vec<String> = want
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            format!(
                "{} {}",
                e["entity_group"].as_str().unwrap_or(""),
                e["word"].as_str().unwrap_or("")
            )
        })
        .collect();
    let got = texts(s, "[data-testid=entity]")?;
    let got: Vec<String> = got
        .iter()
        .map(|t| t.rsplit_once(' ').map_or(t.clone(), |(a, _)| a.to_string()))
        .collect();
    ensure(got == want, || format!("entities {got:?}, engine {want:?}"))?;
    ensure(got.iter().any(|e| e.starts_with("GIVEN_NAME john")), || {
        format!("{got:?}")
    })?;
    // Keyboard focus on a highlighted word shows its label probabilities.
    s.script(
        "document.querySelector('[data-testid=ner-text] [data-entity=EMAIL]').focus(); return true;",
        json!([]),
    )?;
    let card = s.wait_for(
        "the token card",
        "return document.querySelector('[data-testid=token-card]')?.textContent ?? null;",
        UI_TIMEOUT,
        |v| v.is_string(),
    )?;
    ensure(card.as_str().is_some_and(|c| c.contains("EMAIL")), || {
        format!("card {card}")
    })?;
    s.screenshot(&out.join("tab-ner.png"))
}

pub fn fill_mask(s: &Session, out: &Path) -> Result<()> {
    let model = model_dir("splade-tiny");
    open_tab(s, "fill-mask", &model)?;
    let text = "Paris is the [MASK] of France.";
    set(s, "#task-input", &json!(text))?;
    run(s)?;
    let want = engine(Task::FillMask, &model, json!(text), json!({"top_k": 5}))?;
    let want: Vec<String> = want
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["token_str"].as_str().map(str::to_string))
        .collect();
    let got = bar_labels(s, "fill-bars")?;
    ensure(
        got == want && got.first().map(String::as_str) == Some("city"),
        || format!("candidates {got:?}, engine {want:?}"),
    )?;
    s.screenshot(&out.join("tab-fill-mask.png"))
}

pub fn embeddings(s: &Session, out: &Path) -> Result<()> {
    let model = model_dir("all-minilm-l6-v2");
    open_tab(s, "feature-extraction", &model)?;
    let sentences = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The girl is carrying a baby.",
        "A man is riding a horse.",
        "Two dogs play in the snow.",
        "A cat sleeps on the sofa.",
    ];
    set(s, "#task-input", &json!(sentences.join("\n")))?;
    run(s)?;
    let cells = s.script(
        "return Array.from(document.querySelectorAll('[data-testid=heatmap] .cell')).map(c => Number(c.dataset.value));",
        json!([]),
    )?;
    let cells: Vec<f64> = serde_json::from_value(cells).unwrap_or_default();
    ensure(cells.len() == 36, || format!("{} cells", cells.len()))?;
    ensure((cells[0] - 1.0).abs() < 1e-4, || {
        format!("diagonal {}", cells[0])
    })?;
    // sentence-transformers gives 0.7553 for the first pair.
    ensure((cells[1] - 0.7553).abs() < 1e-3, || {
        format!("cosine(1, 2) = {}", cells[1])
    })?;
    let neighbours = texts(s, "[data-testid=neighbours] li")?;
    ensure(neighbours.len() == 6, || format!("{neighbours:?}"))?;
    // The map: a point per sentence; the two about eating lie closer together than either to
    // the dogs; hovering a point names its sentence.
    let points = s.script(
        "return Array.from(document.querySelectorAll('[data-testid=embedding-map] .point circle'))\
           .map(c => [Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))]);",
        json!([]),
    )?;
    let points: Vec<[f64; 2]> = serde_json::from_value(points).unwrap_or_default();
    ensure(points.len() == 6, || {
        format!("{} points on the map", points.len())
    })?;
    let dist =
        |a: usize, b: usize| (points[a][0] - points[b][0]).hypot(points[a][1] - points[b][1]);
    ensure(dist(0, 1) < dist(0, 4) && dist(0, 1) < dist(1, 4), || {
        format!(
            "eating pair {:.0} apart, to the dogs {:.0}",
            dist(0, 1),
            dist(0, 4)
        )
    })?;
    s.script(
        "document.querySelector('[data-testid=embedding-map] .point[data-index=\"4\"]')\
           .dispatchEvent(new MouseEvent('mouseenter')); \
         document.querySelector('[data-testid=embedding-map]').scrollIntoView({block: 'center'}); return true;",
        json!([]),
    )?;
    let caption = s.wait_for(
        "the map to name the hovered sentence",
        "return document.querySelector('[data-testid=embedding-map] figcaption').textContent;",
        UI_TIMEOUT,
        |v| v.as_str().is_some_and(|t| t.contains("dogs")),
    )?;
    ensure(caption.as_str().is_some_and(|t| t.contains("5.")), || {
        format!("caption {caption}")
    })?;
    s.screenshot(&out.join("tab-embeddings.png"))
}

fn tiny(name: &str) -> PathBuf {
    fixture(&format!("tiny/{name}"))
}

pub fn classification(s: &Session, out: &Path) -> Result<()> {
    let model = tiny("bert-sequence-classification");
    open_tab(s, "text-classification", &model)?;
    let text = "I really enjoyed this film, the acting was wonderful.";
    set(s, "#task-input", &json!(text))?;
    run(s)?;
    let want = engine(
        Task::TextClassification,
        &model,
        json!(text),
        json!({"top_k": null}),
    )?;
    let want: Vec<String> = want
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|l| l["label"].as_str().map(str::to_string))
        .collect();
    let got = bar_labels(s, "label-bars")?;
    ensure(got == want, || format!("labels {got:?}, engine {want:?}"))?;
    s.screenshot(&out.join("tab-classification.png"))?;
    // Batch mode: one input per line, a row per input.
    set(s, "#batch-mode", &json!(true))?;
    set(
        s,
        "#task-input",
        &json!(format!(
            "{text}\nThe service was slow and the food was cold.\nIt was fine."
        )),
    )?;
    run(s)?;
    let rows = texts(s, "[data-testid=batch-table] tbody tr")?;
    ensure(rows.len() == 3, || format!("batch rows {rows:?}"))?;
    s.screenshot(&out.join("tab-classification-batch.png"))?;
    set(s, "#batch-mode", &json!(false))
}

pub fn question_answering(s: &Session, out: &Path) -> Result<()> {
    let model = tiny("bert-question-answering");
    open_tab(s, "question-answering", &model)?;
    let (question, context) = (
        "Where does Sarah live?",
        "My name is Sarah Johnson and I live in Paris, the capital of France.",
    );
    set(s, "#qa-question", &json!(question))?;
    set(s, "#task-input", &json!(context))?;
    run(s)?;
    let want = engine(
        Task::QuestionAnswering,
        &model,
        json!({"question": question, "context": context}),
        json!({"top_k": 3}),
    )?;
    let want = want[0]["answer"].as_str().unwrap_or_default().to_string();
    let got = texts(s, "[data-testid=answer] mark")?;
    ensure(got.first() == Some(&want), || {
        format!("answer {got:?}, engine {want:?}")
    })?;
    let heat = s.script(
        "return document.querySelectorAll('[data-testid=qa-context] span[style*=color-mix]').length;",
        json!([]),
    )?;
    ensure(heat.as_u64().is_some_and(|n| n >= 10), || {
        format!("{heat} heat cells")
    })?;
    s.screenshot(&out.join("tab-question-answering.png"))?;

    // Batch mode: a question per line about the same context, one call, a row each.
    set(s, "#batch-mode", &json!(true))?;
    let questions = [question, "What is the capital of France?", "Who is Sarah?"];
    set(s, "#qa-question", &json!(questions.join("\n")))?;
    run(s)?;
    let inputs: Vec<Value> = questions
        .iter()
        .map(|q| json!({"question": q, "context": context}))
        .collect();
    let want = engine(
        Task::QuestionAnswering,
        &model,
        json!(inputs),
        json!({"top_k": 3}),
    )?;
    let rows = texts(s, "[data-testid=batch-table] tbody tr td:nth-child(3)")?;
    ensure(rows.len() == 3, || format!("batch rows {rows:?}"))?;
    for (i, row) in rows.iter().enumerate() {
        let answer = want[i][0]["answer"].as_str().unwrap_or_default();
        ensure(row.starts_with(answer), || {
            format!("row {i}: {row:?}, engine's best answer {answer:?}")
        })?;
    }
    s.screenshot(&out.join("tab-question-answering-batch.png"))?;
    set(s, "#batch-mode", &json!(false))
}

pub fn zero_shot(s: &Session, out: &Path) -> Result<()> {
    let model = tiny("bert-nli");
    open_tab(s, "zero-shot-classification", &model)?;
    let text = "The new phone has a great camera and a long battery life.";
    set(s, "#task-input", &json!(text))?;
    set(
        s,
        "#candidate-labels",
        &json!("technology, sports, politics"),
    )?;
    for multi in [false, true] {
        set(s, "#multi-label", &json!(multi))?;
        run(s)?;
        let want = engine(
            Task::ZeroShotClassification,
            &model,
            json!(text),
            json!({"candidate_labels": ["technology", "sports", "politics"], "multi_label": multi}),
        )?;
        let got = bar_labels(s, "zero-shot-bars")?;
        ensure(json!(got) == want["labels"], || {
            format!(
                "multi_label={multi}: labels {got:?}, engine {}",
                want["labels"]
            )
        })?;
    }
    s.screenshot(&out.join("tab-zero-shot.png"))
}

pub fn missing_head(s: &Session, out: &Path) -> Result<()> {
    open_tab(s, "fill-mask", &model_dir("rampart-ner"))?;
    set(s, "#task-input", &json!("Paris is the [MASK] of France."))?;
    ensure(run(s).is_err(), || "the run should fail".into())?;
    let code = s.wait_for(
        "the error banner",
        "return document.querySelector('.run-card .error-banner .code')?.textContent ?? null;",
        UI_TIMEOUT,
        |v| v.is_string(),
    )?;
    ensure(code == "missing_head", || format!("error code {code}"))?;
    s.screenshot(&out.join("tab-error-missing-head.png"))?;
    // Leave the fill-mask tab with its working model.
    choose_model(s, &model_dir("splade-tiny"))
}
