//! Sizes a model's files state, checked before anything is allocated from them. A config.json or
//! GGUF header is whatever its publisher wrote: 2^40 positions would size a rotary table, 10^9
//! layers a loop, a zero head count a division. Each size is held to a range that every real
//! model of the supported families sits well inside, so the arithmetic built on them (the fit
//! estimate's products, tensor shapes) cannot overflow either.

use candle_core::quantized::gguf_file::Content;
use serde_json::Value;

use crate::error::ConfigError;

/// What a size is, the names families give it in config.json (`keys`) and in GGUF metadata
/// (`gguf`, after `<architecture>.`), and its largest plausible value. Every size that is present
/// must also be at least 1 where `nonzero` (it divides or counts something).
struct Size {
    what: &'static str,
    keys: &'static [&'static str],
    gguf: &'static [&'static str],
    max: u64,
    nonzero: bool,
}

const LAYERS: Size = Size {
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
    gguf: &["block_count"],
    max: 1024,
    nonzero: false,
};

const HIDDEN: Size = Size {
    what: "hidden size",
    keys: &["hidden_size", "n_embd", "d_model", "dim", "embedding_size"],
    gguf: &["embedding_length"],
    max: 1 << 17,
    nonzero: true,
};

const HEADS: Size = Size {
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
    gguf: &["attention.head_count", "attention.head_count_kv"],
    max: 1024,
    nonzero: true,
};

const HEAD_SIZE: Size = Size {
    what: "head size",
    keys: &["head_dim", "d_kv", "attention_head_size"],
    gguf: &["attention.key_length", "attention.value_length"],
    max: 4096,
    nonzero: true,
};

const VOCABULARY: Size = Size {
    what: "vocabulary",
    keys: &["vocab_size"],
    gguf: &[],
    max: 1 << 23,
    nonzero: true,
};

const TOKEN_TYPES: Size = Size {
    what: "token types",
    // DeBERTa-v3 says 0: no token-type embeddings.
    keys: &["type_vocab_size"],
    gguf: &[],
    max: 1 << 16,
    nonzero: false,
};

const LABELS: Size = Size {
    what: "labels",
    keys: &["num_labels"],
    gguf: &[],
    max: 1 << 20,
    nonzero: false,
};

const POSITIONS: Size = Size {
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
    gguf: &["context_length", "attention.sliding_window"],
    max: 1 << 24,
    nonzero: false,
};

const FEED_FORWARD: Size = Size {
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
    gguf: &["feed_forward_length"],
    max: 1 << 20,
    nonzero: true,
};

const SIZES: &[&Size] = &[
    &LAYERS,
    &HIDDEN,
    &HEADS,
    &HEAD_SIZE,
    &VOCABULARY,
    &TOKEN_TYPES,
    &LABELS,
    &POSITIONS,
    &FEED_FORWARD,
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

/// Checks the sizes in a GGUF file's metadata (`<architecture>.block_count`, ...) that are whole
/// numbers; an array (per-layer head counts) is the family's to read.
pub fn check_gguf(content: &Content) -> Result<(), ConfigError> {
    let Some(arch) = content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
    else {
        return Ok(());
    };
    for size in SIZES {
        for key in size.gguf {
            let Some(value) = content.metadata.get(&format!("{arch}.{key}")) else {
                continue;
            };
            if let Some(number) = value
                .to_u64()
                .ok()
                .or_else(|| value.to_u32().ok().map(u64::from))
            {
                check(key, number, size)?;
            }
        }
    }
    Ok(())
}

/// Checks a vocabulary size found another way (the rows of `token_embd`, the tokens listed).
pub fn check_vocab(rows: u64) -> Result<(), ConfigError> {
    check("vocab_size", rows, &VOCABULARY)
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
        assert!(check_vocab(49152).is_ok());
        assert!(check_vocab(0).is_err());
        assert!(check_vocab(1 << 40).is_err());
    }

    #[test]
    fn gguf_metadata_is_checked_by_the_same_table() {
        use candle_core::quantized::gguf_file::{Value as Gguf, VersionedMagic};
        let content = |key: &str, value: Gguf| Content {
            magic: VersionedMagic::GgufV3,
            metadata: [
                (
                    "general.architecture".to_string(),
                    Gguf::String("llama".into()),
                ),
                ("llama.block_count".to_string(), Gguf::U32(30)),
                (format!("llama.{key}"), value),
            ]
            .into_iter()
            .collect(),
            tensor_infos: Default::default(),
            tensor_data_offset: 0,
        };
        assert!(check_gguf(&content("context_length", Gguf::U32(8192))).is_ok());
        assert!(check_gguf(&content("attention.head_count", Gguf::U32(0))).is_err());
        assert!(check_gguf(&content("context_length", Gguf::U64(1 << 62))).is_err());
        assert!(check_gguf(&content("block_count", Gguf::U64(1 << 62))).is_err());
        // Per-layer arrays are left to the family.
        let heads = Gguf::Array(vec![Gguf::U32(0)]);
        assert!(check_gguf(&content("attention.head_count_kv", heads)).is_ok());
    }
}
