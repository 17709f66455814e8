//! Causal (decoder-only) language models: GPT-2, Llama, Mistral, Qwen2/3, Gemma 3 and Phi-3,
//! from a transformers folder or a GGUF file. One forward pass (`model`) serves them all; the
//! families differ in their [`CausalConfig`] and in the names of their weights (`source`).
//!
//! Adding a family: a `CausalFamily` variant, its config fields in `config`, its weight names in
//! `source` if they differ, and a row in [`super::registry`].

pub mod config;
pub mod gguf;
pub mod model;
pub mod proj;
pub mod rope;
pub mod source;

use std::path::PathBuf;

use candle_core::DType;

pub use config::{CausalConfig, CausalFamily};
pub use model::{CausalLm, Inside, KvCache};

use super::registry::Stored;
use crate::cancel::CancelToken;
use crate::error::{Result, WickError};
use crate::loading::LoadSpec;
use crate::quant::Quantization;
use crate::weights::Weights;

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

/// Loads a causal model from a transformers folder (config.json + weights) or a GGUF file, as
/// `spec` says: on its device, transformers checkpoints in f32 unless its quantization asks for
/// another format (GGUF files keep their own types, or are dequantized to f32).
pub fn load(spec: &LoadSpec) -> Result<LoadedCausal> {
    let detected = &spec.model;
    let family = detected.causal_family()?;
    let quantization = spec.quantization;
    if let Stored::Gguf { file, header } = &detected.stored {
        if quantization.ggml().is_some() || quantization.float_dtype().is_some() {
            return Err(WickError::InvalidInput(format!(
                "{} is already quantized; choose `as stored` or `f32` for GGUF files",
                file.display()
            )));
        }
        return gguf::load(
            file,
            header,
            family,
            &spec.device,
            quantization == Quantization::F32,
            &spec.loading,
        );
    }
    let config = CausalConfig::from_json(&detected.config, family)
        .map_err(|e| detected.invalid_config(e))?;
    let weights = Weights::load(&detected.dir, &spec.device, &spec.loading)?;
    let files = weights.files.clone();
    let dtype = quantization.float_dtype().unwrap_or(DType::F32);
    let mut src = source::Checkpoint::new(weights.tensors, family, dtype, spec.device.clone());
    src.quantize = quantization.ggml();
    let model = CausalLm::load(config, &src, &spec.loading).map_err(|e| {
        crate::cancel::from_candle(e, |e| WickError::InvalidModel {
            path: files
                .first()
                .cloned()
                .unwrap_or_else(|| detected.dir.clone()),
            reason: e.to_string(),
        })
    })?;
    Ok(LoadedCausal {
        model,
        format: Format::Transformers {
            quantized: quantization.ggml().map(|q| format!("{q:?}")),
        },
        architecture: detected
            .architecture
            .clone()
            .unwrap_or_else(|| detected.model_type.clone()),
    })
}

/// A model with its key/value cache: one generation in progress.
#[derive(Debug)]
pub struct Session<'a> {
    model: &'a CausalLm,
    cache: KvCache,
    cancel: CancelToken,
}

impl<'a> Session<'a> {
    pub fn new(model: &'a CausalLm) -> Self {
        Self {
            cache: model.new_cache(),
            model,
            cancel: CancelToken::new(),
        }
    }

    /// Stops a step between layers once `cancel` is raised (a long prompt's prefill is one step).
    pub fn cancelled_by(mut self, cancel: &CancelToken) -> Self {
        self.cancel = cancel.clone();
        self
    }
}

impl crate::generate::Decoder for Session<'_> {
    fn step(&mut self, tokens: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        // A prompt's step (several new tokens a row) can take seconds: it stops between layers.
        // A decode step is short and runs to its end, so a stop keeps the tokens so far (the
        // generation loop stops before the next step).
        let prompt = tokens.first().is_some_and(|t| t.len() > 1);
        let decode_step = CancelToken::new();
        let cancel = if prompt { &self.cancel } else { &decode_step };
        let (model, cache) = (self.model, &mut self.cache);
        crate::kernels::on_pool(|| {
            model
                .forward(tokens, cache, cancel)
                .and_then(|logits| logits.to_vec2::<f32>())
        })
        .map_err(crate::cancel::model_failed)
    }

    fn select_rows(&mut self, rows: &[u32]) -> Result<()> {
        self.cache
            .select_rows(rows)
            .map_err(crate::cancel::model_failed)
    }

    fn cache_bytes(&self) -> u64 {
        self.cache.bytes()
    }
}
