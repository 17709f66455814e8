//! Inside models (`wick inspect attention` / `logit-lens`, the inspector's views): the attention
//! weights of every layer and head equal `transformers`' (eager attention, `output_attentions`)
//! on the tiny fixtures of every causal and encoder architecture, and the logit lens
//! (`output_hidden_states` projected through the final norm and LM head) on the causal ones,
//! within 1e-4. References from `scripts/inside_refs.py`.

#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::process::Command;

use serde_json::Value;
use wick_tests::{fixture, target_binary};

fn wick_json(args: &[&str]) -> Value {
    let out = Command::new(target_binary("wick"))
        .args(args)
        .output()
        .expect("wick runs");
    assert!(
        out.status.success(),
        "wick {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn reference(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(&format!("inside/{name}.json"))).unwrap())
        .unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn check(name: &str) {
    check_attention(name);
    check_lens(name);
}

fn check_attention(name: &str) {
    check_attention_of(name, fixture(&format!("tiny/{name}")));
}

fn check_attention_of(name: &str, model: std::path::PathBuf) {
    let want = reference(name);
    let model = model.to_str().unwrap();
    let text = want["text"].as_str().unwrap();

    let got = wick_json(&["inspect", "attention", "--json", "--model", model, text]);
    assert_eq!(got["ids"], want["ids"], "{name}: ids");
    assert_eq!(got["tokens"], want["tokens"], "{name}: tokens");
    let (g, w) = (
        got["attentions"].as_array().unwrap(),
        want["attentions"].as_array().unwrap(),
    );
    assert_eq!(g.len(), w.len(), "{name}: layers");
    let mut compared = 0;
    for (l, (gl, wl)) in g.iter().zip(w).enumerate() {
        let (gl, wl) = (gl.as_array().unwrap(), wl.as_array().unwrap());
        assert_eq!(gl.len(), wl.len(), "{name}: heads of layer {l}");
        for (h, (gh, wh)) in gl.iter().zip(wl).enumerate() {
            for (q, (gq, wq)) in gh
                .as_array()
                .unwrap()
                .iter()
                .zip(wh.as_array().unwrap())
                .enumerate()
            {
                let (gq, wq) = (gq.as_array().unwrap(), wq.as_array().unwrap());
                assert_eq!(gq.len(), wq.len());
                for (k, (a, b)) in gq.iter().zip(wq).enumerate() {
                    assert!(
                        (f(a) - f(b)).abs() < 1e-4,
                        "{name}: layer {l} head {h} query {q} key {k}: {} vs {}",
                        f(a),
                        f(b)
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(compared > 1000, "{name}: only {compared} weights");
}

fn check_lens(name: &str) {
    let want = reference(name);
    let model = fixture(&format!("tiny/{name}"));
    let model = model.to_str().unwrap();
    let text = want["text"].as_str().unwrap();
    // The logit lens: each layer's top 5 at each position carries the reference's
    // probabilities (ids compared where the reference's neighbours are not near-ties).
    let got = wick_json(&[
        "inspect",
        "logit-lens",
        "--json",
        "--top-k",
        "5",
        "--model",
        model,
        text,
    ]);
    let (g, w) = (
        got["layers"].as_array().unwrap(),
        want["lens"].as_array().unwrap(),
    );
    assert_eq!(g.len(), w.len(), "{name}: lens layers");
    for (l, (gl, wl)) in g.iter().zip(w).enumerate() {
        for (p, (gp, wp)) in gl
            .as_array()
            .unwrap()
            .iter()
            .zip(wl.as_array().unwrap())
            .enumerate()
        {
            let (gp, wp) = (gp.as_array().unwrap(), wp.as_array().unwrap());
            assert_eq!(gp.len(), 5);
            for (i, (gc, wc)) in gp.iter().zip(wp).enumerate() {
                let wprob = f(&wc[1]);
                assert!(
                    (f(&gc["prob"]) - wprob).abs() < 1e-4,
                    "{name}: layer {} position {p} rank {i}: {} vs {wprob}",
                    l + 1,
                    f(&gc["prob"])
                );
                let apart = |j: usize| wp.get(j).is_none_or(|o| (f(&o[1]) - wprob).abs() > 1e-5);
                if (i == 0 || apart(i - 1)) && apart(i + 1) {
                    assert_eq!(
                        gc["id"],
                        wc[0],
                        "{name}: layer {} position {p} rank {i}",
                        l + 1
                    );
                }
            }
        }
    }
}

#[test]
fn gpt2_matches_transformers() {
    check("gpt2-causal-lm");
}

#[test]
fn llama_matches_transformers() {
    check("llama-causal-lm");
}

#[test]
fn qwen2_matches_transformers() {
    check("qwen2-causal-lm");
}

#[test]
fn gemma3_matches_transformers() {
    check("gemma3-causal-lm");
}

#[test]
fn bert_attention_matches_transformers() {
    check_attention("bert-base");
}

#[test]
fn distilbert_attention_matches_transformers() {
    check_attention("distilbert-base");
}

#[test]
fn roberta_attention_matches_transformers() {
    check_attention("roberta-base");
}

#[test]
fn xlm_roberta_attention_matches_transformers() {
    check_attention("xlm-roberta-base");
}

#[test]
fn deberta_v2_attention_matches_transformers() {
    check_attention("deberta-v2-base");
}

#[test]
fn real_minilm_attention_matches_transformers() {
    check_attention_of(
        "all-minilm-l6-v2",
        wick_tests::model_dir("all-minilm-l6-v2"),
    );
}

#[test]
fn real_rampart_attention_matches_transformers() {
    check_attention_of("rampart-ner", wick_tests::model_dir("rampart-ner"));
}

#[test]
fn the_last_layer_of_the_lens_is_the_models_own_next_token() {
    // SmolLM2 (GGUF): the lens' last layer at the last position is what greedy generation picks.
    let model = wick_tests::model_dir("smollm2-135m-instruct");
    let model = model.to_str().unwrap();
    let lens = wick_json(&[
        "inspect",
        "logit-lens",
        "--json",
        "--model",
        model,
        "The capital of France is",
    ]);
    let last = lens["layers"].as_array().unwrap().last().unwrap();
    let top = &last.as_array().unwrap().last().unwrap()[0];
    let run = wick_json(&[
        "run",
        "text-generation",
        "--model",
        model,
        "--do-sample",
        "false",
        "--max-new-tokens",
        "1",
        "--return-full-text",
        "false",
        "The capital of France is",
    ]);
    let generated = run[0]["generated_text"].as_str().unwrap();
    let token = top["token"].as_str().unwrap().replace('Ġ', " ");
    assert_eq!(generated, token, "{lens}");
    assert!(lens["layers"].as_array().unwrap().len() == 30);
}

#[test]
fn prompts_too_long_or_empty_and_encoders_are_clear_errors() {
    let model = fixture("tiny/llama-causal-lm");
    let model = model.to_str().unwrap();
    let long = "word ".repeat(400);
    for (args, says) in [
        (
            vec!["inspect", "attention", "--model", model, long.as_str()],
            "inspecting takes 1 to 256",
        ),
        (
            vec!["inspect", "logit-lens", "--model", model, "  "],
            "text",
        ),
        (
            vec![
                "inspect",
                "logit-lens",
                "--top-k",
                "0",
                "--model",
                model,
                "hi",
            ],
            "1 to 100",
        ),
    ] {
        let out = Command::new(target_binary("wick"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(says) && !err.contains("panicked"),
            "{args:?}: {err}"
        );
    }
    // More weights than a view shows: SmolLM2's 30 layers × 9 heads at 200 tokens.
    let smollm2 = wick_tests::model_dir("smollm2-135m-instruct");
    let out = Command::new(target_binary("wick"))
        .args(["inspect", "attention", "--model"])
        .arg(&smollm2)
        .arg("word ".repeat(200))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shorten the text to 124 tokens"), "{err}");

    // An encoder has attention maps but no LM head to read.
    let bert = fixture("tiny/bert-base");
    let out = Command::new(target_binary("wick"))
        .args([
            "inspect",
            "logit-lens",
            "--model",
            bert.to_str().unwrap(),
            "hi",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("causal model's LM head"), "{err}");
}
