//! "Will it fit?": the memory a model will take, estimated from what is known before it is
//! loaded (file sizes, `config.json` or GGUF metadata, the quantization and context length
//! asked for), against the memory free now.
//!
//! The parts follow how Wick holds a model: weights in f32 (or kept quantized for GGUF, or
//! quantized at load), the file read once into memory while safetensors tensors are built, the
//! tokenizer, a key/value cache that grows by doubling, and the activations of one forward pass.
//! The constants were calibrated against measured peak RSS of `wick run` (see BENCHMARKS.md).

use serde::Serialize;
use ts_rs::TS;

use crate::quant::Quantization;

/// What the process takes before any model: code, allocator, thread pools (`wick tokenize` on a
/// tiny tokenizer peaks at 33-37 MiB).
const BASE_BYTES: u64 = 33 << 20;

/// A tokenizer's peak in memory, per byte of its `tokenizer.json` (parsing it, then the
/// vocabulary maps, merges and added-token trie): measured 12-14x for Gemma 3's 33 MB file and
/// flan-T5's 2.4 MB one. GGUF vocabularies are counted from their tokens' size the same way.
const TOKENIZER_FACTOR: f64 = 13.0;

/// Loading a GGUF file reads each tensor into a buffer before it becomes a quantized tensor;
/// the allocator keeps about this share of the weights afterwards (SmolLM2 and Gemma 3 GGUF).
const GGUF_LOAD_SHARE: f64 = 0.3;

/// The shape facts the cache and activation estimates need.
#[derive(Debug, Clone, Default, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ModelShape {
    pub layers: u64,
    pub hidden: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
    pub vocab: u64,
    pub max_context: Option<u64>,
    /// Whether generation keeps a key/value cache (decoders and encoder-decoders).
    pub generates: bool,
}

impl ModelShape {
    /// From a transformers `config.json`, whatever the family calls its fields.
    /// None when a size is missing or implausible ([`crate::families::plausible`]): the
    /// estimate's products are only safe from overflow for plausible sizes.
    pub fn from_config(config: &serde_json::Value) -> Option<Self> {
        crate::families::plausible::check_config(config).ok()?;
        let get = |keys: &[&str]| keys.iter().find_map(|k| config.get(*k)?.as_u64());
        let hidden = get(&["hidden_size", "n_embd", "d_model", "dim"])?;
        let layers = get(&["num_hidden_layers", "n_layer", "num_layers", "n_layers"])?
            + get(&["num_decoder_layers", "decoder_layers"]).unwrap_or(0);
        let heads = get(&["num_attention_heads", "n_head", "num_heads", "n_heads"])?;
        let kv_heads = get(&["num_key_value_heads"]).unwrap_or(heads);
        let head_dim = get(&["head_dim", "d_kv"]).unwrap_or(hidden / heads.max(1));
        let architectures = config
            .get("architectures")
            .and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let generates = [
            "CausalLM",
            "LMHeadModel",
            "ConditionalGeneration",
            "MTModel",
        ]
        .iter()
        .any(|k| architectures.contains(k))
            || config.get("is_encoder_decoder").and_then(|v| v.as_bool()) == Some(true);
        Some(Self {
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim,
            vocab: get(&["vocab_size"]).unwrap_or(0),
            max_context: get(&["max_position_embeddings", "n_positions", "n_ctx"]),
            generates,
        })
    }

    /// From GGUF metadata (`{arch}.block_count`, `.embedding_length`, `.attention.*`).
    pub fn from_gguf(content: &candle_core::quantized::gguf_file::Content) -> Option<Self> {
        let arch = content
            .metadata
            .get("general.architecture")?
            .to_string()
            .ok()?
            .clone();
        let get = |key: &str| -> Option<u64> {
            let value = content.metadata.get(&format!("{arch}.{key}"))?;
            value
                .to_u64()
                .ok()
                .or_else(|| value.to_u32().ok().map(u64::from))
        };
        let hidden = get("embedding_length")?;
        let heads = get("attention.head_count")?;
        let vocab = content
            .metadata
            .get("tokenizer.ggml.tokens")
            .and_then(|t| t.to_vec().ok())
            .map_or(0, |t| t.len() as u64);
        let layers = get("block_count")?;
        let kv_heads = get("attention.head_count_kv").unwrap_or(heads);
        let max_context = get("context_length");
        crate::families::plausible::check_gguf(content).ok()?;
        crate::families::plausible::check_vocab(vocab).ok()?;
        Some(Self {
            layers,
            hidden,
            heads,
            kv_heads,
            head_dim: get("attention.key_length").unwrap_or(hidden / heads.max(1)),
            vocab,
            max_context,
            generates: true,
        })
    }
}

/// How the weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// safetensors (or pytorch_model.bin) with this many bytes per parameter.
    Dense { bytes_per_param: u64 },
    /// A GGUF file with this many parameters (from its tensor infos, when known).
    Gguf { parameters: Option<u64> },
}

/// Everything an estimate starts from.
#[derive(Debug, Clone)]
pub struct FitRequest {
    /// Bytes of the weight files.
    pub weight_bytes: u64,
    pub stored: Stored,
    /// Bytes of `tokenizer.json` (or of the GGUF vocabulary).
    pub tokenizer_bytes: u64,
    pub shape: Option<ModelShape>,
    pub quantization: Quantization,
    /// Tokens the run will hold (prompt + generated); clamped to the model's maximum.
    pub context: u64,
}

/// Green / amber / red.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub enum Verdict {
    /// Needs at most 70% of the free memory.
    Fits,
    /// Fits, with little to spare (70-100%): other programs may start swapping.
    Tight,
    /// Needs more than is free.
    TooBig,
}

/// The estimate, part by part, in bytes.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct FitEstimate {
    #[ts(type = "number | null")]
    pub parameters: Option<u64>,
    /// The weights as held while running.
    #[ts(type = "number")]
    pub weights: u64,
    /// The key/value cache for `context` tokens.
    #[ts(type = "number")]
    pub kv_cache: u64,
    /// Load-time copies, activations, tokenizer and the process itself.
    #[ts(type = "number")]
    pub working: u64,
    /// The expected peak.
    #[ts(type = "number")]
    pub total: u64,
    /// Memory free now.
    #[ts(type = "number")]
    pub available: u64,
    #[ts(type = "number")]
    pub context: u64,
    pub verdict: Verdict,
    /// What the weights are held as (`f32`, `Q4_K_M (as stored)`, `Q8_0`).
    pub held_as: String,
}

impl FitEstimate {
    /// The error that refuses loading `what`, when it will not fit.
    pub fn refusal(&self, what: &str) -> Option<crate::error::WickError> {
        (self.verdict == Verdict::TooBig).then(|| crate::error::WickError::DoesNotFit {
            what: what.to_string(),
            needed: self.total,
            available: self.available,
        })
    }
}

/// No model's weights reach this (1 PiB).
const MAX_WEIGHT_BYTES: u64 = 1 << 50;
/// The longest context an estimate considers (the plausible positions' limit).
const MAX_CONTEXT: u64 = 1 << 24;

/// Estimates the peak memory of running the request; `available` is the free memory to judge
/// it against (see [`crate::system::available_memory`]).
pub fn estimate(request: &FitRequest, available: u64) -> FitEstimate {
    // Every input below may come from a file or a mirror's listing. Clamped to what no real
    // model exceeds (the shape is already plausible, see `families::plausible`), the products
    // and sums that follow stay far inside u64: a lie can make the estimate large, never wrap
    // it to "fits".
    let request = &FitRequest {
        weight_bytes: request.weight_bytes.min(MAX_WEIGHT_BYTES),
        context: request.context.min(MAX_CONTEXT),
        tokenizer_bytes: request.tokenizer_bytes.min(MAX_WEIGHT_BYTES),
        stored: match request.stored {
            Stored::Gguf { parameters } => Stored::Gguf {
                parameters: parameters.map(|p| p.min(MAX_WEIGHT_BYTES)),
            },
            dense => dense,
        },
        ..request.clone()
    };
    let shape = request.shape.clone().unwrap_or_default();
    let context = match shape.max_context {
        Some(max) if max > 0 => request.context.min(max),
        _ => request.context,
    }
    .max(1);
    let (parameters, stored_bytes_per_param) = match request.stored {
        Stored::Dense { bytes_per_param } => (
            Some(request.weight_bytes / bytes_per_param.max(1)),
            Some(bytes_per_param),
        ),
        Stored::Gguf { parameters } => (parameters, None),
    };

    // Resident weights, and what loading them costs on top for a moment.
    let (weights, held_as, load_extra) = match (request.stored, request.quantization) {
        (Stored::Gguf { .. }, Quantization::F32) => {
            let params = parameters.unwrap_or(request.weight_bytes * 2);
            // A tied head is a view of the dequantized embedding table (no second copy); the
            // table is held once more while it is converted. (Measured for SmolLM2-135M:
            // 615 MiB, against 851 when a head copy was built and dropped at load.)
            let embedding = shape.vocab * shape.hidden * 4;
            (params * 4, "f32 (dequantized)".to_string(), embedding)
        }
        (Stored::Gguf { .. }, _) => (
            request.weight_bytes,
            "as stored".to_string(),
            (request.weight_bytes as f64 * GGUF_LOAD_SHARE) as u64,
        ),
        (Stored::Dense { .. }, quantization) => {
            let params = parameters.unwrap_or(0);
            let (bytes, label) = match quantization {
                Quantization::Q8_0 => (params * 34 / 32, "Q8_0"),
                Quantization::Q4K => (params * 144 / 256, "Q4_K"),
                Quantization::F16 => (params * 2, "f16"),
                Quantization::Bf16 => (params * 2, "bf16"),
                Quantization::AsStored | Quantization::F32 => (params * 4, "f32"),
            };
            // The file is read whole, then its tensors are built (converted to f32 when stored
            // narrower); quantizing at load also holds the f32 tensors of the model meanwhile.
            let f32_copy = if stored_bytes_per_param == Some(4) {
                0
            } else {
                params * 4
            };
            let quantize_copy = (params * 4).saturating_sub(bytes);
            (
                bytes,
                label.to_string(),
                request.weight_bytes + f32_copy.max(quantize_copy),
            )
        }
    };

    let kv_bytes_per_value = if matches!(request.stored, Stored::Gguf { .. }) {
        2
    } else {
        4
    };
    // The cache doubles as it fills: up to twice the tokens in use are allocated.
    let kv_cache = if shape.generates {
        2 * shape.layers * shape.kv_heads * shape.head_dim * (2 * context) * kv_bytes_per_value
    } else {
        0
    };
    // One forward pass over the context: a dozen hidden-size buffers per token, the attention
    // scores of one layer, and a row of logits per token for encoders' heads.
    let activations = context * shape.hidden * 4 * 12
        + shape.heads * context * context * 4 * 2
        + shape.vocab * 4 * if shape.generates { 2 } else { context.min(512) };
    let tokenizer = (request.tokenizer_bytes as f64 * TOKENIZER_FACTOR) as u64;
    // The load peak and the run peak do not overlap: the larger of the two counts.
    let working = BASE_BYTES + tokenizer + load_extra.max(activations);
    let total = weights + kv_cache + working;
    let verdict = if total as f64 <= available as f64 * 0.7 {
        Verdict::Fits
    } else if total <= available {
        Verdict::Tight
    } else {
        Verdict::TooBig
    };
    FitEstimate {
        parameters,
        weights,
        kv_cache,
        working,
        total,
        available,
        context,
        verdict,
        held_as,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(stored: Stored, weight_bytes: u64, quantization: Quantization) -> FitRequest {
        FitRequest {
            weight_bytes,
            stored,
            tokenizer_bytes: 0,
            shape: ModelShape::from_config(&serde_json::json!({
                "architectures": ["LlamaForCausalLM"], "hidden_size": 576,
                "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
                "vocab_size": 49152, "max_position_embeddings": 8192
            })),
            quantization,
            context: 100_000,
        }
    }

    #[test]
    fn parts_add_up_and_quantization_shrinks_weights() {
        let f32 = estimate(
            &request(
                Stored::Dense { bytes_per_param: 4 },
                4 << 28,
                Quantization::AsStored,
            ),
            64 << 30,
        );
        let q4 = estimate(
            &request(
                Stored::Dense { bytes_per_param: 4 },
                4 << 28,
                Quantization::Q4K,
            ),
            64 << 30,
        );
        assert_eq!(f32.parameters, Some(1 << 28));
        assert_eq!(f32.context, 8192, "clamped to the model's maximum");
        assert_eq!(f32.total, f32.weights + f32.kv_cache + f32.working);
        assert!(
            q4.weights * 7 < f32.weights,
            "{} vs {}",
            q4.weights,
            f32.weights
        );
        // 30 layers x 3 kv heads x 64 dims x 2 (k, v) x 4 bytes x 16384 allocated tokens.
        assert_eq!(f32.kv_cache, 30 * 3 * 64 * 2 * 4 * 16384);
        assert_eq!(f32.verdict, Verdict::Fits);
        assert_eq!(
            estimate(
                &request(
                    Stored::Gguf { parameters: None },
                    4 << 28,
                    Quantization::AsStored
                ),
                1 << 20
            )
            .verdict,
            Verdict::TooBig
        );
    }
}
