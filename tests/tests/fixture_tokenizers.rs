//! The tokenizers of all tiny parity fixtures (WordPiece, byte-level BPE, SentencePiece Unigram
//! and BPE with byte fallback, Marian, T5 ...) give the input ids that the `transformers`
//! pipelines fed their models, as recorded in each fixture's expected.json.

use serde_json::Value;
use wick_engine::{TokenizeOptions, WickTokenizer};
use wick_tests::fixture;

/// Pipelines that tokenize their raw input as is (special tokens added, no pairs, no prefix).
const PLAIN_TASKS: &[&str] = &[
    "token-classification",
    "fill-mask",
    "feature-extraction",
    "text-classification",
    "text-generation",
];

fn texts(inputs: &Value) -> Option<Vec<&str>> {
    match inputs {
        Value::String(s) => Some(vec![s.as_str()]),
        Value::Array(items) => items.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

#[test]
fn every_fixture_tokenizer_matches_the_pipeline_inputs() {
    let root = fixture("tiny");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("tests/fixtures/tiny exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("tokenizer.json").is_file())
        .collect();
    dirs.sort();
    assert!(
        dirs.len() >= 40,
        "expected 40+ fixtures, found {}",
        dirs.len()
    );

    let (mut checked, mut failures) = (0, Vec::new());
    for dir in &dirs {
        let name = dir.file_name().unwrap_or_default().to_string_lossy();
        let tokenizer = WickTokenizer::from_path(dir).expect("fixture tokenizer loads");
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.join("expected.json")).expect("expected.json"),
        )
        .expect("expected.json parses");
        for case in expected.as_array().into_iter().flatten() {
            let task = case["task"].as_str().unwrap_or_default();
            let (Some(inputs), Some(ids)) = (texts(&case["inputs"]), case["input_ids"].as_array())
            else {
                continue;
            };
            if !PLAIN_TASKS.contains(&task) || inputs.len() != ids.len() {
                continue;
            }
            for (text, want) in inputs.iter().zip(ids) {
                let want: Vec<u32> = serde_json::from_value(want.clone()).expect("ids");
                let got = tokenizer
                    .encode_ids(text, &TokenizeOptions::default())
                    .expect("tokenizes");
                checked += 1;
                if got != want {
                    failures.push(format!("{name} ({task}) {text:?}: {got:?} != {want:?}"));
                }
            }
        }
    }
    assert!(checked >= 100, "only {checked} inputs checked");
    assert!(
        failures.is_empty(),
        "{} of {checked} inputs differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
