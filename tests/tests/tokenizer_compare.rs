//! Two tokenizers side by side (`wick tokenize --compare`): each side is exactly what that
//! tokenizer gives alone, and the boundaries that part are the ones a reader sees.

#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::process::Command;

use serde_json::Value;
use wick_engine::{TokenizeOptions, WickTokenizer};
use wick_tests::{model_dir, target_binary};

fn compare_json(a: &str, b: &str, text: &str) -> Value {
    let out = Command::new(target_binary("wick"))
        .args(["tokenize", "--json", "--model"])
        .arg(model_dir(a))
        .arg("--compare")
        .arg(model_dir(b))
        .arg(text)
        .output()
        .expect("wick runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn ids_alone(model: &str, text: &str) -> Vec<u32> {
    WickTokenizer::from_path(&model_dir(model))
        .unwrap()
        .encode_ids(text, &TokenizeOptions::default())
        .unwrap()
}

#[test]
fn wordpiece_against_byte_level_bpe() {
    // MiniLM (WordPiece) drops the space: "Hello" 0..5, "world" 6..11. SmolLM2 (byte-level BPE)
    // keeps it in the next token: "Hello" 0..5, " world" 5..11. Only 6 parts them.
    let text = "Hello world";
    let v = compare_json("all-minilm-l6-v2", "smollm2-135m-instruct", text);
    assert_eq!(v["differingBoundaries"], serde_json::json!([6]));
    assert_eq!(v["sharedBoundaries"], 3);
    let ids = |side: &str| -> Vec<u32> {
        v[side]["inspection"]["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap() as u32)
            .collect()
    };
    assert_eq!(ids("a"), ids_alone("all-minilm-l6-v2", text));
    assert_eq!(ids("b"), ids_alone("smollm2-135m-instruct", text));
    // [CLS] and [SEP] are not text tokens; "world" differs on A's side, nothing on B's start.
    assert_eq!(v["a"]["textTokens"], 2);
    assert_eq!(
        v["a"]["differs"],
        serde_json::json!([false, false, true, false])
    );
    assert_eq!(v["b"]["differs"], serde_json::json!([false, false]));
    assert_eq!(v["b"]["charsPerToken"], 5.5);
}

#[test]
fn unknown_and_byte_fallback_pieces_are_counted() {
    // MiniLM has no piece for the emoji ([UNK]); Gemma 3 has byte fallback for a rare
    // character, SmolLM2 spells everything in bytes without "<0x..>" pieces.
    let text = "Candle 🕯 and 𓀀";
    let v = compare_json("all-minilm-l6-v2", "gemma3-270m", text);
    assert!(v["a"]["unknown"].as_u64().unwrap() >= 1, "{}", v["a"]);
    let gemma_tokens: Vec<&str> = v["b"]["inspection"]["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap())
        .collect();
    let byte_pieces = gemma_tokens.iter().filter(|t| t.starts_with("<0x")).count();
    assert!(byte_pieces >= 4, "{gemma_tokens:?}");
    assert_eq!(v["b"]["byteFallback"], byte_pieces, "{gemma_tokens:?}");
    assert_eq!(v["b"]["unknown"], 0);

    // The table marks the tokens whose boundaries differ.
    let out = Command::new(target_binary("wick"))
        .args(["tokenize", "--model"])
        .arg(model_dir("all-minilm-l6-v2"))
        .arg("--compare")
        .arg(model_dir("smollm2-135m-instruct"))
        .arg("Hello world")
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("[world]"), "{table}");
    assert!(table.contains("1 differ (at characters [6])"), "{table}");
}
