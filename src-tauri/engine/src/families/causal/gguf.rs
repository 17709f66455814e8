//! A causal model from a GGUF file: its [`CausalConfig`] read from llama.cpp's metadata keys
//! (`general.architecture`, `<arch>.block_count` ...), its projections kept quantized.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::quantized::gguf_file::Content;
use candle_core::Device;

use super::config::{CausalConfig, CausalFamily, NormKind, Positions, RopeStyle};
use super::source::GgufSource;
use super::{CausalLm, Format, LoadedCausal};
use crate::blocks::Activation;
use crate::error::{ConfigError, Result, WickError};
use crate::gguf_header;
use crate::loading::Loading;

/// How a GGUF file of `family` rotates: llama.cpp permutes Llama's query and key weights for
/// interleaved rotary; the others keep transformers' half rotation.
fn rope_style(family: CausalFamily) -> RopeStyle {
    match family {
        CausalFamily::Llama => RopeStyle::Interleaved,
        _ => RopeStyle::Half,
    }
}

/// `general.architecture` of a GGUF header.
pub fn architecture_in(content: &Content) -> Option<String> {
    content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok())
        .cloned()
}

/// Builds the model of a GGUF `file` whose `header` [`super::super::registry::detect`] read, its
/// projections kept quantized unless `dequantize`.
pub fn load(
    file: &Path,
    header: &Content,
    family: CausalFamily,
    device: &Device,
    dequantize: bool,
    loading: &Loading,
) -> Result<LoadedCausal> {
    let invalid = |reason: String| WickError::InvalidGguf {
        path: file.to_path_buf(),
        reason,
    };
    let config = config_from_metadata(header, family).map_err(|e| invalid(e.0))?;
    let quantization = if dequantize {
        format!("{} → f32", quantization_of(header))
    } else {
        quantization_of(header)
    };
    // Saturating: a header is read from the file, and the file may lie.
    let total = header
        .tensor_infos
        .values()
        .map(tensor_bytes)
        .fold(0u64, u64::saturating_add);
    loading.expect_bytes(total);
    let arch = architecture_in(header).unwrap_or_default();
    let src = GgufSource {
        path: file.to_path_buf(),
        content: header,
        device: device.clone(),
        dequantize,
        loading: loading.clone(),
    };
    let model = CausalLm::load(config, &src, loading)
        .map_err(|e| crate::cancel::from_candle(e, |e| invalid(e.to_string())))?;
    Ok(LoadedCausal {
        model,
        format: Format::Gguf {
            file: file.to_path_buf(),
            quantization,
        },
        architecture: format!("{arch} (GGUF)"),
    })
}

/// The bytes a tensor takes in the file (its blocks).
pub(crate) fn tensor_bytes(info: &candle_core::quantized::gguf_file::TensorInfo) -> u64 {
    // `read_header` refused a header where this overflows.
    gguf_header::tensor_bytes(info).unwrap_or(u64::MAX)
}

/// llama.cpp's `general.file_type` values: the quantization recipe a file was made with.
const FILE_TYPES: &[(u32, &str)] = &[
    (0, "F32"),
    (1, "F16"),
    (2, "Q4_0"),
    (3, "Q4_1"),
    (7, "Q8_0"),
    (8, "Q5_0"),
    (9, "Q5_1"),
    (10, "Q2_K"),
    (11, "Q3_K_S"),
    (12, "Q3_K_M"),
    (13, "Q3_K_L"),
    (14, "Q4_K_S"),
    (15, "Q4_K_M"),
    (16, "Q5_K_S"),
    (17, "Q5_K_M"),
    (18, "Q6_K"),
    (32, "BF16"),
];

/// The file's quantization: its recipe name ("Q4_K_M") when the metadata says, else the type
/// most of the blocks' weights use, or a list when they mix.
fn quantization_of(content: &Content) -> String {
    let recipe = content
        .metadata
        .get("general.file_type")
        .and_then(|v| v.to_u32().ok())
        .and_then(|t| FILE_TYPES.iter().find(|(n, _)| *n == t))
        .map(|(_, name)| name.to_string());
    recipe.unwrap_or_else(|| tensor_types(content))
}

fn tensor_types(content: &Content) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (name, info) in &content.tensor_infos {
        if name.starts_with("blk.") && name.ends_with(".weight") && info.shape.dims().len() == 2 {
            *counts.entry(format!("{:?}", info.ggml_dtype)).or_default() += 1;
        }
    }
    let mut by_count: Vec<(String, usize)> = counts.into_iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    by_count
        .into_iter()
        .map(|(name, _)| name)
        .collect::<Vec<_>>()
        .join("+")
}

fn config_from_metadata(
    content: &Content,
    family: CausalFamily,
) -> std::result::Result<CausalConfig, ConfigError> {
    let meta = &content.metadata;
    let arch = architecture_in(content).ok_or("no general.architecture")?;
    let style = rope_style(family);
    let key = |k: &str| format!("{arch}.{k}");
    let uint = |k: &str| -> Option<usize> {
        meta.get(&key(k))
            .and_then(|v| v.to_u64().ok().or_else(|| v.to_u32().ok().map(u64::from)))
            .map(|n| n as usize)
    };
    let need = |k: &str| -> std::result::Result<usize, ConfigError> {
        uint(k).ok_or_else(|| format!("no {}", key(k)).into())
    };
    let float = |k: &str| meta.get(&key(k)).and_then(|v| v.to_f32().ok());
    let hidden_size = need("embedding_length")?;
    let heads = need("attention.head_count")?;
    let layers = need("block_count")?;
    let head_dim = uint("attention.key_length").unwrap_or(hidden_size / heads.max(1));
    let gemma = family == CausalFamily::Gemma3;
    let window = uint("attention.sliding_window");
    let sliding_windows = (0..layers)
        .map(|i| match (gemma, window) {
            // llama.cpp: every sixth Gemma 3 layer attends globally.
            (true, Some(w)) => ((i + 1) % 6 != 0).then_some(w),
            _ => None,
        })
        .collect();
    let vocab_size = match content.tensor_infos.get("token_embd.weight") {
        Some(t) => match t.shape.dims() {
            &[vocab, width] if width == hidden_size => vocab,
            dims => {
                return Err(format!(
                    "token_embd.weight is {dims:?}, not [vocabulary, {hidden_size}]"
                )
                .into())
            }
        },
        None => meta
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.to_vec().ok())
            .map(Vec::len)
            .ok_or("no token embeddings")?,
    };
    crate::families::plausible::check_vocab(vocab_size as u64)?;
    let token = |k: &str| meta.get(k).and_then(|v| v.to_u32().ok());
    Ok(CausalConfig {
        family,
        vocab_size,
        hidden_size,
        layers,
        heads,
        kv_heads: uint("attention.head_count_kv").unwrap_or(heads),
        head_dim,
        intermediate_size: need("feed_forward_length")?,
        norm: if gemma {
            NormKind::RmsOffset
        } else {
            NormKind::Rms
        },
        norm_eps: float("attention.layer_norm_rms_epsilon").unwrap_or(1e-6) as f64,
        activation: if gemma {
            Activation::GeluNew
        } else {
            Activation::Silu
        },
        positions: Positions::Rope {
            theta: float("rope.freq_base").unwrap_or(10_000.0) as f64,
            local_theta: gemma.then_some(10_000.0),
            style,
            llama3: None,
            linear_factor: match meta
                .get(&key("rope.scaling.type"))
                .and_then(|v| v.to_string().ok())
            {
                Some(kind) if kind == "linear" => {
                    float("rope.scaling.factor").unwrap_or(1.0) as f64
                }
                _ => 1.0,
            },
        },
        qkv_bias: content.tensor_infos.contains_key("blk.0.attn_q.bias"),
        dense_bias: false,
        qk_norm: content
            .tensor_infos
            .contains_key("blk.0.attn_q_norm.weight"),
        sandwich_norms: gemma,
        gated_mlp: true,
        attention_scale: 1.0 / (head_dim as f64).sqrt(),
        embedding_scale: gemma.then(|| (hidden_size as f64).sqrt()),
        sliding_windows,
        tie_word_embeddings: !content.tensor_infos.contains_key("output.weight"),
        final_logit_softcap: float("final_logit_softcapping").map(f64::from),
        max_positions: uint("context_length").unwrap_or(usize::MAX),
        bos_token_id: token("tokenizer.ggml.bos_token_id"),
        eos_token_ids: token("tokenizer.ggml.eos_token_id").into_iter().collect(),
        pad_token_id: token("tokenizer.ggml.padding_token_id"),
        kv_f16: true,
    })
}
