//! Parity of the encoder-decoder models (T5, BART, Marian) and `generate()` with
//! `transformers` 4.57.6 on the tiny fixtures: the top-5 logits of the first decoder step and
//! the token ids of greedy generation.

// Test helpers fail loudly by design: a missing fixture is a broken setup.
#![allow(clippy::unwrap_used)]

use serde_json::{Map, Value};
use wick_engine::families::seq2seq::{Seq2Seq, Session};
use wick_engine::generate::config::model_generation_json;
use wick_engine::generate::{generate, GenerationConfig, Request};
use wick_tests::{assert_close, fixture};

const FAMILIES: &[&str] = &["t5", "bart", "marian"];

use wick_engine::cancel::CancelToken;
use wick_engine::loading::LoadSpec;
use wick_tests::{fixture_cases as cases, token_ids as ids};

#[test]
fn first_decoder_step_matches_transformers() {
    for family in FAMILIES {
        let name = format!("{family}-seq2seq-lm");
        let dir = fixture(&format!("tiny/{name}"));
        let model = Seq2Seq::load(&LoadSpec::new(&dir).unwrap()).unwrap();
        let settings = model_generation_json(&dir).unwrap();
        let start = settings["decoder_start_token_id"].as_u64().unwrap() as u32;
        let mut checked = 0;
        for case in cases(&name) {
            if case["task"] != "first-step-logits" {
                continue;
            }
            let source = ids(&case["input_ids"][0]);
            let encoded = model.encode(&source).unwrap();
            let mut cache = model.new_cache();
            let logits = model
                .decode(&encoded, &[vec![start]], &mut cache)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap()
                .remove(0);
            let want_ids = ids(&case["output"]["ids"]);
            let got: Vec<f64> = want_ids
                .iter()
                .map(|&i| logits[i as usize] as f64)
                .collect();
            assert_close(
                &Value::from(got),
                &case["output"]["values"],
                &format!("{name} {}", case["inputs"]),
            );
            checked += 1;
        }
        assert!(checked > 0, "{name}");
    }
}

#[test]
fn generate_ids_match_transformers() {
    for family in FAMILIES {
        let name = format!("{family}-seq2seq-lm");
        let dir = fixture(&format!("tiny/{name}"));
        let model = Seq2Seq::load(&LoadSpec::new(&dir).unwrap()).unwrap();
        let settings = model_generation_json(&dir).unwrap();
        let mut checked = 0;
        for case in cases(&name) {
            if case["task"] != "generate" {
                continue;
            }
            let kwargs: Map<String, Value> = case["kwargs"].as_object().unwrap().clone();
            let config = GenerationConfig::from_layers(&[&settings, &kwargs]).unwrap();
            let start = config
                .decoder_start_token_id
                .or(config.bos_token_id)
                .unwrap();
            let source = ids(&case["input_ids"][0]);
            let mut session = Session::new(&model, &source, &CancelToken::new()).unwrap();
            let request = Request {
                config: &config,
                prompt: &[start],
                max_positions: model.max_decoder_positions(),
                top_logprobs: 0,
                stop_strings: None,
            };
            let out = generate(&mut session, &request, &mut |_, _| true).unwrap();
            let got: Vec<Vec<u32>> = out.sequences.iter().map(|s| s.ids.clone()).collect();
            let want: Vec<Vec<u32>> = case["output"].as_array().unwrap().iter().map(ids).collect();
            assert_eq!(got, want, "{name} {} {}", case["inputs"], case["kwargs"]);
            checked += 1;
        }
        assert!(checked > 0, "{name}");
    }
}

#[test]
fn summarization_and_translation_pipelines_match_transformers() {
    use wick_engine::tasks::pipeline::Pipeline;
    use wick_engine::tasks::Task;
    for family in FAMILIES {
        let name = format!("{family}-seq2seq-lm");
        let dir = fixture(&format!("tiny/{name}"));
        let mut checked = 0;
        for case in cases(&name) {
            let task = case["task"].as_str().unwrap();
            let (pipe_task, mut kwargs) = match task {
                "summarization" => (Task::Summarization, Map::new()),
                t if t.starts_with("translation_") => {
                    let parts: Vec<&str> = t.split('_').collect();
                    let mut m = Map::new();
                    m.insert("src_lang".into(), Value::from(parts[1]));
                    m.insert("tgt_lang".into(), Value::from(parts[3]));
                    (Task::Translation, m)
                }
                _ => continue,
            };
            kwargs.extend(case["kwargs"].as_object().unwrap().clone());
            let pipe = Pipeline::load(pipe_task, &LoadSpec::new(&dir).unwrap()).unwrap();
            let got = pipe.call(&case["inputs"], &kwargs, 1).unwrap();
            assert_eq!(got, case["output"], "{name} {task} {}", case["inputs"]);
            checked += 1;
        }
        assert_eq!(checked, 2, "{name}");
    }
}
