//! The `wick` binary as a user runs it: real models, real files, and bad input that must give
//! a clear message and a non-zero exit, never a panic.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn wick(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wick"))
        .args(args)
        .output()
        .expect("wick runs")
}

fn model(name: &str) -> PathBuf {
    wick_engine::source::starter_model(name).unwrap_or_else(|| {
        panic!("test model `{name}` is missing: run `python3 scripts/fetch_models.py`")
    })
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "wick failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

/// Runs wick on `path` and checks it fails cleanly with `code` and a message containing `says`.
fn assert_clean_failure(path: &Path, code: &str, says: &str) {
    let p = path.to_str().expect("utf-8 path");
    let out = wick(&["tokenize", "--model", p, "hello"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "exit status; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        stderr.contains(says),
        "message should say {says:?}: {stderr}"
    );

    let out = wick(&["tokenize", "--json", "--model", p, "hello"]);
    let err: Value = serde_json::from_slice(&out.stderr).expect("JSON error on stderr");
    assert_eq!(err["code"], code);
    assert!(err["message"].as_str().is_some_and(|m| m.contains(says)));
}

#[test]
fn json_output_has_ids_tokens_offsets_and_flags() {
    let dir = model("all-minilm-l6-v2");
    let out = wick(&[
        "tokenize",
        "--json",
        "--model",
        dir.to_str().unwrap(),
        "Hello world",
    ]);
    let v = stdout_json(&out);
    assert_eq!(v["ids"], serde_json::json!([101, 7592, 2088, 102]));
    assert_eq!(v["tokens"][1]["token"], "hello");
    assert_eq!(v["tokens"][1]["start"], 0);
    assert_eq!(v["tokens"][1]["end"], 5);
    assert_eq!(v["tokens"][0]["special"], true);
    assert_eq!(v["decoded"], "[CLS] hello world [SEP]");
    assert_eq!(v["tokenizer"]["modelType"], "WordPiece");
    // The MiniLM tokenizer.json bakes in padding to 128, which is reported, not applied.
    assert!(v["tokenizer"]["baked"]["padding"]
        .as_str()
        .is_some_and(|p| p.contains("128")));
}

#[test]
fn flags_for_special_tokens_padding_and_truncation() {
    let dir = model("all-minilm-l6-v2");
    let d = dir.to_str().unwrap();
    let ids = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["tokenize", "--json", "--model", d];
        all.extend_from_slice(args);
        let v = stdout_json(&wick(&all));
        v["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i.as_u64().unwrap())
            .collect()
    };
    assert_eq!(
        ids(&["--no-special-tokens", "Hello world"]),
        vec![7592, 2088]
    );
    let padded = ids(&[
        "--padding",
        "max_length",
        "--max-length",
        "8",
        "Hello world",
    ]);
    assert_eq!(padded, vec![101, 7592, 2088, 102, 0, 0, 0, 0]);
    assert_eq!(ids(&["--padding", "baked", "Hello world"]).len(), 128);
    let cut = ids(&["--truncation", "--max-length", "3", "Hello big world"]);
    assert_eq!(cut, vec![101, 7592, 102]);
    let v = stdout_json(&wick(&[
        "tokenize",
        "--json",
        "--model",
        d,
        "--truncation=max_length",
        "--max-length",
        "3",
        "Hello big world",
    ]));
    assert_eq!(v["truncatedTokens"], 2, "'big' and 'world' were cut");
    // A bare --truncation does not swallow the text that follows it.
    assert_eq!(
        ids(&["--max-length", "3", "--truncation", "Hello big world"]),
        cut
    );
}

#[test]
fn gguf_only_model_and_empty_text() {
    let dir = model("smollm2-135m-instruct");
    let v = stdout_json(&wick(&[
        "tokenize",
        "--json",
        "--model",
        dir.to_str().unwrap(),
        "Hello world",
    ]));
    assert_eq!(v["ids"], serde_json::json!([19556, 905]));
    assert_eq!(v["tokenizer"]["origin"], "gguf");

    let v = stdout_json(&wick(&[
        "tokenize",
        "--json",
        "--model",
        dir.to_str().unwrap(),
        "",
    ]));
    assert_eq!(v["ids"], serde_json::json!([]));
}

#[test]
fn reads_standard_input_and_prints_a_table() {
    let dir = model("all-minilm-l6-v2");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wick"))
        .args(["tokenize", "--model", dir.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("wick runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Hello world")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(text.contains("ids: [101, 7592, 2088, 102]"), "{text}");
    assert!(text.contains("4 tokens for 11 characters"), "{text}");
}

#[test]
fn missing_path_is_a_clear_error() {
    assert_clean_failure(
        Path::new("/nonexistent/wick/model"),
        "not_found",
        "no such file or folder",
    );
}

#[test]
fn folder_without_tokenizer_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    assert_clean_failure(dir.path(), "no_tokenizer", "no tokenizer found");
}

#[test]
fn corrupt_tokenizer_json_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let real = std::fs::read(model("all-minilm-l6-v2").join("tokenizer.json")).unwrap();
    // Cut the real file in half: what an interrupted copy leaves behind.
    std::fs::write(dir.path().join("tokenizer.json"), &real[..real.len() / 2]).unwrap();
    assert_clean_failure(
        dir.path(),
        "invalid_tokenizer",
        "tokenizer.json is not valid",
    );
}

#[test]
fn truncated_gguf_is_a_clear_error() {
    let src = model("smollm2-135m-instruct").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let real = std::fs::read(src).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Cut inside the metadata (the vocabulary) ...
    let early = dir.path().join("early.gguf");
    std::fs::write(&early, &real[..300_000]).unwrap();
    assert_clean_failure(&early, "invalid_gguf", "is not a readable GGUF file");
    // ... and inside the tensor data, where the metadata still parses.
    let late = dir.path().join("late.gguf");
    std::fs::write(&late, &real[..real.len() - 1000]).unwrap();
    assert_clean_failure(&late, "invalid_gguf", "truncated");
}

/// Runs `wick tokenize` on MiniLM with `args` and checks it fails cleanly, saying `says`.
fn assert_option_error(args: &[&str], says: &str) {
    let dir = model("all-minilm-l6-v2");
    let mut all = vec!["tokenize", "--model", dir.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let out = wick(&all);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains(says));
}

#[test]
fn absurd_lengths_are_refused() {
    assert_option_error(
        &[
            "--padding",
            "max_length",
            "--max-length",
            "4000000000",
            "hi",
        ],
        "more than the",
    );
}

#[test]
fn padding_needs_a_length() {
    assert_option_error(&["--padding", "max_length", "hi"], "needs --max-length");
}

#[test]
fn run_feature_extraction_prints_embeddings() {
    let dir = model("all-minilm-l6-v2");
    let v = stdout_json(&wick(&[
        "run",
        "feature-extraction",
        "--sentence-embedding",
        "--model",
        dir.to_str().unwrap(),
        "A man is eating food.",
        "A man is eating a piece of bread.",
    ]));
    let vecs: Vec<Vec<f64>> = serde_json::from_value(v).unwrap();
    assert_eq!(vecs.len(), 2);
    assert_eq!(vecs[0].len(), 384);
    let dot: f64 = vecs[0].iter().zip(&vecs[1]).map(|(a, b)| a * b).sum();
    // Normalised vectors: the dot product is the cosine sentence-transformers reports (0.7553).
    assert!((dot - 0.7553).abs() < 1e-3, "cosine {dot}");

    // Token level, as the transformers pipeline: [1][tokens][hidden].
    let v = stdout_json(&wick(&[
        "run",
        "feature-extraction",
        "--model",
        dir.to_str().unwrap(),
        "Hello world",
    ]));
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0].as_array().unwrap().len(), 4, "[CLS] hello world [SEP]");
    assert_eq!(v[0][0].as_array().unwrap().len(), 384);
}

#[test]
fn padding_follows_the_configured_side() {
    // Gemma's tokenizer_config.json says padding_side = left; transformers gives
    // tokenizer("Hello world", padding="max_length", max_length=6) = [0, 0, 0, 2, 9259, 1902].
    let dir = model("gemma3-270m");
    let v = stdout_json(&wick(&[
        "tokenize",
        "--json",
        "--model",
        dir.to_str().unwrap(),
        "--padding",
        "max_length",
        "--max-length",
        "6",
        "Hello world",
    ]));
    assert_eq!(v["ids"], serde_json::json!([0, 0, 0, 2, 9259, 1902]));
}

fn fixture(name: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny");
    root.join(name).to_str().expect("utf-8 path").to_string()
}

#[test]
fn run_encoder_tasks_print_pipeline_json() {
    let ner = model("rampart-ner");
    let v = stdout_json(&wick(&[
        "run",
        "token-classification",
        "--model",
        ner.to_str().unwrap(),
        "--aggregation-strategy",
        "first",
        "Hi, I am John Smith.",
    ]));
    assert_eq!(v[0]["entity_group"], "GIVEN_NAME");
    assert_eq!(
        (v[0]["start"].as_u64(), v[0]["end"].as_u64()),
        (Some(9), Some(13))
    );
    assert_eq!(v[1]["word"], "smith");

    let splade = model("splade-tiny");
    let v = stdout_json(&wick(&[
        "run",
        "fill-mask",
        "-m",
        splade.to_str().unwrap(),
        "--targets",
        "city,house",
        "Paris is the [MASK] of France.",
    ]));
    assert_eq!(v.as_array().map(Vec::len), Some(2));
    assert_eq!(v[0]["token_str"], "city");
    assert_eq!(v[0]["sequence"], "paris is the city of france.");

    let qa = fixture("bert-question-answering");
    let v = stdout_json(&wick(&[
        "run",
        "question-answering",
        "-m",
        &qa,
        "--question",
        "Where does Sarah live?",
        "--context",
        "My name is Sarah Johnson and I live in Paris, the capital of France.",
        "--top-k",
        "2",
    ]));
    // The tiny random model's answers, as transformers gives them.
    assert_eq!(v[0]["answer"], ".");
    assert_eq!(v[1]["answer"], "I");

    let nli = fixture("bert-nli");
    let v = stdout_json(&wick(&[
        "run",
        "zero-shot-classification",
        "-m",
        &nli,
        "--candidate-labels",
        "technology,sports,politics",
        "The new phone has a great camera and a long battery life.",
    ]));
    assert_eq!(
        v["labels"],
        serde_json::json!(["sports", "politics", "technology"])
    );

    let cls = fixture("bert-sequence-classification");
    let v = stdout_json(&wick(&[
        "run",
        "text-classification",
        "-m",
        &cls,
        "--top-k",
        "all",
        "I really enjoyed this film, the acting was wonderful.",
    ]));
    assert_eq!(v.as_array().map(Vec::len), Some(3));
    assert_eq!(v[0]["label"], "positive");
}

#[test]
fn run_errors_are_clear_and_json_on_request() {
    let ner = model("rampart-ner");
    let out = wick(&[
        "run",
        "fill-mask",
        "--json",
        "-m",
        ner.to_str().unwrap(),
        "a [MASK]",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err: Value = serde_json::from_slice(&out.stderr).expect("JSON error on stderr");
    assert_eq!(err["code"], "missing_head");

    let cls = fixture("bert-sequence-classification");
    let out = wick(&["run", "text-classification", "-m", &cls, ""]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "error: the text is empty: type some text first"
    );

    // A text far past 512 tokens runs, truncated, and says so.
    let long = "My name is John Smith and I live in Springfield. ".repeat(100);
    let out = wick(&[
        "run",
        "token-classification",
        "-m",
        ner.to_str().unwrap(),
        &long,
    ]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tokens beyond the model's limit were cut off"),
        "{stderr}"
    );
}

#[test]
fn a_device_that_is_not_there_is_an_error_not_a_fallback() {
    let dir = model("splade-tiny");
    let out = wick(&["--device", "cuda:1", "info", dir.to_str().expect("utf-8")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: device cuda:1 is not available"),
        "{stderr}"
    );
    let out = wick(&["--device", "cpu", "info", dir.to_str().expect("utf-8")]);
    assert!(out.status.success());
    let out = wick(&["--device", "tpu", "info", dir.to_str().expect("utf-8")]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown device `tpu`"));
}

/// A model whose key/value cache alone would need far more memory than any machine has (its
/// config claims 1,024 layers of 1,024 heads of 4,096 values, each plausible on its own):
/// refused before loading, with
/// the numbers; `--load-anyway`
/// gets past the check (and then fails on the weights, which do not match that config).
#[test]
fn a_model_that_will_not_fit_is_refused_unless_the_user_insists() {
    let tiny =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tiny/llama-causal-lm");
    let dir = tempfile::tempdir().expect("tempdir");
    for f in [
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
    ] {
        std::fs::copy(tiny.join(f), dir.path().join(f)).expect("copy fixture");
    }
    let mut config: Value =
        serde_json::from_str(&std::fs::read_to_string(tiny.join("config.json")).expect("config"))
            .expect("json");
    config["num_hidden_layers"] = 1024.into();
    config["num_attention_heads"] = 1024.into();
    config["num_key_value_heads"] = 1024.into();
    config["head_dim"] = 4096.into();
    config["max_position_embeddings"] = 131_072.into();
    std::fs::write(dir.path().join("config.json"), config.to_string()).expect("write config");
    let model = dir.path().to_str().expect("utf-8");

    let out = wick(&[
        "run",
        "text-generation",
        "--model",
        model,
        "--json",
        "Hello",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let err: Value = serde_json::from_str(stderr.trim()).expect("a JSON error");
    assert_eq!(err["code"], "does_not_fit");
    let message = err["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("(use --load-anyway to try) needs about"),
        "{message}"
    );
    assert!(
        message.contains("pick a smaller quantization or a shorter context"),
        "{message}"
    );

    let out = wick(&[
        "--load-anyway",
        "run",
        "text-generation",
        "--model",
        model,
        "--json",
        "Hello",
    ]);
    let err: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stderr).trim()).expect("json");
    assert_ne!(err["code"], "does_not_fit");
}
