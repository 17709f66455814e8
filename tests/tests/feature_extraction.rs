//! feature-extraction against the references: sentence embeddings of the real all-MiniLM-L6-v2
//! against sentence-transformers (120 sentences, cosine >= 0.99999 each), and token-level hidden
//! states of the tiny BERT fixture against `transformers`' pipeline (within 1e-4).

use serde::Deserialize;
use serde_json::Value;
use wick_engine::cancel::CancelToken;
use wick_engine::loading::LoadSpec;
use wick_engine::tasks::feature_extraction::{FeatureExtractor, Pooling};
use wick_tests::{fixture, model_dir};

#[derive(Deserialize)]
struct Reference {
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    text: String,
    embedding: Vec<f32>,
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn minilm_sentence_embeddings_match_sentence_transformers() {
    let extractor = LoadSpec::new(&model_dir("all-minilm-l6-v2"))
        .and_then(|s| FeatureExtractor::load(&s))
        .expect("loads");
    let config = extractor
        .sentence_config()
        .expect("a sentence-transformers model");
    assert_eq!(config.pooling, Pooling::Mean);
    assert!(config.normalize);
    assert_eq!(config.max_tokens, Some(256));

    let path = fixture("embeddings/all-minilm-l6-v2.json");
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(path).expect("reference")).expect("json");
    assert!(reference.items.len() >= 100);
    let mut worst = (1.0f64, String::new());
    let mut truncated = 0;
    for item in &reference.items {
        let got = extractor.sentence_embedding(&item.text).expect("embeds");
        truncated += usize::from(got.truncated_tokens > 0);
        let c = cosine(&got.vectors[0], &item.embedding);
        if c < worst.0 {
            worst = (c, item.text.chars().take(60).collect());
        }
    }
    eprintln!("lowest cosine: {:.8} ({:?})", worst.0, worst.1);
    assert!(
        worst.0 >= 0.99999,
        "lowest cosine {:.7} for {:?}",
        worst.0,
        worst.1
    );
    // Two references are longer than the model's 256 tokens: they are cut as
    // sentence-transformers cuts them, not rejected.
    assert!(
        truncated >= 2,
        "the over-long references must be truncated ({truncated} were)"
    );

    // Padded together 32 at a time (longest first), the same vectors come back, in order.
    let texts: Vec<&str> = reference.items.iter().map(|i| i.text.as_str()).collect();
    let batched = extractor
        .sentence_embeddings(&texts, 32, &CancelToken::new())
        .expect("embeds");
    let mut lowest = 1.0f64;
    for (item, got) in reference.items.iter().zip(&batched) {
        let c = cosine(&got.vectors[0], &item.embedding);
        lowest = lowest.min(c);
        assert!(c >= 0.99999, "batched: cosine {c:.7} for {:?}", item.text);
    }
    eprintln!("lowest cosine, batched: {lowest:.8}");
}

#[test]
fn tiny_bert_token_features_match_the_pipeline() {
    let dir = fixture("tiny/bert-base");
    let extractor = LoadSpec::new(&dir)
        .and_then(|s| FeatureExtractor::load(&s))
        .expect("loads");
    let expected: Vec<Value> = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.json")).expect("expected.json"),
    )
    .expect("json");
    let mut checked = 0;
    for case in expected
        .iter()
        .filter(|c| c["task"] == "feature-extraction")
    {
        let text = case["inputs"].as_str().expect("one string input");
        // The pipeline returns [batch=1][tokens][hidden].
        let want: Vec<Vec<Vec<f32>>> =
            serde_json::from_value(case["output"].clone()).expect("nested floats");
        let got = extractor
            .token_features(text, &CancelToken::new())
            .expect("runs");
        assert_eq!(got.vectors.len(), want[0].len(), "{text:?}: token count");
        let max_diff = got
            .vectors
            .iter()
            .flatten()
            .zip(want[0].iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(max_diff < 1e-4, "{text:?}: max abs diff {max_diff}");
        checked += 1;
    }
    assert!(checked >= 2);
}

#[test]
fn missing_or_corrupt_weights_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("wick-fe-{}", std::process::id()));
    let src = fixture("tiny/bert-base");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["config.json", "tokenizer.json", "tokenizer_config.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let err = LoadSpec::new(&dir)
        .and_then(|s| FeatureExtractor::load(&s))
        .unwrap_err();
    assert_eq!(err.code(), wick_engine::ErrorCode::InvalidModel);
    assert!(err.to_string().contains("no weights"), "{err}");

    let weights = std::fs::read(src.join("model.safetensors")).unwrap();
    std::fs::write(dir.join("model.safetensors"), &weights[..weights.len() / 2]).unwrap();
    let err = LoadSpec::new(&dir)
        .and_then(|s| FeatureExtractor::load(&s))
        .unwrap_err();
    assert_eq!(err.code(), wick_engine::ErrorCode::InvalidModel);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn models_it_cannot_run_say_what_is_supported() {
    // Families Wick knows, asked for a task they do not serve: the error names what they can run.
    for (name, can) in [
        ("gpt2-causal-lm", "they can run: text-generation"),
        ("t5-seq2seq-lm", "they can run: summarization, translation"),
    ] {
        let err = LoadSpec::new(&fixture(&format!("tiny/{name}")))
            .and_then(|s| FeatureExtractor::load(&s))
            .unwrap_err();
        assert_eq!(
            err.code(),
            wick_engine::ErrorCode::UnsupportedTask,
            "{name}: {err}"
        );
        assert!(err.to_string().contains(can), "{err}");
    }
    // A family Wick does not know: the error lists every one it does.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "mamba"}"#).unwrap();
    let err = LoadSpec::new(dir.path()).unwrap_err();
    assert_eq!(err.code(), wick_engine::ErrorCode::UnsupportedArchitecture);
    assert!(err.to_string().contains("supported: bert"), "{err}");
}
