//! The forward pass of a decoder-only transformer, for every family in [`CausalFamily`]: token
//! embeddings, pre-norm blocks of (grouped-query) self-attention and an MLP, a final norm and the
//! language-model head. What differs between families is read from [`CausalConfig`].
//!
//! The key/value cache belongs to the caller ([`KvCache`]), so one loaded model serves any number
//! of generations at once, and beam search can reorder a cache's rows.

use std::sync::Arc;

use candle_core::{DType, Device, IndexOp, Tensor, D};

use super::config::{CausalConfig, CausalFamily, NormKind, Positions};
use super::rope::Rope;
use super::source::{Part, Proj, Source};
use crate::cancel::CancelToken;
use crate::kernels::cached_attention::{cached_attention, Span};
use crate::kernels::row_split::RowSplit;
use crate::loading::Loading;

fn missing(part: Part, layer: Option<usize>) -> candle_core::Error {
    let at = layer.map(|l| format!(" of layer {l}")).unwrap_or_default();
    candle_core::Error::Msg(format!("the weights have no {part:?}{at}"))
}

/// A normalisation layer.
#[derive(Debug, Clone)]
enum Norm {
    Layer {
        weight: Tensor,
        bias: Tensor,
        eps: f64,
    },
    Rms {
        weight: Tensor,
        eps: f64,
    },
}

impl Norm {
    fn load(
        src: &dyn Source,
        cfg: &CausalConfig,
        part: Part,
        layer: Option<usize>,
    ) -> candle_core::Result<Self> {
        let weight = src
            .tensor(part, layer)?
            .ok_or_else(|| missing(part, layer))?;
        Ok(match cfg.norm {
            NormKind::Layer => {
                let bias = match src.bias(part, layer)? {
                    Some(b) => b,
                    None => weight.zeros_like()?,
                };
                Norm::Layer {
                    weight,
                    bias,
                    eps: cfg.norm_eps,
                }
            }
            NormKind::Rms => Norm::Rms {
                weight,
                eps: cfg.norm_eps,
            },
            // Gemma scales by (1 + w); GGUF files store w + 1 already.
            NormKind::RmsOffset if src.norm_offset_applied() => Norm::Rms {
                weight,
                eps: cfg.norm_eps,
            },
            NormKind::RmsOffset => Norm::Rms {
                weight: (weight + 1.0)?,
                eps: cfg.norm_eps,
            },
        })
    }

    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Norm::Layer { weight, bias, eps } => {
                candle_nn::ops::layer_norm(&xs.contiguous()?, weight, bias, *eps as f32)
            }
            Norm::Rms { weight, eps } => {
                candle_nn::ops::rms_norm(&xs.contiguous()?, weight, *eps as f32)
            }
        }
    }
}

/// Query, key and value projections: one matrix (fused at load when dense) or three.
#[derive(Debug, Clone)]
enum Qkv {
    Fused(Proj),
    Split(Proj, Proj, Proj),
}

#[derive(Debug, Clone)]
struct Attention {
    qkv: Qkv,
    out: Proj,
    q_norm: Option<Norm>,
    k_norm: Option<Norm>,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    scale: f64,
    window: Option<usize>,
    rope: Option<Rope>,
    /// Round keys and values through f16 as they are cached (GGUF models, as llama.cpp).
    kv_f16: bool,
}

#[derive(Debug, Clone)]
enum Mlp {
    /// `down(act(gate(x)) * up(x))`.
    Gated {
        gate_up: GateUp,
        down: Proj,
        act: crate::blocks::Activation,
    },
    /// `down(act(up(x)))` (GPT-2's c_fc / c_proj).
    Plain {
        up: Proj,
        down: Proj,
        act: crate::blocks::Activation,
    },
}

#[derive(Debug, Clone)]
enum GateUp {
    Fused(Proj, usize),
    Split(Proj, Proj),
}

#[derive(Debug, Clone)]
struct Block {
    attn_norm: Norm,
    attn: Attention,
    post_attn_norm: Option<Norm>,
    mlp_norm: Norm,
    mlp: Mlp,
    post_mlp_norm: Option<Norm>,
}

/// One layer's keys and values: buffers `[batch, kv_heads, capacity, head_dim]` of which the
/// first `len` positions are filled. New tokens are written in place; the buffers grow by half,
/// so a token costs no copy of the past (concatenating did, every step).
#[derive(Debug)]
struct LayerKv {
    k: Tensor,
    v: Tensor,
    len: usize,
}

impl LayerKv {
    /// Appends `k`/`v` (`[batch, kv_heads, t, head_dim]`) and returns the layer's cache.
    fn append<'a>(
        slot: &'a mut Option<LayerKv>,
        k: &Tensor,
        v: &Tensor,
    ) -> candle_core::Result<&'a LayerKv> {
        let t = k.dim(2)?;
        let fits = slot
            .as_ref()
            .map(|l| l.len + t <= l.k.dim(2).unwrap_or(0))
            .unwrap_or(false);
        if !fits {
            let old = slot.take();
            let used = old.as_ref().map_or(0, |l| l.len);
            // Room for half as many again (at least 64 more): a 128-token prompt and 64 new
            // tokens fit the first buffer exactly, where doubling held 64 positions unused
            // (3 MB of SmolLM2's peak), and growing still copies the past only O(log n) times.
            let need = used + t;
            let capacity = (need + need / 2).max(need + 64);
            let (b, h, _, d) = k.dims4()?;
            let nk = Tensor::zeros((b, h, capacity, d), k.dtype(), k.device())?;
            let nv = Tensor::zeros((b, h, capacity, d), v.dtype(), v.device())?;
            if let Some(l) = old {
                nk.slice_set(&l.k.narrow(2, 0, l.len)?.contiguous()?, 2, 0)?;
                nv.slice_set(&l.v.narrow(2, 0, l.len)?.contiguous()?, 2, 0)?;
            }
            *slot = Some(LayerKv {
                k: nk,
                v: nv,
                len: used,
            });
        }
        let l = slot
            .as_mut()
            .ok_or_else(|| candle_core::Error::Msg("no key/value cache".into()))?;
        l.k.slice_set(&k.contiguous()?, 2, l.len)?;
        l.v.slice_set(&v.contiguous()?, 2, l.len)?;
        l.len += t;
        Ok(l)
    }

    /// Views of the filled positions.
    fn filled(&self) -> candle_core::Result<(Tensor, Tensor)> {
        Ok((
            self.k.narrow(2, 0, self.len)?,
            self.v.narrow(2, 0, self.len)?,
        ))
    }
}

/// Keys and values of the tokens seen so far, per layer. Not `Clone`: its buffers are written in
/// place, so two caches must never share them.
#[derive(Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<LayerKv>>,
    len: usize,
}

impl KvCache {
    /// How many tokens the cache holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the buffers hold, their unfilled capacity included: what the cache really takes.
    pub fn bytes(&self) -> u64 {
        let tensor = |t: &Tensor| (t.elem_count() * t.dtype().size_in_bytes()) as u64;
        self.layers
            .iter()
            .flatten()
            .map(|l| tensor(&l.k) + tensor(&l.v))
            .sum()
    }

    /// Keeps the rows `rows` (in that order), for beam search and for expanding one prompt into
    /// several sequences.
    pub fn select_rows(&mut self, rows: &[u32]) -> candle_core::Result<()> {
        for l in self.layers.iter_mut().flatten() {
            let idx = Tensor::new(rows, l.k.device())?;
            // index_select makes new buffers: rows that share a source never share storage.
            l.k = l.k.index_select(&idx, 0)?;
            l.v = l.v.index_select(&idx, 0)?;
        }
        Ok(())
    }
}

/// The token embedding table: dense, or quantized rows dequantized as they are looked up
/// (a 262k-token Gemma vocabulary is 671 MB in f32 and 170 MB as Q8_0).
#[derive(Debug, Clone)]
enum Embeddings {
    Dense(Tensor),
    /// Read in slices (`RowSplit`), shared with a tied output head.
    Quantized(Arc<RowSplit>),
}

impl Embeddings {
    fn lookup(&self, ids: &[u32], device: &Device) -> candle_core::Result<Tensor> {
        match self {
            Embeddings::Dense(t) => {
                let idx = Tensor::new(ids, device)?;
                t.index_select(&idx, 0)
            }
            Embeddings::Quantized(table) => table.rows(ids, device),
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Embeddings::Dense(t) => t.elem_count() * t.dtype().size_in_bytes(),
            Embeddings::Quantized(table) => table.bytes(),
        }
    }
}

/// New tokens up to which attention runs as one kernel over the cache (`attend`): decode steps
/// and prompts of chat length.
const KERNEL_MAX_TOKENS: usize = 256;

/// A causal language model, loaded.
#[derive(Debug)]
pub struct CausalLm {
    pub config: CausalConfig,
    embeddings: Embeddings,
    positions: Option<Tensor>,
    blocks: Vec<Block>,
    final_norm: Norm,
    lm_head: Proj,
    device: Device,
    dtype: DType,
}

impl CausalLm {
    pub fn load(
        config: CausalConfig,
        src: &dyn Source,
        loading: &Loading,
    ) -> candle_core::Result<Self> {
        let cfg = &config;
        loading.expect_layers(cfg.layers);
        let quantized = src.quantized_embeddings()?;
        let embeddings = match &quantized {
            Some(table) => Embeddings::Quantized(Arc::clone(table)),
            None => Embeddings::Dense(
                src.tensor(Part::Embeddings, None)?
                    .ok_or_else(|| missing(Part::Embeddings, None))?,
            ),
        };
        let dtype = match &embeddings {
            Embeddings::Dense(t) => t.dtype(),
            Embeddings::Quantized { .. } => DType::F32,
        };
        let positions = match cfg.positions {
            Positions::Learned { .. } => Some(
                src.tensor(Part::Positions, None)?
                    .ok_or_else(|| missing(Part::Positions, None))?,
            ),
            Positions::Rope { .. } => None,
        };
        let blocks = loading.build_layers(cfg.layers, |l| Block::load(src, cfg, l))?;
        let lm_head = match src.proj(Part::LmHead, None, false)? {
            Some(p) if !cfg.tie_word_embeddings => p,
            // Tied: the head is the embedding matrix (the same quantized table, or a transposed
            // view of the dense one: no copy either way).
            _ => match &embeddings {
                Embeddings::Quantized(table) => Proj::RowSplit {
                    weight: Arc::clone(table),
                    bias: None,
                },
                Embeddings::Dense(t) => {
                    // Quantized at load (Q8_0 / Q4_K): the head gets its own quantized copy.
                    // A source that only gives dense weights is not asked: its copy would be
                    // built (and packed) only to be dropped, 2-3 tables' worth of peak memory.
                    let own = match src.dense_only() {
                        true => None,
                        false => src.proj(Part::Embeddings, None, false)?,
                    };
                    match own {
                        Some(p) if !matches!(p, Proj::Dense(_)) => p,
                        _ => Proj::Dense(crate::blocks::Dense::new(t.t()?, None)?),
                    }
                }
            },
        };
        Ok(Self {
            final_norm: Norm::load(src, cfg, Part::FinalNorm, None)?,
            embeddings,
            positions,
            blocks,
            lm_head,
            device: src.device().clone(),
            dtype,
            config,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Bytes the weights take in memory (a tied head shares the embeddings' or has its own
    /// quantized copy, which is counted).
    pub fn weight_bytes(&self) -> usize {
        let tensor = |t: &Tensor| t.elem_count() * t.dtype().size_in_bytes();
        let norm = |n: &Norm| match n {
            Norm::Layer { weight, bias, .. } => tensor(weight) + tensor(bias),
            Norm::Rms { weight, .. } => tensor(weight),
        };
        let mut total = self.embeddings.bytes() + self.positions.as_ref().map_or(0, tensor);
        total += norm(&self.final_norm);
        total += match &self.lm_head {
            // A transposed view of the embeddings shares their memory.
            Proj::Dense(d) => d.bytes(),
            // Sharing the quantized embedding table.
            Proj::RowSplit { weight, .. } if matches!(&self.embeddings, Embeddings::Quantized(t) if Arc::ptr_eq(t, weight)) => {
                0
            }
            Proj::Quantized { .. } | Proj::PackedQ4_1 { .. } | Proj::RowSplit { .. } => {
                self.lm_head.bytes()
            }
        };
        for b in &self.blocks {
            let norms = [
                Some(&b.attn_norm),
                b.post_attn_norm.as_ref(),
                Some(&b.mlp_norm),
                b.post_mlp_norm.as_ref(),
                b.attn.q_norm.as_ref(),
                b.attn.k_norm.as_ref(),
            ];
            total += norms.into_iter().flatten().map(norm).sum::<usize>();
            total += match &b.attn.qkv {
                Qkv::Fused(p) => p.bytes(),
                Qkv::Split(q, k, v) => q.bytes() + k.bytes() + v.bytes(),
            };
            total += b.attn.out.bytes();
            total += match &b.mlp {
                Mlp::Gated { gate_up, down, .. } => {
                    down.bytes()
                        + match gate_up {
                            GateUp::Fused(p, _) => p.bytes(),
                            GateUp::Split(g, u) => g.bytes() + u.bytes(),
                        }
                }
                Mlp::Plain { up, down, .. } => up.bytes() + down.bytes(),
            };
        }
        total
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache {
            layers: std::iter::repeat_with(|| None)
                .take(self.blocks.len())
                .collect(),
            len: 0,
        }
    }

    /// Runs `ids` (`[batch][tokens]`, all rows the same length) after what `cache` holds, and
    /// returns the logits of each row's last token, `[batch, vocab]` in f32.
    /// `cancel` is checked before each layer, so a long prompt stops within one layer's work.
    pub fn forward(
        &self,
        ids: &[Vec<u32>],
        cache: &mut KvCache,
        cancel: &CancelToken,
    ) -> candle_core::Result<Tensor> {
        let t = ids.first().map(Vec::len).unwrap_or(0);
        if t == 0 || ids.iter().any(|r| r.len() != t) {
            candle_core::bail!("forward needs rows of one non-zero length");
        }
        let offset = cache.len;
        if offset + t > self.config.max_positions {
            candle_core::bail!(
                "the sequence would be {} tokens; the model's positions cover {}",
                offset + t,
                self.config.max_positions
            );
        }
        let mut xs = self.embed(ids, offset)?;
        if cache.layers.len() != self.blocks.len() {
            cache.layers = std::iter::repeat_with(|| None)
                .take(self.blocks.len())
                .collect();
        }
        for (block, slot) in self.blocks.iter().zip(cache.layers.iter_mut()) {
            cancel.check_candle()?;
            xs = block.forward(&xs, slot, offset, None)?;
        }
        cache.len = offset + t;
        self.project(&xs.i((.., t - 1, ..))?)
    }

    /// The input embeddings of `ids` (`[batch][tokens]`) at positions `offset..`: looked up,
    /// scaled and with learned positions added where the family does.
    fn embed(&self, ids: &[Vec<u32>], offset: usize) -> candle_core::Result<Tensor> {
        let (b, t) = (ids.len(), ids.first().map(Vec::len).unwrap_or(0));
        let flat: Vec<u32> = ids.iter().flatten().copied().collect();
        let mut xs = self
            .embeddings
            .lookup(&flat, &self.device)?
            .reshape((b, t, ()))?;
        if let Some(scale) = self.config.embedding_scale {
            // transformers multiplies by the scale rounded to the model's dtype.
            let scale = Tensor::new(scale as f32, &self.device)?.to_dtype(self.dtype)?;
            xs = xs.broadcast_mul(&scale)?;
        }
        if let Some(table) = &self.positions {
            xs = xs.broadcast_add(&table.narrow(0, offset, t)?)?;
        }
        Ok(xs)
    }

    /// One prompt through the model with what a reader may want to see recorded: each block's
    /// output (`[tokens, hidden]`, before the final norm) and, with `attentions`, each layer's
    /// attention weights (`[heads, tokens, tokens]`, f32), as transformers'
    /// `output_hidden_states` / `output_attentions` with eager attention give them. Recording
    /// the weights runs the explicit softmax path instead of the fused kernel, so the weights
    /// exist; plain runs are not touched.
    pub fn inside(
        &self,
        ids: &[u32],
        attentions: bool,
        cancel: &CancelToken,
    ) -> candle_core::Result<Inside> {
        let t = ids.len();
        if t == 0 || t > self.config.max_positions {
            candle_core::bail!(
                "{t} tokens: inspecting needs 1 to {} (the model's positions)",
                self.config.max_positions
            );
        }
        let mut xs = self.embed(&[ids.to_vec()], 0)?;
        let mut inside = Inside {
            hidden: Vec::with_capacity(self.blocks.len()),
            attentions: Vec::with_capacity(self.blocks.len()),
        };
        for block in &self.blocks {
            cancel.check_candle()?;
            let mut slot = None;
            let record = attentions.then_some(&mut inside.attentions);
            xs = block.forward(&xs, &mut slot, 0, record)?;
            inside.hidden.push(xs.squeeze(0)?.to_dtype(DType::F32)?);
        }
        Ok(inside)
    }

    /// The next-token logits a hidden state (`[.., hidden]`, a block's output) gives through the
    /// final norm and the LM head, softcapped where the family does: what `forward` returns for
    /// the last block, and the logit lens for the others.
    pub fn project(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        let normed = self.final_norm.forward(&hidden.to_dtype(self.dtype)?)?;
        let mut logits = self.lm_head.forward(&normed)?.to_dtype(DType::F32)?;
        if let Some(cap) = self.config.final_logit_softcap {
            logits = ((logits / cap)?.tanh()? * cap)?;
        }
        Ok(logits)
    }
}

/// What [`CausalLm::inside`] records.
#[derive(Debug)]
pub struct Inside {
    /// Each block's output, `[tokens, hidden]` in f32.
    pub hidden: Vec<Tensor>,
    /// Each layer's attention weights, `[heads, tokens, tokens]` in f32 (empty unless asked).
    pub attentions: Vec<Tensor>,
}

impl Block {
    fn load(src: &dyn Source, cfg: &CausalConfig, l: usize) -> candle_core::Result<Self> {
        let layer = Some(l);
        let proj = |part: Part, bias: bool| -> candle_core::Result<Proj> {
            src.proj(part, layer, bias)?
                .ok_or_else(|| missing(part, layer))
        };
        let norm = |part: Part| Norm::load(src, cfg, part, layer);
        let qkv = match src.proj(Part::QueryKeyValue, layer, cfg.qkv_bias)? {
            Some(p) => Qkv::Fused(p),
            None => {
                let (q, k, v) = (
                    proj(Part::Query, cfg.qkv_bias)?,
                    proj(Part::Key, cfg.qkv_bias)?,
                    proj(Part::Value, cfg.qkv_bias)?,
                );
                match (&q, &k, &v) {
                    // Dense projections become one GEMM.
                    (Proj::Dense(q), Proj::Dense(k), Proj::Dense(v)) => {
                        Qkv::Fused(Proj::Dense(crate::blocks::Dense::concat(&[q, k, v])?))
                    }
                    _ => Qkv::Split(q, k, v),
                }
            }
        };
        let window = cfg.sliding_windows.get(l).copied().flatten();
        let rope = match &cfg.positions {
            Positions::Rope {
                theta,
                local_theta,
                style,
                llama3,
                linear_factor,
            } => Some(match (window, local_theta) {
                // Gemma's sliding layers use their own base and no scaling.
                (Some(_), Some(local)) => Rope::new(cfg.head_dim, *local, *style, None, 1.0),
                _ => Rope::new(cfg.head_dim, *theta, *style, *llama3, *linear_factor),
            }),
            Positions::Learned { .. } => None,
        };
        let attn = Attention {
            qkv,
            out: proj(Part::AttentionOut, cfg.dense_bias)?,
            q_norm: cfg.qk_norm.then(|| norm(Part::QueryNorm)).transpose()?,
            k_norm: cfg.qk_norm.then(|| norm(Part::KeyNorm)).transpose()?,
            heads: cfg.heads,
            kv_heads: cfg.kv_heads,
            head_dim: cfg.head_dim,
            scale: cfg.attention_scale,
            window,
            rope,
            kv_f16: cfg.kv_f16,
        };
        let mlp = if cfg.gated_mlp {
            // Only Phi-3 stores gate and up as one matrix. Asked of the others, a GGUF file
            // answers with its `ffn_up` (the fused matrix's name there): read and packed for
            // nothing, 17 MB of SmolLM2's 92 MB load.
            let fused = match cfg.family {
                CausalFamily::Phi3 => src.proj(Part::GateUp, layer, false)?,
                _ => None,
            };
            let gate_up = match fused {
                Some(p) => GateUp::Fused(p, cfg.intermediate_size),
                None => GateUp::Split(proj(Part::Gate, false)?, proj(Part::Up, false)?),
            };
            Mlp::Gated {
                gate_up,
                down: proj(Part::Down, false)?,
                act: cfg.activation,
            }
        } else {
            Mlp::Plain {
                up: proj(Part::Up, cfg.dense_bias)?,
                down: proj(Part::Down, cfg.dense_bias)?,
                act: cfg.activation,
            }
        };
        Ok(Self {
            attn_norm: norm(Part::AttentionNorm)?,
            attn,
            post_attn_norm: cfg
                .sandwich_norms
                .then(|| norm(Part::PostAttentionNorm))
                .transpose()?,
            mlp_norm: norm(Part::MlpNorm)?,
            mlp,
            post_mlp_norm: cfg
                .sandwich_norms
                .then(|| norm(Part::PostMlpNorm))
                .transpose()?,
        })
    }

    /// `attentions`, when given, gets this layer's attention weights.
    fn forward(
        &self,
        xs: &Tensor,
        cache: &mut Option<LayerKv>,
        offset: usize,
        attentions: Option<&mut Vec<Tensor>>,
    ) -> candle_core::Result<Tensor> {
        let mut a = self
            .attn
            .forward(&self.attn_norm.forward(xs)?, cache, offset, attentions)?;
        if let Some(n) = &self.post_attn_norm {
            a = n.forward(&a)?;
        }
        let xs = (xs + a)?;
        let mut m = self.mlp.forward(&self.mlp_norm.forward(&xs)?)?;
        if let Some(n) = &self.post_mlp_norm {
            m = n.forward(&m)?;
        }
        xs + m
    }
}

impl Mlp {
    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Mlp::Gated { gate_up, down, act } => {
                let (gate, up) = match gate_up {
                    GateUp::Fused(p, inter) => {
                        let both = p.forward(xs)?;
                        (
                            both.narrow(D::Minus1, 0, *inter)?,
                            both.narrow(D::Minus1, *inter, *inter)?,
                        )
                    }
                    GateUp::Split(g, u) => (g.forward(xs)?, u.forward(xs)?),
                };
                down.forward(&(act.apply(&gate)? * up)?)
            }
            Mlp::Plain { up, down, act } => down.forward(&act.apply(&up.forward(xs)?)?),
        }
    }
}

impl Attention {
    /// `attentions`, when given, gets the weights (`[heads, t, keys]`, batch 1): the explicit
    /// path runs then, not the kernel.
    fn forward(
        &self,
        xs: &Tensor,
        cache: &mut Option<LayerKv>,
        offset: usize,
        attentions: Option<&mut Vec<Tensor>>,
    ) -> candle_core::Result<Tensor> {
        let (b, t, _) = xs.dims3()?;
        let (q_len, kv_len) = (self.heads * self.head_dim, self.kv_heads * self.head_dim);
        let (q, k, v) = match &self.qkv {
            Qkv::Fused(p) => {
                let all = p.forward(xs)?;
                (
                    all.narrow(D::Minus1, 0, q_len)?,
                    all.narrow(D::Minus1, q_len, kv_len)?,
                    all.narrow(D::Minus1, q_len + kv_len, kv_len)?,
                )
            }
            Qkv::Split(q, k, v) => (q.forward(xs)?, k.forward(xs)?, v.forward(xs)?),
        };
        let heads = |x: Tensor, n: usize| -> candle_core::Result<Tensor> {
            x.reshape((b, t, n, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let mut q = heads(q, self.heads)?;
        let mut k = heads(k, self.kv_heads)?;
        let v = heads(v, self.kv_heads)?;
        if let Some(n) = &self.q_norm {
            q = n.forward(&q)?;
        }
        if let Some(n) = &self.k_norm {
            k = n.forward(&k)?;
        }
        if let Some(rope) = &self.rope {
            (q, k) = rope.apply_pair(&q, &k, offset)?;
        }
        let layer = if self.kv_f16 {
            // llama.cpp keeps keys and values in f16; rounding them the same way keeps greedy
            // output on GGUF models closer to its (measured in real_generation.rs).
            let r16 = |t: &Tensor| t.to_dtype(DType::F16)?.to_dtype(t.dtype());
            LayerKv::append(cache, &r16(&k)?, &r16(&v)?)?
        } else {
            LayerKv::append(cache, &k, &v)?
        };
        // The kernel reads each key once per query; for long prompts candle's batched matmuls,
        // which reuse them, were 4-5% faster (512-token SmolLM2 prompt). Up to 128 tokens the
        // kernel was as fast and kept the peak lower (SmolLM2 pp128: 153-155 vs 157-164 MiB).
        if t <= KERNEL_MAX_TOKENS && attentions.is_none() {
            let span = Span {
                kv_heads: self.kv_heads,
                len: layer.len,
                offset,
                window: self.window,
                scale: self.scale as f32,
            };
            if let Some(ctx) = cached_attention(&q, &layer.k, &layer.v, span)? {
                return self.out.forward(&ctx);
            }
        }
        let (k, v) = layer.filled()?;
        let s = k.dim(2)?;
        let groups = self.heads / self.kv_heads.max(1);
        // Grouped-query attention: the query heads sharing a key head become extra rows of
        // one matmul ([b, kv_heads, groups * t, d]) instead of copying keys and values.
        let q = q.reshape((b, self.kv_heads, groups * t, self.head_dim))?;
        // Masking and softmax in f32 whatever the model's dtype (as transformers' eager
        // attention upcasts); a no-op for f32 models.
        let scores = (q.matmul(&k.t()?)? * self.scale)?.to_dtype(DType::F32)?;
        let scores = match self.mask(t, s, offset, groups, xs.device())? {
            Some(mask) => scores.broadcast_add(&mask)?,
            None => scores,
        };
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        if let Some(out) = attentions {
            // [b, kv_heads, groups * t, s] -> [heads, t, s]: query head h is kv head
            // h / groups, as the reshape of q above laid them out.
            out.push(probs.reshape((b * self.heads, t, s))?);
        }
        let probs = probs.to_dtype(v.dtype())?;
        let ctx = probs.matmul(&v)?; // [b, kv_heads, groups * t, d]
        let ctx = ctx
            .reshape((b, self.heads, t, self.head_dim))?
            .transpose(1, 2)?
            .reshape((b, t, self.heads * self.head_dim))?;
        self.out.forward(&ctx)
    }

    /// The additive mask for `t` new queries at positions `offset..` over `s` keys: causal, and
    /// within the sliding window if the layer has one. `None` when nothing is masked.
    fn mask(
        &self,
        t: usize,
        s: usize,
        offset: usize,
        groups: usize,
        device: &Device,
    ) -> candle_core::Result<Option<Tensor>> {
        let allowed = |q: usize, k: usize| {
            let pos = offset + q;
            k <= pos && self.window.is_none_or(|w| pos - k < w)
        };
        if (0..t).all(|q| (0..s).all(|k| allowed(q, k))) {
            return Ok(None);
        }
        let mut rows = Vec::with_capacity(groups * t * s);
        for _ in 0..groups {
            for q in 0..t {
                rows.extend((0..s).map(|k| {
                    if allowed(q, k) {
                        0.0
                    } else {
                        f32::NEG_INFINITY
                    }
                }));
            }
        }
        Tensor::from_vec(rows, (groups * t, s), device).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::RopeStyle;
    use super::*;

    #[test]
    fn sliding_window_mask_keeps_the_last_w_tokens() {
        let attn = Attention {
            qkv: Qkv::Fused(Proj::Dense(
                crate::blocks::Dense::new(
                    Tensor::zeros((2, 6), DType::F32, &Device::Cpu).unwrap(),
                    None,
                )
                .unwrap(),
            )),
            out: Proj::Dense(
                crate::blocks::Dense::new(
                    Tensor::zeros((2, 2), DType::F32, &Device::Cpu).unwrap(),
                    None,
                )
                .unwrap(),
            ),
            q_norm: None,
            k_norm: None,
            heads: 1,
            kv_heads: 1,
            head_dim: 2,
            scale: 1.0,
            window: Some(2),
            rope: Some(Rope::new(2, 10_000.0, RopeStyle::Half, None, 1.0)),
            kv_f16: false,
        };
        let mask = attn.mask(1, 4, 3, 1, &Device::Cpu).unwrap().unwrap();
        let row = mask.to_vec2::<f32>().unwrap().remove(0);
        assert_eq!(row[..2], [f32::NEG_INFINITY, f32::NEG_INFINITY]);
        assert_eq!(row[2..], [0.0, 0.0]);
        // A decode step inside the window needs no mask at all.
        assert!(attn.mask(1, 2, 1, 1, &Device::Cpu).unwrap().is_none());
    }
}
