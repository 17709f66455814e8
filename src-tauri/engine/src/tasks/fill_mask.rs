//! fill-mask: the most likely tokens for each mask token in a text, with `top_k` and `targets`
//! as `transformers` 4.57 handles them.

use serde::Serialize;
use ts_rs::TS;

use super::scores::{order_desc, softmax};
use crate::blocks::heads::HeadKind;
use crate::cancel::CancelToken;
use crate::error::{Result, WickError};
use crate::loading::LoadSpec;
use crate::tasks::Task;
use crate::tokenize::{Encoded, Truncate};

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct Candidate {
    pub score: f32,
    pub token: u32,
    pub token_str: String,
    /// The input with this candidate in place of the mask.
    pub sequence: String,
}

/// Candidates for every mask of one input, in the order the masks appear.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct Filled {
    pub masks: Vec<Vec<Candidate>>,
    #[ts(type = "number")]
    pub truncated_tokens: usize,
}

#[derive(Debug, Clone, Default)]
pub struct FillOptions {
    /// 5 by default.
    pub top_k: Option<usize>,
    /// Only score these words (each one's first token if it is not one token).
    pub targets: Option<Vec<String>>,
}

#[derive(Debug)]
pub struct MaskFiller {
    encoder: super::Encoder,
    mask: (u32, String),
}

impl MaskFiller {
    pub fn load(spec: &LoadSpec) -> Result<Self> {
        let encoder = super::Encoder::load(spec, Task::FillMask, HeadKind::MaskedLm)?;
        let mask = encoder.tokenizer.roles().mask.clone().ok_or_else(|| {
            WickError::InvalidInput("the tokenizer does not define a mask token".into())
        })?;
        Ok(Self { encoder, mask })
    }

    /// The mask token to write in the text (`[MASK]`, `<mask>`).
    pub fn mask_token(&self) -> &str {
        &self.mask.1
    }

    /// The tokenizer and model it runs.
    pub fn encoder(&self) -> &super::Encoder {
        &self.encoder
    }

    pub fn fill(
        &self,
        texts: &[&str],
        options: &FillOptions,
        batch_size: usize,
        cancel: &CancelToken,
    ) -> Result<Vec<Filled>> {
        let targets = options
            .targets
            .as_ref()
            .map(|t| self.target_ids(t))
            .transpose()?;
        let mut top_k = options.top_k.unwrap_or(5).max(1);
        if let Some(t) = &targets {
            top_k = top_k.min(t.len());
        }
        let encoded = self.encoder.encode_texts(texts, None)?;
        if let Some(e) = encoded.iter().find(|e| !e.ids.contains(&self.mask.0)) {
            return Err(WickError::InvalidInput(format!(
                "no mask token ({}) found in the input{}",
                self.mask.1,
                if e.truncated_tokens > 0 {
                    " after truncation"
                } else {
                    ""
                }
            )));
        }
        let mut out = Vec::with_capacity(texts.len());
        for chunk in encoded.chunks(batch_size.max(1)) {
            let rows: Vec<&Encoded> = chunk.iter().collect();
            let positions: Vec<(usize, usize)> = chunk
                .iter()
                .enumerate()
                .flat_map(|(b, e)| self.mask_positions(e).into_iter().map(move |t| (b, t)))
                .collect();
            let logits = self
                .encoder
                .model
                .masked_lm_logits(&self.encoder.model.batch(&rows, cancel)?, &positions)?;
            let mut logits = logits.into_iter();
            for e in chunk {
                let masks = self.mask_positions(e);
                let single = masks.len() == 1;
                let mut filled = Vec::with_capacity(masks.len());
                for &at in &masks {
                    let row = logits
                        .next()
                        .ok_or_else(|| WickError::ModelFailed("missing mask logits".into()))?;
                    filled.push(self.candidates(e, at, &row, targets.as_deref(), top_k, single)?);
                }
                out.push(Filled {
                    masks: filled,
                    truncated_tokens: e.truncated_tokens,
                });
            }
        }
        Ok(out)
    }

    fn mask_positions(&self, e: &Encoded) -> Vec<usize> {
        (0..e.len()).filter(|&i| e.ids[i] == self.mask.0).collect()
    }

    fn candidates(
        &self,
        e: &Encoded,
        at: usize,
        logits: &[f32],
        targets: Option<&[u32]>,
        top_k: usize,
        single: bool,
    ) -> Result<Vec<Candidate>> {
        let probs = softmax(logits);
        // A target the tokenizer knows may lie beyond the model's outputs when the two do not
        // belong together.
        if let Some(&id) = targets.and_then(|t| t.iter().find(|&&id| id as usize >= probs.len())) {
            return Err(WickError::InvalidInput(format!(
                "target token id {id} is beyond the model's {} outputs: the tokenizer does not \
                 match the model",
                probs.len()
            )));
        }
        let (ids, scores): (Vec<u32>, Vec<f32>) = match targets {
            Some(t) => (t.to_vec(), t.iter().map(|&id| probs[id as usize]).collect()),
            None => ((0..probs.len() as u32).collect(), probs),
        };
        let pad = self.encoder.tokenizer.pad_id();
        order_desc(&scores)
            .into_iter()
            .take(top_k)
            .map(|i| {
                let token = ids[i];
                let mut filled = e.ids.clone();
                filled[at] = token;
                filled.retain(|id| Some(*id) != pad);
                // One mask: the sentence without special tokens; several: as is, so the other
                // masks stay visible.
                let sequence = if single {
                    self.encoder.tokenizer.decode_without_special(&filled)?
                } else {
                    self.encoder.tokenizer.decode(&filled)?
                };
                Ok(Candidate {
                    score: scores[i],
                    token,
                    token_str: self.encoder.tokenizer.decode(&[token])?,
                    sequence,
                })
            })
            .collect()
    }

    /// Each target's vocabulary id, or the first token of its tokenization.
    fn target_ids(&self, targets: &[String]) -> Result<Vec<u32>> {
        let mut ids: Vec<u32> = Vec::new();
        for target in targets {
            let id = match self.encoder.tokenizer.token_to_id(target) {
                Some(id) => Some(id),
                None => self
                    .encoder
                    .tokenizer
                    .encode_pipeline(target, None, Truncate::None)?
                    .into_iter()
                    .next()
                    .and_then(|e| (0..e.len()).find(|&i| !e.special[i]).map(|i| e.ids[i])),
            };
            match id {
                Some(id) if !ids.contains(&id) => ids.push(id),
                Some(_) => {}
                None => tracing::warn!(target, "target is not in the vocabulary; ignored"),
            }
        }
        if ids.is_empty() {
            return Err(WickError::InvalidInput(
                "none of the targets could be turned into a token".into(),
            ));
        }
        Ok(ids)
    }
}

/// The pipeline's JSON for one input: a list of candidates for one mask, a list of lists for
/// several.
pub fn pipeline_json(filled: &Filled) -> serde_json::Value {
    if filled.masks.len() == 1 {
        serde_json::json!(filled.masks[0])
    } else {
        serde_json::json!(filled.masks)
    }
}
