//! The parts of `tokenizer_config.json` that change what `transformers` outputs.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Result, WickError};

/// Settings `transformers` reads from `tokenizer_config.json` beside a `tokenizer.json`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(super) struct TokenizerConfig {
    /// When true, `decode` removes the space before punctuation and contractions.
    /// `transformers` 4.57 defaults this to false when the key is absent.
    #[serde(default)]
    pub clean_up_tokenization_spaces: bool,
    /// Named pad token, used when padding is requested and tokenizer.json names none.
    #[serde(default, deserialize_with = "token_content")]
    pub pad_token: Option<String>,
    /// Where `padding="max_length"` adds pad tokens (Gemma and Llama pad on the left).
    #[serde(default)]
    pub padding_side: Side,
    /// Which end `truncation=True` cuts.
    #[serde(default)]
    pub truncation_side: Side,
    /// The mask token fill-mask looks for (`[MASK]`, `<mask>`).
    #[serde(default, deserialize_with = "token_content")]
    pub mask_token: Option<String>,
    /// The classifier token question answering lets stand for "no answer".
    #[serde(default, deserialize_with = "token_content")]
    pub cls_token: Option<String>,
    #[serde(default, deserialize_with = "token_content")]
    pub unk_token: Option<String>,
    /// The longest input the model was trained on. Tokenizers without a limit store 1e30.
    #[serde(default)]
    pub model_max_length: Option<f64>,
}

/// `"left"` or `"right"` in tokenizer_config.json; `transformers` defaults both to right.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase", from = "Option<SideName>")]
pub(super) enum Side {
    Left,
    #[default]
    Right,
}

/// `"left"`, `"right"` or `null` (the default) as written in the file.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum SideName {
    Left,
    Right,
}

impl From<Option<SideName>> for Side {
    fn from(name: Option<SideName>) -> Self {
        match name {
            Some(SideName::Left) => Side::Left,
            Some(SideName::Right) | None => Side::Right,
        }
    }
}

/// Special tokens in tokenizer_config.json are either a string or an AddedToken-like object.
fn token_content<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Token {
        Text(String),
        Object { content: String },
    }
    Ok(Option::<Token>::deserialize(d)?.map(|t| match t {
        Token::Text(s) | Token::Object { content: s } => s,
    }))
}

impl TokenizerConfig {
    /// `model_max_length` when it is a real limit.
    pub fn max_length(&self) -> Option<usize> {
        self.model_max_length
            .filter(|n| *n > 0.0 && *n < 1e12)
            .map(|n| n as usize)
    }

    /// Reads the config beside `tokenizer_json`; a missing file means defaults.
    pub fn beside(tokenizer_json: &Path) -> Result<Self> {
        let Some(path) = tokenizer_json
            .parent()
            .map(|dir| dir.join("tokenizer_config.json"))
        else {
            return Ok(Self::default());
        };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(WickError::io(path, e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| WickError::InvalidTokenizer {
            path,
            reason: e.to_string(),
        })
    }
}

/// `transformers`' `clean_up_tokenization`: drop the space that word-level decoders put before
/// punctuation and English contractions.
pub(super) fn clean_up_tokenization(text: &str) -> String {
    const FIXES: [(&str, &str); 10] = [
        (" .", "."),
        (" ?", "?"),
        (" !", "!"),
        (" ,", ","),
        (" ' ", "'"),
        (" n't", "n't"),
        (" 'm", "'m"),
        (" 's", "'s"),
        (" 've", "'ve"),
        (" 're", "'re"),
    ];
    FIXES
        .iter()
        .fold(text.to_string(), |acc, (from, to)| acc.replace(from, to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_matches_transformers_rules() {
        assert_eq!(
            clean_up_tokenization("hello , world ! i do n't know . it 's"),
            "hello, world! i don't know. it's"
        );
    }

    #[test]
    fn pad_token_in_both_shapes() {
        let a: TokenizerConfig = serde_json::from_str(r#"{"pad_token":"[PAD]"}"#).unwrap();
        let b: TokenizerConfig =
            serde_json::from_str(r#"{"pad_token":{"content":"<pad>","lstrip":false}}"#).unwrap();
        assert_eq!(a.pad_token.as_deref(), Some("[PAD]"));
        assert_eq!(b.pad_token.as_deref(), Some("<pad>"));
        assert!(!a.clean_up_tokenization_spaces);
        assert_eq!(a.padding_side, Side::Right);
        let c: TokenizerConfig = serde_json::from_str(r#"{"padding_side":"left"}"#).unwrap();
        assert_eq!(c.padding_side, Side::Left);
        let d: TokenizerConfig =
            serde_json::from_str(r#"{"padding_side":null,"model_max_length":1e30}"#).unwrap();
        assert_eq!(d.padding_side, Side::Right);
        assert_eq!(d.model_max_length, Some(1e30));
    }
}
