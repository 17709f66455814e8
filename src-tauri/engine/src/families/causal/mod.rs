//! Causal (decoder-only) language models: GPT-2, Llama, Mistral, Qwen2/3, Gemma 3 and Phi-3,
//! from a transformers folder or a GGUF file. One forward pass (`model`) serves them all; the
//! families differ in their [`CausalConfig`] and in the names of their weights (`source`).
//!
//! Adding a family: a `CausalFamily` variant, its config fields in `config`, its weight names in
//! `source` if they differ, and a row in `crate::registry`.

pub mod attend;
pub mod config;
pub mod gguf;
pub mod model;
pub mod proj;
pub mod rope;
pub mod source;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};

pub use config::{CausalConfig, CausalFamily};
pub use model::{CausalLm, KvCache};

use crate::error::{Result, WickError};
use crate::weights::Weights;

/// How to hold the weights in memory: as stored, or converted at load (the desktop
/// counterpart of transformers' `load_in_8bit` / `load_in_4bit`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, ts_rs::TS,
)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Quantization {
    /// safetensors in f32, GGUF in its own quantization.
    #[default]
    AsStored,
    /// Everything dequantized to f32 (a GGUF file's exact weights, at full precision speed).
    F32,
    /// Projections quantized to 8 bits at load (candle's Q8_0, blocks of 32).
    Q8_0,
    /// Projections quantized to 4 bits at load (candle's Q4_K, blocks of 256).
    Q4K,
    /// Every weight and activation in IEEE half precision: half f32's memory
    /// (`torch_dtype=torch.float16`). safetensors only.
    F16,
    /// bfloat16: f32's range in 16 bits (`torch_dtype=torch.bfloat16`). safetensors only.
    Bf16,
}

impl std::str::FromStr for Quantization {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "as-stored" | "as_stored" | "none" | "auto" => Ok(Self::AsStored),
            "f32" => Ok(Self::F32),
            "q8_0" | "q8" | "8bit" => Ok(Self::Q8_0),
            "q4_k" | "q4k" | "4bit" => Ok(Self::Q4K),
            "f16" | "float16" | "half" => Ok(Self::F16),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            other => Err(format!(
                "unknown quantization `{other}` (as-stored, f32, f16, bf16, q8_0, q4_k)"
            )),
        }
    }
}

impl Quantization {
    /// The float type the model computes in, for the 16-bit choices.
    pub fn float_dtype(self) -> Option<DType> {
        match self {
            Self::F16 => Some(DType::F16),
            Self::Bf16 => Some(DType::BF16),
            _ => None,
        }
    }

    fn ggml(self) -> Option<candle_core::quantized::GgmlDType> {
        match self {
            Self::Q8_0 => Some(candle_core::quantized::GgmlDType::Q8_0),
            Self::Q4K => Some(candle_core::quantized::GgmlDType::Q4K),
            _ => None,
        }
    }
}

/// What a causal model was loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// transformers safetensors / pytorch_model.bin, with the quantization applied at load.
    Transformers { quantized: Option<String> },
    /// A GGUF file; the string names its quantization (e.g. "Q4_1", "Q4_K_M" or "mixed").
    Gguf { file: PathBuf, quantization: String },
}

/// A loaded causal model and where it came from.
#[derive(Debug)]
pub struct LoadedCausal {
    pub model: CausalLm,
    pub format: Format,
    /// `architectures[0]` of config.json, or e.g. "llama (GGUF)".
    pub architecture: String,
}

/// The family a config.json `model_type` names, if it is a causal one.
pub fn family_of(model_type: &str) -> Option<CausalFamily> {
    Some(match model_type {
        "gpt2" => CausalFamily::Gpt2,
        "llama" | "mistral" => CausalFamily::Llama,
        "qwen2" => CausalFamily::Qwen2,
        "qwen3" => CausalFamily::Qwen3,
        "gemma3_text" | "gemma3" => CausalFamily::Gemma3,
        "phi3" => CausalFamily::Phi3,
        _ => return None,
    })
}

/// The GGUF file of a model path: the path itself, or the only/first `.gguf` in a folder without
/// a config.json.
pub fn gguf_file(path: &Path) -> Option<PathBuf> {
    if path.is_file() {
        return path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
            .then(|| path.to_path_buf());
    }
    if path.join("config.json").is_file() {
        return None;
    }
    let mut ggufs: Vec<PathBuf> = std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
        })
        .collect();
    ggufs.sort();
    ggufs.into_iter().next()
}

/// Loads a causal model from a folder (config.json + weights) or a GGUF file, on `device`, in
/// `dtype` for transformers checkpoints (GGUF files keep their own types).
pub fn load(path: &Path, device: &Device, dtype: DType) -> Result<LoadedCausal> {
    load_with(path, device, dtype, Quantization::AsStored)
}

/// [`load`], converting the weights as `quantization` asks.
pub fn load_with(
    path: &Path,
    device: &Device,
    dtype: DType,
    quantization: Quantization,
) -> Result<LoadedCausal> {
    if let Some(file) = gguf_file(path) {
        if quantization.ggml().is_some() || quantization.float_dtype().is_some() {
            return Err(WickError::InvalidInput(format!(
                "{} is already quantized; choose `as stored` or `f32` for GGUF files",
                file.display()
            )));
        }
        return gguf::load(&file, device, quantization == Quantization::F32);
    }
    let config_path = path.join("config.json");
    let text = std::fs::read_to_string(&config_path).map_err(|e| WickError::io(&config_path, e))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| WickError::InvalidModel {
            path: config_path.clone(),
            reason: e.to_string(),
        })?;
    let model_type = json
        .get("model_type")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let family = family_of(model_type).ok_or_else(|| WickError::UnsupportedArchitecture {
        found: model_type.to_string(),
        supported: "gpt2, llama, mistral, qwen2, qwen3, gemma3_text, phi3".into(),
    })?;
    let invalid = |reason: String| WickError::InvalidModel {
        path: config_path.clone(),
        reason,
    };
    let config = CausalConfig::from_json(&json, family).map_err(invalid)?;
    let weights = Weights::load(path, device)?;
    let files = weights.files.clone();
    let dtype = quantization.float_dtype().unwrap_or(dtype);
    let mut src = source::Checkpoint::new(weights.tensors, family, dtype, device.clone());
    src.quantize = quantization.ggml();
    let model = CausalLm::load(config, &src).map_err(|e| WickError::InvalidModel {
        path: files.first().cloned().unwrap_or_else(|| path.to_path_buf()),
        reason: e.to_string(),
    })?;
    let architecture = json
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(|a| a.as_str())
        .unwrap_or(model_type)
        .to_string();
    Ok(LoadedCausal {
        model,
        format: Format::Transformers {
            quantized: quantization.ggml().map(|q| format!("{q:?}")),
        },
        architecture,
    })
}

/// A model with its key/value cache: one generation in progress.
#[derive(Debug)]
pub struct Session<'a> {
    model: &'a CausalLm,
    cache: KvCache,
}

impl<'a> Session<'a> {
    pub fn new(model: &'a CausalLm) -> Self {
        Self {
            cache: model.new_cache(),
            model,
        }
    }
}

impl crate::generate::Decoder for Session<'_> {
    fn step(&mut self, tokens: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let failed = |e: candle_core::Error| WickError::ModelFailed(e.to_string());
        let (model, cache) = (self.model, &mut self.cache);
        super::on_pool(|| {
            model
                .forward(tokens, cache)
                .and_then(|logits| logits.to_vec2::<f32>())
        })
        .map_err(failed)
    }

    fn select_rows(&mut self, rows: &[u32]) -> Result<()> {
        self.cache
            .select_rows(rows)
            .map_err(|e| WickError::ModelFailed(e.to_string()))
    }
}
