//! Two tokenizers on the same text, side by side (`wick tokenize --compare`, the inspector's
//! "Compare with"): both tokenizations, where their token boundaries part (character offsets),
//! and what a reader compares tokenizers by: tokens, characters per token, unknown and
//! byte-fallback pieces.

use std::collections::BTreeSet;

use serde::Serialize;
use ts_rs::TS;

use super::{Inspection, TokenView, TokenizeOptions, TokenizerInfo, WickTokenizer};
use crate::error::Result;

/// One tokenizer's side of a comparison.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ComparedSide {
    pub tokenizer: TokenizerInfo,
    pub inspection: Inspection,
    /// Tokens taken from the text (not special, not padding).
    pub text_tokens: u32,
    /// Characters of the text per text token (0 when it has none).
    pub chars_per_token: f64,
    /// Tokens that are the tokenizer's unknown token.
    pub unknown: u32,
    /// Byte-fallback pieces (`<0xE2>`): characters the vocabulary has no piece for.
    pub byte_fallback: u32,
    /// Per token: one of its ends is not a boundary of the other tokenization.
    pub differs: Vec<bool>,
}

/// The same text through two tokenizers.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct TokenizerComparison {
    pub a: ComparedSide,
    pub b: ComparedSide,
    /// Character offsets where one tokenization has a token boundary and the other has not,
    /// ascending.
    pub differing_boundaries: Vec<u32>,
    /// Character offsets where both have one.
    pub shared_boundaries: u32,
}

/// The token boundaries of a tokenization: every start and end of a token that covers text.
fn boundaries(tokens: &[TokenView]) -> BTreeSet<u32> {
    tokens
        .iter()
        .filter(|t| covers_text(t))
        .flat_map(|t| [t.start, t.end])
        .collect()
}

fn covers_text(t: &TokenView) -> bool {
    !t.special && !t.padding && t.end > t.start
}

fn is_byte_piece(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == 6
        && token.starts_with("<0x")
        && token.ends_with('>')
        && b[3].is_ascii_hexdigit()
        && b[4].is_ascii_hexdigit()
}

fn side(tokenizer: &WickTokenizer, inspection: Inspection, other: &BTreeSet<u32>) -> ComparedSide {
    let count = |f: &dyn Fn(&TokenView) -> bool| {
        u32::try_from(inspection.tokens.iter().filter(|t| f(t)).count()).unwrap_or(u32::MAX)
    };
    let unk = tokenizer.roles().unk.as_ref().map(|(id, _)| *id);
    let text_tokens = count(&|t| !t.special && !t.padding);
    let differs = inspection
        .tokens
        .iter()
        .map(|t| covers_text(t) && (!other.contains(&t.start) || !other.contains(&t.end)))
        .collect();
    ComparedSide {
        tokenizer: tokenizer.info().clone(),
        text_tokens,
        chars_per_token: if text_tokens == 0 {
            0.0
        } else {
            f64::from(inspection.char_count) / f64::from(text_tokens)
        },
        unknown: count(&|t| Some(t.id) == unk && !t.special),
        byte_fallback: count(&|t| is_byte_piece(&t.token)),
        differs,
        inspection,
    }
}

impl WickTokenizer {
    /// Tokenizes `text` with `self` (side A) and `other` (side B), both with `options`.
    pub fn compare_with(
        &self,
        other: &WickTokenizer,
        text: &str,
        options: &TokenizeOptions,
    ) -> Result<TokenizerComparison> {
        let a = self.inspect(text, options)?;
        let b = other.inspect(text, options)?;
        let (ba, bb) = (boundaries(&a.tokens), boundaries(&b.tokens));
        let differing_boundaries = ba.symmetric_difference(&bb).copied().collect();
        let shared_boundaries = u32::try_from(ba.intersection(&bb).count()).unwrap_or(u32::MAX);
        Ok(TokenizerComparison {
            a: side(self, a, &bb),
            b: side(other, b, &ba),
            differing_boundaries,
            shared_boundaries,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok(start: u32, end: u32) -> TokenView {
        TokenView {
            id: 0,
            token: String::new(),
            text: String::new(),
            start,
            end,
            byte_start: start,
            byte_end: end,
            special: false,
            padding: false,
            control: false,
            word: None,
        }
    }

    #[test]
    fn boundaries_leave_out_special_and_empty_tokens() {
        let mut cls = tok(0, 0);
        cls.special = true;
        let got = boundaries(&[cls, tok(0, 5), tok(6, 11), tok(11, 11)]);
        assert_eq!(got.into_iter().collect::<Vec<_>>(), [0, 5, 6, 11]);
    }

    #[test]
    fn byte_pieces_are_recognised() {
        assert!(is_byte_piece("<0xE2>"));
        assert!(is_byte_piece("<0x0a>"));
        assert!(!is_byte_piece("<0xG2>"));
        assert!(!is_byte_piece("<unk>"));
        assert!(!is_byte_piece("<0xE2"));
    }
}
