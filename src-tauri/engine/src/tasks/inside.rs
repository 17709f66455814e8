//! Views inside a model (`wick inspect`, the inspector's Inside view): one text's attention
//! weights per layer and head (causal models and encoders), and the logit lens of causal models,
//! each layer's output read through the final norm and the LM head as if it were the last.
//!
//! Each runs one instrumented forward pass (`CausalLm::inside`, or an encoder batch with an
//! attention sink, which takes the padded path that computes the weights) on the text as
//! `tokenizer(text)` encodes it (special tokens added, no padding), and equals what
//! `transformers` gives with `output_attentions=True` (eager attention) and
//! `output_hidden_states=True`. Plain runs do not record anything.

use candle_core::{DType, Tensor};
use serde::Serialize;
use ts_rs::TS;

use super::pipeline::Pipeline;
use super::text_generation::TextGenerator;
use super::{Encoder, Task};
use crate::cancel::{self, CancelToken};
use crate::error::{Result, WickError};
use crate::tokenize::{TokenizeOptions, WickTokenizer};

/// The longest prompt inspected: attention maps grow with its square (SmolLM2's 30 layers × 9
/// heads × 256² weights are 70 MB of f32 already), and a person reads a few dozen tokens.
pub const MAX_INSPECT_TOKENS: usize = 256;

/// The most attention weights one answer carries (layers × heads × tokens²): 4 M f32 are 16 MB,
/// about 40 MB of JSON for the window to parse. SmolLM2 (30 layers × 9 heads) reaches it at 124
/// tokens, MiniLM (6 × 12) at 241.
pub const MAX_ATTENTION_WEIGHTS: usize = 1 << 22;

/// The most alternatives shown per logit-lens cell.
pub const MAX_LENS_TOP_K: usize = 100;

/// Attention weights of one prompt.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct AttentionMaps {
    /// The prompt's tokens (vocabulary strings) and ids.
    pub tokens: Vec<String>,
    pub ids: Vec<u32>,
    /// `[layer][head][query][key]`; a query's weights sum to 1.
    pub attentions: Vec<Vec<Vec<Vec<f32>>>>,
}

/// One candidate of a logit-lens cell.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct LensToken {
    pub id: u32,
    pub token: String,
    pub prob: f32,
}

/// The logit lens of one prompt.
#[derive(Debug, Clone, Serialize, TS)]
#[ts(export)]
pub struct LogitLens {
    pub tokens: Vec<String>,
    pub ids: Vec<u32>,
    /// `[layer][position]` = the top tokens for the next position, most likely first, for
    /// layers 1..N; layer N is the model's own next-token distribution.
    pub layers: Vec<Vec<Vec<LensToken>>>,
}

fn failed(err: candle_core::Error) -> WickError {
    cancel::from_candle(err, cancel::model_failed)
}

/// The prompt's ids and tokens as the pipeline's tokenizer gives them.
fn encode(generator: &TextGenerator, text: &str) -> Result<(Vec<u32>, Vec<String>)> {
    crate::tasks::require_text(text, "text")?;
    let tokenizer = generator.tokenizer();
    let ids = tokenizer.encode_ids(text, &TokenizeOptions::default())?;
    let tokens = token_strings(tokenizer, &ids)?;
    Ok((ids, tokens))
}

/// The vocabulary strings of `ids` (as `convert_ids_to_tokens`), once their count is one a view
/// takes.
fn token_strings(tokenizer: &WickTokenizer, ids: &[u32]) -> Result<Vec<String>> {
    if ids.is_empty() || ids.len() > MAX_INSPECT_TOKENS {
        return Err(WickError::InvalidInput(format!(
            "the text is {} tokens; inspecting takes 1 to {MAX_INSPECT_TOKENS}",
            ids.len()
        )));
    }
    Ok(ids
        .iter()
        .map(|&id| tokenizer.inner().id_to_token(id).unwrap_or_default())
        .collect())
}

/// Loads what the views look inside: the model's text-generation pipeline when it is causal,
/// else its bare encoder (feature-extraction takes the body of any encoder checkpoint).
pub fn load_to_inspect<P>(load: impl Fn(Task) -> Result<P>) -> Result<P> {
    match load(Task::TextGeneration) {
        Err(WickError::UnsupportedTask { .. }) => load(Task::FeatureExtraction),
        other => other,
    }
}

/// Every layer's attention weights for `text`, whichever kind of model `pipeline` runs.
pub fn attention_of(
    pipeline: &Pipeline,
    text: &str,
    cancel: &CancelToken,
) -> Result<AttentionMaps> {
    if let Some(generator) = pipeline.text_generator() {
        return attention(generator, text, cancel);
    }
    let encoder = pipeline.encoder().ok_or_else(|| {
        WickError::InvalidInput(
            "attention maps are shown for causal models and encoders, not seq2seq models yet"
                .into(),
        )
    })?;
    encoder_attention(encoder, text, cancel)
}

/// The logit lens of `text` on a causal model.
pub fn logit_lens_of(
    pipeline: &Pipeline,
    text: &str,
    top_k: usize,
    cancel: &CancelToken,
) -> Result<LogitLens> {
    let generator = pipeline.text_generator().ok_or_else(|| {
        WickError::InvalidInput(
            "the logit lens reads a causal model's LM head; this model is an encoder".into(),
        )
    })?;
    logit_lens(generator, text, top_k, cancel)
}

/// An encoder's attention weights for `text`: one unpadded batch through the body, with a
/// sink for the weights.
fn encoder_attention(encoder: &Encoder, text: &str, cancel: &CancelToken) -> Result<AttentionMaps> {
    crate::tasks::require_text(text, "text")?;
    let encoded = super::single(encoder.tokenizer.encode_pipeline(
        text,
        None,
        encoder.truncation(None),
    )?)?;
    let tokens = token_strings(&encoder.tokenizer, &encoded.ids)?;
    let sink = crate::blocks::AttentionSink::default();
    let mut batch = encoder.model.batch(&[&encoded], cancel)?;
    batch.attentions = Some(sink.clone());
    encoder.model.hidden_states(&batch)?;
    let layers = std::mem::take(
        &mut *sink
            .lock()
            .map_err(|_| WickError::InvalidInput("attention sink poisoned".into()))?,
    );
    let attentions = nested(&layers, encoded.ids.len())?;
    let ids = encoded.ids.clone();
    Ok(AttentionMaps {
        tokens,
        ids,
        attentions,
    })
}

/// The layers' weights as nested vectors, unless there are more than [`MAX_ATTENTION_WEIGHTS`].
fn nested(layers: &[Tensor], tokens: usize) -> Result<Vec<Vec<Vec<Vec<f32>>>>> {
    let total: usize = layers.iter().map(Tensor::elem_count).sum();
    if total > MAX_ATTENTION_WEIGHTS {
        let heads = (total / (tokens * tokens).max(1)).max(1);
        let fits = ((MAX_ATTENTION_WEIGHTS / heads) as f64).sqrt() as usize;
        return Err(WickError::InvalidInput(format!(
            "{tokens} tokens through {heads} attention heads are {total} weights, more than the \
             {MAX_ATTENTION_WEIGHTS} a view shows: shorten the text to {fits} tokens"
        )));
    }
    layers
        .iter()
        .map(heads_of)
        .collect::<candle_core::Result<_>>()
        .map_err(failed)
}

/// `[heads, t, t]` to nested vectors.
fn heads_of(t: &Tensor) -> candle_core::Result<Vec<Vec<Vec<f32>>>> {
    t.to_dtype(DType::F32)?.to_vec3()
}

/// Every layer's attention weights for `text`.
pub fn attention(
    generator: &TextGenerator,
    text: &str,
    cancel: &CancelToken,
) -> Result<AttentionMaps> {
    let (ids, tokens) = encode(generator, text)?;
    let inside = generator
        .model()
        .model
        .inside(&ids, true, cancel)
        .map_err(failed)?;
    let attentions = nested(&inside.attentions, ids.len())?;
    Ok(AttentionMaps {
        tokens,
        ids,
        attentions,
    })
}

/// The logit lens of `text`: for each layer and position, the `top_k` most likely next tokens.
pub fn logit_lens(
    generator: &TextGenerator,
    text: &str,
    top_k: usize,
    cancel: &CancelToken,
) -> Result<LogitLens> {
    if top_k == 0 || top_k > MAX_LENS_TOP_K {
        return Err(WickError::InvalidInput(format!(
            "top_k is {top_k}; the logit lens shows 1 to {MAX_LENS_TOP_K} tokens a cell"
        )));
    }
    let (ids, tokens) = encode(generator, text)?;
    let model = &generator.model().model;
    // The lens reads the block outputs only: no weights recorded, the usual attention path.
    let inside = model.inside(&ids, false, cancel).map_err(failed)?;
    let tokenizer = generator.tokenizer();
    let mut layers = Vec::with_capacity(inside.hidden.len());
    for hidden in &inside.hidden {
        cancel.check()?;
        let logits = model.project(hidden).map_err(failed)?;
        let probs = candle_nn::ops::softmax_last_dim(&logits)
            .and_then(|p| p.to_vec2::<f32>())
            .map_err(failed)?;
        layers.push(
            probs
                .iter()
                .map(|row| {
                    top(row, top_k)
                        .into_iter()
                        .map(|(id, prob)| LensToken {
                            id,
                            token: tokenizer.inner().id_to_token(id).unwrap_or_default(),
                            prob,
                        })
                        .collect()
                })
                .collect(),
        );
    }
    Ok(LogitLens {
        tokens,
        ids,
        layers,
    })
}

/// The `k` largest entries of `row` as (index, value), largest first (ties: lower index first).
fn top(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    for (i, &p) in row.iter().enumerate() {
        if best.len() == k && best.last().is_some_and(|&(_, q)| p <= q) {
            continue;
        }
        let at = best.partition_point(|&(_, q)| q >= p);
        best.insert(at, (u32::try_from(i).unwrap_or(u32::MAX), p));
        best.truncate(k);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_keeps_the_largest_in_order_and_the_first_of_ties() {
        let row = [0.1, 0.4, 0.05, 0.4, 0.3, 0.0];
        assert_eq!(top(&row, 3), vec![(1, 0.4), (3, 0.4), (4, 0.3)]);
        assert_eq!(top(&row, 1), vec![(1, 0.4)]);
        assert_eq!(top(&row, 10).len(), 6);
    }
}
