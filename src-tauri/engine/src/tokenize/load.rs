//! Finding and loading a tokenizer: `tokenizer.json` first, a GGUF file's metadata otherwise.

use std::path::{Path, PathBuf};

use tokenizers::{ModelWrapper, Tokenizer};

use super::config::TokenizerConfig;
use super::{gguf, BakedSettings, TokenizerInfo, TokenizerOrigin, WickTokenizer};
use crate::error::{Result, WickError};
use crate::source::ModelSource;

/// The file a tokenizer will be read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerFile {
    Json(PathBuf),
    Gguf(PathBuf),
}

/// Picks the tokenizer file for a model path: the path itself when it is a file, else the
/// folder's `tokenizer.json`, else its GGUF file (all quantizations of one model share a
/// tokenizer, so the first in name order is as good as any).
pub fn find_tokenizer_file(path: &Path) -> Result<TokenizerFile> {
    let meta = std::fs::metadata(path).map_err(|e| WickError::io(path, e))?;
    if meta.is_file() {
        return Ok(if is_gguf_name(path) {
            TokenizerFile::Gguf(path.to_path_buf())
        } else {
            TokenizerFile::Json(path.to_path_buf())
        });
    }
    let json = path.join("tokenizer.json");
    if json.is_file() {
        return Ok(TokenizerFile::Json(json));
    }
    first_gguf_in(path)?
        .map(TokenizerFile::Gguf)
        .ok_or_else(|| WickError::NoTokenizer {
            path: path.to_path_buf(),
        })
}

/// The first `.gguf` file of a folder in name order, if it has one.
pub fn first_gguf_in(dir: &Path) -> Result<Option<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| WickError::io(dir, e))?;
    let mut ggufs: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_gguf_name(p))
        .collect();
    ggufs.sort();
    Ok(ggufs.into_iter().next())
}

pub(crate) fn is_gguf_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("gguf"))
}

impl WickTokenizer {
    /// Loads the tokenizer of a model named as the user typed it: a folder, a file, or a Hub
    /// repo already in the local Hugging Face cache.
    pub fn from_model(spec: &str) -> Result<Self> {
        let path = ModelSource::parse(spec)?.resolve()?;
        Self::from_path(&path)
    }

    /// Loads the tokenizer of a model folder or file.
    pub fn from_path(path: &Path) -> Result<Self> {
        match find_tokenizer_file(path)? {
            TokenizerFile::Json(file) => Self::from_tokenizer_json(&file),
            TokenizerFile::Gguf(file) => Self::from_gguf(&file),
        }
    }

    fn from_tokenizer_json(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| WickError::io(path, e))?;
        let invalid = |reason: String| WickError::InvalidTokenizer {
            path: path.to_path_buf(),
            reason,
        };
        check_precompiled(&bytes).map_err(invalid)?;
        let mut inner = Tokenizer::from_bytes(&bytes).map_err(|e| invalid(e.to_string()))?;
        check_post_processor(&inner).map_err(invalid)?;
        let config = TokenizerConfig::beside(path)?;
        // Keep what the file bakes in aside: AutoTokenizer ignores it unless asked.
        let baked_padding = inner.get_padding().cloned();
        let baked_truncation = inner.get_truncation().cloned();
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| WickError::InvalidTokenizer {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
        let pad_name = baked_padding
            .as_ref()
            .map(|p| p.pad_token.clone())
            .or(config.pad_token.clone());
        let pad = pad_name.and_then(|name| inner.token_to_id(&name).map(|id| (id, name)));
        let baked = BakedSettings {
            padding: baked_padding.as_ref().map(describe_padding),
            truncation: baked_truncation.as_ref().map(describe_truncation),
        };
        Ok(Self::assemble(
            inner,
            path,
            TokenizerOrigin::TokenizerJson,
            baked,
            Baked {
                padding: baked_padding,
                truncation: baked_truncation,
            },
            pad,
            &config,
        ))
    }

    fn from_gguf(path: &Path) -> Result<Self> {
        let built = gguf::build(path)?;
        Ok(Self::assemble(
            built.tokenizer,
            path,
            TokenizerOrigin::Gguf,
            BakedSettings {
                padding: None,
                truncation: None,
            },
            Baked::default(),
            built.pad,
            &TokenizerConfig::default(),
        ))
    }

    fn assemble(
        mut inner: Tokenizer,
        path: &Path,
        origin: TokenizerOrigin,
        baked_info: BakedSettings,
        baked: Baked,
        pad: Option<(u32, String)>,
        config: &TokenizerConfig,
    ) -> Self {
        let mut special: Vec<(u32, String)> = inner
            .get_added_tokens_decoder()
            .into_iter()
            .filter(|(_, tok)| tok.special)
            .map(|(id, tok)| (id, tok.content))
            .collect();
        special.sort();
        let special_ids = special.iter().map(|(id, _)| *id).collect();
        let info = TokenizerInfo {
            path: path.to_path_buf(),
            origin,
            model_type: model_type(inner.get_model()).to_string(),
            vocab_size: u32::try_from(inner.get_vocab_size(true)).unwrap_or(u32::MAX),
            special_tokens: special.into_iter().map(|(_, s)| s).collect(),
            baked: baked_info,
        };
        let post = inner.get_post_processor().cloned();
        inner.with_post_processor(None::<tokenizers::PostProcessorWrapper>);
        let role = |name: &Option<String>| {
            name.as_ref()
                .and_then(|n| inner.token_to_id(n).map(|id| (id, n.clone())))
        };
        let roles = super::SpecialRoles {
            mask: role(&config.mask_token),
            cls: role(&config.cls_token),
            unk: role(&config.unk_token),
        };
        tracing::debug!(path = %path.display(), ?origin, "tokenizer loaded");
        Self {
            inner,
            info,
            special_ids,
            baked_padding: baked.padding,
            baked_truncation: baked.truncation,
            pad,
            clean_up_spaces: config.clean_up_tokenization_spaces,
            padding_side: config.padding_side,
            truncation_side: config.truncation_side,
            post,
            roles,
            max_length: config.max_length(),
        }
    }
}

/// Padding and truncation parameters a tokenizer file carried.
#[derive(Debug, Default)]
struct Baked {
    padding: Option<tokenizers::PaddingParams>,
    truncation: Option<tokenizers::TruncationParams>,
}

fn model_type(model: &ModelWrapper) -> &'static str {
    match model {
        ModelWrapper::BPE(_) => "BPE",
        ModelWrapper::WordPiece(_) => "WordPiece",
        ModelWrapper::Unigram(_) => "Unigram",
        ModelWrapper::WordLevel(_) => "WordLevel",
    }
}

fn describe_padding(p: &tokenizers::PaddingParams) -> String {
    let to = match p.strategy {
        tokenizers::PaddingStrategy::Fixed(n) => format!("pad to {n}"),
        tokenizers::PaddingStrategy::BatchLongest => "pad to the longest in a batch".into(),
    };
    format!("{to} with {}", p.pad_token)
}

fn describe_truncation(t: &tokenizers::TruncationParams) -> String {
    format!("truncate to {}", t.max_length)
}

/// The `tokenizers` crate panics (rather than failing) while loading a `Precompiled` normalizer
/// whose character map does not decode, so one is checked before the crate reads the file. Only
/// a file that names one is parsed for it: that parse walks the whole file again (tens of
/// megabytes for some vocabularies).
fn check_precompiled(bytes: &[u8]) -> std::result::Result<(), String> {
    let names_one = std::str::from_utf8(bytes).is_ok_and(|text| text.contains("\"Precompiled\""));
    if !names_one {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    struct Normalizer {
        #[serde(default)]
        normalizer: serde_json::Value,
    }
    // Anything that does not parse is left for `tokenizers` to describe.
    match serde_json::from_slice::<Normalizer>(bytes) {
        Ok(file) => check_node(&file.normalizer),
        Err(_) => Ok(()),
    }
}

/// The crate also indexes a `TemplateProcessing`'s special tokens by the names its template
/// places, while encoding, without checking that it defines them: checked once it is loaded,
/// on the post-processor it serializes back (a few lines, not the file).
fn check_post_processor(tokenizer: &Tokenizer) -> std::result::Result<(), String> {
    let Some(processor) = tokenizer.get_post_processor() else {
        return Ok(());
    };
    let value = serde_json::to_value(processor).map_err(|e| e.to_string())?;
    check_node(&value)
}

/// Checks `node` and everything nested in it (normalizer and processor sequences).
fn check_node(node: &serde_json::Value) -> std::result::Result<(), String> {
    use serde_json::Value;
    match node {
        Value::Array(items) => items.iter().try_for_each(check_node),
        Value::Object(map) => {
            match map.get("type").and_then(Value::as_str) {
                Some("Precompiled") => {
                    // From text, as `tokenizers` reads it (its byte field takes no JSON value).
                    serde_json::from_str::<tokenizers::normalizers::Precompiled>(&node.to_string())
                        .map_err(|e| {
                            // serde quotes the whole (base64, megabytes) value it choked on.
                            let e = e.to_string();
                            let cut: String = e.chars().take(80).collect();
                            format!("its Precompiled normalizer is corrupt ({cut}…)")
                        })?;
                }
                Some("TemplateProcessing") => check_template(map)?,
                _ => {}
            }
            map.values().try_for_each(check_node)
        }
        _ => Ok(()),
    }
}

/// Every special token a template places must be defined, with as many ids as tokens.
fn check_template(
    map: &serde_json::Map<String, serde_json::Value>,
) -> std::result::Result<(), String> {
    use serde_json::Value;
    let specials = map.get("special_tokens").and_then(Value::as_object);
    for (name, token) in specials.into_iter().flatten() {
        let count = |key: &str| token.get(key).and_then(Value::as_array).map(Vec::len);
        if count("ids") != count("tokens") {
            return Err(format!(
                "the post-processor's special token `{name}` has different numbers of ids and tokens"
            ));
        }
    }
    for side in ["single", "pair"] {
        let pieces = map
            .get(side)
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        for piece in pieces {
            let Some(id) = piece.pointer("/SpecialToken/id") else {
                continue;
            };
            let known = id
                .as_str()
                .is_some_and(|id| specials.is_some_and(|s| s.contains_key(id)));
            if !known {
                return Err(format!(
                    "the post-processor's template places the special token {id}, which it does \
                     not define"
                ));
            }
        }
    }
    Ok(())
}
