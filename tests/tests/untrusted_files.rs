//! The bad files that used to crash or hang Wick, each run through the `wick` command line as a
//! user would, under an address-space limit: every one must end with exit 1 and a one-line
//! message that names the cause, never a signal, a panic or a hang. (The seeded corpus of
//! `scripts/make_bad_inputs.py` covers the many variations; these are the cases as found.)

#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `wick args…` with at most 8 GiB of address space and HF access off; returns (exit code,
/// stderr). A signal or a run past `limit` fails the test.
fn wick(args: &[&str], limit: Duration) -> (i32, String) {
    let started = Instant::now();
    let mut command = if Path::new("/usr/bin/prlimit").exists() {
        let mut c = Command::new("/usr/bin/prlimit");
        c.arg(format!("--as={}", 8u64 << 30)).arg("--");
        c.arg(wick_tests::target_binary("wick"));
        c
    } else {
        Command::new(wick_tests::target_binary("wick"))
    };
    let out = command
        .args(args)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let code = out
        .status
        .code()
        .unwrap_or_else(|| panic!("{args:?} was killed by a signal: {stderr}"));
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert!(
        started.elapsed() < limit,
        "{args:?} took {:?}",
        started.elapsed()
    );
    (code, stderr)
}

/// Asserts a clean failure: exit 1, one line on stderr, containing `cause`.
fn fails_with(args: &[&str], cause: &str) {
    let (code, stderr) = wick(args, Duration::from_secs(120));
    assert_eq!(code, 1, "{args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line:\n{stderr}");
    assert!(lines[0].contains(cause), "{args:?}: {stderr}");
}

/// A copy of a tiny fixture to break.
fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(wick_tests::fixture(&format!("tiny/{name}"))).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    (tmp, dir)
}

fn with_template(template: &str) -> (tempfile::TempDir, PathBuf) {
    let (tmp, dir) = copy_fixture("llama-causal-lm");
    std::fs::write(dir.join("chat_template.jinja"), template).unwrap();
    (tmp, dir)
}

fn chat(dir: &Path) -> Vec<String> {
    [
        "run",
        "text-generation",
        "--model",
        &dir.display().to_string(),
        "--chat",
        "--max-new-tokens",
        "2",
        "hello",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

#[test]
fn a_template_that_loops_for_ever_runs_out_of_fuel() {
    let (_tmp, dir) = with_template(
        "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}\
         {% endfor %}{% endfor %}{% endfor %}",
    );
    fails_with(&strs(&chat(&dir)), "chat template failed: it ran more than");
}

#[test]
fn a_template_that_doubles_a_string_ends_the_helper_not_wick() {
    for template in [
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}\
         {% endfor %}{{ ns.s }}",
        &format!(
            "{{% set s = 'ab' %}}{}{{{{ s }}}}",
            "{% set s = s ~ s %}".repeat(64)
        ),
        &format!(
            "{{% set s = 'ab' %}}{}{{{{ s }}}}",
            "{% set s = s + s %}".repeat(64)
        ),
    ] {
        let (_tmp, dir) = with_template(template);
        fails_with(&strs(&chat(&dir)), "chat template failed");
    }
}

#[test]
fn a_template_that_prints_without_end_is_capped() {
    let (_tmp, dir) = with_template("{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}");
    fails_with(&strs(&chat(&dir)), "output passed");
}

#[test]
fn a_template_error_names_the_template() {
    let (_tmp, dir) = with_template("{{ raise_exception('no system role here') }}");
    fails_with(&strs(&chat(&dir)), "no system role here");
}

#[test]
fn a_million_beams_is_refused_with_the_limit() {
    let fixture = wick_tests::fixture("tiny/llama-causal-lm");
    let model = fixture.display().to_string();
    for (flag, value) in [
        ("--num-beams", "1000000"),
        ("--num-return-sequences", "1000000000"),
        ("--max-new-tokens", "1000000000000"),
    ] {
        fails_with(
            &[
                "run",
                "text-generation",
                "--model",
                &model,
                flag,
                value,
                "hi",
            ],
            "over Wick's limit",
        );
    }
}

#[test]
fn a_generation_config_asking_a_billion_sequences_is_refused() {
    let (_tmp, dir) = copy_fixture("llama-causal-lm");
    let path = dir.join("generation_config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["num_return_sequences"] = serde_json::json!(1_000_000_000u64);
    config["do_sample"] = serde_json::json!(true);
    std::fs::write(&path, config.to_string()).unwrap();
    let model = dir.display().to_string();
    fails_with(
        &["run", "text-generation", "--model", &model, "hi"],
        "num_return_sequences is 1000000000, over Wick's limit of 64",
    );
}

#[test]
fn implausible_config_sizes_are_refused_before_loading() {
    for (key, value, cause) in [
        (
            "max_position_embeddings",
            1u64 << 62,
            "more positions than any model has",
        ),
        (
            "num_hidden_layers",
            1_000_000_000,
            "more layers than any model has",
        ),
        (
            "hidden_size",
            1 << 40,
            "more hidden size than any model has",
        ),
        ("num_attention_heads", 0, "num_attention_heads is 0"),
    ] {
        let (_tmp, dir) = copy_fixture("llama-causal-lm");
        let path = dir.join("config.json");
        let mut config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config[key] = serde_json::json!(value);
        std::fs::write(&path, config.to_string()).unwrap();
        let model = dir.display().to_string();
        fails_with(&["run", "text-generation", "--model", &model, "hi"], cause);
    }
}

#[test]
fn a_gguf_with_alignment_zero_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("model.gguf");
    let string = |text: &str| -> Vec<u8> {
        let mut out = (text.len() as u64).to_le_bytes().to_vec();
        out.extend(text.as_bytes());
        out
    };
    let mut bytes = b"GGUF".to_vec();
    bytes.extend(3u32.to_le_bytes());
    bytes.extend(1u64.to_le_bytes()); // one tensor
    bytes.extend(2u64.to_le_bytes()); // two metadata entries
    bytes.extend(string("general.architecture"));
    bytes.extend(8u32.to_le_bytes());
    bytes.extend(string("llama"));
    bytes.extend(string("general.alignment"));
    bytes.extend(4u32.to_le_bytes());
    bytes.extend(0u32.to_le_bytes());
    bytes.extend(string("token_embd.weight"));
    bytes.extend(2u32.to_le_bytes());
    bytes.extend(4u64.to_le_bytes());
    bytes.extend(4u64.to_le_bytes());
    bytes.extend(0u32.to_le_bytes()); // f32
    bytes.extend(0u64.to_le_bytes());
    bytes.extend([0u8; 64]);
    std::fs::write(&path, bytes).unwrap();
    let model = path.display().to_string();
    fails_with(
        &["run", "text-generation", "--model", &model, "hi"],
        "general.alignment is 0",
    );
    fails_with(
        &["tokenize", "--model", &model, "hi"],
        "general.alignment is 0",
    );
}

#[test]
fn a_question_longer_than_the_window_is_an_error() {
    let fixture = wick_tests::fixture("tiny/bert-question-answering");
    let model = fixture.display().to_string();
    let context = "the sky is blue because of scattering ".repeat(40);
    fails_with(
        &[
            "run",
            "question-answering",
            "--model",
            &model,
            "--question",
            "why is the sky blue and why is the grass green today",
            "--context",
            &context,
            "--doc-stride",
            "40",
            "--max-seq-len",
            "48",
        ],
        "lower doc_stride",
    );
}

/// The limits leave real templates room: a conversation longer than either model's context
/// renders with the starter models' own templates (their GGUF and tokenizer_config.json).
#[test]
fn real_templates_render_long_chats_within_the_limits() {
    use wick_engine::cancel::CancelToken;
    use wick_engine::tokenize::chat::{ChatTemplate, Message};
    let messages: Vec<Message> = (0..2000)
        .map(|i| Message {
            role: if i % 2 == 0 { "user" } else { "assistant" }.into(),
            content: format!("message {i}: the quick brown fox jumps over the lazy dog"),
        })
        .collect();
    let smollm =
        wick_tests::model_dir("smollm2-135m-instruct").join("SmolLM2-135M-Instruct.Q4_1.gguf");
    let gemma = wick_tests::model_dir("gemma3-270m");
    for template in [
        ChatTemplate::from_gguf(&smollm).unwrap().unwrap(),
        ChatTemplate::from_folder(&gemma).unwrap().unwrap(),
    ] {
        let text = template
            .render(&messages, true, false, &CancelToken::new())
            .unwrap();
        assert!(
            text.contains("message 1999: the quick brown fox"),
            "{}",
            &text[..200]
        );
    }
}
