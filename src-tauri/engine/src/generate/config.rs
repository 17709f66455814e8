//! `GenerationConfig`, as transformers 4.57 defines it: its defaults, the layers it is built from
//! (model config, `generation_config.json`, a pipeline's defaults, `task_specific_params`, the
//! call's keyword arguments) and the checks `generate()` makes before it starts.

use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::error::{Result, WickError};

/// `early_stopping`: `true`, `false` or `"never"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum EarlyStopping {
    #[default]
    Heuristic,
    Stop,
    Never,
}

impl<'de> Deserialize<'de> for EarlyStopping {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(true) => Ok(Self::Stop),
            Value::Bool(false) | Value::Null => Ok(Self::Heuristic),
            Value::String(s) if s == "never" => Ok(Self::Never),
            other => Err(serde::de::Error::custom(format!(
                "early_stopping must be true, false or \"never\", got {other}"
            ))),
        }
    }
}

/// A token id or a list of them (`eos_token_id` may be either), or null.
fn ids<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<u32>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(|n| vec![n])
            .ok_or_else(|| {
                serde::de::Error::custom("a token id must be a whole number below 2^32")
            }),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        serde::de::Error::custom("a token id must be a whole number below 2^32")
                    })
            })
            .collect(),
        other => Err(serde::de::Error::custom(format!(
            "expected a token id or a list of them, got {other}"
        ))),
    }
}

/// A string or a list of strings.
fn strings<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![s]),
        other => serde_json::from_value(other).map_err(serde::de::Error::custom),
    }
}

/// The most beams (and returned sequences) one call may ask for: each holds a whole cache.
pub const MAX_BEAMS: usize = 64;
/// top_k is cut to the vocabulary anyway (as transformers does); more than this is a mistake.
pub const MAX_TOP_K: usize = 1 << 20;
/// The longest generation in tokens: longer than any model's context, small enough that lengths
/// plus a prompt never overflow.
pub const MAX_LENGTH: usize = 1 << 20;
/// The most end-of-sequence ids a model may list.
const MAX_TOKEN_LIST: usize = 4096;

/// The settings of one `generate()` call, with transformers' defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct GenerationConfig {
    /// Total length (prompt included; decoder length for encoder-decoder models).
    pub max_length: usize,
    pub max_new_tokens: Option<usize>,
    pub min_length: usize,
    pub min_new_tokens: Option<usize>,
    pub do_sample: bool,
    pub num_beams: usize,
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub typical_p: Option<f32>,
    pub repetition_penalty: Option<f32>,
    pub no_repeat_ngram_size: Option<usize>,
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
    pub num_return_sequences: usize,
    #[serde(deserialize_with = "ids")]
    pub eos_token_id: Vec<u32>,
    pub pad_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    pub decoder_start_token_id: Option<u32>,
    pub forced_bos_token_id: Option<u32>,
    #[serde(deserialize_with = "ids")]
    pub forced_eos_token_id: Vec<u32>,
    pub suppress_tokens: Option<Vec<u32>>,
    pub begin_suppress_tokens: Option<Vec<u32>>,
    #[serde(deserialize_with = "strings")]
    pub stop_strings: Vec<String>,
    /// Seed of the sampler (Wick's addition: transformers seeds torch globally instead).
    pub seed: Option<u64>,
}

impl Default for GenerationConfig {
    fn default() -> Self {
        Self {
            max_length: 20,
            max_new_tokens: None,
            min_length: 0,
            min_new_tokens: None,
            do_sample: false,
            num_beams: 1,
            temperature: Some(1.0),
            top_k: Some(50),
            top_p: Some(1.0),
            min_p: None,
            typical_p: Some(1.0),
            repetition_penalty: Some(1.0),
            no_repeat_ngram_size: Some(0),
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            num_return_sequences: 1,
            eos_token_id: Vec::new(),
            pad_token_id: None,
            bos_token_id: None,
            decoder_start_token_id: None,
            forced_bos_token_id: None,
            forced_eos_token_id: Vec::new(),
            suppress_tokens: None,
            begin_suppress_tokens: None,
            stop_strings: Vec::new(),
            seed: None,
        }
    }
}

/// The keyword arguments `generate()` accepts, i.e. the fields above.
pub const GENERATE_KWARGS: &[&str] = &[
    "max_length",
    "max_new_tokens",
    "min_length",
    "min_new_tokens",
    "do_sample",
    "num_beams",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "typical_p",
    "repetition_penalty",
    "no_repeat_ngram_size",
    "length_penalty",
    "early_stopping",
    "num_return_sequences",
    "eos_token_id",
    "pad_token_id",
    "bos_token_id",
    "decoder_start_token_id",
    "forced_bos_token_id",
    "forced_eos_token_id",
    "suppress_tokens",
    "begin_suppress_tokens",
    "stop_strings",
    "seed",
];

/// Token ids config.json may set, which `generation_config.json` inherits when it lacks them.
const TOKEN_KEYS: &[&str] = &[
    "eos_token_id",
    "pad_token_id",
    "bos_token_id",
    "decoder_start_token_id",
    "forced_bos_token_id",
    "forced_eos_token_id",
];

fn read_json(path: &Path) -> Result<Option<Map<String, Value>>> {
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| WickError::io(path, e))?;
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(WickError::InvalidModel {
            path: path.to_path_buf(),
            reason: "expected a JSON object".into(),
        }),
        Err(e) => Err(WickError::InvalidModel {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// A model's own generation settings, as raw JSON: `generation_config.json` if the folder has
/// one, else the generation fields of config.json (what transformers' `from_model_config` does).
pub fn model_generation_json(dir: &Path) -> Result<Map<String, Value>> {
    let config = read_json(&dir.join("config.json"))?.unwrap_or_default();
    let mut map = match read_json(&dir.join("generation_config.json"))? {
        Some(map) => map,
        None => config
            .iter()
            .filter(|(k, _)| GENERATE_KWARGS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    };
    for key in TOKEN_KEYS {
        if !map.contains_key(*key) {
            if let Some(v) = config.get(*key) {
                map.insert((*key).to_string(), v.clone());
            }
        }
    }
    Ok(map)
}

impl GenerationConfig {
    /// Builds the settings from JSON layers, later layers winning.
    pub fn from_layers(layers: &[&Map<String, Value>]) -> Result<Self> {
        let mut merged = Map::new();
        for layer in layers {
            for (k, v) in layer.iter() {
                if GENERATE_KWARGS.contains(&k.as_str()) {
                    merged.insert(k.clone(), v.clone());
                }
            }
        }
        serde_json::from_value(Value::Object(merged))
            .map_err(|e| WickError::InvalidInput(format!("generation settings: {e}")))
    }

    /// A pipeline's defaults over a model's settings, as transformers merges them: a pipeline
    /// default wins unless it equals the library default; a model `max_length` other than 20
    /// replaces the pipeline's `max_new_tokens`.
    pub fn pipeline_layer(
        pipeline_defaults: &Map<String, Value>,
        model: &Map<String, Value>,
    ) -> Map<String, Value> {
        let library = serde_json::to_value(GenerationConfig::default())
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        let mut out = model.clone();
        for (k, v) in pipeline_defaults {
            if library.get(k) != Some(v) || !model.contains_key(k) {
                out.insert(k.clone(), v.clone());
            }
        }
        let model_max = model.get("max_length").and_then(Value::as_u64);
        if model_max.is_some_and(|m| m != 20) {
            out.insert("max_new_tokens".into(), Value::Null);
        }
        out
    }

    /// The longest total length for a prompt of `prompt_len` tokens (the decoder prompt for
    /// encoder-decoder models), capped by the model's positions when defaulted.
    pub fn resolved_max_length(&self, prompt_len: usize, max_positions: Option<usize>) -> usize {
        match self.max_new_tokens {
            Some(n) => prompt_len + n,
            None if self.max_length == 20 => {
                let len = prompt_len + 20;
                max_positions.map_or(len, |m| len.min(m))
            }
            None => self.max_length,
        }
    }

    /// The smallest total length (min_new_tokens counts from the prompt's end).
    pub fn resolved_min_length(&self, prompt_len: usize) -> usize {
        match self.min_new_tokens {
            Some(n) => self.min_length.max(prompt_len + n),
            None => self.min_length,
        }
    }

    /// The checks transformers makes, as errors a person can act on, and Wick's limits on what
    /// sizes work (settings come from a model's generation_config.json too: untrusted).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(WickError::InvalidInput(m));
        for (name, value, limit) in [
            ("num_beams", self.num_beams, MAX_BEAMS),
            ("num_return_sequences", self.num_return_sequences, MAX_BEAMS),
            ("top_k", self.top_k.unwrap_or(0), MAX_TOP_K),
            (
                "max_new_tokens",
                self.max_new_tokens.unwrap_or(0),
                MAX_LENGTH,
            ),
            ("max_length", self.max_length, MAX_LENGTH),
            ("min_length", self.min_length, MAX_LENGTH),
            (
                "min_new_tokens",
                self.min_new_tokens.unwrap_or(0),
                MAX_LENGTH,
            ),
            (
                "no_repeat_ngram_size",
                self.no_repeat_ngram_size.unwrap_or(0),
                MAX_LENGTH,
            ),
        ] {
            if value > limit {
                return bad(format!(
                    "{name} is {value}, over Wick's limit of {limit}{}",
                    if self.num_beams > MAX_BEAMS || self.num_return_sequences > MAX_BEAMS {
                        " (each beam or sequence holds its own cache of the whole text)"
                    } else {
                        ""
                    }
                ));
            }
        }
        for (name, len) in [
            ("eos_token_id", self.eos_token_id.len()),
            ("forced_eos_token_id", self.forced_eos_token_id.len()),
            (
                "suppress_tokens",
                self.suppress_tokens.as_ref().map_or(0, Vec::len),
            ),
            (
                "begin_suppress_tokens",
                self.begin_suppress_tokens.as_ref().map_or(0, Vec::len),
            ),
            ("stop_strings", self.stop_strings.len()),
        ] {
            if len > MAX_TOKEN_LIST {
                return bad(format!(
                    "{name} lists {len} entries, over Wick's limit of {MAX_TOKEN_LIST}"
                ));
            }
        }
        if self.num_beams == 0 {
            return bad("num_beams must be at least 1".into());
        }
        if self.num_return_sequences == 0 {
            return bad("num_return_sequences must be at least 1".into());
        }
        if self.num_return_sequences > self.num_beams && self.num_beams > 1 {
            return bad(format!(
                "num_return_sequences ({}) cannot be more than num_beams ({}): beam search \
                 only keeps num_beams sequences",
                self.num_return_sequences, self.num_beams
            ));
        }
        if self.num_beams == 1 && !self.do_sample && self.num_return_sequences != 1 {
            return bad(format!(
                "greedy search returns one sequence, not {}: set do_sample=true or num_beams >= {}",
                self.num_return_sequences, self.num_return_sequences
            ));
        }
        if self.do_sample {
            if let Some(t) = self.temperature {
                if !(t > 0.0 && t.is_finite()) {
                    return bad(format!(
                        "temperature must be a positive number when sampling, got {t}; for the \
                         most likely token every time, set do_sample=false (greedy)"
                    ));
                }
            }
            if let Some(p) = self.top_p {
                if !(0.0..=1.0).contains(&p) {
                    return bad(format!("top_p must be between 0 and 1, got {p}"));
                }
            }
            if let Some(p) = self.min_p {
                if !(0.0..=1.0).contains(&p) {
                    return bad(format!("min_p must be between 0 and 1, got {p}"));
                }
            }
        }
        if let Some(p) = self.repetition_penalty {
            if !(p > 0.0 && p.is_finite()) {
                return bad(format!("repetition_penalty must be positive, got {p}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn layers_override_and_nulls_clear() {
        let model = map(json!({"eos_token_id": [2, 7], "top_k": 20, "transformers_version": "x"}));
        let call = map(json!({"top_k": null, "max_new_tokens": 5, "early_stopping": "never"}));
        let cfg = GenerationConfig::from_layers(&[&model, &call]).unwrap();
        assert_eq!(cfg.eos_token_id, vec![2, 7]);
        assert_eq!(cfg.top_k, None);
        assert_eq!(cfg.early_stopping, EarlyStopping::Never);
        assert_eq!(cfg.resolved_max_length(4, None), 9);
    }

    #[test]
    fn default_length_is_twenty_new_tokens_capped_by_positions() {
        let cfg = GenerationConfig::default();
        assert_eq!(cfg.resolved_max_length(6, None), 26);
        assert_eq!(cfg.resolved_max_length(6, Some(16)), 16);
        let total = GenerationConfig {
            max_length: 12,
            ..Default::default()
        };
        assert_eq!(total.resolved_max_length(6, None), 12);
    }

    #[test]
    fn pipeline_defaults_win_unless_they_are_library_defaults() {
        let pipe = map(json!({"max_new_tokens": 256, "do_sample": true, "temperature": 0.7}));
        let model = map(json!({"temperature": 0.6, "top_p": 0.9}));
        let merged = GenerationConfig::pipeline_layer(&pipe, &model);
        assert_eq!(merged["temperature"], json!(0.7));
        assert_eq!(merged["top_p"], json!(0.9));
        let long = map(json!({"max_length": 100}));
        let merged = GenerationConfig::pipeline_layer(&pipe, &long);
        assert_eq!(merged["max_new_tokens"], Value::Null);
    }

    #[test]
    fn impossible_settings_are_refused() {
        let beams = GenerationConfig {
            num_beams: 2,
            num_return_sequences: 3,
            ..Default::default()
        };
        assert!(beams
            .validate()
            .unwrap_err()
            .to_string()
            .contains("num_beams"));
        let cold = GenerationConfig {
            do_sample: true,
            temperature: Some(0.0),
            ..Default::default()
        };
        assert!(cold
            .validate()
            .unwrap_err()
            .to_string()
            .contains("do_sample=false"));
        let greedy_many = GenerationConfig {
            num_return_sequences: 2,
            ..Default::default()
        };
        assert!(greedy_many.validate().is_err());
    }
}
