//! BART and Marian (`BartForConditionalGeneration`, `MarianMTModel`): post-norm transformer
//! layers with biased projections. BART has learned positions (offset by 2) and a norm after the
//! embeddings; Marian has sinusoidal positions and none. Both scale the logits' bias
//! (`final_logits_bias`) on top of a head tied to the shared embeddings.

use candle_core::{Device, Module, Tensor};
use candle_nn::LayerNorm;
use serde_json::Value;

use super::{attend, causal_mask, embed, extend, heads, id_tensor, last, Seq2SeqCache, Tensors};
use crate::blocks::{Activation, Dense};
use crate::loading::Loading;

#[derive(Debug, Clone)]
struct Attention {
    q: Dense,
    k: Dense,
    v: Dense,
    out: Dense,
}

impl Attention {
    fn load(w: &Tensors, name: &str) -> candle_core::Result<Self> {
        Ok(Self {
            q: w.dense(&format!("{name}.q_proj"), true)?,
            k: w.dense(&format!("{name}.k_proj"), true)?,
            v: w.dense(&format!("{name}.v_proj"), true)?,
            out: w.dense(&format!("{name}.out_proj"), true)?,
        })
    }
}

#[derive(Debug, Clone)]
struct Layer {
    self_attn: Attention,
    self_norm: LayerNorm,
    cross: Option<(Attention, LayerNorm)>,
    fc1: Dense,
    fc2: Dense,
    final_norm: LayerNorm,
}

/// How positions are embedded.
#[derive(Debug, Clone)]
enum Positions {
    /// BART: a learned table read at `position + 2`.
    Learned { encoder: Tensor, decoder: Tensor },
    /// Marian: fixed sinusoids, sin in the first half of the dimensions and cos in the second.
    Sinusoidal(Tensor),
}

#[derive(Debug)]
pub struct Bart {
    shared: Tensor,
    positions: Positions,
    embed_scale: f64,
    encoder_norm: Option<LayerNorm>,
    decoder_norm: Option<LayerNorm>,
    encoder: Vec<Layer>,
    decoder: Vec<Layer>,
    heads: usize,
    head_dim: usize,
    act: Activation,
    lm_head: Dense,
    final_logits_bias: Option<Tensor>,
    max_positions: usize,
}

fn layer_norm(w: &Tensors, name: &str, eps: f64) -> candle_core::Result<LayerNorm> {
    Ok(LayerNorm::new(
        w.get(&format!("{name}.weight"))?,
        w.get(&format!("{name}.bias"))?,
        eps,
    ))
}

fn sinusoids(n: usize, dim: usize, device: &Device) -> candle_core::Result<Tensor> {
    let half = dim.div_ceil(2);
    let mut table = vec![0f32; n * dim];
    for pos in 0..n {
        for i in 0..dim {
            // Column j uses frequency 10000^(2*(j/2)/dim); even columns go to the sin half,
            // odd ones to the cos half.
            let j = if i < half { 2 * i } else { 2 * (i - half) + 1 };
            let angle = pos as f64 / 10000f64.powf((2 * (j / 2)) as f64 / dim as f64);
            table[pos * dim + i] = if i < half { angle.sin() } else { angle.cos() } as f32;
        }
    }
    Tensor::from_vec(table, (n, dim), device)
}

impl Bart {
    pub(crate) fn load(
        c: &Value,
        w: &Tensors,
        marian: bool,
        device: &Device,
        loading: &Loading,
    ) -> candle_core::Result<Self> {
        let num = |k: &str| -> candle_core::Result<usize> {
            c.get(k)
                .and_then(Value::as_u64)
                .map(|n| n as usize)
                .ok_or_else(|| candle_core::Error::Msg(format!("config.json has no {k}")))
        };
        let d_model = num("d_model")?;
        let heads = num("decoder_attention_heads")?;
        if num("encoder_attention_heads")? != heads {
            candle_core::bail!("encoder and decoder with different head counts are not supported");
        }
        let eps = 1e-5;
        let act: Activation = serde_json::from_value(
            c.get("activation_function")
                .cloned()
                .unwrap_or(Value::String("gelu".into())),
        )
        .map_err(|e| candle_core::Error::Msg(format!("activation_function: {e}")))?;
        if c.get("normalize_before").and_then(Value::as_bool) == Some(true) {
            candle_core::bail!("pre-norm (normalize_before) checkpoints are not supported yet");
        }
        let max_positions = num("max_position_embeddings")?;
        let shared = w.get("model.shared.weight")?;
        let positions = if marian {
            // The table is computed, not read: its size must be checked here, against the
            // embeddings actually in the file and a bound (real Marian models: 512 x 512).
            if shared.dim(1)? != d_model {
                candle_core::bail!(
                    "d_model is {d_model}, but the stored embeddings are {} wide",
                    shared.dim(1)?
                );
            }
            if max_positions.saturating_mul(d_model) > 1 << 28 {
                candle_core::bail!(
                    "max_position_embeddings x d_model = {max_positions} x {d_model} is more \
                     positions than Wick computes a table for"
                );
            }
            Positions::Sinusoidal(sinusoids(max_positions, d_model, device)?)
        } else {
            Positions::Learned {
                encoder: w.get("model.encoder.embed_positions.weight")?,
                decoder: w.get("model.decoder.embed_positions.weight")?,
            }
        };
        let layer = |stack: &str, i: usize, decoder: bool| -> candle_core::Result<Layer> {
            let p = format!("model.{stack}.layers.{i}");
            Ok(Layer {
                self_attn: Attention::load(w, &format!("{p}.self_attn"))?,
                self_norm: layer_norm(w, &format!("{p}.self_attn_layer_norm"), eps)?,
                cross: decoder
                    .then(|| -> candle_core::Result<_> {
                        Ok((
                            Attention::load(w, &format!("{p}.encoder_attn"))?,
                            layer_norm(w, &format!("{p}.encoder_attn_layer_norm"), eps)?,
                        ))
                    })
                    .transpose()?,
                fc1: w.dense(&format!("{p}.fc1"), true)?,
                fc2: w.dense(&format!("{p}.fc2"), true)?,
                final_norm: layer_norm(w, &format!("{p}.final_layer_norm"), eps)?,
            })
        };
        loading.expect_layers(num("encoder_layers")? + num("decoder_layers")?);
        let encoder =
            loading.build_layers(num("encoder_layers")?, |i| layer("encoder", i, false))?;
        let decoder =
            loading.build_layers(num("decoder_layers")?, |i| layer("decoder", i, true))?;
        let optional_norm = |name: &str| -> candle_core::Result<Option<LayerNorm>> {
            if w.0.contains_key(&format!("{name}.weight")) {
                layer_norm(w, name, eps).map(Some)
            } else {
                Ok(None)
            }
        };
        let lm_head = match w.opt("lm_head.weight")? {
            Some(head) => Dense::new(head.t()?.contiguous()?, None)?,
            None => Dense::new(shared.t()?, None)?,
        };
        let scale = c
            .get("scale_embedding")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Self {
            embed_scale: if scale { (d_model as f64).sqrt() } else { 1.0 },
            encoder_norm: optional_norm("model.encoder.layernorm_embedding")?,
            decoder_norm: optional_norm("model.decoder.layernorm_embedding")?,
            final_logits_bias: w.opt("final_logits_bias")?,
            shared,
            positions,
            encoder,
            decoder,
            heads,
            head_dim: d_model / heads,
            act,
            lm_head,
            max_positions,
        })
    }

    pub fn decoder_layers(&self) -> usize {
        self.decoder.len()
    }

    pub fn heads(&self) -> usize {
        self.heads
    }

    pub fn max_positions(&self) -> usize {
        self.max_positions
    }

    /// Token plus position embeddings (and BART's embedding norm) for `[rows, t]` ids starting
    /// at position `offset`.
    fn embed(
        &self,
        tokens: &[Vec<u32>],
        offset: usize,
        decoder: bool,
    ) -> candle_core::Result<Tensor> {
        let ids = id_tensor(tokens, self.shared.device())?;
        let t = ids.dim(1)?;
        if offset + t > self.max_positions {
            candle_core::bail!(
                "{} tokens is longer than the model's {} positions",
                offset + t,
                self.max_positions
            );
        }
        let x = (embed(&self.shared, &ids)? * self.embed_scale)?;
        let pos = match &self.positions {
            Positions::Learned {
                encoder,
                decoder: d,
            } => {
                let table = if decoder { d } else { encoder };
                table.narrow(0, offset + 2, t)?
            }
            Positions::Sinusoidal(table) => table.narrow(0, offset, t)?,
        };
        let x = x.broadcast_add(&pos)?;
        let norm = if decoder {
            &self.decoder_norm
        } else {
            &self.encoder_norm
        };
        match norm {
            Some(n) => n.forward(&x),
            None => Ok(x),
        }
    }

    fn ffn(&self, layer: &Layer, h: &Tensor) -> candle_core::Result<Tensor> {
        let f = layer
            .fc2
            .forward(&self.act.apply(&layer.fc1.forward(h)?)?)?;
        layer.final_norm.forward(&(h + f)?)
    }

    pub fn encode(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        let mut h = self.embed(&[ids.to_vec()], 0, false)?;
        let scale = (self.head_dim as f64).powf(-0.5);
        for layer in &self.encoder {
            let a = &layer.self_attn;
            let ctx = attend(
                &heads(&a.q.forward(&h)?, self.heads)?,
                &heads(&a.k.forward(&h)?, self.heads)?,
                &heads(&a.v.forward(&h)?, self.heads)?,
                scale,
                None,
            )?;
            h = layer.self_norm.forward(&(&h + a.out.forward(&ctx)?)?)?;
            h = self.ffn(layer, &h)?;
        }
        Ok(h)
    }

    pub fn decode(
        &self,
        encoded: &Tensor,
        tokens: &[Vec<u32>],
        cache: &mut Seq2SeqCache,
    ) -> candle_core::Result<Tensor> {
        let offset = cache.len;
        let t = tokens.first().map(Vec::len).unwrap_or(0);
        let mut h = self.embed(tokens, offset, true)?;
        let rows = h.dim(0)?;
        let scale = (self.head_dim as f64).powf(-0.5);
        let mask = causal_mask(t, offset + t, offset, h.device())?;
        for (i, layer) in self.decoder.iter().enumerate() {
            let a = &layer.self_attn;
            let q = heads(&a.q.forward(&h)?, self.heads)?;
            let (k, v) = extend(
                &mut cache.self_kv[i],
                heads(&a.k.forward(&h)?, self.heads)?,
                heads(&a.v.forward(&h)?, self.heads)?,
            )?;
            let ctx = attend(&q, &k, &v, scale, mask.as_ref())?;
            h = layer.self_norm.forward(&(&h + a.out.forward(&ctx)?)?)?;
            if let Some((c, norm)) = &layer.cross {
                let q = heads(&c.q.forward(&h)?, self.heads)?;
                let (k, v) = match &cache.cross_kv[i] {
                    Some(kv) => kv.clone(),
                    None => {
                        let enc = encoded
                            .broadcast_as((rows, encoded.dim(1)?, encoded.dim(2)?))?
                            .contiguous()?;
                        let kv = (
                            heads(&c.k.forward(&enc)?, self.heads)?,
                            heads(&c.v.forward(&enc)?, self.heads)?,
                        );
                        cache.cross_kv[i] = Some(kv.clone());
                        kv
                    }
                };
                let ctx = attend(&q, &k, &v, scale, None)?;
                h = norm.forward(&(&h + c.out.forward(&ctx)?)?)?;
            }
            h = self.ffn(layer, &h)?;
        }
        cache.len = offset + t;
        let logits = self.lm_head.forward(&last(&h)?)?;
        match &self.final_logits_bias {
            Some(b) => logits.broadcast_add(b),
            None => Ok(logits),
        }
    }
}
