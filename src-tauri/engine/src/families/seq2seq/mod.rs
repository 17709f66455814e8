//! Encoder-decoder models (T5 / flan-T5, BART, Marian): the encoder reads the source once; the
//! decoder then runs a step at a time with a cache of its own keys and values and of the
//! encoder's (cross-attention) keys and values. Like the causal models, the cache belongs to
//! the caller, so beam search can reorder it.

pub mod bart;
pub mod t5;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, D};

use super::registry::Seq2SeqFamily;
use crate::blocks::Dense;
use crate::cancel::CancelToken;
use crate::error::{Result, WickError};
use crate::loading::LoadSpec;
use crate::weights::Weights;

/// Per decoder layer: self-attention keys/values so far and the cross-attention ones.
#[derive(Debug, Clone, Default)]
pub struct Seq2SeqCache {
    pub(crate) self_kv: Vec<Option<(Tensor, Tensor)>>,
    pub(crate) cross_kv: Vec<Option<(Tensor, Tensor)>>,
    /// Decoder tokens seen so far.
    pub(crate) len: usize,
}

impl Seq2SeqCache {
    fn new(layers: usize) -> Self {
        Self {
            self_kv: vec![None; layers],
            cross_kv: vec![None; layers],
            len: 0,
        }
    }

    /// Bytes the cached keys and values take.
    pub fn bytes(&self) -> u64 {
        let tensor = |t: &Tensor| (t.elem_count() * t.dtype().size_in_bytes()) as u64;
        self.self_kv
            .iter()
            .chain(&self.cross_kv)
            .flatten()
            .map(|(k, v)| tensor(k) + tensor(v))
            .sum()
    }

    pub fn select_rows(&mut self, rows: &[u32]) -> candle_core::Result<()> {
        for (k, v) in self
            .self_kv
            .iter_mut()
            .chain(self.cross_kv.iter_mut())
            .flatten()
        {
            let idx = Tensor::new(rows, k.device())?;
            *k = k.index_select(&idx, 0)?;
            *v = v.index_select(&idx, 0)?;
        }
        Ok(())
    }
}

/// A loaded encoder-decoder model.
#[derive(Debug)]
pub enum Seq2Seq {
    T5(t5::T5),
    Bart(bart::Bart),
}

impl Seq2Seq {
    /// Loads a transformers folder (config.json + weights) as `spec` says.
    pub fn load(spec: &LoadSpec) -> Result<Self> {
        let detected = &spec.model;
        let family = detected.seq2seq_family()?;
        let weights = Weights::load(&detected.dir, &spec.device, &spec.loading)?;
        let invalid = |e: candle_core::Error| {
            crate::cancel::from_candle(e, |e| WickError::InvalidModel {
                path: detected.dir.clone(),
                reason: e.to_string(),
            })
        };
        let w = Tensors(weights.tensors);
        let config = &detected.config;
        match family {
            Seq2SeqFamily::T5 => t5::T5::load(config, &w, &spec.loading)
                .map(Seq2Seq::T5)
                .map_err(invalid),
            Seq2SeqFamily::Bart | Seq2SeqFamily::Marian => bart::Bart::load(
                config,
                &w,
                family == Seq2SeqFamily::Marian,
                &spec.device,
                &spec.loading,
            )
            .map(Seq2Seq::Bart)
            .map_err(invalid),
        }
    }

    pub fn new_cache(&self) -> Seq2SeqCache {
        Seq2SeqCache::new(match self {
            Seq2Seq::T5(m) => m.decoder_layers(),
            Seq2Seq::Bart(m) => m.decoder_layers(),
        })
    }

    /// The encoder's output for one source, `[1, tokens, hidden]`.
    ///
    /// T5's relative positions set no length limit, but its attention holds a `tokens x tokens`
    /// table per head: a long enough text would ask for more memory than the machine has, and
    /// a failed allocation ends the process. Such a source is refused first.
    pub fn encode(&self, ids: &[u32]) -> candle_core::Result<Tensor> {
        let heads = match self {
            Seq2Seq::T5(m) => m.heads(),
            Seq2Seq::Bart(m) => m.heads(),
        } as u64;
        let n = ids.len() as u64;
        // Scores, their softmax and (T5) the position bias: three tables alive at once.
        let needed = heads
            .saturating_mul(n)
            .saturating_mul(n)
            .saturating_mul(4 * 3);
        let available = crate::system::available_memory();
        if needed > available / 2 {
            candle_core::bail!(
                "the input is {n} tokens: attending over it needs {} of memory, more than half \
                 of the {} available; shorten the text or truncate it (truncation=True)",
                crate::error::human_bytes(needed),
                crate::error::human_bytes(available)
            );
        }
        match self {
            Seq2Seq::T5(m) => m.encode(ids),
            Seq2Seq::Bart(m) => m.encode(ids),
        }
    }

    /// One decoder step for every row (`tokens` all the same length), `[rows, vocab]` logits.
    pub fn decode(
        &self,
        encoded: &Tensor,
        tokens: &[Vec<u32>],
        cache: &mut Seq2SeqCache,
    ) -> candle_core::Result<Tensor> {
        match self {
            Seq2Seq::T5(m) => m.decode(encoded, tokens, cache),
            Seq2Seq::Bart(m) => m.decode(encoded, tokens, cache),
        }
    }

    /// The longest decoder sequence the positions cover, if they limit it.
    pub fn max_decoder_positions(&self) -> Option<usize> {
        match self {
            Seq2Seq::T5(_) => None,
            Seq2Seq::Bart(m) => Some(m.max_positions()),
        }
    }

    /// The longest source the encoder's positions cover, if they limit it.
    pub fn max_source_positions(&self) -> Option<usize> {
        self.max_decoder_positions()
    }
}

/// A checkpoint's tensors with lookups that say what is missing.
#[derive(Debug)]
pub(crate) struct Tensors(pub HashMap<String, Tensor>);

impl Tensors {
    pub fn get(&self, name: &str) -> candle_core::Result<Tensor> {
        self.0
            .get(name)
            .map(|t| t.to_dtype(DType::F32))
            .transpose()?
            .ok_or_else(|| candle_core::Error::Msg(format!("the weights have no {name}")))
    }

    pub fn opt(&self, name: &str) -> candle_core::Result<Option<Tensor>> {
        self.0.get(name).map(|t| t.to_dtype(DType::F32)).transpose()
    }

    /// A Linear layer `name` (`[out, in]` weight), with its bias if `bias`.
    pub fn dense(&self, name: &str, bias: bool) -> candle_core::Result<Dense> {
        let w = self.get(&format!("{name}.weight"))?;
        let b = if bias {
            Some(self.get(&format!("{name}.bias"))?)
        } else {
            None
        };
        Dense::new(w.t()?.contiguous()?, b)
    }
}

/// `[rows, t, heads * d]` -> `[rows, heads, t, d]`.
pub(crate) fn heads(x: &Tensor, n: usize) -> candle_core::Result<Tensor> {
    let (b, t, h) = x.dims3()?;
    x.reshape((b, t, n, h / n))?.transpose(1, 2)?.contiguous()
}

/// Attention of `q` over `k`/`v` (`[rows, heads, t, d]`), scores scaled by `scale` plus an
/// optional additive bias broadcast to `[rows, heads, q, k]`; returns `[rows, q, heads * d]`.
pub(crate) fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    scale: f64,
    bias: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let mut scores = q.matmul(&k.t()?)?;
    if scale != 1.0 {
        scores = (scores * scale)?;
    }
    if let Some(b) = bias {
        scores = scores.broadcast_add(b)?;
    }
    let probs = candle_nn::ops::softmax_last_dim(&scores)?;
    let ctx = probs.matmul(&v.contiguous()?)?;
    let (b, h, t, d) = ctx.dims4()?;
    ctx.transpose(1, 2)?.reshape((b, t, h * d))
}

/// The additive causal mask for `t` new queries after `offset` cached tokens over `s` keys, or
/// `None` when nothing is masked (one query).
pub(crate) fn causal_mask(
    t: usize,
    s: usize,
    offset: usize,
    device: &Device,
) -> candle_core::Result<Option<Tensor>> {
    if t == 1 {
        return Ok(None);
    }
    let rows: Vec<f32> = (0..t)
        .flat_map(|q| {
            (0..s).map(move |k| {
                if k <= offset + q {
                    0.0
                } else {
                    f32::NEG_INFINITY
                }
            })
        })
        .collect();
    Tensor::from_vec(rows, (t, s), device).map(Some)
}

/// Appends `k`/`v` to a layer's self-attention cache and returns the whole.
pub(crate) fn extend(
    slot: &mut Option<(Tensor, Tensor)>,
    k: Tensor,
    v: Tensor,
) -> candle_core::Result<(Tensor, Tensor)> {
    let (k, v) = match slot.take() {
        Some((pk, pv)) => (Tensor::cat(&[&pk, &k], 2)?, Tensor::cat(&[&pv, &v], 2)?),
        None => (k, v),
    };
    *slot = Some((k.clone(), v.clone()));
    Ok((k, v))
}

/// Last position of `[rows, t, hidden]`.
pub(crate) fn last(x: &Tensor) -> candle_core::Result<Tensor> {
    let t = x.dim(1)?;
    x.narrow(1, t - 1, 1)?.squeeze(1)
}

/// Token ids as a `[rows, t]` tensor.
pub(crate) fn id_tensor(tokens: &[Vec<u32>], device: &Device) -> candle_core::Result<Tensor> {
    let rows = tokens.len();
    let t = tokens.first().map(Vec::len).unwrap_or(0);
    let flat: Vec<u32> = tokens.iter().flatten().copied().collect();
    Tensor::from_vec(flat, (rows, t), device)
}

/// Embedding lookup of `[rows, t]` ids in a `[vocab, d]` table.
pub(crate) fn embed(table: &Tensor, ids: &Tensor) -> candle_core::Result<Tensor> {
    let (rows, t) = ids.dims2()?;
    table
        .index_select(&ids.flatten_all()?, 0)?
        .reshape((rows, t, table.dim(D::Minus1)?))
}

/// A decoder session: the encoder output of one source plus the decoder cache.
#[derive(Debug)]
pub struct Session<'a> {
    model: &'a Seq2Seq,
    encoded: Tensor,
    cache: Seq2SeqCache,
}

impl<'a> Session<'a> {
    /// Runs the encoder over `source`, unless `cancel` is raised first.
    pub fn new(model: &'a Seq2Seq, source: &[u32], cancel: &CancelToken) -> Result<Self> {
        if source.is_empty() {
            return Err(WickError::InvalidInput(
                "the text is empty: type some text first".into(),
            ));
        }
        cancel.check()?;
        let encoded = model.encode(source).map_err(crate::cancel::model_failed)?;
        Ok(Self {
            cache: model.new_cache(),
            model,
            encoded,
        })
    }
}

impl crate::generate::Decoder for Session<'_> {
    fn step(&mut self, tokens: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let (model, encoded, cache) = (self.model, &self.encoded, &mut self.cache);
        crate::kernels::on_pool(|| {
            model
                .decode(encoded, tokens, cache)
                .and_then(|l| l.to_vec2::<f32>())
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
