//! The tokenizer inspector's backend.
//!
//! A [`WickTokenizer`] is loaded from a model folder (its `tokenizer.json`) or, when a model ships
//! only a GGUF file, built from the GGUF metadata. [`WickTokenizer::inspect`] turns a text into
//! what the inspector draws: each token with its id, vocabulary string, character and byte offsets
//! into the text, and whether it is special.
//!
//! Defaults follow `transformers`' `AutoTokenizer`: special tokens are added, and padding or
//! truncation baked into a `tokenizer.json` is *not* applied unless asked for.

pub mod chat;
mod chat_view;
mod compare;
mod config;
mod gguf;
mod inspect;
mod load;
mod pipeline;
pub mod sandbox;
pub mod template;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

pub use chat_view::{ChatInspection, ChatToken, MessageSpan, Span, MAX_MESSAGES};
pub use compare::{ComparedSide, TokenizerComparison};
pub use inspect::{Inspection, ModelInput, TokenView, MAX_INSPECT_BYTES};
pub use load::{find_tokenizer_file, TokenizerFile};
pub use pipeline::{Encoded, Truncate};

/// Where a tokenizer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum TokenizerOrigin {
    /// A `tokenizer.json` file (the Hugging Face `tokenizers` format).
    TokenizerJson,
    /// Built from the `tokenizer.ggml.*` metadata of a GGUF file.
    Gguf,
}

/// Padding or truncation that a `tokenizer.json` carries with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct BakedSettings {
    /// Human-readable description, e.g. "pad to 128 with [PAD]", or null when absent.
    pub padding: Option<String>,
    /// e.g. "truncate to 128", or null when absent.
    pub truncation: Option<String>,
}

/// Facts about a loaded tokenizer, for the inspector's header and `wick tokenize --json`.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct TokenizerInfo {
    /// The file the tokenizer was read from.
    #[ts(type = "string")]
    pub path: PathBuf,
    pub origin: TokenizerOrigin,
    /// The subword algorithm: "BPE", "WordPiece", "Unigram" or "WordLevel".
    pub model_type: String,
    /// Vocabulary size including added tokens.
    pub vocab_size: u32,
    /// The special tokens, as text (e.g. "[CLS]", "<|im_start|>").
    pub special_tokens: Vec<String>,
    /// What the file itself says about padding and truncation (not applied by default).
    pub baked: BakedSettings,
}

/// Padding applied to one encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(tag = "kind", content = "length", rename_all = "snake_case")]
#[ts(export)]
pub enum PaddingChoice {
    /// No padding (what `AutoTokenizer` does by default).
    #[default]
    None,
    /// Whatever the tokenizer.json says (an error if it says nothing).
    Baked,
    /// Pad to exactly this many tokens.
    MaxLength(u32),
}

/// Truncation applied to one encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, TS)]
#[serde(tag = "kind", content = "length", rename_all = "snake_case")]
#[ts(export)]
pub enum TruncationChoice {
    /// No truncation (what `AutoTokenizer` does by default).
    #[default]
    None,
    /// Whatever the tokenizer.json says (an error if it says nothing).
    Baked,
    /// Keep at most this many tokens, special tokens included.
    MaxLength(u32),
}

/// How to tokenize; the defaults match `tokenizer(text)` in `transformers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default, rename_all = "camelCase")]
#[ts(export)]
pub struct TokenizeOptions {
    pub add_special_tokens: bool,
    pub padding: PaddingChoice,
    pub truncation: TruncationChoice,
}

impl Default for TokenizeOptions {
    fn default() -> Self {
        Self {
            add_special_tokens: true,
            padding: PaddingChoice::None,
            truncation: TruncationChoice::None,
        }
    }
}

/// A loaded tokenizer plus what the inspector needs to know about it.
#[derive(Debug, Clone)]
pub struct WickTokenizer {
    inner: tokenizers::Tokenizer,
    info: TokenizerInfo,
    /// Baked settings, kept aside so they can be applied on request.
    baked_padding: Option<tokenizers::PaddingParams>,
    baked_truncation: Option<tokenizers::TruncationParams>,
    /// Ids of the special added tokens, to flag them when they are written in the text.
    special_ids: std::collections::HashSet<u32>,
    /// The padding token (id, text), when the tokenizer names one.
    pad: Option<(u32, String)>,
    /// `clean_up_tokenization_spaces` from tokenizer_config.json, applied by `decode` as
    /// `transformers` does.
    clean_up_spaces: bool,
    /// `padding_side` / `truncation_side` from tokenizer_config.json, used by the max-length
    /// choices (baked settings carry their own direction).
    padding_side: config::Side,
    truncation_side: config::Side,
    /// The post-processor (special tokens, pair merging), kept out of `inner` so that
    /// `inner.encode` returns raw encodings we truncate ourselves before adding special tokens.
    /// Running it twice would trim RoBERTa's byte-level offsets twice.
    post: Option<tokenizers::PostProcessorWrapper>,
    /// Special tokens the pipelines look for, from tokenizer_config.json.
    roles: SpecialRoles,
    /// `model_max_length` when the tokenizer sets a real one.
    max_length: Option<usize>,
}

/// The special tokens pipelines need by role: (id, text).
#[derive(Debug, Clone, Default)]
pub struct SpecialRoles {
    pub mask: Option<(u32, String)>,
    pub cls: Option<(u32, String)>,
    pub unk: Option<(u32, String)>,
}

impl WickTokenizer {
    pub fn info(&self) -> &TokenizerInfo {
        &self.info
    }

    /// The underlying `tokenizers` tokenizer, with no padding, truncation or post-processor.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// How many special tokens the post-processor adds to one text or a pair.
    fn added_tokens(&self, pair: bool) -> usize {
        self.post
            .as_ref()
            .map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, pair))
    }

    /// Adds special tokens (when asked) and merges a pair into one encoding, as
    /// `Tokenizer::post_process` does after truncation.
    fn post_process(
        &self,
        first: tokenizers::Encoding,
        second: Option<tokenizers::Encoding>,
        add_special_tokens: bool,
    ) -> crate::Result<tokenizers::Encoding> {
        let err = |e: tokenizers::Error| crate::WickError::Tokenize(e.to_string());
        match &self.post {
            Some(p) => tokenizers::PostProcessor::process(p, first, second, add_special_tokens)
                .map_err(err),
            None => {
                let encodings = std::iter::once(first).chain(second).collect();
                let mut merged =
                    <dyn tokenizers::PostProcessor>::default_process(encodings, add_special_tokens)
                        .map_err(err)?;
                merged
                    .pop()
                    .ok_or_else(|| crate::WickError::Tokenize("nothing to post-process".into()))
            }
        }
    }
}
