//! Encoding for pipelines: one text or a text pair, truncated the way a pipeline asks, with what
//! the pipelines' post-processing reads (character offsets, words, sequences, special tokens).

use tokenizers::utils::truncation::{truncate_encodings, TruncationDirection, TruncationParams};
use tokenizers::{Decoder, Encoding, TruncationStrategy};

use super::inspect::CharOffsets;
use super::{SpecialRoles, WickTokenizer};
use crate::error::{Result, WickError};

/// How to truncate, as `transformers`' `truncation=` values (lengths include special tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncate {
    None,
    LongestFirst(usize),
    OnlyFirst(usize),
    /// Cut the second sequence; with a stride, the cut-off part comes back as further windows
    /// overlapping by `stride` tokens (question answering over long contexts).
    OnlySecond {
        max_length: usize,
        stride: usize,
    },
}

/// One encoded input (or one window of it) with everything post-processing needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// Tokens the post-processor added (`[CLS]`, `</s>`), as `return_special_tokens_mask`.
    pub special: Vec<bool>,
    /// Character offsets (code points, as Python counts) into the sequence the token came from.
    pub offsets: Vec<(usize, usize)>,
    /// Which input sequence (0 or 1) each token came from; `None` for added tokens.
    pub sequence: Vec<Option<usize>>,
    /// The word each token belongs to, within its sequence.
    pub words: Vec<Option<u32>>,
    /// Tokens truncation dropped (not counting those carried into further windows).
    pub truncated_tokens: usize,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The character span in its sequence of `word`, as `Encoding.word_to_chars`.
    pub fn word_chars(&self, word: u32, sequence: usize) -> Option<(usize, usize)> {
        let mut span: Option<(usize, usize)> = None;
        for i in 0..self.len() {
            if self.words[i] == Some(word) && self.sequence[i] == Some(sequence) {
                let (s, e) = self.offsets[i];
                span = Some(span.map_or((s, e), |(a, _)| (a, e)));
            }
        }
        span
    }
}

impl WickTokenizer {
    /// Encodes `first` (and `second`, for pairs) with special tokens, truncated as asked.
    /// Returns one window, or several for [`Truncate::OnlySecond`] with overflow.
    pub fn encode_pipeline(
        &self,
        first: &str,
        second: Option<&str>,
        truncate: Truncate,
    ) -> Result<Vec<Encoded>> {
        let err = |e: tokenizers::Error| WickError::Tokenize(e.to_string());
        let a = self.inner.encode(first, false).map_err(err)?;
        // The second sequence's tokens carry type id 1 from the start (as `encode` of a pair
        // does), so windows cut from it by overflow keep it.
        let b = second
            .map(|s| self.inner.encode(s, false))
            .transpose()
            .map_err(err)?
            .map(|mut b| {
                b.set_type_ids(vec![1; b.len()]);
                b
            });
        let total = a.len() + b.as_ref().map_or(0, Encoding::len);
        let added = self.added_tokens(b.is_some());
        let (max_length, strategy, stride) = match truncate {
            Truncate::None => (None, TruncationStrategy::LongestFirst, 0),
            Truncate::LongestFirst(n) => (Some(n), TruncationStrategy::LongestFirst, 0),
            Truncate::OnlyFirst(n) => (Some(n), TruncationStrategy::OnlyFirst, 0),
            Truncate::OnlySecond { max_length, stride } => {
                (Some(max_length), TruncationStrategy::OnlySecond, stride)
            }
        };
        let (a, b, kept) = match max_length {
            Some(max) if max < added + 1 => {
                return Err(WickError::InvalidInput(format!(
                    "a maximum length of {max} leaves no room for text beside the {added} special tokens"
                )))
            }
            Some(max) if total > max - added => {
                // tokenizers asserts (panics) unless the stride is below the room the second
                // sequence gets; a long question or a large doc_stride must be an error.
                let room = (max - added).saturating_sub(a.len());
                if stride > 0 && stride >= room {
                    return Err(WickError::InvalidInput(format!(
                        "the stride ({stride} tokens) must be less than the room left for the \
                         second text: {room} of {max} tokens after the first text's {} and \
                         {added} special tokens; lower doc_stride, raise max_seq_len or shorten \
                         the question",
                        a.len()
                    )));
                }
                let params = TruncationParams {
                    direction: match self.truncation_side {
                        super::config::Side::Left => TruncationDirection::Left,
                        super::config::Side::Right => TruncationDirection::Right,
                    },
                    max_length: max - added,
                    strategy,
                    stride,
                };
                let (a, b) = truncate_encodings(a, b, &params).map_err(|e| {
                    WickError::InvalidInput(format!(
                        "cannot fit the input into {max} tokens: {e}"
                    ))
                })?;
                let kept = a.len() + b.as_ref().map_or(0, Encoding::len);
                (a, b, kept)
            }
            _ => (a, b, total),
        };
        let overflowing = matches!(truncate, Truncate::OnlySecond { .. });
        let truncated_tokens = if overflowing { 0 } else { total - kept };
        let mut merged = self.post_process(a, b, true)?;
        let mut windows = vec![merged.clone()];
        if overflowing {
            windows.extend(merged.take_overflowing());
        }
        let texts = [
            CharOffsets::new(first),
            CharOffsets::new(second.unwrap_or("")),
        ];
        Ok(windows
            .iter()
            .map(|w| convert(w, &texts, truncated_tokens))
            .collect())
    }

    /// `tokenizer.convert_ids_to_tokens(id)`.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// The id of a vocabulary entry written exactly (`get_vocab().get(token)`).
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// `tokenizer.convert_tokens_to_string(tokens)`: the decoder run over vocabulary entries.
    pub fn tokens_to_string(&self, tokens: &[String]) -> Result<String> {
        match self.inner.get_decoder() {
            Some(decoder) => decoder
                .decode(tokens.to_vec())
                .map_err(|e| WickError::Tokenize(e.to_string())),
            None => Ok(tokens.join(" ")),
        }
    }

    /// `tokenizer.decode(ids, skip_special_tokens=True)`.
    pub fn decode_without_special(&self, ids: &[u32]) -> Result<String> {
        let text = self
            .inner
            .decode(ids, true)
            .map_err(|e| WickError::Tokenize(e.to_string()))?;
        Ok(if self.clean_up_spaces {
            super::config::clean_up_tokenization(&text)
        } else {
            text
        })
    }

    /// `tokenizer.decode(ids, skip_special_tokens, clean_up_tokenization_spaces)` with both
    /// options given (the text-generation pipeline forces the clean-up on).
    pub fn decode_with(&self, ids: &[u32], skip_special: bool, clean_up: bool) -> Result<String> {
        let text = self
            .inner
            .decode(ids, skip_special)
            .map_err(|e| WickError::Tokenize(e.to_string()))?;
        Ok(if clean_up {
            super::config::clean_up_tokenization(&text)
        } else {
            text
        })
    }

    /// Whether `id` is a special added token (EOS, chat markers).
    pub fn is_special(&self, id: u32) -> bool {
        self.special_ids.contains(&id)
    }

    /// `clean_up_tokenization_spaces` from tokenizer_config.json.
    pub fn cleans_up_spaces(&self) -> bool {
        self.clean_up_spaces
    }

    /// The mask, classifier and unknown tokens.
    pub fn roles(&self) -> &SpecialRoles {
        &self.roles
    }

    /// `model_max_length` from tokenizer_config.json, when it sets a real limit.
    pub fn model_max_length(&self) -> Option<usize> {
        self.max_length
    }

    /// The padding token id, when the tokenizer names one.
    pub fn pad_id(&self) -> Option<u32> {
        self.pad.as_ref().map(|(id, _)| *id)
    }

    /// Whether the model marks word continuations (WordPiece's `##`), which lets
    /// token classification rebuild words exactly instead of guessing from spaces.
    pub fn marks_subwords(&self) -> bool {
        serde_json::to_value(self.inner.get_model())
            .ok()
            .and_then(|v| {
                v.get("continuing_subword_prefix")
                    .and_then(|p| p.as_str().map(|s| !s.is_empty()))
            })
            .unwrap_or(false)
    }
}

fn convert(w: &Encoding, texts: &[CharOffsets; 2], truncated_tokens: usize) -> Encoded {
    let sequence = w.get_sequence_ids();
    let special: Vec<bool> = w
        .get_special_tokens_mask()
        .iter()
        .map(|m| *m == 1)
        .collect();
    let offsets = w
        .get_offsets()
        .iter()
        .zip(&sequence)
        .zip(&special)
        .map(|((&(s, e), seq), sp)| match seq {
            Some(i) if !sp => {
                let (s, e) = texts[(*i).min(1)].to_chars(s, e);
                (s as usize, e as usize)
            }
            _ => (0, 0),
        })
        .collect();
    Encoded {
        ids: w.get_ids().to_vec(),
        type_ids: w.get_type_ids().to_vec(),
        special,
        offsets,
        sequence,
        words: w.get_word_ids().to_vec(),
        truncated_tokens,
    }
}
