//! Where a causal model's tensors come from: a transformers checkpoint (safetensors or
//! pytorch_model.bin) or a GGUF file. The model asks for parts by meaning ([`Part`]); each source
//! knows its own names for them.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};

use super::config::CausalFamily;
pub use super::proj::Proj;
use crate::blocks::Dense;
use crate::kernels::row_split::RowSplit;
use crate::loading::Loading;

/// One piece of a decoder, named by what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Embeddings,
    Positions,
    FinalNorm,
    LmHead,
    AttentionNorm,
    Query,
    Key,
    Value,
    /// Query, key and value as one matrix (GPT-2, Phi-3).
    QueryKeyValue,
    AttentionOut,
    QueryNorm,
    KeyNorm,
    /// Gemma's norm of the attention output, before the residual.
    PostAttentionNorm,
    MlpNorm,
    /// Gemma's norm of the MLP output, before the residual.
    PostMlpNorm,
    Gate,
    Up,
    /// Gate and up as one matrix (Phi-3).
    GateUp,
    Down,
}

/// The tensors of a model, by [`Part`].
pub trait Source {
    /// A tensor read as it is stored, in `dtype` (norm weights, embeddings, biases).
    fn tensor(&self, part: Part, layer: Option<usize>) -> candle_core::Result<Option<Tensor>>;
    /// The bias stored beside a part's weight (a LayerNorm's, say).
    fn bias(&self, part: Part, layer: Option<usize>) -> candle_core::Result<Option<Tensor>>;
    /// A projection, with its bias when `bias`.
    fn proj(
        &self,
        part: Part,
        layer: Option<usize>,
        bias: bool,
    ) -> candle_core::Result<Option<Proj>>;
    /// The token embeddings kept quantized, when the source stores them so (GGUF): looked up a
    /// row at a time instead of dequantizing the whole table.
    fn quantized_embeddings(&self) -> candle_core::Result<Option<Arc<RowSplit>>> {
        Ok(None)
    }
    /// Whether every projection this source gives is dense f32 (no quantization at load), so
    /// a tied head is the embeddings' transposed view and nothing needs asking.
    fn dense_only(&self) -> bool {
        false
    }
    /// Whether this source's norm weights already include Gemma's `+ 1` (GGUF files do).
    fn norm_offset_applied(&self) -> bool {
        false
    }
    fn device(&self) -> &Device;
}

/// A transformers checkpoint already read into memory.
#[derive(Debug)]
pub struct Checkpoint {
    pub tensors: HashMap<String, Tensor>,
    pub family: CausalFamily,
    /// `transformer.` or `model.` etc.: the prefix the body's names carry in this file.
    pub prefix: String,
    pub dtype: DType,
    pub device: Device,
    /// Quantize projections to this type at load (when their width fits its blocks).
    pub quantize: Option<GgmlDType>,
}

impl Checkpoint {
    pub fn new(
        tensors: HashMap<String, Tensor>,
        family: CausalFamily,
        dtype: DType,
        device: Device,
    ) -> Self {
        let prefix = match family {
            CausalFamily::Gpt2 => {
                if tensors.contains_key("transformer.wte.weight") {
                    "transformer."
                } else {
                    ""
                }
            }
            _ => "model.",
        };
        Self {
            tensors,
            family,
            prefix: prefix.to_string(),
            dtype,
            device,
            quantize: None,
        }
    }

    /// The transformers name of a part (without `.weight`).
    fn name(&self, part: Part, layer: Option<usize>) -> Option<String> {
        let p = &self.prefix;
        let l = layer.unwrap_or(0);
        let gpt2 = self.family == CausalFamily::Gpt2;
        let gemma = self.family == CausalFamily::Gemma3;
        let name = match (part, gpt2) {
            (Part::Embeddings, true) => format!("{p}wte"),
            (Part::Positions, true) => format!("{p}wpe"),
            (Part::FinalNorm, true) => format!("{p}ln_f"),
            (Part::AttentionNorm, true) => format!("{p}h.{l}.ln_1"),
            (Part::QueryKeyValue, true) => format!("{p}h.{l}.attn.c_attn"),
            (Part::AttentionOut, true) => format!("{p}h.{l}.attn.c_proj"),
            (Part::MlpNorm, true) => format!("{p}h.{l}.ln_2"),
            (Part::Up, true) => format!("{p}h.{l}.mlp.c_fc"),
            (Part::Down, true) => format!("{p}h.{l}.mlp.c_proj"),
            (Part::LmHead, _) => "lm_head".to_string(),
            (_, true) => return None,
            (Part::Embeddings, false) => format!("{p}embed_tokens"),
            (Part::FinalNorm, false) => format!("{p}norm"),
            (Part::AttentionNorm, false) => format!("{p}layers.{l}.input_layernorm"),
            (Part::Query, false) => format!("{p}layers.{l}.self_attn.q_proj"),
            (Part::Key, false) => format!("{p}layers.{l}.self_attn.k_proj"),
            (Part::Value, false) => format!("{p}layers.{l}.self_attn.v_proj"),
            (Part::QueryKeyValue, false) => format!("{p}layers.{l}.self_attn.qkv_proj"),
            (Part::AttentionOut, false) => format!("{p}layers.{l}.self_attn.o_proj"),
            (Part::QueryNorm, false) => format!("{p}layers.{l}.self_attn.q_norm"),
            (Part::KeyNorm, false) => format!("{p}layers.{l}.self_attn.k_norm"),
            // Gemma names its sandwich norms differently from Llama's pre-MLP norm, which it
            // calls `pre_feedforward_layernorm`.
            (Part::PostAttentionNorm, false) if gemma => {
                format!("{p}layers.{l}.post_attention_layernorm")
            }
            (Part::MlpNorm, false) if gemma => format!("{p}layers.{l}.pre_feedforward_layernorm"),
            (Part::MlpNorm, false) => format!("{p}layers.{l}.post_attention_layernorm"),
            (Part::PostMlpNorm, false) => format!("{p}layers.{l}.post_feedforward_layernorm"),
            (Part::Gate, false) => format!("{p}layers.{l}.mlp.gate_proj"),
            (Part::Up, false) => format!("{p}layers.{l}.mlp.up_proj"),
            (Part::GateUp, false) => format!("{p}layers.{l}.mlp.gate_up_proj"),
            (Part::Down, false) => format!("{p}layers.{l}.mlp.down_proj"),
            (Part::Positions | Part::PostAttentionNorm, false) => return None,
        };
        Some(name)
    }

    fn get(&self, name: &str) -> candle_core::Result<Option<Tensor>> {
        self.tensors
            .get(name)
            .map(|t| t.to_dtype(self.dtype))
            .transpose()
    }
}

impl Source for Checkpoint {
    fn tensor(&self, part: Part, layer: Option<usize>) -> candle_core::Result<Option<Tensor>> {
        match self.name(part, layer) {
            Some(name) => self.get(&format!("{name}.weight")),
            None => Ok(None),
        }
    }

    fn bias(&self, part: Part, layer: Option<usize>) -> candle_core::Result<Option<Tensor>> {
        match self.name(part, layer) {
            Some(name) => self.get(&format!("{name}.bias")),
            None => Ok(None),
        }
    }

    fn proj(
        &self,
        part: Part,
        layer: Option<usize>,
        bias: bool,
    ) -> candle_core::Result<Option<Proj>> {
        let Some(name) = self.name(part, layer) else {
            return Ok(None);
        };
        let Some(w) = self.get(&format!("{name}.weight"))? else {
            return Ok(None);
        };
        let b = if bias {
            self.get(&format!("{name}.bias"))?
        } else {
            None
        };
        // GPT-2's Conv1D keeps its weight as [in, out]; everyone else's Linear as [out, in].
        let (out_in, wt) = if self.family == CausalFamily::Gpt2 {
            (w.t()?.contiguous()?, w)
        } else {
            (w.clone(), w.t()?.contiguous()?)
        };
        if let Some(q) = self.quantize {
            let width = out_in.dim(1)?;
            if width % q.block_size() == 0 {
                let q = QTensor::quantize(&out_in.to_dtype(DType::F32)?, q)?;
                return Proj::quantized(q, b, &self.device, &name).map(Some);
            }
            // Rows narrower than a block stay in full precision.
        }
        Ok(Some(Proj::Dense(Dense::new(wt, b)?)))
    }

    fn dense_only(&self) -> bool {
        self.quantize.is_none()
    }

    fn device(&self) -> &Device {
        &self.device
    }
}

/// A GGUF file: quantized projections stay quantized; everything else is dequantized to f32.
#[derive(Debug)]
pub struct GgufSource<'a> {
    pub path: PathBuf,
    /// The header, read once by `registry::detect`.
    pub content: &'a gguf_file::Content,
    pub device: Device,
    /// Dequantize every projection to f32 (exact weights, dense matmuls).
    pub dequantize: bool,
    /// Told the bytes of each tensor read; cancels between tensors.
    pub loading: Loading,
}

impl GgufSource<'_> {
    /// llama.cpp's name of a part.
    fn name(part: Part, layer: Option<usize>) -> String {
        let l = layer.unwrap_or(0);
        let block = |s: &str| format!("blk.{l}.{s}");
        match part {
            Part::Embeddings => "token_embd".into(),
            Part::Positions => "position_embd".into(),
            Part::FinalNorm => "output_norm".into(),
            Part::LmHead => "output".into(),
            Part::AttentionNorm => block("attn_norm"),
            Part::Query => block("attn_q"),
            Part::Key => block("attn_k"),
            Part::Value => block("attn_v"),
            Part::QueryKeyValue => block("attn_qkv"),
            Part::AttentionOut => block("attn_output"),
            Part::QueryNorm => block("attn_q_norm"),
            Part::KeyNorm => block("attn_k_norm"),
            Part::PostAttentionNorm => block("post_attention_norm"),
            Part::MlpNorm => block("ffn_norm"),
            Part::PostMlpNorm => block("post_ffw_norm"),
            Part::Gate => block("ffn_gate"),
            Part::Up => block("ffn_up"),
            Part::GateUp => block("ffn_up"),
            Part::Down => block("ffn_down"),
        }
    }

    /// Tensor `name`, read a chunk at a time (progress, and a cancel between chunks).
    fn qtensor(&self, name: &str) -> candle_core::Result<Option<candle_core::quantized::QTensor>> {
        use std::io::{Seek, SeekFrom};
        let Some(info) = self.content.tensor_infos.get(name) else {
            return Ok(None);
        };
        self.loading.check_candle()?;
        let dtype = info.ggml_dtype;
        if info.shape.elem_count() % dtype.block_size() != 0 {
            candle_core::bail!("{name}: its elements are not whole {dtype:?} blocks");
        }
        let size = super::gguf::tensor_bytes(info);
        let start = self.content.tensor_data_offset.saturating_add(info.offset);
        let mut file = File::open(&self.path)?;
        let file_size = file.seek(SeekFrom::End(0))?;
        // Checked against the file before anything is allocated: the header may lie.
        if start.saturating_add(size) > file_size {
            candle_core::bail!(
                "{name} needs {size} bytes at offset {start}; the file ends at {file_size} \
                 (truncated?)"
            );
        }
        file.seek(SeekFrom::Start(start))?;
        let mut raw = vec![0u8; usize::try_from(size).map_err(candle_core::Error::wrap)?];
        self.loading
            .read_exact(&mut BufReader::new(file), &mut raw)?;
        candle_core::quantized::ggml_file::qtensor_from_ggml(
            dtype,
            &raw,
            info.shape.dims().to_vec(),
            &self.device,
        )
        .map(Some)
    }
}

impl Source for GgufSource<'_> {
    fn tensor(&self, part: Part, layer: Option<usize>) -> candle_core::Result<Option<Tensor>> {
        let name = format!("{}.weight", Self::name(part, layer));
        self.qtensor(&name)?
            .map(|q| q.dequantize(&self.device))
            .transpose()
    }

    fn bias(&self, part: Part, layer: Option<usize>) -> candle_core::Result<Option<Tensor>> {
        let name = format!("{}.bias", Self::name(part, layer));
        self.qtensor(&name)?
            .map(|q| q.dequantize(&self.device))
            .transpose()
    }

    fn proj(
        &self,
        part: Part,
        layer: Option<usize>,
        bias: bool,
    ) -> candle_core::Result<Option<Proj>> {
        let stem = Self::name(part, layer);
        let Some(q) = self.qtensor(&format!("{stem}.weight"))? else {
            return Ok(None);
        };
        let bias = if bias {
            self.qtensor(&format!("{stem}.bias"))?
                .map(|b| b.dequantize(&self.device))
                .transpose()?
        } else {
            None
        };
        if self.dequantize {
            let w = q.dequantize(&self.device)?;
            return Ok(Some(Proj::Dense(Dense::new(w.t()?.contiguous()?, bias)?)));
        }
        Proj::quantized(q, bias, &self.device, &stem).map(Some)
    }

    fn norm_offset_applied(&self) -> bool {
        true
    }

    fn quantized_embeddings(&self) -> candle_core::Result<Option<Arc<RowSplit>>> {
        if self.dequantize {
            return Ok(None);
        }
        let name = format!("{}.weight", Self::name(Part::Embeddings, None));
        let Some(info) = self.content.tensor_infos.get(&name) else {
            return Ok(None);
        };
        if info.ggml_dtype.block_size() == 1 {
            return Ok(None);
        }
        let table = if self.device.is_cpu() {
            // In slices, so the copy candle makes while reading stays small.
            self.loading.check_candle()?;
            let mut reader = BufReader::new(File::open(&self.path)?);
            RowSplit::read_gguf(self.content, &mut reader, &name, &mut |bytes| {
                self.loading.read(bytes)
            })?
        } else {
            let q = self
                .qtensor(&name)?
                .ok_or_else(|| candle_core::Error::Msg(format!("no tensor {name}")))?;
            RowSplit::new(q, 1)?
        };
        Ok(Some(Arc::new(table)))
    }

    fn dense_only(&self) -> bool {
        self.dequantize
    }

    fn device(&self) -> &Device {
        &self.device
    }
}
