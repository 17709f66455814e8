//! Parity of the causal language models and `generate()` with `transformers` 4.57.6 on the tiny
//! fixtures (`tests/fixtures/tiny/<family>-causal-lm/expected.json`, from
//! scripts/make_fixtures.py): the top-5 logits of the first step, and the token ids `generate()`
//! returns for each recorded set of keyword arguments (greedy, beam search, penalties).

// Test helpers fail loudly by design: a missing fixture is a broken setup.
#![allow(clippy::unwrap_used)]

use serde_json::{Map, Value};
use wick_engine::families::causal::{self, Session};
use wick_engine::generate::config::model_generation_json;
use wick_engine::generate::{generate, GenerationConfig, Request};
use wick_tests::{assert_close, fixture};

const FAMILIES: &[&str] = &["gpt2", "llama", "gemma3", "qwen2"];

use wick_engine::cancel::CancelToken;
use wick_engine::loading::LoadSpec;
use wick_engine::tasks::RunControl;
use wick_tests::{fixture_cases as cases, token_ids as ids};

#[test]
fn first_step_logits_match_transformers() {
    for family in FAMILIES {
        let name = format!("{family}-causal-lm");
        let dir = fixture(&format!("tiny/{name}"));
        let loaded = causal::load(&LoadSpec::new(&dir).unwrap()).unwrap();
        let mut checked = 0;
        for case in cases(&name) {
            if case["task"] != "first-step-logits" {
                continue;
            }
            let prompt = ids(&case["input_ids"][0]);
            let mut cache = loaded.model.new_cache();
            let logits = loaded
                .model
                .forward(&[prompt], &mut cache, &CancelToken::new())
                .unwrap()
                .to_vec2::<f32>()
                .unwrap()
                .remove(0);
            let want_ids = ids(&case["output"]["ids"]);
            let want: Vec<f64> = case["output"]["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            let got: Vec<f64> = want_ids
                .iter()
                .map(|&i| logits[i as usize] as f64)
                .collect();
            assert_close(
                &Value::from(got),
                &Value::from(want),
                &format!("{name} {}", case["inputs"]),
            );
            let mut order: Vec<usize> = (0..logits.len()).collect();
            order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
            assert_eq!(order[0] as u32, want_ids[0], "{name}: top token");
            checked += 1;
        }
        assert!(checked > 0, "{name}: no first-step cases");
    }
}

#[test]
fn generate_ids_match_transformers() {
    for family in FAMILIES {
        let name = format!("{family}-causal-lm");
        let dir = fixture(&format!("tiny/{name}"));
        let loaded = causal::load(&LoadSpec::new(&dir).unwrap()).unwrap();
        let model_json = model_generation_json(&dir).unwrap();
        let mut checked = 0;
        for case in cases(&name) {
            if case["task"] != "generate" {
                continue;
            }
            let kwargs: Map<String, Value> = case["kwargs"].as_object().unwrap().clone();
            let config = GenerationConfig::from_layers(&[&model_json, &kwargs]).unwrap();
            let prompt = ids(&case["input_ids"][0]);
            let request = Request {
                config: &config,
                prompt: &prompt,
                max_positions: Some(loaded.model.config.max_positions),
                top_logprobs: 0,
                stop_strings: None,
            };
            let mut session = Session::new(&loaded.model);
            let out = generate(&mut session, &request, &mut |_, _| true).unwrap();
            let got: Vec<Vec<u32>> = out.sequences.iter().map(|s| s.ids.clone()).collect();
            let want: Vec<Vec<u32>> = case["output"].as_array().unwrap().iter().map(ids).collect();
            assert_eq!(got, want, "{name} {} {}", case["inputs"], case["kwargs"]);
            if let Some(scores) = case.get("sequences_scores") {
                let got: Vec<f32> = out.sequences.iter().map(|s| s.score.unwrap()).collect();
                assert_close(
                    &Value::from(got),
                    scores,
                    &format!("{name} {} scores", case["kwargs"]),
                );
            }
            checked += 1;
        }
        assert!(checked > 0, "{name}: no generate cases");
    }
}

#[test]
fn token_logprobs_match_transformers() {
    for family in FAMILIES {
        let name = format!("{family}-causal-lm");
        let dir = fixture(&format!("tiny/{name}"));
        let loaded = causal::load(&LoadSpec::new(&dir).unwrap()).unwrap();
        let model_json = model_generation_json(&dir).unwrap();
        for case in cases(&name) {
            if case["task"] != "generate-logprobs" {
                continue;
            }
            let mut kwargs: Map<String, Value> = case["kwargs"].as_object().unwrap().clone();
            let k = kwargs.remove("top_k").unwrap().as_u64().unwrap() as usize;
            let config = GenerationConfig::from_layers(&[&model_json, &kwargs]).unwrap();
            let prompt = ids(&case["input_ids"][0]);
            let request = Request {
                config: &config,
                prompt: &prompt,
                max_positions: None,
                top_logprobs: k,
                stop_strings: None,
            };
            let mut session = Session::new(&loaded.model);
            let mut streamed = Vec::new();
            let out = generate(&mut session, &request, &mut |_, t| {
                streamed.push(t.clone());
                true
            })
            .unwrap();
            let tokens = &out.sequences[0].tokens;
            assert_eq!(
                &streamed, tokens,
                "{name}: streamed tokens are the returned ones"
            );
            let steps = case["output"].as_array().unwrap();
            assert_eq!(tokens.len(), steps.len(), "{name}");
            for (got, want) in tokens.iter().zip(steps) {
                assert_eq!(got.id as u64, want["id"].as_u64().unwrap(), "{name}");
                let top_ids: Vec<u32> = got.top.iter().map(|a| a.id).collect();
                assert_eq!(top_ids, ids(&want["top_ids"]), "{name}: alternatives");
                let mut got_lp = vec![got.logprob];
                got_lp.extend(got.top.iter().map(|a| a.logprob));
                let mut want_lp = vec![want["logprob"].clone()];
                want_lp.extend(want["top_logprobs"].as_array().unwrap().iter().cloned());
                assert_close(
                    &Value::from(got_lp),
                    &Value::Array(want_lp),
                    &format!("{name} logprobs"),
                );
            }
        }
    }
}

#[test]
fn text_generation_pipeline_matches_transformers() {
    use wick_engine::tasks::text_generation::TextGenerator;
    for family in FAMILIES {
        let name = format!("{family}-causal-lm");
        let dir = fixture(&format!("tiny/{name}"));
        let pipe = TextGenerator::load(&LoadSpec::new(&dir).unwrap()).unwrap();
        let mut checked = 0;
        for case in cases(&name) {
            if case["task"] != "text-generation" {
                continue;
            }
            let kwargs = case["kwargs"].as_object().unwrap().clone();
            let (json, results, _) = pipe
                .call(
                    &case["inputs"],
                    &kwargs,
                    &mut |_, _| true,
                    &RunControl::default(),
                )
                .unwrap();
            assert_eq!(
                json, case["output"],
                "{name} {} {}",
                case["inputs"], case["kwargs"]
            );
            // The prompt the model saw is the one transformers tokenized.
            assert_eq!(
                Value::from(results[0].prompt_ids.clone()),
                case["input_ids"][0],
                "{name}: prompt ids for {}",
                case["inputs"]
            );
            checked += 1;
        }
        assert!(checked >= 4, "{name}: text-generation cases");
    }
}
