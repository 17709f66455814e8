//! DeBERTa-v2 (and v3, which shares the architecture): BERT-style layers whose attention adds
//! "disentangled" terms between token content and relative positions, the positions bucketed
//! logarithmically beyond a window.

use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Embedding, LayerNorm, VarBuilder};
use serde::{Deserialize, Deserializer};

use super::encoder::{Batch, EncoderBody};
use crate::blocks::{self, Activation, Dense, FeedForward};
use crate::error::ConfigError;
use crate::loading::Loading;

#[derive(Debug, Clone, Deserialize)]
pub struct DebertaV2Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    pub hidden_act: Activation,
    pub max_position_embeddings: usize,
    #[serde(default)]
    pub type_vocab_size: usize,
    #[serde(default = "deberta_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub relative_attention: bool,
    #[serde(default = "minus_one")]
    pub max_relative_positions: i64,
    #[serde(default = "minus_one")]
    pub position_buckets: i64,
    #[serde(default = "yes")]
    pub position_biased_input: bool,
    #[serde(default, deserialize_with = "att_types")]
    pub pos_att_type: Vec<String>,
    #[serde(default)]
    pub share_att_key: bool,
    #[serde(default)]
    pub norm_rel_ebd: Option<String>,
    #[serde(default)]
    pub conv_kernel_size: usize,
    #[serde(default)]
    pub embedding_size: Option<usize>,
    #[serde(default)]
    pub attention_head_size: Option<usize>,
}

fn deberta_eps() -> f64 {
    1e-7
}
fn minus_one() -> i64 {
    -1
}
fn yes() -> bool {
    true
}

/// `pos_att_type` is a list in new configs and a `"p2c|c2p"` string in old ones.
fn att_types<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => Vec::new(),
        Some(Either::List(v)) => v.into_iter().map(|s| s.to_lowercase()).collect(),
        Some(Either::Text(s)) => s
            .to_lowercase()
            .split('|')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect(),
    })
}

/// DeBERTa's log-bucketed relative position, computed in f32 as `transformers` does so that the
/// bucket boundaries fall in the same places.
fn bucket(rel: i64, bucket_size: i64, max_position: i64) -> i64 {
    let mid = bucket_size / 2;
    let abs = if rel < mid && rel > -mid {
        mid - 1
    } else {
        rel.abs()
    };
    if abs <= mid {
        return rel;
    }
    let ratio = ((max_position - 1) as f64 / mid as f64) as f32;
    let log_pos =
        ((abs as f32 / mid as f32).ln() / ratio.ln() * (mid - 1) as f32).ceil() + mid as f32;
    log_pos as i64 * rel.signum()
}

/// The relative-position machinery shared by every layer.
#[derive(Debug)]
struct Relative {
    /// `[2 * span, hidden]`, layer-normed when the config asks.
    embeddings: Tensor,
    span: i64,
    buckets: i64,
    max_positions: i64,
    c2p: bool,
    p2c: bool,
}

impl Relative {
    /// `index[q][k] = clamp(bucket(q - k) + span, 0, 2 span - 1)`, the column of the
    /// position-attention matrix that scores query `q` against key `k`.
    fn index(&self, t: usize, device: &Device) -> candle_core::Result<Tensor> {
        let mut idx = Vec::with_capacity(t * t);
        for q in 0..t as i64 {
            for k in 0..t as i64 {
                let r = if self.buckets > 0 && self.max_positions > 0 {
                    bucket(q - k, self.buckets, self.max_positions)
                } else {
                    q - k
                };
                idx.push((r + self.span).clamp(0, 2 * self.span - 1) as u32);
            }
        }
        Tensor::from_vec(idx, (t, t), device)
    }
}

#[derive(Debug)]
struct Attention {
    q: Dense,
    k: Dense,
    v: Dense,
    /// Separate projections of the position embeddings when keys are not shared.
    pos_k: Option<Dense>,
    pos_q: Option<Dense>,
    out: Dense,
    norm: LayerNorm,
    heads: usize,
    scale_factor: usize,
}

impl Attention {
    fn forward(
        &self,
        xs: &Tensor,
        bias: &Tensor,
        rel: Option<(&Relative, &Tensor)>,
        sink: Option<&blocks::AttentionSink>,
    ) -> candle_core::Result<Tensor> {
        let q = blocks::split_heads(&self.q.forward(xs)?, self.heads)?;
        let k = blocks::split_heads(&self.k.forward(xs)?, self.heads)?;
        let v = blocks::split_heads(&self.v.forward(xs)?, self.heads)?;
        let d = q.dim(D::Minus1)?;
        let scale = ((d * self.scale_factor) as f64).sqrt();
        let mut scores = q.matmul(&(k.t()? / scale)?)?;
        if let Some((rel, index)) = rel {
            let (b, h, t, _) = q.dims4()?;
            let index = index.broadcast_as((b, h, t, t))?.contiguous()?;
            let emb = rel.embeddings.unsqueeze(0)?;
            if rel.c2p {
                let proj = self.pos_k.as_ref().unwrap_or(&self.k);
                let pos_k = blocks::split_heads(&proj.forward(&emb)?, self.heads)?;
                let c2p = q.broadcast_matmul(&pos_k.t()?)?.gather(&index, 3)?;
                scores = (scores + (c2p / scale)?)?;
            }
            if rel.p2c {
                let proj = self.pos_q.as_ref().unwrap_or(&self.q);
                let pos_q = blocks::split_heads(&proj.forward(&emb)?, self.heads)?;
                let p2c = k
                    .broadcast_matmul(&pos_q.t()?)?
                    .gather(&index.transpose(2, 3)?.contiguous()?, 3)?
                    .transpose(2, 3)?;
                scores = (scores + (p2c / scale)?)?;
            }
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(bias)?)?;
        if let Some(sink) = sink {
            blocks::attention::record(sink, &probs)?;
        }
        let context = blocks::merge_heads(&probs.matmul(&v)?)?;
        self.norm.forward(&(self.out.forward(&context)? + xs)?)
    }
}

#[derive(Debug)]
struct Layer {
    attention: Attention,
    ffn: FeedForward,
    norm: LayerNorm,
}

/// A loaded DeBERTa-v2 body.
#[derive(Debug)]
pub struct DebertaV2 {
    words: Embedding,
    positions: Option<Embedding>,
    token_types: Option<Embedding>,
    embed_proj: Option<Dense>,
    norm: LayerNorm,
    layers: Vec<Layer>,
    relative: Option<Relative>,
    config: DebertaV2Config,
}

impl DebertaV2 {
    /// Says which settings of `config` this implementation does not cover.
    pub fn check(config: &DebertaV2Config) -> Result<(), ConfigError> {
        if config.conv_kernel_size > 0 {
            return Err(
                "DeBERTa-v2 models with a convolution layer (conv_kernel_size > 0) are \
                        not supported yet"
                    .into(),
            );
        }
        Ok(())
    }

    pub fn load(
        vb: &VarBuilder,
        config: DebertaV2Config,
        loading: &Loading,
    ) -> candle_core::Result<Self> {
        let c = &config;
        let (h, eps) = (c.hidden_size, c.layer_norm_eps);
        let e = c.embedding_size.unwrap_or(h);
        let emb = vb.pp("embeddings");
        let all_heads =
            c.num_attention_heads * c.attention_head_size.unwrap_or(h / c.num_attention_heads);
        let c2p = c.pos_att_type.iter().any(|t| t == "c2p");
        let p2c = c.pos_att_type.iter().any(|t| t == "p2c");
        let separate = c.relative_attention && !c.share_att_key;
        loading.expect_layers(c.num_hidden_layers);
        let layers = loading.build_layers(c.num_hidden_layers, |i| {
            let l = vb.pp(format!("encoder.layer.{i}"));
            let att = l.pp("attention");
            Ok(Layer {
                attention: Attention {
                    q: blocks::linear(&att, "self.query_proj", h, all_heads)?,
                    k: blocks::linear(&att, "self.key_proj", h, all_heads)?,
                    v: blocks::linear(&att, "self.value_proj", h, all_heads)?,
                    pos_k: (separate && c2p)
                        .then(|| blocks::linear(&att, "self.pos_key_proj", h, all_heads))
                        .transpose()?,
                    pos_q: (separate && p2c)
                        .then(|| blocks::linear(&att, "self.pos_query_proj", h, all_heads))
                        .transpose()?,
                    out: blocks::linear(&att, "output.dense", all_heads, h)?,
                    norm: blocks::layer_norm(&att, "output.LayerNorm", h, eps)?,
                    heads: c.num_attention_heads,
                    scale_factor: 1 + usize::from(c2p) + usize::from(p2c),
                },
                ffn: FeedForward {
                    inner: blocks::linear(&l, "intermediate.dense", h, c.intermediate_size)?,
                    act: c.hidden_act,
                    out: blocks::linear(&l, "output.dense", c.intermediate_size, h)?,
                },
                norm: blocks::layer_norm(&l, "output.LayerNorm", h, eps)?,
            })
        })?;
        let relative = if c.relative_attention {
            let max_positions = if c.max_relative_positions < 1 {
                c.max_position_embeddings as i64
            } else {
                c.max_relative_positions
            };
            let span = if c.position_buckets > 0 {
                c.position_buckets
            } else {
                max_positions
            };
            // The bucket arithmetic divides by and clamps to the span: it must hold a bucket.
            if !(1..=1 << 24).contains(&span) {
                candle_core::bail!(
                    "relative attention over a span of {span} positions (position_buckets \
                     {}, max_relative_positions {}, max_position_embeddings {})",
                    c.position_buckets,
                    c.max_relative_positions,
                    c.max_position_embeddings
                );
            }
            let enc = vb.pp("encoder");
            let mut table = enc.get((2 * span as usize, h), "rel_embeddings.weight")?;
            let normed = c
                .norm_rel_ebd
                .as_deref()
                .unwrap_or("none")
                .to_lowercase()
                .split('|')
                .any(|x| x.trim() == "layer_norm");
            if normed {
                table = blocks::layer_norm(&enc, "LayerNorm", h, eps)?.forward(&table)?;
            }
            Some(Relative {
                embeddings: table,
                span,
                buckets: c.position_buckets,
                max_positions,
                c2p,
                p2c,
            })
        } else {
            None
        };
        Ok(Self {
            words: candle_nn::embedding(c.vocab_size, e, emb.pp("word_embeddings"))?,
            positions: c
                .position_biased_input
                .then(|| {
                    candle_nn::embedding(
                        c.max_position_embeddings,
                        e,
                        emb.pp("position_embeddings"),
                    )
                })
                .transpose()?,
            token_types: (c.type_vocab_size > 0)
                .then(|| {
                    candle_nn::embedding(c.type_vocab_size, e, emb.pp("token_type_embeddings"))
                })
                .transpose()?,
            embed_proj: (e != h)
                .then(|| blocks::linear_no_bias(&emb, "embed_proj", e, h))
                .transpose()?,
            norm: blocks::layer_norm(&emb, "LayerNorm", h, eps)?,
            layers,
            relative,
            config: c.clone(),
        })
    }
}

impl EncoderBody for DebertaV2 {
    fn forward(&self, batch: &Batch) -> candle_core::Result<Tensor> {
        let device = batch.ids.device();
        let t = batch.ids.dim(1)?;
        let mut xs = self.words.forward(&batch.ids)?;
        if let Some(positions) = &self.positions {
            xs = (xs + positions.forward(&blocks::positions_from_zero(&batch.ids)?)?)?;
        }
        if let Some(types) = &self.token_types {
            xs = (xs + types.forward(&batch.type_ids)?)?;
        }
        if let Some(proj) = &self.embed_proj {
            xs = proj.forward(&xs)?;
        }
        let mask = batch.mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let mut xs = self.norm.forward(&xs)?.broadcast_mul(&mask)?;
        let bias = blocks::attention_bias(&batch.mask)?;
        let index = self
            .relative
            .as_ref()
            .map(|r| r.index(t, device))
            .transpose()?;
        let rel = self.relative.as_ref().zip(index.as_ref());
        for layer in &self.layers {
            batch.cancel.check_candle()?;
            let attended = layer
                .attention
                .forward(&xs, &bias, rel, batch.attentions.as_ref())?;
            xs = layer
                .norm
                .forward(&(layer.ffn.forward(&attended)? + &attended)?)?;
        }
        Ok(xs)
    }

    fn word_embeddings(&self) -> &Tensor {
        self.words.embeddings()
    }

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    fn max_positions(&self) -> Option<usize> {
        // With only relative positions there is no table to run off the end of.
        self.positions
            .as_ref()
            .map(|_| self.config.max_position_embeddings)
    }

    fn uses_token_types(&self) -> bool {
        self.token_types.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_match_transformers() {
        // make_log_bucket_position(torch.tensor([r]), bucket_size, 512) in
        // transformers 4.57.6.
        assert_eq!(bucket(0, 64, 512), 0);
        assert_eq!(bucket(31, 64, 512), 31);
        assert_eq!(bucket(-32, 64, 512), -32);
        assert_eq!(bucket(33, 64, 512), 33);
        assert_eq!(bucket(40, 64, 512), 35);
        assert_eq!(bucket(-100, 64, 512), -45);
        assert_eq!(bucket(200, 64, 512), 53);
        assert_eq!(bucket(511, 64, 512), 63);
        assert_eq!(bucket(127, 256, 512), 127);
    }
}
