//! `wick`'s tokenizers against `transformers`' `AutoTokenizer`, id for id, on a corpus of 78
//! strings (Unicode, emoji, CJK, whitespace runs, code, the empty string ...) and real models.
//! References come from `scripts/tokenizer_refs.py`; see tests/fixtures/README.md.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use wick_engine::{TokenizeOptions, WickTokenizer};
use wick_tests::{fixture, model_dir};

#[derive(Deserialize)]
struct Reference {
    model: String,
    source: String,
    gguf_file: Option<String>,
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    text: String,
    ids: Vec<u32>,
    tokens: Vec<String>,
    offsets: Vec<(u32, u32)>,
    special_tokens_mask: Vec<u8>,
    decoded: String,
    ids_without_special_tokens: Vec<u32>,
}

/// Strings where Wick deliberately differs from `transformers`, each with the reason and the ids
/// Wick gives instead (tests/fixtures/tokenizer/known_differences.json).
#[derive(Deserialize)]
struct KnownDifference {
    text: String,
    ids: Vec<u32>,
    why: String,
}

fn known_differences(file: &str) -> Vec<KnownDifference> {
    let path = fixture("tokenizer/known_differences.json");
    let text = std::fs::read_to_string(&path).expect("known_differences.json is readable");
    let mut all: std::collections::HashMap<String, Vec<KnownDifference>> =
        serde_json::from_str(&text).expect("known_differences.json parses");
    all.remove(file).unwrap_or_default()
}

fn load_reference(file: &str) -> Reference {
    let path = fixture(&format!("tokenizer/expected/{file}"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad reference {file}: {e}"))
}

/// Checks the tokenizer the reference was made from.
fn check(file: &str) {
    check_with(file, |reference, dir| {
        match (reference.source.as_str(), &reference.gguf_file) {
            ("gguf", Some(name)) => dir.join(name),
            ("gguf", None) => panic!("{file}: a gguf reference must name its gguf_file"),
            _ => dir.join("tokenizer.json"),
        }
    });
}

/// Compares every item and reports all differences at once, so one run shows the whole picture.
fn check_with(file: &str, tokenizer_path: impl Fn(&Reference, &Path) -> PathBuf) {
    let reference = load_reference(file);
    let dir = model_dir(&reference.model);
    let path = tokenizer_path(&reference, &dir);
    let tokenizer = WickTokenizer::from_path(&path).expect("tokenizer loads");
    let with_special = TokenizeOptions::default();
    let without_special = TokenizeOptions {
        add_special_tokens: false,
        ..TokenizeOptions::default()
    };

    let known = known_differences(file);
    let mut failures = Vec::new();
    for item in &reference.items {
        if let Some(k) = known.iter().find(|k| k.text == item.text) {
            let ids = tokenizer
                .encode_ids(&item.text, &with_special)
                .expect("tokenizes");
            assert_eq!(
                ids, k.ids,
                "{:?}: known difference changed ({})",
                k.text, k.why
            );
            assert_ne!(
                ids, item.ids,
                "{:?} now matches transformers: drop it from known_differences.json",
                k.text
            );
            continue;
        }
        let ins = tokenizer
            .inspect(&item.text, &with_special)
            .expect("tokenizes");
        let tokens: Vec<&str> = ins.tokens.iter().map(|t| t.token.as_str()).collect();
        let offsets: Vec<(u32, u32)> = ins.tokens.iter().map(|t| (t.start, t.end)).collect();
        let mask: Vec<u8> = ins.tokens.iter().map(|t| u8::from(t.special)).collect();
        let plain = tokenizer
            .encode_ids(&item.text, &without_special)
            .expect("tokenizes");
        let mut diffs = Vec::new();
        if ins.ids != item.ids {
            diffs.push(format!("ids {:?} != {:?}", ins.ids, item.ids));
        }
        if tokens != item.tokens {
            diffs.push(format!("tokens {tokens:?} != {:?}", item.tokens));
        }
        if offsets != item.offsets {
            diffs.push(format!("offsets {offsets:?} != {:?}", item.offsets));
        }
        if mask != item.special_tokens_mask {
            diffs.push(format!(
                "special mask {mask:?} != {:?}",
                item.special_tokens_mask
            ));
        }
        if ins.decoded != item.decoded {
            diffs.push(format!("decoded {:?} != {:?}", ins.decoded, item.decoded));
        }
        if plain != item.ids_without_special_tokens {
            diffs.push(format!(
                "ids without special tokens {plain:?} != {:?}",
                item.ids_without_special_tokens
            ));
        }
        if !diffs.is_empty() {
            failures.push(format!("{:?}:\n    {}", item.text, diffs.join("\n    ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{file}: {} of {} strings differ from transformers:\n{}",
        failures.len(),
        reference.items.len(),
        failures.join("\n")
    );
    assert!(
        reference.items.len() >= 50,
        "the corpus must have 50+ strings"
    );
}

#[test]
fn minilm_tokenizer_json_matches_transformers() {
    check("all-minilm-l6-v2.json");
}

#[test]
fn splade_tokenizer_json_matches_transformers() {
    check("splade-tiny.json");
}

#[test]
fn rampart_tokenizer_json_matches_transformers() {
    check("rampart-ner.json");
}

#[test]
fn flan_t5_tokenizer_json_matches_transformers() {
    check("flan-t5-small-titles.json");
}

#[test]
fn gemma3_tokenizer_json_matches_transformers() {
    check("gemma3-270m.json");
}

#[test]
fn smollm2_gguf_tokenizer_matches_transformers() {
    check("smollm2-135m-instruct.json");
}

/// Gemma 3's GGUF has scores but no merges. Rebuilt from them, its tokenizer must split text
/// exactly as the model's own tokenizer.json does under transformers.
#[test]
fn gemma3_gguf_tokenizer_matches_its_tokenizer_json() {
    check_with("gemma3-270m.json", |_, dir| {
        dir.join("gemma-3-270m-q4_k_m.gguf")
    });
}
