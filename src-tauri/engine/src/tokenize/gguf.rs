//! Building a `tokenizers` tokenizer from a GGUF file's `tokenizer.ggml.*` metadata.
//!
//! Models shipped only as GGUF (SmolLM2, Gemma ...) carry their vocabulary inside the file.
//! Two kinds exist in practice:
//! - `gpt2`: a byte-level BPE with explicit merges; how text is split before BPE is named by
//!   `tokenizer.ggml.pre` and looked up in [`PRE_TOKENIZERS`].
//! - `llama`: a SentencePiece-style BPE with per-token scores, byte fallback and no merges. The
//!   merges are recovered from the scores: a piece that can be made from two other pieces is
//!   a merge, and a higher score means an earlier merge.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Value;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::normalizers::{Prepend, Replace};
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior,
    Tokenizer,
};

use crate::error::{Result, WickError};

/// A tokenizer rebuilt from GGUF metadata, with its padding token if the file names one.
pub(super) struct BuiltGguf {
    pub tokenizer: Tokenizer,
    pub pad: Option<(u32, String)>,
}

/// GGUF token types (`tokenizer.ggml.token_type`), as llama.cpp defines them.
const TYPE_NORMAL: i32 = 1;
const TYPE_CONTROL: i32 = 3;
const TYPE_USER_DEFINED: i32 = 4;

/// GPT-4 / Llama-3 style split: contractions, letters, 1-3 digits, punctuation, newlines, spaces.
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2: as Llama 3 but every digit on its own.
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How each `tokenizer.ggml.pre` value splits text before byte-level BPE. One row per
/// pre-tokenizer; adding support for a new GGUF model family usually means adding a row.
const PRE_TOKENIZERS: &[(&str, PreSplit)] = &[
    ("gpt-2", PreSplit::Gpt2),
    ("default", PreSplit::Gpt2),
    ("smollm", PreSplit::Gpt2IndividualDigits),
    ("llama3", PreSplit::Pattern(LLAMA3_PATTERN)),
    ("llama-bpe", PreSplit::Pattern(LLAMA3_PATTERN)),
    ("qwen2", PreSplit::Pattern(QWEN2_PATTERN)),
];

#[derive(Debug, Clone, Copy)]
enum PreSplit {
    /// GPT-2's own regex, inside the ByteLevel pre-tokenizer.
    Gpt2,
    /// Every digit alone, then GPT-2's regex (SmolLM).
    Gpt2IndividualDigits,
    /// A custom regex, then byte-level mapping without GPT-2's regex.
    Pattern(&'static str),
}

/// Reads the metadata of `path` and builds its tokenizer.
pub(super) fn build(path: &Path) -> Result<BuiltGguf> {
    let meta = Meta::read(path)?;
    match meta.string("tokenizer.ggml.model")?.as_str() {
        "gpt2" => meta.byte_level_bpe(),
        "llama" => meta.sentencepiece_bpe(),
        other => Err(meta.unsupported(format!(
            "tokenizer model `{other}` (supported: gpt2, llama)"
        ))),
    }
}

/// The GGUF metadata, with typed accessors that turn every surprise into a clear error.
struct Meta {
    path: PathBuf,
    kv: HashMap<String, Value>,
}

impl Meta {
    fn read(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| WickError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| WickError::io(path, e))?.len();
        let content = crate::gguf_header::read(BufReader::new(file), path)?;
        crate::gguf_header::check_tensors_within(&content, file_len, path)?;
        Ok(Self {
            path: path.to_path_buf(),
            kv: content.metadata,
        })
    }

    fn invalid(&self, reason: String) -> WickError {
        WickError::InvalidGguf {
            path: self.path.clone(),
            reason,
        }
    }

    fn unsupported(&self, reason: String) -> WickError {
        WickError::UnsupportedTokenizer {
            path: self.path.clone(),
            reason,
        }
    }

    fn get(&self, key: &str) -> Result<&Value> {
        self.kv
            .get(key)
            .ok_or_else(|| self.invalid(format!("no `{key}` in its metadata")))
    }

    fn string(&self, key: &str) -> Result<String> {
        self.get(key)?
            .to_string()
            .cloned()
            .map_err(|e| self.invalid(format!("`{key}`: {e}")))
    }

    fn opt_u32(&self, key: &str) -> Result<Option<u32>> {
        self.kv
            .get(key)
            .map(|v| {
                // Some converters write -1 for "no such token".
                match v.to_i32() {
                    Ok(i) => Ok(u32::try_from(i).ok()),
                    Err(_) => v
                        .to_u32()
                        .map(Some)
                        .map_err(|e| self.invalid(format!("`{key}`: {e}"))),
                }
            })
            .transpose()
            .map(Option::flatten)
    }

    fn bool_or(&self, key: &str, default: bool) -> Result<bool> {
        self.kv.get(key).map_or(Ok(default), |v| {
            v.to_bool()
                .map_err(|e| self.invalid(format!("`{key}`: {e}")))
        })
    }

    fn array(&self, key: &str) -> Result<&Vec<Value>> {
        self.get(key)?
            .to_vec()
            .map_err(|e| self.invalid(format!("`{key}`: {e}")))
    }

    fn strings(&self, key: &str) -> Result<Vec<String>> {
        self.array(key)?
            .iter()
            .map(|v| {
                v.to_string()
                    .cloned()
                    .map_err(|e| self.invalid(format!("`{key}`: {e}")))
            })
            .collect()
    }

    fn token_types(&self, n: usize) -> Result<Vec<i32>> {
        let Some(values) = self.kv.get("tokenizer.ggml.token_type") else {
            return Ok(vec![TYPE_NORMAL; n]);
        };
        let values = values
            .to_vec()
            .map_err(|e| self.invalid(format!("`tokenizer.ggml.token_type`: {e}")))?;
        if values.len() != n {
            return Err(self.invalid(format!("{} token types for {n} tokens", values.len())));
        }
        values
            .iter()
            .map(|v| {
                v.to_i32()
                    .or_else(|_| v.to_u32().map(|u| u as i32))
                    .map_err(|e| self.invalid(format!("`tokenizer.ggml.token_type`: {e}")))
            })
            .collect()
    }

    fn scores(&self, n: usize) -> Result<Vec<f32>> {
        let values = self.array("tokenizer.ggml.scores")?;
        if values.len() != n {
            return Err(self.invalid(format!("{} scores for {n} tokens", values.len())));
        }
        values
            .iter()
            .map(|v| {
                v.to_f32()
                    .map_err(|e| self.invalid(format!("`tokenizer.ggml.scores`: {e}")))
            })
            .collect()
    }

    /// The id of a named special token, checked against the vocabulary size.
    fn special_id(&self, name: &str, n: usize) -> Result<Option<u32>> {
        let key = format!("tokenizer.ggml.{name}_token_id");
        match self.opt_u32(&key)? {
            Some(id) if id as usize >= n => {
                Err(self.invalid(format!("`{key}` is {id} but the vocabulary has {n} tokens")))
            }
            other => Ok(other),
        }
    }

    /// GPT-2 style: byte-level BPE with merges in the file.
    fn byte_level_bpe(&self) -> Result<BuiltGguf> {
        let tokens = self.strings("tokenizer.ggml.tokens")?;
        let types = self.token_types(tokens.len())?;
        let merges = self
            .strings("tokenizer.ggml.merges")?
            .into_iter()
            .map(|m| {
                m.split_once(' ')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .ok_or_else(|| self.invalid(format!("merge `{m}` is not two tokens")))
            })
            .collect::<Result<Vec<_>>>()?;
        let pre_name = self
            .kv
            .get("tokenizer.ggml.pre")
            .and_then(|v| v.to_string().ok().cloned())
            .unwrap_or_else(|| "default".to_string());
        let split = PRE_TOKENIZERS
            .iter()
            .find(|(name, _)| *name == pre_name)
            .map(|(_, split)| *split)
            .ok_or_else(|| {
                let known: Vec<&str> = PRE_TOKENIZERS.iter().map(|(n, _)| *n).collect();
                self.unsupported(format!(
                    "pre-tokenizer `{pre_name}` (supported: {})",
                    known.join(", ")
                ))
            })?;

        let bpe = BPE::builder()
            .vocab_and_merges(vocab_map(&tokens), merges)
            .build()
            .map_err(|e| self.invalid(format!("BPE model: {e}")))?;
        let mut tokenizer = Tokenizer::new(bpe);
        tokenizer.with_pre_tokenizer(Some(byte_level_pre_tokenizer(split)?));
        tokenizer.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())));
        self.finish(tokenizer, &tokens, &types, false)
    }

    /// SentencePiece style: scores, byte fallback, merges recovered from the scores.
    fn sentencepiece_bpe(&self) -> Result<BuiltGguf> {
        let mut tokens = self.strings("tokenizer.ggml.tokens")?;
        let types = self.token_types(tokens.len())?;
        // llama.cpp's converter writes user-defined pieces with real spaces ("   ") where the
        // SentencePiece model has "▁▁▁"; put the marks back so they merge like any other piece.
        for (tok, ty) in tokens.iter_mut().zip(&types) {
            if *ty == TYPE_USER_DEFINED && tok.contains(' ') {
                *tok = tok.replace(' ', "▁");
            }
        }
        // In the SentencePiece model, control and user-defined pieces score 0, above every
        // learned piece; llama.cpp writes -1000 for them. Restore 0 so that whitespace runs
        // and other user-defined pieces merge first, as in the original tokenizer.
        let scores: Vec<f32> = self
            .scores(tokens.len())?
            .into_iter()
            .zip(&types)
            .map(|(score, ty)| match *ty {
                TYPE_CONTROL | TYPE_USER_DEFINED => 0.0,
                _ => score,
            })
            .collect();
        let unk = self.special_id("unknown", tokens.len())?;
        let vocab = vocab_map(&tokens);
        let merges = merges_from_scores(&tokens, &scores, &vocab);
        let mut builder = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .byte_fallback(true)
            .fuse_unk(true);
        if let Some(unk) = unk {
            builder = builder.unk_token(tokens[unk as usize].clone());
        }
        let bpe = builder
            .build()
            .map_err(|e| self.invalid(format!("BPE model: {e}")))?;
        let mut tokenizer = Tokenizer::new(bpe);

        // SentencePiece marks word starts with "▁"; Llama-2 style models also prepend one.
        let add_prefix = self.bool_or("tokenizer.ggml.add_space_prefix", true)?;
        let replace = Replace::new(" ", "▁").map_err(|e| self.invalid(e.to_string()))?;
        let normalizer = if add_prefix {
            NormalizerWrapper::Sequence(tokenizers::normalizers::Sequence::new(vec![
                NormalizerWrapper::Prepend(Prepend::new("▁".into())),
                NormalizerWrapper::Replace(replace),
            ]))
        } else {
            NormalizerWrapper::Replace(replace)
        };
        tokenizer
            .with_normalizer(Some(normalizer))
            .map_err(|e| self.invalid(format!("normalizer: {e}")))?;
        let to_space = tokenizers::decoders::sequence::Sequence::new(vec![
            DecoderWrapper::Replace(
                tokenizers::normalizers::Replace::new("▁", " ")
                    .map_err(|e| self.invalid(e.to_string()))?,
            ),
            DecoderWrapper::ByteFallback(ByteFallback::new()),
            DecoderWrapper::Fuse(Fuse::new()),
        ]);
        let mut decoders = vec![DecoderWrapper::Sequence(to_space)];
        if add_prefix {
            decoders.push(DecoderWrapper::Strip(
                tokenizers::decoders::strip::Strip::new(' ', 1, 0),
            ));
        }
        tokenizer.with_decoder(Some(DecoderWrapper::Sequence(DecoderSequence::new(
            decoders,
        ))));
        self.finish(tokenizer, &tokens, &types, true)
    }

    /// Adds the control and user-defined tokens, and the BOS/EOS template.
    fn finish(
        &self,
        mut tokenizer: Tokenizer,
        tokens: &[String],
        types: &[i32],
        bos_by_default: bool,
    ) -> Result<BuiltGguf> {
        let added: Vec<AddedToken> = tokens
            .iter()
            .zip(types)
            .filter(|(_, t)| matches!(**t, TYPE_CONTROL | TYPE_USER_DEFINED))
            .map(|(tok, t)| AddedToken::from(tok.clone(), *t == TYPE_CONTROL).normalized(false))
            .collect();
        tokenizer
            .add_special_tokens(added)
            .map_err(|e| self.invalid(format!("added tokens: {e}")))?;

        let n = tokens.len();
        let name_of = |id: Option<u32>| id.map(|id| (id, tokens[id as usize].clone()));
        let add_bos = self.bool_or("tokenizer.ggml.add_bos_token", bos_by_default)?;
        let add_eos = self.bool_or("tokenizer.ggml.add_eos_token", false)?;
        let bos = name_of(self.special_id("bos", n)?).filter(|_| add_bos);
        let eos = name_of(self.special_id("eos", n)?).filter(|_| add_eos);
        let template = |seq: &str, type_id: u32| -> Vec<String> {
            let mut parts = Vec::new();
            if let Some((_, b)) = &bos {
                parts.push(format!("{b}:{type_id}"));
            }
            parts.push(format!("{seq}:{type_id}"));
            if let Some((_, e)) = &eos {
                parts.push(format!("{e}:{type_id}"));
            }
            parts
        };
        let single = template("$A", 0);
        let mut pair = single.clone();
        pair.extend(template("$B", 1));
        let specials: Vec<(String, u32)> = bos
            .iter()
            .chain(eos.iter())
            .map(|(id, s)| (s.clone(), *id))
            .collect();
        let processor = TemplateProcessing::builder()
            .try_single(single)
            .and_then(|b| b.try_pair(pair))
            .map_err(|e| self.invalid(format!("post-processor: {e}")))?
            .special_tokens(specials)
            .build()
            .map_err(|e| self.invalid(format!("post-processor: {e}")))?;
        tokenizer.with_post_processor(Some(PostProcessorWrapper::Template(processor)));

        let pad = name_of(self.special_id("padding", n)?);
        Ok(BuiltGguf { tokenizer, pad })
    }
}

fn vocab_map(tokens: &[String]) -> Vocab {
    let mut vocab = Vocab::default();
    vocab.reserve(tokens.len());
    for (id, tok) in tokens.iter().enumerate() {
        // Some vocabularies repeat a string; the first id wins, as in the reference loaders.
        vocab.entry(tok.clone()).or_insert(id as u32);
    }
    vocab
}

/// Every way to build a vocabulary piece from two other pieces is a merge. Merges are ranked by
/// the score of the piece they produce (higher first); ties go to the longer left half, then
/// the longer right half, then lower ids. This is the order `transformers` gives the merges of
/// a SentencePiece BPE model, and applying BPE merges in it reproduces SentencePiece's "merge
/// the highest-scoring pair" loop.
/// The longest piece (in bytes) merges are built for.
const MAX_MERGED_PIECE: usize = 256;

fn merges_from_scores(tokens: &[String], scores: &[f32], vocab: &Vocab) -> Vec<(String, String)> {
    struct Merge {
        score: f32,
        left_chars: usize,
        right_chars: usize,
        piece: u32,
        left: u32,
        right: u32,
    }
    let mut ranked: Vec<Merge> = Vec::new();
    for (id, piece) in tokens.iter().enumerate() {
        // Every split of a piece is looked up, so the work grows with the square of its length:
        // a file with megabyte-long tokens would take hours. Real pieces are short.
        if piece.len() > MAX_MERGED_PIECE {
            continue;
        }
        let chars = piece.chars().count();
        for (at, (split, _)) in piece.char_indices().enumerate().skip(1) {
            let (left, right) = piece.split_at(split);
            if let (Some(&l), Some(&r)) = (vocab.get(left), vocab.get(right)) {
                ranked.push(Merge {
                    score: scores.get(id).copied().unwrap_or(f32::NEG_INFINITY),
                    left_chars: at,
                    right_chars: chars - at,
                    piece: id as u32,
                    left: l,
                    right: r,
                });
            }
        }
    }
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.left_chars.cmp(&a.left_chars))
            .then(b.right_chars.cmp(&a.right_chars))
            .then(a.piece.cmp(&b.piece))
            .then(a.left.cmp(&b.left))
            .then(a.right.cmp(&b.right))
    });
    ranked
        .into_iter()
        .map(|m| {
            (
                tokens[m.left as usize].clone(),
                tokens[m.right as usize].clone(),
            )
        })
        .collect()
}

fn byte_level_pre_tokenizer(split: PreSplit) -> Result<PreTokenizerWrapper> {
    let byte_level = |use_regex: bool| {
        PreTokenizerWrapper::ByteLevel(
            ByteLevel::default()
                .add_prefix_space(false)
                .use_regex(use_regex),
        )
    };
    Ok(match split {
        PreSplit::Gpt2 => byte_level(true),
        PreSplit::Gpt2IndividualDigits => PreTokenizerWrapper::Sequence(PreSequence::new(vec![
            PreTokenizerWrapper::Digits(Digits::new(true)),
            byte_level(true),
        ])),
        PreSplit::Pattern(pattern) => {
            let split = Split::new(
                SplitPattern::Regex(pattern.to_string()),
                SplitDelimiterBehavior::Isolated,
                false,
            )
            .map_err(|e| WickError::Tokenize(format!("pre-tokenizer regex: {e}")))?;
            PreTokenizerWrapper::Sequence(PreSequence::new(vec![
                PreTokenizerWrapper::Split(split),
                byte_level(false),
            ]))
        }
    })
}

/// A GGUF whose tensor data ends before its tensors do was cut short (an interrupted copy or
/// download). Its metadata may still parse, so check the length explicitly.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_follow_scores() {
        let tokens: Vec<String> = ["a", "b", "c", "ab", "bc", "abc"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // "bc" scores higher than "ab", so it merges first.
        let scores = [0.0, 0.0, 0.0, -2.0, -1.0, -3.0];
        let vocab = vocab_map(&tokens);
        let merges = merges_from_scores(&tokens, &scores, &vocab);
        let as_str: Vec<(&str, &str)> = merges
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert_eq!(
            as_str,
            vec![("b", "c"), ("a", "b"), ("ab", "c"), ("a", "bc")]
        );
    }
}
