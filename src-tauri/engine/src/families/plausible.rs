//! Sizes a model's files state, checked before anything is allocated from them. A config.json or
//! GGUF header is whatever its publisher wrote: 2^40 positions would size a rotary table, 10^9
//! layers a loop, a zero head count a division. Each size is held to a range that every real
//! model of the supported families sits well inside, so the arithmetic built on them (the fit
//! estimate's products, tensor shapes) cannot overflow either.

use serde_json::Value;

use crate::error::ConfigError;

/// What a size is, the names families give it, and its largest plausible value. Every size that
/// is present must also be at least 1 where `nonzero` (it divides or counts something).
struct Size {
    what: &'static str,
    keys: &'static [&'static str],
    max: u64,
    nonzero: bool,
}

const SIZES: &[Size] = &[
    Size {
        what: "layers",
        keys: &[
            "num_hidden_layers",
            "n_layer",
            "num_layers",
            "n_layers",
            "num_decoder_layers",
            "encoder_layers",
            "decoder_layers",
        ],
        max: 1024,
        nonzero: false,
    },
    Size {
        what: "hidden size",
        keys: &["hidden_size", "n_embd", "d_model", "dim", "embedding_size"],
        max: 1 << 17,
        nonzero: true,
    },
    Size {
        what: "attention heads",
        keys: &[
            "num_attention_heads",
            "n_head",
            "num_heads",
            "n_heads",
            "num_key_value_heads",
            "encoder_attention_heads",
            "decoder_attention_heads",
        ],
        max: 1024,
        nonzero: true,
    },
    Size {
        what: "head size",
        keys: &["head_dim", "d_kv", "attention_head_size"],
        max: 4096,
        nonzero: true,
    },
    Size {
        what: "vocabulary",
        keys: &["vocab_size"],
        max: 1 << 23,
        nonzero: true,
    },
    Size {
        what: "token types",
        // DeBERTa-v3 says 0: no token-type embeddings.
        keys: &["type_vocab_size"],
        max: 1 << 16,
        nonzero: false,
    },
    Size {
        what: "labels",
        keys: &["num_labels"],
        max: 1 << 20,
        nonzero: false,
    },
    Size {
        what: "positions",
        keys: &[
            "max_position_embeddings",
            "n_positions",
            "n_ctx",
            "max_seq_len",
            "sliding_window",
            "position_buckets",
            "relative_attention_num_buckets",
            "relative_attention_max_distance",
            "max_relative_positions",
        ],
        max: 1 << 24,
        nonzero: false,
    },
    Size {
        what: "feed-forward size",
        keys: &[
            "intermediate_size",
            "d_ff",
            "n_inner",
            "ffn_dim",
            "encoder_ffn_dim",
            "decoder_ffn_dim",
            "hidden_dim",
        ],
        max: 1 << 20,
        nonzero: true,
    },
];

/// Checks the sizes of a transformers config.json that are present as whole numbers. Missing
/// ones, and values of another type (`null`, `-1` as "unset", a string), are the family's to
/// require or refuse when it reads them.
pub fn check_config(config: &Value) -> Result<(), ConfigError> {
    for size in SIZES {
        for key in size.keys {
            if let Some(number) = config.get(*key).and_then(Value::as_u64) {
                check(key, number, size)?;
            }
        }
    }
    Ok(())
}

/// Checks sizes read from GGUF metadata, named by their llama.cpp keys (`block_count`, ...).
pub fn check_gguf(sizes: &[(&str, u64)]) -> Result<(), ConfigError> {
    for (key, value) in sizes {
        let size = match *key {
            "block_count" => size("layers"),
            "embedding_length" => size("hidden size"),
            "attention.head_count" | "attention.head_count_kv" => size("attention heads"),
            "attention.key_length" | "attention.value_length" => size("head size"),
            "vocab_size" => size("vocabulary"),
            "context_length" | "attention.sliding_window" => size("positions"),
            "feed_forward_length" => size("feed-forward size"),
            _ => continue,
        };
        check(key, *value, size)?;
    }
    Ok(())
}

fn size(what: &str) -> &'static Size {
    SIZES.iter().find(|s| s.what == what).unwrap_or(&SIZES[0])
}

fn check(key: &str, value: u64, size: &Size) -> Result<(), ConfigError> {
    if size.nonzero && value == 0 {
        return Err(ConfigError(format!(
            "{key} is 0: a model needs at least one"
        )));
    }
    if value > size.max {
        return Err(ConfigError(format!(
            "{key} is {value}, more {} than any model has (the limit is {}); the file is \
             corrupt or not a model",
            size.what, size.max
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn real_configs_pass_and_lies_do_not() {
        let smollm = json!({
            "model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30,
            "num_attention_heads": 9, "num_key_value_heads": 3, "intermediate_size": 1536,
            "vocab_size": 49152, "max_position_embeddings": 8192, "head_dim": 64,
            "sliding_window": null
        });
        assert!(check_config(&smollm).is_ok());
        for (key, value) in [
            ("num_hidden_layers", json!(1_000_000_000u64)),
            ("hidden_size", json!(1u64 << 40)),
            ("hidden_size", json!(0)),
            ("num_attention_heads", json!(0)),
            ("head_dim", json!(1u64 << 30)),
            ("vocab_size", json!(1u64 << 40)),
            ("max_position_embeddings", json!(1u64 << 62)),
            ("intermediate_size", json!(1u64 << 40)),
        ] {
            let mut config = smollm.clone();
            config[key] = value.clone();
            let err = check_config(&config).unwrap_err();
            assert!(err.0.contains(key), "{key} {value}: {}", err.0);
        }
        assert!(check_gguf(&[("block_count", 30), ("context_length", 8192)]).is_ok());
        assert!(check_gguf(&[("attention.head_count", 0)]).is_err());
        assert!(check_gguf(&[("context_length", 1 << 62)]).is_err());
    }
}
