//! The encoder pipelines on real checkpoints against `transformers` 4.57.6 (references written by
//! scripts/pipeline_refs.py): Rampart's PII NER with every aggregation strategy, splade-tiny's
//! fill-mask; and what a user sees for bad input.

// Test helpers fail loudly by design: a missing fixture is a broken setup.
#![allow(clippy::unwrap_used)]

use serde_json::{json, Map, Value};
use wick_engine::cancel::CancelToken;
use wick_engine::loading::LoadSpec;
use wick_engine::tasks::pipeline::Pipeline;
use wick_engine::tasks::Task;
use wick_engine::ErrorCode;
use wick_tests::{assert_close, fixture, model_dir};

fn replay(model: &str, task: Task) {
    let pipeline = Pipeline::load(task, &LoadSpec::new(&model_dir(model)).unwrap()).expect("loads");
    let path = fixture(&format!("pipelines/{model}.json"));
    let cases: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(cases.len() >= 20, "{model}: only {} cases", cases.len());
    for (i, case) in cases.iter().enumerate() {
        let kwargs = case["kwargs"].as_object().unwrap();
        let got = pipeline
            .call(&case["inputs"], kwargs, 4)
            .unwrap_or_else(|e| panic!("{model} case {i}: {e}"));
        assert_close(
            &got,
            &case["output"],
            &format!("{model} case {i} {kwargs:?}"),
        );
    }
}

#[test]
fn rampart_ner_matches_transformers() {
    replay("rampart-ner", Task::TokenClassification);
}

#[test]
fn splade_fill_mask_matches_transformers() {
    replay("splade-tiny", Task::FillMask);
}

fn error(task: Task, model: &str, inputs: Value, kwargs: Value) -> (ErrorCode, String) {
    let dir = if model.starts_with("tiny/") {
        fixture(model)
    } else {
        model_dir(model)
    };
    let outcome = LoadSpec::new(&dir)
        .and_then(|spec| Pipeline::load(task, &spec))
        .and_then(|p| {
            let kwargs: Map<String, Value> = kwargs.as_object().cloned().unwrap_or_default();
            p.call(&inputs, &kwargs, 1)
        });
    let err = outcome.expect_err("should fail");
    (err.code(), err.to_string())
}

#[test]
fn bad_input_gets_clear_errors() {
    let (code, msg) = error(
        Task::TextClassification,
        "tiny/bert-sequence-classification",
        json!(""),
        json!({}),
    );
    assert_eq!(
        (code, msg.as_str()),
        (
            ErrorCode::InvalidInput,
            "the text is empty: type some text first"
        )
    );

    let (code, msg) = error(
        Task::FillMask,
        "splade-tiny",
        json!("Paris is the capital of France."),
        json!({}),
    );
    assert_eq!(code, ErrorCode::InvalidInput);
    assert_eq!(msg, "no mask token ([MASK]) found in the input");

    let (code, msg) = error(
        Task::QuestionAnswering,
        "tiny/bert-question-answering",
        json!({"question": "Where?"}),
        json!({}),
    );
    assert_eq!(code, ErrorCode::InvalidInput);
    assert!(msg.contains("has no context"), "{msg}");

    let (code, msg) = error(
        Task::QuestionAnswering,
        "tiny/bert-question-answering",
        json!({"question": "Where?", "context": "  "}),
        json!({}),
    );
    assert_eq!(
        (code, msg.as_str()),
        (
            ErrorCode::InvalidInput,
            "the context is empty: type some text first"
        )
    );

    // A checkpoint without the head the task needs is refused, not given random weights.
    let (code, msg) = error(Task::FillMask, "rampart-ner", json!("a [MASK]"), json!({}));
    assert_eq!(code, ErrorCode::MissingHead);
    assert_eq!(
        msg,
        "BertForTokenClassification has a token-classification head (…ForTokenClassification); \
         this task needs a masked-language-model head (…ForMaskedLM). Pick a model fine-tuned for it"
    );

    let (code, msg) = error(
        Task::ZeroShotClassification,
        "tiny/bert-sequence-classification",
        json!("x"),
        json!({"candidate_labels": ["a"]}),
    );
    assert_eq!(code, ErrorCode::InvalidInput);
    assert!(msg.contains("no `entailment` label"), "{msg}");

    let (code, msg) = error(
        Task::ZeroShotClassification,
        "tiny/bert-nli",
        json!("x"),
        json!({"candidate_labels": ["a"], "hypothesis_template": "No slot."}),
    );
    assert_eq!(code, ErrorCode::InvalidInput);
    assert!(msg.contains("has no {} for the label"), "{msg}");

    let (code, msg) = error(
        Task::TextClassification,
        "tiny/bert-sequence-classification",
        json!("x"),
        json!({"topk": 2}),
    );
    assert_eq!(code, ErrorCode::InvalidInput);
    assert_eq!(
        msg,
        "text-classification does not take topk; it takes: top_k, function_to_apply"
    );

    let (code, _) = error(
        Task::TokenClassification,
        "tiny/gpt2-causal-lm",
        json!("x"),
        json!({}),
    );
    assert_eq!(code, ErrorCode::UnsupportedTask);
}

#[test]
fn text_longer_than_the_model_is_truncated_and_said_so() {
    let dir = model_dir("rampart-ner");
    let ner = wick_engine::tasks::token_classification::TokenClassifier::load(
        &LoadSpec::new(&dir).unwrap(),
    )
    .unwrap();
    let long = "My name is John Smith and I live in Springfield. ".repeat(200);
    let out = ner
        .run(
            &[long.as_str()],
            &Default::default(),
            1,
            &CancelToken::new(),
        )
        .expect("runs");
    // 512 positions: everything past them is cut, and counted.
    assert!(
        out[0].truncated_tokens > 1500,
        "{}",
        out[0].truncated_tokens
    );
    assert!(out[0].tokens.len() <= 510);
    assert!(!out[0].entities.is_empty());
}
