//! DistilBERT: BERT's layers with other weight names, no token types, and config fields of its
//! own (`dim`, `n_layers`, `activation`).

use candle_core::{Module, Tensor};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
use serde::Deserialize;

use super::encoder::{Batch, EncoderBody};
use crate::blocks::{self, Activation, FeedForward, PostNormLayer, SelfAttention};
use crate::loading::Loading;

/// DistilBERT fixes its layer-norm epsilon rather than reading it from the config.
const EPS: f64 = 1e-12;

#[derive(Debug, Clone, Deserialize)]
pub struct DistilBertConfig {
    pub vocab_size: usize,
    pub dim: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub hidden_dim: usize,
    pub activation: Activation,
    pub max_position_embeddings: usize,
}

/// A loaded DistilBERT body.
#[derive(Debug)]
pub struct DistilBert {
    words: Embedding,
    positions: Embedding,
    norm: LayerNorm,
    layers: Vec<PostNormLayer>,
    config: DistilBertConfig,
}

impl DistilBert {
    pub fn load(
        vb: &VarBuilder,
        config: DistilBertConfig,
        loading: &Loading,
    ) -> candle_core::Result<Self> {
        let c = &config;
        let (d, emb) = (c.dim, vb.pp("embeddings"));
        loading.expect_layers(c.n_layers);
        let layers = loading.build_layers(c.n_layers, |i| {
            let l = vb.pp(format!("transformer.layer.{i}"));
            let att = l.pp("attention");
            Ok(PostNormLayer {
                attention: SelfAttention::new(
                    &blocks::linear(&att, "q_lin", d, d)?,
                    &blocks::linear(&att, "k_lin", d, d)?,
                    &blocks::linear(&att, "v_lin", d, d)?,
                    blocks::linear(&att, "out_lin", d, d)?,
                    c.n_heads,
                )?,
                attention_norm: blocks::Norm::load(&l, "sa_layer_norm", d, EPS)?,
                ffn: FeedForward {
                    inner: blocks::linear(&l, "ffn.lin1", d, c.hidden_dim)?,
                    act: c.activation,
                    out: blocks::linear(&l, "ffn.lin2", c.hidden_dim, d)?,
                },
                output_norm: blocks::Norm::load(&l, "output_layer_norm", d, EPS)?,
            })
        })?;
        Ok(Self {
            words: candle_nn::embedding(c.vocab_size, d, emb.pp("word_embeddings"))?,
            // Sinusoidal position tables are stored in the checkpoint like learned ones.
            positions: candle_nn::embedding(
                c.max_position_embeddings,
                d,
                emb.pp("position_embeddings"),
            )?,
            norm: blocks::layer_norm(&emb, "LayerNorm", d, EPS)?,
            layers,
            config: c.clone(),
        })
    }
}

impl EncoderBody for DistilBert {
    fn forward(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        let positions = blocks::positions_from_zero(&batch.ids)?;
        let xs = (self.words.forward(&batch.ids)? + self.positions.forward(&positions)?)?;
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
        self.config.dim
    }

    fn max_positions(&self) -> Option<usize> {
        Some(self.config.max_position_embeddings)
    }

    fn uses_token_types(&self) -> bool {
        false
    }
}
