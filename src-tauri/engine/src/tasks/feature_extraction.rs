//! feature-extraction: token-level hidden states as `transformers`' pipeline returns them, and
//! sentence embeddings as sentence-transformers computes them (pooling and normalisation read
//! from the model's `modules.json` and `1_Pooling/config.json`).

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor, D};
use serde::Deserialize;

use crate::error::{Result, WickError};
use crate::families::bert::BertEncoder;
use crate::registry::{self, Family};
use crate::tasks::Task;
use crate::tokenize::{TokenizeOptions, TruncationChoice, WickTokenizer};

/// How token vectors become one sentence vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Mean,
    Cls,
    Max,
}

/// A sentence-transformers model's pooling recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentenceConfig {
    pub pooling: Pooling,
    pub normalize: bool,
    /// `max_seq_length` from sentence_bert_config.json: longer inputs are truncated to it.
    pub max_tokens: Option<usize>,
}

/// A feature extractor: tokenizer, encoder and (for sentence-transformers models) pooling.
#[derive(Debug)]
pub struct FeatureExtractor {
    tokenizer: WickTokenizer,
    encoder: BertEncoder,
    sentence: Option<SentenceConfig>,
}

/// The vectors for one text.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub vectors: Vec<Vec<f32>>,
    /// Tokens the text had beyond the model's limit, cut off before running it.
    pub truncated_tokens: usize,
}

impl FeatureExtractor {
    pub fn load(dir: &Path) -> Result<Self> {
        let detected = registry::detect(dir)?;
        registry::require_task(&detected, Task::FeatureExtraction)?;
        let encoder = match detected.spec.family {
            Family::Bert => BertEncoder::load(dir)?,
        };
        Ok(Self {
            tokenizer: WickTokenizer::from_path(dir)?,
            encoder,
            sentence: SentenceConfig::read(dir)?,
        })
    }

    /// The sentence-transformers recipe, if the model has one.
    pub fn sentence_config(&self) -> Option<SentenceConfig> {
        self.sentence
    }

    /// One vector per token, special tokens included: `pipeline("feature-extraction")(text)[0]`.
    pub fn token_features(&self, text: &str) -> Result<Features> {
        let limit = self.encoder.max_positions();
        let (hidden, truncated_tokens) = self.run(text, limit)?;
        Ok(Features {
            vectors: to_rows(&hidden)?,
            truncated_tokens,
        })
    }

    /// One vector for the text, as `SentenceTransformer.encode(text)` gives it. Models without a
    /// sentence-transformers recipe use mean pooling without normalisation.
    pub fn sentence_embedding(&self, text: &str) -> Result<Features> {
        let config = self.sentence.unwrap_or(SentenceConfig {
            pooling: Pooling::Mean,
            normalize: false,
            max_tokens: None,
        });
        let limit = config.max_tokens.map_or(self.encoder.max_positions(), |m| {
            m.min(self.encoder.max_positions())
        });
        let (hidden, truncated_tokens) = self.run(text, limit)?;
        let pooled = pool(&hidden, config).map_err(|e| WickError::ModelFailed(e.to_string()))?;
        Ok(Features {
            vectors: vec![pooled],
            truncated_tokens,
        })
    }

    /// Tokenizes (truncating to `limit`, special tokens kept) and runs the encoder.
    fn run(&self, text: &str, limit: usize) -> Result<(Tensor, usize)> {
        let options = TokenizeOptions {
            truncation: TruncationChoice::MaxLength(u32::try_from(limit).unwrap_or(u32::MAX)),
            ..TokenizeOptions::default()
        };
        let input = self.tokenizer.encode_for_model(text, &options)?;
        let hidden = self.encoder.hidden_states(&input.ids, &input.type_ids)?;
        Ok((hidden, input.truncated_tokens))
    }
}

fn to_rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    t.to_dtype(DType::F32)
        .and_then(|t| t.to_vec2::<f32>())
        .map_err(|e| WickError::ModelFailed(e.to_string()))
}

/// Pools `[tokens, hidden]` into `[hidden]`. Every token is real here (one text, no padding).
fn pool(hidden: &Tensor, config: SentenceConfig) -> candle_core::Result<Vec<f32>> {
    let v = match config.pooling {
        Pooling::Mean => hidden.mean(0)?,
        Pooling::Max => hidden.max(0)?,
        Pooling::Cls => hidden.get(0)?,
    };
    let v = if config.normalize {
        let norm = v
            .sqr()?
            .sum_keepdim(D::Minus1)?
            .sqrt()?
            .clamp(1e-12, f64::MAX)?;
        v.broadcast_div(&norm)?
    } else {
        v
    };
    v.to_vec1::<f32>()
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
}

#[derive(Deserialize)]
struct PoolingFile {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
}

#[derive(Deserialize)]
struct SentenceBertFile {
    max_seq_length: Option<usize>,
}

impl SentenceConfig {
    /// Reads `modules.json` and the files it points to; `None` for plain transformers models.
    fn read(dir: &Path) -> Result<Option<Self>> {
        let modules_path = dir.join("modules.json");
        if !modules_path.is_file() {
            return Ok(None);
        }
        let modules: Vec<Module> = read_json(&modules_path)?;
        let Some(pooling_module) = modules.iter().find(|m| m.kind.ends_with(".Pooling")) else {
            return Ok(None);
        };
        let pooling_file: PoolingFile =
            read_json(&dir.join(&pooling_module.path).join("config.json"))?;
        let pooling = match (
            pooling_file.pooling_mode_mean_tokens,
            pooling_file.pooling_mode_cls_token,
            pooling_file.pooling_mode_max_tokens,
            pooling_file.pooling_mode_mean_sqrt_len_tokens,
        ) {
            (true, false, false, false) => Pooling::Mean,
            (false, true, false, false) => Pooling::Cls,
            (false, false, true, false) => Pooling::Max,
            _ => {
                return Err(WickError::InvalidModel {
                    path: dir.join(&pooling_module.path),
                    reason: "only one of mean, CLS or max pooling is supported".into(),
                })
            }
        };
        let normalize = modules.iter().any(|m| m.kind.ends_with(".Normalize"));
        let sbert = dir.join("sentence_bert_config.json");
        let max_tokens = if sbert.is_file() {
            read_json::<SentenceBertFile>(&sbert)?.max_seq_length
        } else {
            None
        };
        Ok(Some(Self {
            pooling,
            normalize,
            max_tokens,
        }))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &PathBuf) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| WickError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| WickError::InvalidModel {
        path: path.clone(),
        reason: e.to_string(),
    })
}
