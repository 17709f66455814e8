//! The BERT body and its close relatives RoBERTa, XLM-RoBERTa and CamemBERT: the same post-norm
//! encoder layers, differing in how positions are numbered and whether token types are read.

use candle_core::{Device, Module, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
use serde::Deserialize;

use super::encoder::{Batch, EncoderBody};
use crate::blocks::{self, Activation, FeedForward, PostNormLayer, SelfAttention};
use crate::error::ConfigError;
use crate::loading::Loading;

/// How position ids are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positions {
    /// BERT: 0, 1, 2, ... for every row.
    FromZero,
    /// RoBERTa: real tokens count from `pad + 1`, padding tokens sit at `pad`, so the position
    /// table has two extra rows (514 for a 512-token model).
    AfterPadding,
}

#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Activation,
    pub max_position_embeddings: usize,
    #[serde(default = "two")]
    pub type_vocab_size: usize,
    #[serde(default = "bert_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<u32>,
    #[serde(default)]
    pub position_embedding_type: Option<String>,
}

fn two() -> usize {
    2
}

fn bert_eps() -> f64 {
    1e-12
}

/// Loads one encoder layer from `encoder.layer.{i}`.
fn load_layer(vb: &VarBuilder, c: &BertConfig) -> candle_core::Result<PostNormLayer> {
    let h = c.hidden_size;
    let att = vb.pp("attention");
    Ok(PostNormLayer {
        attention: SelfAttention::new(
            &blocks::linear(&att, "self.query", h, h)?,
            &blocks::linear(&att, "self.key", h, h)?,
            &blocks::linear(&att, "self.value", h, h)?,
            blocks::linear(&att, "output.dense", h, h)?,
            c.num_attention_heads,
        )?,
        attention_norm: blocks::Norm::load(&att, "output.LayerNorm", h, c.layer_norm_eps)?,
        ffn: FeedForward {
            inner: blocks::linear(vb, "intermediate.dense", h, c.intermediate_size)?,
            act: c.hidden_act,
            out: blocks::linear(vb, "output.dense", c.intermediate_size, h)?,
        },
        output_norm: blocks::Norm::load(vb, "output.LayerNorm", h, c.layer_norm_eps)?,
    })
}

/// A loaded BERT-style body.
#[derive(Debug)]
pub struct Bert {
    words: Embedding,
    positions: Embedding,
    token_types: Option<Embedding>,
    norm: LayerNorm,
    layers: Vec<PostNormLayer>,
    numbering: Positions,
    pad_id: u32,
    config: BertConfig,
    device: Device,
}

impl Bert {
    /// Loads the body from `vb` (already pointed at the `bert.` / `roberta.` prefix, if any).
    /// Says which settings of `config` this implementation does not cover.
    pub fn check(config: &BertConfig) -> Result<(), ConfigError> {
        match config.position_embedding_type.as_deref() {
            None | Some("absolute") => Ok(()),
            Some(kind) => Err(format!(
                "position_embedding_type `{kind}` is not supported (only absolute)"
            )
            .into()),
        }
    }

    pub fn load(
        vb: &VarBuilder,
        config: BertConfig,
        numbering: Positions,
        loading: &Loading,
    ) -> candle_core::Result<Self> {
        let c = &config;
        let emb = vb.pp("embeddings");
        // RoBERTa checkpoints carry a one-row type table too; it is added (for type 0) even
        // though its tokenizer produces no type ids.
        let token_types = (c.type_vocab_size > 0)
            .then(|| {
                candle_nn::embedding(
                    c.type_vocab_size,
                    c.hidden_size,
                    emb.pp("token_type_embeddings"),
                )
            })
            .transpose()?;
        loading.expect_layers(c.num_hidden_layers);
        let layers = loading.build_layers(c.num_hidden_layers, |i| {
            load_layer(&vb.pp(format!("encoder.layer.{i}")), c)
        })?;
        Ok(Self {
            words: candle_nn::embedding(c.vocab_size, c.hidden_size, emb.pp("word_embeddings"))?,
            positions: candle_nn::embedding(
                c.max_position_embeddings,
                c.hidden_size,
                emb.pp("position_embeddings"),
            )?,
            token_types,
            norm: blocks::layer_norm(&emb, "LayerNorm", c.hidden_size, c.layer_norm_eps)?,
            layers,
            numbering,
            pad_id: c
                .pad_token_id
                .unwrap_or(if numbering == Positions::AfterPadding {
                    1
                } else {
                    0
                }),
            config: c.clone(),
            device: vb.device().clone(),
        })
    }

    fn position_ids(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        let (b, t) = ids.dims2()?;
        match self.numbering {
            Positions::FromZero => blocks::positions_from_zero(ids),
            Positions::AfterPadding => {
                let rows = ids.to_vec2::<u32>()?;
                let pad = self.pad_id;
                let numbered: Vec<u32> = rows
                    .iter()
                    .flat_map(|row| {
                        let mut seen = 0;
                        row.iter().map(move |&id| {
                            if id == pad {
                                pad
                            } else {
                                // Wrapping: a pad id near u32::MAX (from config.json) makes an
                                // index the embedding lookup refuses, not an overflow.
                                seen += 1;
                                pad.wrapping_add(seen)
                            }
                        })
                    })
                    .collect();
                Tensor::from_vec(numbered, (b, t), &self.device)
            }
        }
    }
}

impl EncoderBody for Bert {
    fn forward(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        let mut xs = (self.words.forward(&batch.ids)?
            + self.positions.forward(&self.position_ids(&batch.ids)?)?)?;
        if let Some(types) = &self.token_types {
            let ids = if self.uses_token_types() {
                batch.type_ids.clone()
            } else {
                batch.type_ids.zeros_like()?
            };
            xs = (xs + types.forward(&ids)?)?;
        }
        blocks::run_layers(
            &self.layers,
            self.norm.forward(&xs)?,
            &batch.mask,
            &batch.cancel,
            batch.attentions.as_ref(),
        )
    }

    fn word_embeddings(&self) -> &Tensor {
        self.words.embeddings()
    }

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    fn max_positions(&self) -> Option<usize> {
        Some(match self.numbering {
            Positions::FromZero => self.config.max_position_embeddings,
            Positions::AfterPadding => self
                .config
                .max_position_embeddings
                .saturating_sub(self.pad_id as usize + 1),
        })
    }

    fn uses_token_types(&self) -> bool {
        self.numbering == Positions::FromZero && self.token_types.is_some()
    }
}
