//! feature-extraction: token-level hidden states as `transformers`' pipeline returns them, and
//! sentence embeddings as sentence-transformers computes them (pooling and normalisation read
//! from the model's `modules.json` and `1_Pooling/config.json`).

use std::path::{Path, PathBuf};

use candle_core::{DType, IndexOp, Tensor, D};
use serde::Deserialize;

use crate::blocks::heads::HeadKind;
use crate::cancel::CancelToken;
use crate::error::{Result, WickError};
use crate::loading::LoadSpec;
use crate::tasks::Task;
use crate::tokenize::Encoded;

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
    encoder: super::Encoder,
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
    pub fn load(spec: &LoadSpec) -> Result<Self> {
        Ok(Self {
            encoder: super::Encoder::load(spec, Task::FeatureExtraction, HeadKind::Base)?,
            sentence: SentenceConfig::read(&spec.model.dir)?,
        })
    }

    /// The sentence-transformers recipe, if the model has one.
    pub fn sentence_config(&self) -> Option<SentenceConfig> {
        self.sentence
    }

    /// The tokenizer and model it runs.
    pub fn encoder(&self) -> &super::Encoder {
        &self.encoder
    }

    /// One vector per token, special tokens included: `pipeline("feature-extraction")(text)[0]`.
    pub fn token_features(&self, text: &str, cancel: &CancelToken) -> Result<Features> {
        let encoded = self.encode(text, None)?;
        let hidden = self
            .encoder
            .model
            .hidden_states(&self.encoder.model.batch(&[&encoded], cancel)?)?;
        Ok(Features {
            vectors: to_rows(&hidden.i(0).map_err(failed)?)?,
            truncated_tokens: encoded.truncated_tokens,
        })
    }

    /// One vector for the text, as `SentenceTransformer.encode(text)` gives it. Models without a
    /// sentence-transformers recipe use mean pooling without normalisation.
    pub fn sentence_embedding(&self, text: &str) -> Result<Features> {
        let mut all = self.sentence_embeddings(&[text], 1, &CancelToken::new())?;
        all.pop()
            .ok_or_else(|| WickError::ModelFailed("no embedding came back".into()))
    }

    /// Sentence embeddings for many texts, run `batch_size` at a time padded together (padding
    /// is masked out of attention and pooling, so results equal one-at-a-time runs). Texts are
    /// batched longest first, as sentence-transformers does, so a batch pads little.
    /// `cancel` stops the run between batches and layers.
    pub fn sentence_embeddings(
        &self,
        texts: &[&str],
        batch_size: usize,
        cancel: &CancelToken,
    ) -> Result<Vec<Features>> {
        let config = self.recipe();
        let encoded = texts
            .iter()
            .map(|t| self.encode(t, config.max_tokens))
            .collect::<Result<Vec<_>>>()?;
        let mut order: Vec<usize> = (0..encoded.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(encoded[i].len()));
        let mut out: Vec<Option<Features>> = vec![None; texts.len()];
        for chunk in order.chunks(batch_size.max(1)) {
            let rows: Vec<&Encoded> = chunk.iter().map(|&i| &encoded[i]).collect();
            let batch = self.encoder.model.batch(&rows, cancel)?;
            let hidden = self.encoder.model.hidden_states(&batch)?;
            let pooled = pool(&hidden, &batch.mask, config).map_err(failed)?;
            for (&i, v) in chunk.iter().zip(pooled) {
                out[i] = Some(Features {
                    vectors: vec![v],
                    truncated_tokens: encoded[i].truncated_tokens,
                });
            }
        }
        out.into_iter()
            .map(|f| f.ok_or_else(|| WickError::ModelFailed("an embedding is missing".into())))
            .collect()
    }

    fn recipe(&self) -> SentenceConfig {
        self.sentence.unwrap_or(SentenceConfig {
            pooling: Pooling::Mean,
            normalize: false,
            max_tokens: None,
        })
    }

    /// Like `Encoder::encode_texts`, but empty text is allowed: sentence-transformers embeds ""
    /// too.
    fn encode(&self, text: &str, task_limit: Option<usize>) -> Result<Encoded> {
        let truncate = self.encoder.truncation(task_limit);
        super::single(
            self.encoder
                .tokenizer
                .encode_pipeline(text, None, truncate)?,
        )
    }
}

fn failed(e: candle_core::Error) -> WickError {
    crate::cancel::model_failed(e)
}

fn to_rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    t.to_dtype(DType::F32)
        .and_then(|t| t.to_vec2::<f32>())
        .map_err(failed)
}

/// Pools `[batch, tokens, hidden]` into one vector per row, ignoring padding, as
/// sentence-transformers' Pooling module does.
fn pool(
    hidden: &Tensor,
    mask: &Tensor,
    config: SentenceConfig,
) -> candle_core::Result<Vec<Vec<f32>>> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let v = match config.pooling {
        Pooling::Mean => {
            let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
            let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
            summed.broadcast_div(&counts)?
        }
        Pooling::Max => {
            // Padding set to -1e9 so it never wins, as sentence-transformers does.
            let penalty = ((mask.ones_like()? - &mask)? * -1e9)?;
            hidden.broadcast_add(&penalty)?.max(1)?
        }
        Pooling::Cls => hidden.i((.., 0))?,
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
    v.to_vec2::<f32>()
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
