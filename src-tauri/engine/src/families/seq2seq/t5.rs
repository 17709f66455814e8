//! T5 and flan-T5 (`T5ForConditionalGeneration`): pre-norm blocks with RMS layer norms, no
//! attention scaling, and a learned relative-position bias (log-spaced buckets) computed once
//! in the first layer of each stack and shared by the others.

use candle_core::{Module, Tensor};
use serde_json::Value;

use super::{attend, causal_mask, embed, extend, heads, id_tensor, last, Seq2SeqCache, Tensors};
use crate::blocks::{Activation, Dense};
use crate::loading::Loading;

#[derive(Debug, Clone)]
struct Config {
    d_model: usize,
    heads: usize,
    layers: usize,
    decoder_layers: usize,
    buckets: usize,
    max_distance: usize,
    eps: f64,
    act: Activation,
    gated: bool,
    tied: bool,
}

impl Config {
    fn read(c: &Value) -> candle_core::Result<Self> {
        let num = |k: &str| -> candle_core::Result<usize> {
            c.get(k)
                .and_then(Value::as_u64)
                .map(|n| n as usize)
                .ok_or_else(|| candle_core::Error::Msg(format!("config.json has no {k}")))
        };
        let proj = c
            .get("feed_forward_proj")
            .and_then(Value::as_str)
            .unwrap_or("relu");
        let gated = proj.starts_with("gated-");
        let act_name = proj.trim_start_matches("gated-");
        let act = match act_name {
            "relu" => Activation::Relu,
            // T5's "gelu" in gated-gelu is the tanh approximation (dense_act_fn gelu_new).
            "gelu" | "gelu_new" => Activation::GeluNew,
            "silu" | "swish" => Activation::Silu,
            other => {
                return Err(candle_core::Error::Msg(format!(
                    "feed_forward_proj `{proj}` ({other}) is not supported"
                )))
            }
        };
        let layers = num("num_layers")?;
        let buckets = num("relative_attention_num_buckets").unwrap_or(32);
        let max_distance = num("relative_attention_max_distance").unwrap_or(128);
        // The bucketing halves the buckets and takes a log ratio against the distance.
        if buckets < 4 || max_distance < 2 {
            return Err(candle_core::Error::Msg(format!(
                "relative_attention_num_buckets {buckets} / relative_attention_max_distance \
                 {max_distance}: need at least 4 buckets and a distance of 2"
            )));
        }
        Ok(Self {
            d_model: num("d_model")?,
            heads: num("num_heads")?,
            layers,
            decoder_layers: num("num_decoder_layers").unwrap_or(layers),
            buckets,
            max_distance,
            eps: c
                .get("layer_norm_epsilon")
                .and_then(Value::as_f64)
                .unwrap_or(1e-6),
            act,
            gated,
            tied: c
                .get("tie_word_embeddings")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        })
    }
}

#[derive(Debug, Clone)]
struct Attention {
    q: Dense,
    k: Dense,
    v: Dense,
    o: Dense,
    /// `[buckets, heads]`, in the first layer of a stack only.
    relative: Option<Tensor>,
}

impl Attention {
    fn load(w: &Tensors, name: &str) -> candle_core::Result<Self> {
        Ok(Self {
            q: w.dense(&format!("{name}.q"), false)?,
            k: w.dense(&format!("{name}.k"), false)?,
            v: w.dense(&format!("{name}.v"), false)?,
            o: w.dense(&format!("{name}.o"), false)?,
            relative: w.opt(&format!("{name}.relative_attention_bias.weight"))?,
        })
    }
}

#[derive(Debug, Clone)]
struct FeedForward {
    wi: Dense,
    /// The gate's second input projection (gated variants).
    wi_1: Option<Dense>,
    wo: Dense,
    act: Activation,
}

impl FeedForward {
    fn load(w: &Tensors, name: &str, cfg: &Config) -> candle_core::Result<Self> {
        Ok(if cfg.gated {
            Self {
                wi: w.dense(&format!("{name}.wi_0"), false)?,
                wi_1: Some(w.dense(&format!("{name}.wi_1"), false)?),
                wo: w.dense(&format!("{name}.wo"), false)?,
                act: cfg.act,
            }
        } else {
            Self {
                wi: w.dense(&format!("{name}.wi"), false)?,
                wi_1: None,
                wo: w.dense(&format!("{name}.wo"), false)?,
                act: cfg.act,
            }
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let h = self.act.apply(&self.wi.forward(x)?)?;
        let h = match &self.wi_1 {
            Some(lin) => (h * lin.forward(x)?)?,
            None => h,
        };
        self.wo.forward(&h)
    }
}

#[derive(Debug, Clone)]
struct Block {
    self_norm: Tensor,
    self_attn: Attention,
    cross_norm: Option<Tensor>,
    cross_attn: Option<Attention>,
    ff_norm: Tensor,
    ff: FeedForward,
}

#[derive(Debug)]
pub struct T5 {
    cfg: Config,
    shared: Tensor,
    encoder: Vec<Block>,
    encoder_norm: Tensor,
    decoder: Vec<Block>,
    decoder_norm: Tensor,
    lm_head: Dense,
}

impl T5 {
    pub(crate) fn load(
        config: &Value,
        w: &Tensors,
        loading: &Loading,
    ) -> candle_core::Result<Self> {
        let cfg = Config::read(config)?;
        loading.expect_layers(cfg.layers + cfg.decoder_layers);
        let shared = w.get("shared.weight")?;
        let block = |stack: &str, i: usize, decoder: bool| -> candle_core::Result<Block> {
            let p = format!("{stack}.block.{i}.layer");
            let ff_layer = if decoder { 2 } else { 1 };
            Ok(Block {
                self_norm: w.get(&format!("{p}.0.layer_norm.weight"))?,
                self_attn: Attention::load(w, &format!("{p}.0.SelfAttention"))?,
                cross_norm: decoder
                    .then(|| w.get(&format!("{p}.1.layer_norm.weight")))
                    .transpose()?,
                cross_attn: decoder
                    .then(|| Attention::load(w, &format!("{p}.1.EncDecAttention")))
                    .transpose()?,
                ff_norm: w.get(&format!("{p}.{ff_layer}.layer_norm.weight"))?,
                ff: FeedForward::load(w, &format!("{p}.{ff_layer}.DenseReluDense"), &cfg)?,
            })
        };
        let encoder = loading.build_layers(cfg.layers, |i| block("encoder", i, false))?;
        let decoder = loading.build_layers(cfg.decoder_layers, |i| block("decoder", i, true))?;
        let lm_head = match w.opt("lm_head.weight")? {
            Some(head) if !cfg.tied => Dense::new(head.t()?.contiguous()?, None)?,
            // Tied: the shared embedding, with the output scaled by d_model^-0.5 (below).
            _ => Dense::new(shared.t()?, None)?,
        };
        Ok(Self {
            encoder_norm: w.get("encoder.final_layer_norm.weight")?,
            decoder_norm: w.get("decoder.final_layer_norm.weight")?,
            shared,
            encoder,
            decoder,
            lm_head,
            cfg,
        })
    }

    pub fn decoder_layers(&self) -> usize {
        self.decoder.len()
    }

    pub fn heads(&self) -> usize {
        self.cfg.heads
    }

    fn norm(&self, x: &Tensor, w: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm(&x.contiguous()?, w, self.cfg.eps as f32)
    }

    /// `[1, heads, q, k]` position bias for queries at `q_start..q_start + q` over keys `0..k`.
    fn position_bias(
        &self,
        table: &Tensor,
        q_start: usize,
        q: usize,
        k: usize,
        bidirectional: bool,
    ) -> candle_core::Result<Tensor> {
        let ids: Vec<u32> = (q_start..q_start + q)
            .flat_map(|qp| {
                (0..k).map(move |kp| {
                    bucket(
                        kp as i64 - qp as i64,
                        bidirectional,
                        self.cfg.buckets,
                        self.cfg.max_distance,
                    ) as u32
                })
            })
            .collect();
        let idx = Tensor::from_vec(ids, q * k, table.device())?;
        table
            .index_select(&idx, 0)? // [q*k, heads]
            .reshape((q, k, self.cfg.heads))?
            .permute((2, 0, 1))?
            .unsqueeze(0)
    }

    fn project(&self, a: &Attention, x: &Tensor) -> candle_core::Result<Tensor> {
        heads(&a.q.forward(x)?, self.cfg.heads)
    }

    pub fn encode(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        let device = self.shared.device();
        let s = ids.len();
        let mut h = embed(&self.shared, &id_tensor(&[ids.to_vec()], device)?)?;
        let mut bias: Option<Tensor> = None;
        for block in &self.encoder {
            if bias.is_none() {
                if let Some(table) = &block.self_attn.relative {
                    bias = Some(self.position_bias(table, 0, s, s, true)?);
                }
            }
            let n = self.norm(&h, &block.self_norm)?;
            let a = &block.self_attn;
            let (q, k, v) = (
                self.project(a, &n)?,
                heads(&a.k.forward(&n)?, self.cfg.heads)?,
                heads(&a.v.forward(&n)?, self.cfg.heads)?,
            );
            let ctx = attend(&q, &k, &v, 1.0, bias.as_ref())?;
            h = (h + a.o.forward(&ctx)?)?;
            let n = self.norm(&h, &block.ff_norm)?;
            h = (&h + block.ff.forward(&n)?)?;
        }
        self.norm(&h, &self.encoder_norm)
    }

    pub fn decode(
        &self,
        encoded: &Tensor,
        tokens: &[Vec<u32>],
        cache: &mut Seq2SeqCache,
    ) -> candle_core::Result<Tensor> {
        let device = self.shared.device();
        let t = tokens.first().map(Vec::len).unwrap_or(0);
        let offset = cache.len;
        let s = offset + t;
        let mut h = embed(&self.shared, &id_tensor(tokens, device)?)?;
        let rows = h.dim(0)?;
        let mut bias: Option<Tensor> = None;
        let mask = causal_mask(t, s, offset, device)?;
        for (i, block) in self.decoder.iter().enumerate() {
            if bias.is_none() {
                if let Some(table) = &block.self_attn.relative {
                    let b = self.position_bias(table, offset, t, s, false)?;
                    bias = Some(match &mask {
                        Some(m) => b.broadcast_add(m)?,
                        None => b,
                    });
                }
            }
            let n = self.norm(&h, &block.self_norm)?;
            let a = &block.self_attn;
            let q = self.project(a, &n)?;
            let (k, v) = extend(
                &mut cache.self_kv[i],
                heads(&a.k.forward(&n)?, self.cfg.heads)?,
                heads(&a.v.forward(&n)?, self.cfg.heads)?,
            )?;
            let ctx = attend(&q, &k, &v, 1.0, bias.as_ref())?;
            h = (h + a.o.forward(&ctx)?)?;

            if let (Some(norm), Some(c)) = (&block.cross_norm, &block.cross_attn) {
                let n = self.norm(&h, norm)?;
                let q = self.project(c, &n)?;
                let (k, v) = match &cache.cross_kv[i] {
                    Some(kv) => kv.clone(),
                    None => {
                        let enc = encoded.broadcast_as((rows, encoded.dim(1)?, encoded.dim(2)?))?;
                        let kv = (
                            heads(&c.k.forward(&enc.contiguous()?)?, self.cfg.heads)?,
                            heads(&c.v.forward(&enc.contiguous()?)?, self.cfg.heads)?,
                        );
                        cache.cross_kv[i] = Some(kv.clone());
                        kv
                    }
                };
                let ctx = attend(&q, &k, &v, 1.0, None)?;
                h = (h + c.o.forward(&ctx)?)?;
            }
            let n = self.norm(&h, &block.ff_norm)?;
            h = (&h + block.ff.forward(&n)?)?;
        }
        cache.len = s;
        let h = self.norm(&last(&h)?, &self.decoder_norm)?;
        let h = if self.cfg.tied {
            (h * (self.cfg.d_model as f64).powf(-0.5))?
        } else {
            h
        };
        self.lm_head.forward(&h)?.to_dtype(candle_core::DType::F32)
    }
}

/// T5's relative position bucket of `relative` = key position - query position.
fn bucket(relative: i64, bidirectional: bool, buckets: usize, max_distance: usize) -> usize {
    let mut buckets = buckets as i64;
    let mut out = 0i64;
    let mut n = relative;
    if bidirectional {
        buckets /= 2;
        if n > 0 {
            out += buckets;
        }
        n = n.abs();
    } else {
        n = (-n).max(0);
    }
    let max_exact = buckets / 2;
    if n < max_exact {
        return (out + n) as usize;
    }
    // As transformers: float32 log, truncated toward zero.
    let large = max_exact
        + ((n as f32 / max_exact as f32).ln() / (max_distance as f32 / max_exact as f32).ln()
            * (buckets - max_exact) as f32) as i64;
    (out + large.min(buckets - 1)) as usize
}

#[cfg(test)]
mod tests {
    use super::bucket;

    #[test]
    fn buckets_follow_transformers() {
        // Bidirectional, 32 buckets, max distance 128: small offsets exact, sign in the top half.
        assert_eq!(bucket(0, true, 32, 128), 0);
        assert_eq!(bucket(3, true, 32, 128), 19);
        assert_eq!(bucket(-3, true, 32, 128), 3);
        assert_eq!(bucket(-20, true, 32, 128), 10);
        assert_eq!(bucket(-1000, true, 32, 128), 15);
        // Causal: only the past, 32 buckets.
        assert_eq!(bucket(5, false, 32, 128), 0);
        assert_eq!(bucket(-5, false, 32, 128), 5);
        assert_eq!(bucket(-200, false, 32, 128), 31);
    }
}
