//! A chat through the model's own template, as tokens (`wick tokenize --chat`, the inspector's
//! Chat mode): the rendered prompt and its ids equal `transformers`' `apply_chat_template(
//! messages, tokenize=True, add_generation_prompt=...)` (references from `scripts/chat_refs.py`),
//! and every token is traced to the message it came from.

#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;
use wick_engine::cancel::CancelToken;
use wick_engine::tokenize::chat::{ChatTemplate, Message};
use wick_engine::WickTokenizer;
use wick_tests::{fixture, model_dir, target_binary};

#[derive(Deserialize)]
struct Reference {
    model: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    messages: Vec<Message>,
    add_generation_prompt: bool,
    text: Option<String>,
    ids: Option<Vec<u32>>,
    error: Option<String>,
}

fn folder(model: &str) -> PathBuf {
    match model.strip_prefix("tiny-") {
        Some(family) => fixture(&format!("tiny/{family}-causal-lm")),
        None => model_dir(model),
    }
}

fn check(file: &str) {
    let path = fixture(&format!("tokenizer/chat/{file}"));
    let text = std::fs::read_to_string(&path).unwrap();
    let reference: Reference = serde_json::from_str(&text).unwrap();
    let dir = folder(&reference.model);
    let template = ChatTemplate::for_model(&dir)
        .unwrap()
        .expect("the model has a template");
    let tokenizer = WickTokenizer::from_path(&dir).unwrap();
    let mut compared = 0;
    for case in &reference.cases {
        let got = tokenizer.inspect_chat(
            &template,
            &case.messages,
            case.add_generation_prompt,
            &CancelToken::new(),
        );
        let what = format!(
            "{file}: {:?} (add_generation_prompt={})",
            case.messages, case.add_generation_prompt
        );
        let (Some(want_text), Some(want_ids)) = (&case.text, &case.ids) else {
            assert!(
                got.is_err(),
                "{what}: transformers refused ({:?}), Wick rendered",
                case.error
            );
            continue;
        };
        let got = got.unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(&got.text, want_text, "{what}: rendered prompt");
        assert_eq!(&got.ids, want_ids, "{what}: ids");
        compared += 1;
        // Every message's content is found, in order, and its tokens point back at it.
        for (i, (m, span)) in case.messages.iter().zip(&got.messages).enumerate() {
            let span = span
                .span
                .unwrap_or_else(|| panic!("{what}: message {i} not found in the prompt"));
            // The message's tokens cover its bytes (byte-level tokens of one character share
            // its offsets, so bytes, not texts, are compared).
            let mut covered_to = span.byte_start;
            for t in got.tokens.iter().filter(|t| t.message == Some(i as u32)) {
                if t.token.byte_start <= covered_to {
                    covered_to = covered_to.max(t.token.byte_end);
                }
            }
            assert!(
                covered_to >= span.byte_end,
                "{what}: the tokens of message {i} cover bytes {}..{covered_to} of {}..{}",
                span.byte_start,
                span.byte_start,
                span.byte_end
            );
            assert_eq!(
                got.text[span.byte_start as usize..span.byte_end as usize].trim(),
                m.content.trim(),
                "{what}: span of message {i}"
            );
        }
        // Template text exists in every template here (role markers), and the generation prompt
        // is marked exactly when asked for.
        assert!(got.tokens.iter().any(|t| t.message.is_none()), "{what}");
        assert_eq!(
            got.tokens.iter().any(|t| t.generation_prompt),
            case.add_generation_prompt,
            "{what}: generation prompt tokens"
        );
        assert!(
            got.tokens
                .iter()
                .filter(|t| t.generation_prompt)
                .all(|t| t.message.is_none()),
            "{what}: a generation prompt token claimed by a message"
        );
    }
    assert!(compared >= 6, "{file}: only {compared} cases compared");
}

#[test]
fn tiny_qwen2_chatml_matches_transformers() {
    check("tiny-qwen2.json");
}

#[test]
fn tiny_gemma3_matches_transformers() {
    check("tiny-gemma3.json");
}

#[test]
fn real_gemma3_270m_matches_transformers() {
    check("gemma3-270m.json");
}

/// `wick tokenize --model MODEL --chat MESSAGES [extra...]`.
fn tokenize_chat(model: &Path, messages: &Path, extra: &[&str]) -> std::process::Output {
    Command::new(target_binary("wick"))
        .args(["tokenize", "--model"])
        .arg(model)
        .arg("--chat")
        .arg(messages)
        .args(extra)
        .output()
        .expect("wick runs")
}

#[test]
fn the_cli_prints_the_prompt_ids_and_each_tokens_message() {
    let tmp = tempfile::tempdir().unwrap();
    let messages = tmp.path().join("messages.json");
    std::fs::write(
        &messages,
        r#"[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}]"#,
    )
    .unwrap();
    let model = fixture("tiny/qwen2-causal-lm");
    let out = tokenize_chat(&model, &messages, &["--add-generation-prompt", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["text"],
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n"
    );
    let tokens = v["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), v["ids"].as_array().unwrap().len());
    let text_of = |m: Value| -> String {
        tokens
            .iter()
            .filter(|t| t["message"] == m)
            .map(|t| t["text"].as_str().unwrap())
            .collect()
    };
    assert_eq!(text_of(0.into()), "Be brief.");
    assert_eq!(text_of(1.into()), "Hello there");
    assert_eq!(tokens[0]["token"], "<|im_start|>");
    assert_eq!(tokens[0]["message"], Value::Null);
    assert_eq!(tokens.last().unwrap()["generationPrompt"], true);
    assert_eq!(v["messages"][1]["role"], "user");

    // The table says where each token came from.
    let out = tokenize_chat(&model, &messages, &[]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("message 1 (user)"), "{table}");
    assert!(table.contains("template"), "{table}");
    assert!(!table.contains("generation prompt"), "{table}");
}

#[test]
fn a_model_without_a_template_and_bad_messages_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let messages = tmp.path().join("messages.json");
    std::fs::write(&messages, r#"[{"role": "user", "content": "hi"}]"#).unwrap();
    let gpt2 = fixture("tiny/gpt2-causal-lm");
    let out = tokenize_chat(&gpt2, &messages, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no chat template"), "{err}");

    let qwen = fixture("tiny/qwen2-causal-lm");
    for bad in [
        r#"{"role": "user"}"#,
        r#"[{"role": "user"}]"#,
        "not json",
        "",
    ] {
        std::fs::write(&messages, bad).unwrap();
        let out = tokenize_chat(&qwen, &messages, &[]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("not a list of"), "{bad}: {err}");
        assert!(!err.contains("panicked"), "{bad}: {err}");
    }
    let out = tokenize_chat(&qwen, &tmp.path().join("missing.json"), &[]);
    assert_eq!(out.status.code(), Some(1));
}
