//! The embeddings tab's map: sentence embeddings on their first two principal components, equal
//! to scikit-learn's `PCA(n_components=2)` (numpy reference from `scripts/pca_refs.py`) on the
//! 120 sentence-transformers embeddings of all-MiniLM-L6-v2, in-process and through
//! `wick run feature-extraction --sentence-embedding --map`.

#![allow(clippy::unwrap_used)] // a test fails loudly on what it did not expect

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;
use wick_engine::tasks::embedding_map::pca_2d;
use wick_tests::{fixture, model_dir, target_binary};

fn json(rel: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(rel)).unwrap()).unwrap()
}

fn pairs(v: &Value) -> Vec<[f64; 2]> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|p| [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()])
        .collect()
}

fn assert_map(got: &[[f64; 2]], ratio: [f64; 2], want: &Value, tolerance: f64) {
    let points = pairs(&want["points"]);
    assert_eq!(got.len(), points.len());
    for (i, (g, w)) in got.iter().zip(&points).enumerate() {
        for k in 0..2 {
            assert!(
                (g[k] - w[k]).abs() < tolerance,
                "point {i} axis {k}: {} vs numpy's {}",
                g[k],
                w[k]
            );
        }
    }
    for k in 0..2 {
        let w = want["explained_variance_ratio"][k].as_f64().unwrap();
        assert!(
            (ratio[k] - w).abs() < tolerance,
            "ratio {k}: {} vs {w}",
            ratio[k]
        );
    }
}

#[test]
fn the_map_of_reference_embeddings_equals_scikit_learns_pca() {
    let source = json("embeddings/all-minilm-l6-v2.json");
    let vectors: Vec<Vec<f32>> = source["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            item["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    let map = pca_2d(&vectors);
    let got: Vec<[f64; 2]> = map
        .points
        .iter()
        .map(|p| [f64::from(p[0]), f64::from(p[1])])
        .collect();
    let ratio = map.explained_variance_ratio.map(f64::from);
    assert_map(
        &got,
        ratio,
        &json("embeddings/all-minilm-l6-v2-pca.json"),
        1e-4,
    );
}

#[test]
fn the_cli_maps_the_same_sentences_as_scikit_learn() {
    let want = json("embeddings/all-minilm-l6-v2-pca.json");
    let texts: Vec<&str> = want["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let mut child = Command::new(target_binary("wick"))
        .args([
            "run",
            "feature-extraction",
            "--sentence-embedding",
            "--map",
            "--model",
        ])
        .arg(model_dir("all-minilm-l6-v2"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(texts.join("\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got["texts"].as_array().unwrap().len(), texts.len());
    let ratio = [
        got["explained_variance_ratio"][0].as_f64().unwrap(),
        got["explained_variance_ratio"][1].as_f64().unwrap(),
    ];
    // Wick's embeddings equal sentence-transformers' within 1e-5; the map moves a little more.
    assert_map(&pairs(&got["points"]), ratio, &want, 1e-3);
}
