//! One description of a decoder-only transformer, read from the `config.json` of each family
//! (or from GGUF metadata, in `gguf`). The forward pass in `model` reads only this, so the
//! families differ here and nowhere else.

use serde::Deserialize;
use serde_json::Value;

use crate::blocks::Activation;
use crate::error::ConfigError;

/// The families of causal language models Wick runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CausalFamily {
    Gpt2,
    /// Llama, Mistral, SmolLM2, TinyLlama.
    Llama,
    Qwen2,
    Qwen3,
    Gemma3,
    Phi3,
}

/// How a layer normalises.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NormKind {
    /// LayerNorm with weight and bias (GPT-2).
    Layer,
    /// RMSNorm scaling by `w` (Llama, Qwen, Phi).
    Rms,
    /// RMSNorm scaling by `1 + w` (Gemma).
    RmsOffset,
}

/// How rotary position embeddings pair up the dimensions of a head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RopeStyle {
    /// Dimension `i` with `i + d/2` (transformers' `rotate_half`).
    Half,
    /// Dimension `2i` with `2i + 1` (GGUF llama weights are permuted for this).
    Interleaved,
}

/// Where positions come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Positions {
    /// A learned table of `max` rows (GPT-2).
    Learned { max: usize },
    /// Rotary embeddings. `local_theta` is the base of sliding-window layers when it differs.
    Rope {
        theta: f64,
        local_theta: Option<f64>,
        style: RopeStyle,
        /// Llama 3 frequency scaling, when the config asks for it.
        llama3: Option<Llama3Scaling>,
        /// Linear position scaling (`rope_scaling.type = "linear"`): positions are divided by it.
        linear_factor: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Llama3Scaling {
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    pub original_max_position_embeddings: f64,
}

/// Everything the forward pass needs to know about a model.
#[derive(Debug, Clone)]
pub struct CausalConfig {
    pub family: CausalFamily,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub intermediate_size: usize,
    pub norm: NormKind,
    pub norm_eps: f64,
    pub activation: Activation,
    pub positions: Positions,
    /// Query, key and value projections have biases (GPT-2, Qwen2).
    pub qkv_bias: bool,
    /// Output and MLP projections have biases (GPT-2).
    pub dense_bias: bool,
    /// RMSNorm of each query and key head before rotary (Qwen3, Gemma 3).
    pub qk_norm: bool,
    /// Norms after attention and after the MLP as well as before (Gemma 3).
    pub sandwich_norms: bool,
    /// The MLP is `down(act(gate(x)) * up(x))` rather than `proj(act(fc(x)))`.
    pub gated_mlp: bool,
    /// Multiplies attention scores (1/sqrt(head_dim) unless the family says otherwise).
    pub attention_scale: f64,
    /// Multiplies the token embeddings (Gemma: sqrt(hidden_size)).
    pub embedding_scale: Option<f64>,
    /// Per layer: the sliding attention window, if the layer has one.
    pub sliding_windows: Vec<Option<usize>>,
    pub tie_word_embeddings: bool,
    /// `tanh` soft-capping of the final logits (Gemma 2 style), if any.
    pub final_logit_softcap: Option<f64>,
    /// The longest sequence the positions cover.
    pub max_positions: usize,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
    pub pad_token_id: Option<u32>,
    /// Keep the key/value cache at f16 precision (what llama.cpp does with GGUF models).
    pub kv_f16: bool,
}

/// `eos_token_id` may be a number or a list.
pub fn token_ids(value: Option<&Value>) -> Vec<u32> {
    match value {
        // An id that does not fit a u32 is no token: dropped, never truncated into another.
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(|n| vec![n])
            .unwrap_or_default(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
            .collect(),
        _ => Vec::new(),
    }
}

fn usize_of(config: &Value, keys: &[&str]) -> Option<usize> {
    keys.iter()
        .find_map(|k| config.get(*k).and_then(Value::as_u64))
        .map(|n| n as usize)
}

fn f64_of(config: &Value, key: &str) -> Option<f64> {
    config.get(key).and_then(Value::as_f64)
}

fn activation_of(
    config: &Value,
    keys: &[&str],
    default: Activation,
) -> Result<Activation, ConfigError> {
    match keys.iter().find_map(|k| config.get(*k)) {
        Some(v) => {
            serde_json::from_value(v.clone()).map_err(|_| format!("unknown activation {v}").into())
        }
        None => Ok(default),
    }
}

impl CausalConfig {
    /// Reads a config.json whose `model_type` is one of the causal families.
    pub fn from_json(config: &Value, family: CausalFamily) -> Result<Self, ConfigError> {
        let need = |keys: &[&str]| {
            usize_of(config, keys).ok_or_else(|| format!("config.json has no {}", keys[0]).into())
        };
        if family == CausalFamily::Gpt2 {
            return Self::gpt2(config, need);
        }
        let hidden_size = need(&["hidden_size"])?;
        let heads = need(&["num_attention_heads"])?;
        let layers = need(&["num_hidden_layers"])?;
        let head_dim = usize_of(config, &["head_dim"]).unwrap_or(hidden_size / heads.max(1));
        let kv_heads = usize_of(config, &["num_key_value_heads"]).unwrap_or(heads);
        let theta = f64_of(config, "rope_theta").unwrap_or(10_000.0);
        let (llama3, linear_factor) = rope_scaling(config)?;
        let sliding = sliding_windows(config, family, layers);
        let gemma = family == CausalFamily::Gemma3;
        if family == CausalFamily::Phi3 {
            let partial = f64_of(config, "partial_rotary_factor").unwrap_or(1.0);
            if partial != 1.0 {
                return Err(format!("partial_rotary_factor {partial} is not supported yet").into());
            }
        }
        Ok(Self {
            family,
            vocab_size: need(&["vocab_size"])?,
            hidden_size,
            layers,
            heads,
            kv_heads,
            head_dim,
            intermediate_size: need(&["intermediate_size"])?,
            norm: if gemma {
                NormKind::RmsOffset
            } else {
                NormKind::Rms
            },
            norm_eps: f64_of(config, "rms_norm_eps").unwrap_or(1e-6),
            activation: activation_of(
                config,
                &["hidden_activation", "hidden_act"],
                if gemma {
                    Activation::GeluNew
                } else {
                    Activation::Silu
                },
            )?,
            positions: Positions::Rope {
                theta,
                local_theta: gemma
                    .then(|| f64_of(config, "rope_local_base_freq"))
                    .flatten(),
                style: RopeStyle::Half,
                llama3,
                linear_factor,
            },
            qkv_bias: match family {
                CausalFamily::Qwen2 => true,
                _ => config
                    .get("attention_bias")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            },
            dense_bias: false,
            qk_norm: matches!(family, CausalFamily::Qwen3 | CausalFamily::Gemma3),
            sandwich_norms: gemma,
            gated_mlp: true,
            attention_scale: match (gemma, f64_of(config, "query_pre_attn_scalar")) {
                (true, Some(s)) => 1.0 / s.sqrt(),
                _ => 1.0 / (head_dim as f64).sqrt(),
            },
            embedding_scale: gemma.then(|| (hidden_size as f64).sqrt()),
            sliding_windows: sliding,
            tie_word_embeddings: config
                .get("tie_word_embeddings")
                .and_then(Value::as_bool)
                // Gemma ties by default; the others' defaults are false in transformers.
                .unwrap_or(gemma || family == CausalFamily::Qwen3),
            final_logit_softcap: f64_of(config, "final_logit_softcapping"),
            max_positions: usize_of(config, &["max_position_embeddings"]).unwrap_or(usize::MAX),
            bos_token_id: token_ids(config.get("bos_token_id")).first().copied(),
            eos_token_ids: token_ids(config.get("eos_token_id")),
            pad_token_id: token_ids(config.get("pad_token_id")).first().copied(),
            kv_f16: false,
        })
    }

    fn gpt2(
        config: &Value,
        need: impl Fn(&[&str]) -> Result<usize, ConfigError>,
    ) -> Result<Self, ConfigError> {
        let hidden_size = need(&["n_embd", "hidden_size"])?;
        let heads = need(&["n_head", "num_attention_heads"])?;
        let layers = need(&["n_layer", "num_hidden_layers"])?;
        let max = need(&["n_positions", "max_position_embeddings"])?;
        for flag in ["scale_attn_by_inverse_layer_idx", "reorder_and_upcast_attn"] {
            if config.get(flag).and_then(Value::as_bool).unwrap_or(false) {
                return Err(format!("{flag} is not supported yet").into());
            }
        }
        let head_dim = hidden_size / heads.max(1);
        let scaled = config
            .get("scale_attn_weights")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        Ok(Self {
            family: CausalFamily::Gpt2,
            vocab_size: need(&["vocab_size"])?,
            hidden_size,
            layers,
            heads,
            kv_heads: heads,
            head_dim,
            intermediate_size: usize_of(config, &["n_inner"]).unwrap_or(4 * hidden_size),
            norm: NormKind::Layer,
            norm_eps: f64_of(config, "layer_norm_epsilon").unwrap_or(1e-5),
            activation: activation_of(config, &["activation_function"], Activation::GeluNew)?,
            positions: Positions::Learned { max },
            qkv_bias: true,
            dense_bias: true,
            qk_norm: false,
            sandwich_norms: false,
            gated_mlp: false,
            attention_scale: if scaled {
                1.0 / (head_dim as f64).sqrt()
            } else {
                1.0
            },
            embedding_scale: None,
            sliding_windows: vec![None; layers],
            tie_word_embeddings: true,
            final_logit_softcap: None,
            max_positions: max,
            bos_token_id: token_ids(config.get("bos_token_id")).first().copied(),
            eos_token_ids: token_ids(config.get("eos_token_id")),
            pad_token_id: token_ids(config.get("pad_token_id")).first().copied(),
            kv_f16: false,
        })
    }
}

fn rope_scaling(config: &Value) -> Result<(Option<Llama3Scaling>, f64), ConfigError> {
    let Some(scaling) = config.get("rope_scaling").filter(|v| !v.is_null()) else {
        return Ok((None, 1.0));
    };
    let kind = scaling
        .get("rope_type")
        .or_else(|| scaling.get("type"))
        .and_then(Value::as_str)
        .unwrap_or("default");
    let positive = |name: &str, x: f64| -> Result<f64, ConfigError> {
        if x > 0.0 && x.is_finite() {
            Ok(x)
        } else {
            Err(format!("rope_scaling's {name} is {x}; it must be a positive number").into())
        }
    };
    match kind {
        "default" => Ok((None, 1.0)),
        "linear" => Ok((
            None,
            positive("factor", f64_of(scaling, "factor").unwrap_or(1.0))?,
        )),
        "llama3" => {
            let s: Llama3Scaling = serde_json::from_value(scaling.clone())
                .map_err(|e| ConfigError(format!("rope_scaling: {e}")))?;
            positive("factor", s.factor)?;
            positive("low_freq_factor", s.low_freq_factor)?;
            positive("high_freq_factor", s.high_freq_factor)?;
            positive(
                "original_max_position_embeddings",
                s.original_max_position_embeddings,
            )?;
            if s.high_freq_factor <= s.low_freq_factor {
                return Err("rope_scaling's high_freq_factor must be above low_freq_factor".into());
            }
            Ok((Some(s), 1.0))
        }
        other => Err(format!(
            "rope_scaling type `{other}` is not supported yet (supported: default, linear, llama3)"
        )
        .into()),
    }
}

/// Which layers attend within a sliding window: Gemma 3 names each layer's kind (or gives a
/// pattern: every n-th layer is global); Mistral and Qwen slide on every layer when enabled.
fn sliding_windows(config: &Value, family: CausalFamily, layers: usize) -> Vec<Option<usize>> {
    // A window of 0 would mask every key; no model means that.
    let window = usize_of(config, &["sliding_window"]).filter(|&w| w > 0);
    let Some(window) = window else {
        return vec![None; layers];
    };
    if let Some(types) = config.get("layer_types").and_then(Value::as_array) {
        let uses = config
            .get("use_sliding_window")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        return (0..layers)
            .map(|i| {
                let sliding = types.get(i).and_then(Value::as_str) == Some("sliding_attention");
                (sliding && uses).then_some(window)
            })
            .collect();
    }
    match family {
        CausalFamily::Gemma3 => {
            let pattern = usize_of(
                config,
                &["sliding_window_pattern", "_sliding_window_pattern"],
            )
            .unwrap_or(6)
            .max(1);
            (0..layers)
                .map(|i| ((i + 1) % pattern != 0).then_some(window))
                .collect()
        }
        CausalFamily::Qwen2 | CausalFamily::Qwen3 => {
            let uses = config
                .get("use_sliding_window")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            vec![uses.then_some(window); layers]
        }
        _ => vec![Some(window); layers],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gemma_layers_alternate_by_type_or_pattern() {
        let typed =
            json!({"sliding_window": 8, "layer_types": ["sliding_attention", "full_attention"]});
        assert_eq!(
            sliding_windows(&typed, CausalFamily::Gemma3, 2),
            vec![Some(8), None]
        );
        let pattern = json!({"sliding_window": 4, "sliding_window_pattern": 3});
        assert_eq!(
            sliding_windows(&pattern, CausalFamily::Gemma3, 4),
            vec![Some(4), Some(4), None, Some(4)]
        );
        let qwen = json!({"sliding_window": 4096, "use_sliding_window": false});
        assert_eq!(
            sliding_windows(&qwen, CausalFamily::Qwen2, 2),
            vec![None, None]
        );
    }

    #[test]
    fn unknown_rope_scaling_is_refused() {
        let config = json!({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}});
        let err = rope_scaling(&config).unwrap_err();
        assert!(err.0.contains("yarn"), "{err}");
        let linear = json!({"rope_scaling": {"type": "linear", "factor": 2.0}});
        assert_eq!(rope_scaling(&linear).unwrap().1, 2.0);
    }
}
