//! Text in, tokens out: what the inspector draws and `wick tokenize` prints.

use std::collections::HashSet;

use serde::Serialize;
use tokenizers::{Encoding, PaddingDirection, TruncationDirection};
use ts_rs::TS;

use super::config::{clean_up_tokenization, Side};
use super::{PaddingChoice, TokenizeOptions, TruncationChoice, WickTokenizer};
use crate::error::{Result, WickError};

/// The inspector takes texts up to this size; beyond it a person cannot read the chips anyway
/// and the UI would stall drawing them.
pub const MAX_INSPECT_BYTES: usize = 8 * 1024 * 1024;

/// The longest padding or truncation length accepted. Far above any model's context, and low
/// enough that a mistyped length cannot make the engine allocate gigabytes of padding.
pub const MAX_LENGTH: usize = 1 << 20;

/// One token as the inspector shows it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct TokenView {
    pub id: u32,
    /// The vocabulary entry, e.g. "Ġhello", "##ing", "▁world", "<0xE2>".
    pub token: String,
    /// The part of the input this token covers (empty for special and padding tokens).
    pub text: String,
    /// Character offsets into the input (Unicode scalar values, as Python counts them).
    pub start: u32,
    pub end: u32,
    /// Byte offsets into the UTF-8 input.
    pub byte_start: u32,
    pub byte_end: u32,
    /// Added by the tokenizer rather than taken from the text ([CLS], <bos>, padding ...).
    pub special: bool,
    /// A padding position (attention mask 0).
    pub padding: bool,
    /// A special token written in the text itself (e.g. `<|im_start|>` in a chat prompt),
    /// matched whole by the tokenizer. `special` stays false for these, as in `transformers`.
    pub control: bool,
    /// Index of the word this token belongs to, where the tokenizer tracks words.
    pub word: Option<u32>,
}

/// The full result of tokenizing one text.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct Inspection {
    pub ids: Vec<u32>,
    pub tokens: Vec<TokenView>,
    /// `decode(ids)` with special tokens kept, as `transformers` decodes.
    pub decoded: String,
    /// Tokens cut off by truncation (0 when nothing was cut).
    pub truncated_tokens: u32,
    /// Characters in the input, for the "N tokens / M characters" summary.
    pub char_count: u32,
}

/// One text encoded for a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInput {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    /// Tokens cut off by truncation.
    pub truncated_tokens: usize,
}

impl WickTokenizer {
    /// Tokenizes `text` the way `transformers`' `tokenizer(text, ...)` does with these options.
    pub fn inspect(&self, text: &str, options: &TokenizeOptions) -> Result<Inspection> {
        if text.len() > MAX_INSPECT_BYTES {
            return Err(WickError::InvalidInput(format!(
                "the text is {:.1} MB; the inspector takes at most {} MB",
                text.len() as f64 / 1e6,
                MAX_INSPECT_BYTES / (1024 * 1024)
            )));
        }
        let (encoding, truncated_tokens) = self.encode(text, options)?;
        let ids = encoding.get_ids().to_vec();
        let decoded = self.decode(&ids)?;
        let offsets = CharOffsets::new(text);
        let tokens = (0..encoding.len())
            .map(|i| token_view(&self.inner, &self.special_ids, &encoding, i, text, &offsets))
            .collect();
        Ok(Inspection {
            ids,
            tokens,
            decoded,
            truncated_tokens: count_u32(truncated_tokens),
            char_count: count_u32(text.chars().count()),
        })
    }

    /// What a model needs from one text: ids, token type ids, and how much truncation cut.
    pub fn encode_for_model(&self, text: &str, options: &TokenizeOptions) -> Result<ModelInput> {
        let (encoding, truncated_tokens) = self.encode(text, options)?;
        Ok(ModelInput {
            ids: encoding.get_ids().to_vec(),
            type_ids: encoding.get_type_ids().to_vec(),
            truncated_tokens,
        })
    }

    /// Token ids only, with the same semantics as [`Self::inspect`].
    pub fn encode_ids(&self, text: &str, options: &TokenizeOptions) -> Result<Vec<u32>> {
        Ok(self.encode(text, options)?.0.get_ids().to_vec())
    }

    /// `tokenizer.decode(ids)` as `transformers` does it (special tokens kept).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let text = self
            .inner
            .decode(ids, false)
            .map_err(|e| WickError::Tokenize(e.to_string()))?;
        Ok(if self.clean_up_spaces {
            clean_up_tokenization(&text)
        } else {
            text
        })
    }

    /// Encodes without touching the shared tokenizer's settings: truncation happens before the
    /// special tokens are added (leaving room for them, as `tokenizers` does), padding after.
    /// Also returns how many of the text's tokens truncation cut off.
    fn encode(&self, text: &str, options: &TokenizeOptions) -> Result<(Encoding, usize)> {
        let tokenize_err = |e: tokenizers::Error| WickError::Tokenize(e.to_string());
        let mut encoding = self.inner.encode(text, false).map_err(tokenize_err)?;
        let mut cut = 0;
        if let Some((max_length, stride, direction)) = self.truncation(options.truncation)? {
            let room = if options.add_special_tokens {
                self.added_tokens(false)
            } else {
                0
            };
            if max_length < room {
                return Err(WickError::InvalidInput(format!(
                    "max length {max_length} leaves no room for the {room} special tokens"
                )));
            }
            let keep = max_length - room;
            // `tokenizers` asserts this; a tokenizer.json can still ask for it.
            if stride >= keep && keep > 0 {
                return Err(WickError::InvalidInput(format!(
                    "truncation stride {stride} must be smaller than the {keep} tokens kept"
                )));
            }
            cut = encoding.len().saturating_sub(keep);
            encoding.truncate(keep, stride, direction);
        }
        let mut encoding = self.post_process(encoding, None, options.add_special_tokens)?;
        if let Some(target) = self.padding_target(options.padding, encoding.len())? {
            let (pad_id, pad_token) = self.pad.clone().ok_or_else(|| {
                WickError::InvalidInput(
                    "this tokenizer has no padding token, so it cannot pad".into(),
                )
            })?;
            let configured = match self.padding_side {
                Side::Left => PaddingDirection::Left,
                Side::Right => PaddingDirection::Right,
            };
            let (pad_type_id, direction) = match (options.padding, &self.baked_padding) {
                (PaddingChoice::Baked, Some(p)) => (p.pad_type_id, p.direction),
                (_, baked) => (baked.as_ref().map_or(0, |p| p.pad_type_id), configured),
            };
            encoding.pad(target, pad_id, pad_type_id, &pad_token, direction);
        }
        Ok((encoding, cut))
    }

    fn truncation(
        &self,
        choice: TruncationChoice,
    ) -> Result<Option<(usize, usize, TruncationDirection)>> {
        Ok(match choice {
            TruncationChoice::None => None,
            TruncationChoice::MaxLength(n) => {
                let direction = match self.truncation_side {
                    Side::Left => TruncationDirection::Left,
                    Side::Right => TruncationDirection::Right,
                };
                Some((checked_length(n as usize)?, 0, direction))
            }
            TruncationChoice::Baked => {
                let t = self.baked_truncation.as_ref().ok_or_else(|| {
                    WickError::InvalidInput("this tokenizer has no built-in truncation".into())
                })?;
                Some((t.max_length, t.stride, t.direction))
            }
        })
    }

    fn padding_target(&self, choice: PaddingChoice, len: usize) -> Result<Option<usize>> {
        Ok(match choice {
            PaddingChoice::None => None,
            PaddingChoice::MaxLength(n) => Some(checked_length(n as usize)?),
            PaddingChoice::Baked => {
                let p = self.baked_padding.as_ref().ok_or_else(|| {
                    WickError::InvalidInput("this tokenizer has no built-in padding".into())
                })?;
                let target = match p.strategy {
                    tokenizers::PaddingStrategy::Fixed(n) => n,
                    // A batch of one is its own longest member.
                    tokenizers::PaddingStrategy::BatchLongest => len,
                };
                checked_length(match p.pad_to_multiple_of {
                    Some(m) if m > 0 => target.div_ceil(m).saturating_mul(m),
                    _ => target,
                })
                .map(Some)?
            }
        })
    }
}

fn token_view(
    tokenizer: &tokenizers::Tokenizer,
    special_ids: &HashSet<u32>,
    encoding: &Encoding,
    i: usize,
    text: &str,
    offsets: &CharOffsets,
) -> TokenView {
    let (byte_start, byte_end) = encoding.get_offsets()[i];
    let special = encoding.get_special_tokens_mask()[i] == 1;
    let padding = encoding.get_attention_mask()[i] == 0;
    let (start, end) = offsets.to_chars(byte_start, byte_end);
    // Whole characters, so byte-level tokens that end inside one still show it.
    let covered = if special || padding {
        String::new()
    } else {
        offsets.slice(text, start, end).to_string()
    };
    let id = encoding.get_ids()[i];
    TokenView {
        id,
        token: vocab_entry(tokenizer, encoding, i),
        text: covered,
        start,
        end,
        byte_start: count_u32(byte_start),
        byte_end: count_u32(byte_end),
        special,
        padding,
        control: !special && special_ids.contains(&id),
        word: encoding.get_word_ids()[i],
    }
}

/// The vocabulary string of token `i`, as `convert_ids_to_tokens` gives it. `tokenizers` reports
/// an unknown piece by its original text; the vocabulary entry (e.g. `<unk>`) is what the model saw.
fn vocab_entry(tokenizer: &tokenizers::Tokenizer, encoding: &Encoding, i: usize) -> String {
    tokenizer
        .id_to_token(encoding.get_ids()[i])
        .unwrap_or_else(|| encoding.get_tokens()[i].clone())
}

fn checked_length(n: usize) -> Result<usize> {
    if n > MAX_LENGTH {
        Err(WickError::InvalidInput(format!(
            "a length of {n} tokens is more than the {MAX_LENGTH} Wick accepts"
        )))
    } else {
        Ok(n)
    }
}

fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Maps byte offsets to character offsets. A start inside a character rounds down to that
/// character and an end inside one rounds up, so a token always covers whole characters (the
/// same rule `tokenizers` uses for its char offsets).
pub(super) struct CharOffsets {
    /// Byte position where each character starts.
    starts: Vec<usize>,
    text_len: usize,
}

impl CharOffsets {
    pub(super) fn new(text: &str) -> Self {
        Self {
            starts: text.char_indices().map(|(b, _)| b).collect(),
            text_len: text.len(),
        }
    }

    pub(super) fn to_chars(&self, byte_start: usize, byte_end: usize) -> (u32, u32) {
        if byte_start >= byte_end {
            let at = self.char_at_or_before(byte_start);
            return (at, at);
        }
        let start = self.char_at_or_before(byte_start);
        // The character holding the last byte, plus one.
        let end = self.char_at_or_before(byte_end - 1) + 1;
        (start, end)
    }

    /// The text from character `start` to character `end`.
    pub(super) fn slice<'t>(&self, text: &'t str, start: u32, end: u32) -> &'t str {
        let byte = |c: u32| {
            self.starts
                .get(c as usize)
                .copied()
                .unwrap_or(self.text_len)
        };
        text.get(byte(start)..byte(end)).unwrap_or_default()
    }

    fn char_at_or_before(&self, byte: usize) -> u32 {
        let idx = match self.starts.binary_search(&byte) {
            Ok(i) => i,
            // At or past the end of the text (an empty token at the end).
            Err(i) if byte >= self.text_len => i,
            Err(i) => i.saturating_sub(1),
        };
        count_u32(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_offsets_round_outwards() {
        // "é" is 2 bytes, "😀" is 4.
        let text = "aé😀b";
        let o = CharOffsets::new(text);
        assert_eq!(o.to_chars(0, 1), (0, 1));
        assert_eq!(o.to_chars(1, 3), (1, 2));
        assert_eq!(o.to_chars(3, 5), (2, 3)); // first half of the emoji
        assert_eq!(o.to_chars(5, 7), (2, 3)); // second half
        assert_eq!(o.to_chars(7, 8), (3, 4));
        assert_eq!(o.to_chars(0, 0), (0, 0));
    }
}
