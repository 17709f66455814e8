//! Parity of the encoder pipelines with `transformers` 4.57.6: every recorded call in the tiny
//! fixtures (`tests/fixtures/tiny/<family>-<head>/expected.json`, written by
//! scripts/make_fixtures.py) is replayed through `Pipeline::call` and must give the same JSON:
//! same keys in the same order, same labels, tokens and offsets, scores within 1e-4.
//! Each call runs twice, one input at a time and padded together, which must agree.

// Test helpers fail loudly by design: a missing fixture is a broken setup.
#![allow(clippy::unwrap_used)]

use serde_json::{Map, Value};
use wick_engine::blocks::heads::HeadKind;
use wick_engine::families::encoder::EncoderModel;
use wick_engine::loading::LoadSpec;
use wick_engine::tasks::pipeline::Pipeline;
use wick_engine::tasks::Task;
use wick_engine::tokenize::{Truncate, WickTokenizer};
use wick_tests::{assert_close, fixture};

fn cases(name: &str) -> Vec<Value> {
    let path = fixture(&format!("tiny/{name}/expected.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str::<Vec<Value>>(&text).unwrap()
}

/// The raw head outputs, compared first so a mismatch says whether the model or the
/// post-processing is wrong.
fn check_logits(name: &str, case: &Value) {
    let dir = fixture(&format!("tiny/{name}"));
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let head = HeadKind::from_architecture(config["architectures"][0].as_str().unwrap());
    let model = EncoderModel::load(&LoadSpec::new(&dir).unwrap(), head).unwrap();
    let tokenizer = WickTokenizer::from_path(&dir).unwrap();
    let inputs = &case["inputs"];
    let (a, b) = match inputs {
        Value::String(s) => (s.as_str(), None),
        v => (
            v["text"].as_str().unwrap(),
            v.get("text_pair").and_then(Value::as_str),
        ),
    };
    let enc = tokenizer.encode_pipeline(a, b, Truncate::None).unwrap();
    assert_eq!(
        Value::from(enc[0].ids.clone()),
        case["input_ids"][0],
        "{name}: input ids"
    );
    let batch = model
        .batch(&[&enc[0]], &wick_engine::cancel::CancelToken::new())
        .unwrap();
    let got = match head {
        HeadKind::SequenceClassification => {
            serde_json::json!({"logits": model.sequence_logits(&batch).unwrap()[0]})
        }
        HeadKind::TokenClassification => {
            serde_json::json!({"logits": model.token_logits(&batch).unwrap()[0]})
        }
        HeadKind::QuestionAnswering => {
            let (s, e) = model.span_logits(&batch).unwrap();
            serde_json::json!({"start_logits": s[0], "end_logits": e[0]})
        }
        other => panic!("{name}: no logits check for {other:?}"),
    };
    assert_close(&got, &case["output"], &format!("{name} logits"));
}

fn check_fixture(name: &str) {
    let mut loaded: Vec<(String, Pipeline)> = Vec::new();
    for (i, case) in cases(name).iter().enumerate() {
        let task = case["task"].as_str().unwrap();
        if task == "logits" {
            check_logits(name, case);
            continue;
        }
        if !loaded.iter().any(|(t, _)| t == task) {
            let dir = fixture(&format!("tiny/{name}"));
            let pipeline = LoadSpec::new(&dir)
                .and_then(|spec| Pipeline::load(Task::from_id(task).unwrap(), &spec))
                .unwrap_or_else(|e| panic!("{name}: loading {task}: {e}"));
            loaded.push((task.to_string(), pipeline));
        }
        let pipeline = &loaded.iter().find(|(t, _)| t == task).unwrap().1;
        let kwargs: Map<String, Value> = case["kwargs"].as_object().unwrap().clone();
        for batch_size in [1, 8] {
            let got = pipeline
                .call(&case["inputs"], &kwargs, batch_size)
                .unwrap_or_else(|e| panic!("{name} case {i} ({task} {kwargs:?}): {e}"));
            assert_close(
                &got,
                &case["output"],
                &format!("{name} case {i} ({task} {kwargs:?}, batch {batch_size})"),
            );
        }
    }
}

macro_rules! parity {
    ($($test:ident => $name:literal,)*) => {
        $(#[test] fn $test() { check_fixture($name); })*
    };
}

parity! {
    bert_base => "bert-base",
    bert_sequence_classification => "bert-sequence-classification",
    bert_multi_label => "bert-multi-label-classification",
    bert_nli => "bert-nli",
    bert_token_classification => "bert-token-classification",
    bert_question_answering => "bert-question-answering",
    bert_masked_lm => "bert-masked-lm",
    distilbert_base => "distilbert-base",
    distilbert_sequence_classification => "distilbert-sequence-classification",
    distilbert_multi_label => "distilbert-multi-label-classification",
    distilbert_nli => "distilbert-nli",
    distilbert_token_classification => "distilbert-token-classification",
    distilbert_question_answering => "distilbert-question-answering",
    distilbert_masked_lm => "distilbert-masked-lm",
    roberta_base => "roberta-base",
    roberta_sequence_classification => "roberta-sequence-classification",
    roberta_multi_label => "roberta-multi-label-classification",
    roberta_nli => "roberta-nli",
    roberta_token_classification => "roberta-token-classification",
    roberta_question_answering => "roberta-question-answering",
    roberta_masked_lm => "roberta-masked-lm",
    xlm_roberta_base => "xlm-roberta-base",
    xlm_roberta_sequence_classification => "xlm-roberta-sequence-classification",
    xlm_roberta_multi_label => "xlm-roberta-multi-label-classification",
    xlm_roberta_nli => "xlm-roberta-nli",
    xlm_roberta_token_classification => "xlm-roberta-token-classification",
    xlm_roberta_question_answering => "xlm-roberta-question-answering",
    xlm_roberta_masked_lm => "xlm-roberta-masked-lm",
    deberta_v2_base => "deberta-v2-base",
    deberta_v2_sequence_classification => "deberta-v2-sequence-classification",
    deberta_v2_multi_label => "deberta-v2-multi-label-classification",
    deberta_v2_nli => "deberta-v2-nli",
    deberta_v2_token_classification => "deberta-v2-token-classification",
    deberta_v2_question_answering => "deberta-v2-question-answering",
    deberta_v2_masked_lm => "deberta-v2-masked-lm",
}
