//! BERT encoders (bert, and the sentence-transformers models built on it such as MiniLM),
//! over candle-transformers' `BertModel`.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

use crate::error::{Result, WickError};

/// A loaded BERT body on the CPU in f32.
pub struct BertEncoder {
    model: BertModel,
    config: Config,
    device: Device,
}

impl std::fmt::Debug for BertEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEncoder")
            .field("hidden_size", &self.config.hidden_size)
            .field("layers", &self.config.num_hidden_layers)
            .finish()
    }
}

impl BertEncoder {
    /// Loads `config.json` and `model.safetensors` from a model folder.
    pub fn load(dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.json");
        let text =
            std::fs::read_to_string(&config_path).map_err(|e| WickError::io(&config_path, e))?;
        let config: Config = serde_json::from_str(&text).map_err(|e| WickError::InvalidModel {
            path: config_path.clone(),
            reason: e.to_string(),
        })?;
        let weights = dir.join("model.safetensors");
        if !weights.is_file() {
            return Err(WickError::InvalidModel {
                path: dir.to_path_buf(),
                reason: "no model.safetensors in the folder".into(),
            });
        }
        let device = Device::Cpu;
        // Read into memory rather than mmap: the engine has no unsafe code, and a corrupt or
        // truncated file then fails here with a message instead of later with a fault.
        let tensors = candle_core::safetensors::load(&weights, &device).map_err(|e| {
            WickError::InvalidModel {
                path: weights.clone(),
                reason: e.to_string(),
            }
        })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let model = BertModel::load(vb, &config).map_err(|e| WickError::InvalidModel {
            path: weights.clone(),
            reason: format!("weights do not match config.json: {e}"),
        })?;
        Ok(Self {
            model,
            config,
            device,
        })
    }

    /// The longest sequence the position embeddings cover.
    pub fn max_positions(&self) -> usize {
        self.config.max_position_embeddings
    }

    /// The last hidden states of one sequence, `[tokens, hidden]`.
    pub fn hidden_states(&self, ids: &[u32], type_ids: &[u32]) -> Result<Tensor> {
        let run = || -> candle_core::Result<Tensor> {
            let ids = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
            let types = Tensor::new(type_ids, &self.device)?.unsqueeze(0)?;
            self.model.forward(&ids, &types, None)?.squeeze(0)
        };
        run().map_err(|e| WickError::ModelFailed(e.to_string()))
    }
}
