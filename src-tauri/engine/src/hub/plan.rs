//! Which files of a repo a model needs: config, tokenizer, generation config, sentence-transformers
//! modules, and one set of weights (safetensors, sharded safetensors, else `pytorch_model.bin`;
//! for a repo of GGUF files, the one quantization the user picked). ONNX, TensorFlow, Flax and
//! other exports are left on the Hub.

use serde::Serialize;
use ts_rs::TS;

use super::api::RepoFile;
use crate::error::{human_bytes, Result, WickError};

/// Small files a model folder may need, fetched whenever the repo has them.
const SIDE_FILES: &[&str] = &[
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    // Tokenizers without a tokenizer.json (BERT vocab, GPT-2 BPE, SentencePiece, Marian).
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
    "source.spm",
    "target.spm",
    // sentence-transformers.
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
];

/// One GGUF file of a repo: a quantization the user can pick.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct GgufVariant {
    pub file: String,
    /// `Q4_K_M`, `Q8_0`, `F16`… read from the file name.
    pub quantization: String,
    #[ts(type = "number | null")]
    pub size: Option<u64>,
}

/// Every GGUF file in a repo, smallest first (split files `-00001-of-00003` count as one).
pub fn gguf_variants(files: &[RepoFile]) -> Vec<GgufVariant> {
    let mut variants: Vec<GgufVariant> = files
        .iter()
        .filter(|f| f.name.to_ascii_lowercase().ends_with(".gguf"))
        .map(|f| GgufVariant {
            file: f.name.clone(),
            quantization: quantization_in_name(&f.name),
            size: f.size,
        })
        .collect();
    variants.sort_by_key(|v| (v.size.unwrap_or(u64::MAX), v.file.clone()));
    variants
}

/// `SmolLM2-135M-Instruct-Q4_K_M.gguf` -> `Q4_K_M`.
fn quantization_in_name(name: &str) -> String {
    let stem = name.rsplit('/').next().unwrap_or(name);
    let stem = stem
        .strip_suffix(".gguf")
        .unwrap_or(stem)
        .to_ascii_uppercase();
    let known = [
        "IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ3_XXS", "IQ3_XS", "IQ3_S",
        "IQ3_M", "IQ4_XS", "IQ4_NL", "Q2_K", "Q3_K_S", "Q3_K_M", "Q3_K_L", "Q4_0", "Q4_1",
        "Q4_K_S", "Q4_K_M", "Q5_0", "Q5_1", "Q5_K_S", "Q5_K_M", "Q6_K", "Q8_0", "BF16", "F16",
        "F32",
    ];
    // The longest match wins (Q4_K_M over Q4_K), and it must stand alone in the name.
    known
        .iter()
        .filter(|q| {
            stem.match_indices(*q).any(|(i, _)| {
                let before = stem[..i].chars().last();
                let after = stem[i + q.len()..].chars().next();
                !before.is_some_and(|c| c.is_ascii_alphanumeric())
                    && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            })
        })
        .max_by_key(|q| q.len())
        .map_or_else(|| "unknown".to_string(), |q| q.to_string())
}

/// The files to fetch for a model. `gguf` picks a GGUF file by name or quantization; a repo
/// with several GGUF files and no pick is an error that lists them with their sizes.
pub fn files_to_fetch(repo: &str, files: &[RepoFile], gguf: Option<&str>) -> Result<Vec<String>> {
    let has = |name: &str| files.iter().any(|f| f.name == name);
    let mut wanted: Vec<String> = SIDE_FILES
        .iter()
        .filter(|f| has(f))
        .map(|f| f.to_string())
        .collect();
    // sentence-transformers module configs: `1_Pooling/config.json`, `2_Dense/…`.
    wanted.extend(
        files
            .iter()
            .filter(|f| is_module_file(&f.name))
            .map(|f| f.name.clone()),
    );

    let safetensors: Vec<&RepoFile> = files
        .iter()
        .filter(|f| !f.name.contains('/') && f.name.ends_with(".safetensors"))
        .collect();
    let variants = gguf_variants(files);
    if let Some(pick) = gguf {
        let chosen = variants
            .iter()
            .find(|v| v.file == pick || v.quantization.eq_ignore_ascii_case(pick))
            .ok_or_else(|| no_such_variant(repo, pick, &variants))?;
        wanted.push(chosen.file.clone());
    } else if has("model.safetensors") {
        wanted.push("model.safetensors".into());
    } else if has("model.safetensors.index.json") {
        wanted.push("model.safetensors.index.json".into());
        wanted.extend(
            safetensors
                .iter()
                .filter(|f| f.name.starts_with("model-"))
                .map(|f| f.name.clone()),
        );
    } else if let [only] = safetensors.as_slice() {
        wanted.push(only.name.clone());
    } else if has("pytorch_model.bin") {
        wanted.push("pytorch_model.bin".into());
    } else if variants.len() == 1 {
        wanted.push(variants[0].file.clone());
    } else if variants.len() > 1 {
        return Err(WickError::InvalidInput(format!(
            "`{repo}` has {} GGUF files; pick one (--gguf <quantization or file>): {}",
            variants.len(),
            list_variants(&variants)
        )));
    } else {
        return Err(WickError::InvalidModel {
            path: repo.into(),
            reason: "the repo has no weights Wick reads (model.safetensors, sharded safetensors, \
                     pytorch_model.bin or .gguf)"
                .into(),
        });
    }
    wanted.dedup();
    Ok(wanted)
}

fn is_module_file(name: &str) -> bool {
    let mut parts = name.splitn(2, '/');
    let (Some(dir), Some(file)) = (parts.next(), parts.next()) else {
        return false;
    };
    let numbered = dir
        .split_once('_')
        .is_some_and(|(n, _)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    numbered && !file.contains('/') && (file.ends_with(".json") || file.ends_with(".safetensors"))
}

fn list_variants(variants: &[GgufVariant]) -> String {
    variants
        .iter()
        .map(|v| match v.size {
            Some(size) => format!("{} ({}, {})", v.quantization, v.file, human_bytes(size)),
            None => format!("{} ({})", v.quantization, v.file),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn no_such_variant(repo: &str, pick: &str, variants: &[GgufVariant]) -> WickError {
    if variants.is_empty() {
        WickError::InvalidInput(format!(
            "`{repo}` has no GGUF files, so --gguf {pick} cannot apply"
        ))
    } else {
        WickError::InvalidInput(format!(
            "`{repo}` has no GGUF file `{pick}`; it has: {}",
            list_variants(variants)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(names: &[(&str, u64)]) -> Vec<RepoFile> {
        names
            .iter()
            .map(|(n, s)| RepoFile {
                name: n.to_string(),
                size: Some(*s),
                lfs_sha256: None,
            })
            .collect()
    }

    #[test]
    fn picks_one_set_of_weights_and_the_side_files() {
        let files = repo(&[
            ("config.json", 1),
            ("tokenizer.json", 1),
            ("model.safetensors", 10),
            ("pytorch_model.bin", 10),
            ("onnx/model.onnx", 10),
            ("1_Pooling/config.json", 1),
            ("modules.json", 1),
            ("README.md", 1),
        ]);
        assert_eq!(
            files_to_fetch("m", &files, None).unwrap(),
            [
                "config.json",
                "tokenizer.json",
                "modules.json",
                "1_Pooling/config.json",
                "model.safetensors"
            ]
        );
        let sharded = repo(&[
            ("config.json", 1),
            ("model.safetensors.index.json", 1),
            ("model-00001-of-00002.safetensors", 5),
            ("model-00002-of-00002.safetensors", 5),
        ]);
        assert_eq!(files_to_fetch("m", &sharded, None).unwrap().len(), 4);
        let old = repo(&[("config.json", 1), ("pytorch_model.bin", 5)]);
        assert_eq!(
            files_to_fetch("m", &old, None).unwrap()[1],
            "pytorch_model.bin"
        );
    }

    #[test]
    fn gguf_repos_need_a_pick() {
        let files = repo(&[
            ("SmolLM2-135M-Instruct-Q8_0.gguf", 145),
            ("SmolLM2-135M-Instruct-Q4_K_M.gguf", 105),
            ("SmolLM2-135M-Instruct-f16.gguf", 271),
        ]);
        let variants = gguf_variants(&files);
        assert_eq!(
            variants
                .iter()
                .map(|v| v.quantization.as_str())
                .collect::<Vec<_>>(),
            ["Q4_K_M", "Q8_0", "F16"]
        );
        let err = files_to_fetch("org/m", &files, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("has 3 GGUF files; pick one"), "{err}");
        assert!(
            err.contains("Q4_K_M (SmolLM2-135M-Instruct-Q4_K_M.gguf, 105 B)"),
            "{err}"
        );
        assert_eq!(
            files_to_fetch("org/m", &files, Some("q8_0")).unwrap(),
            ["SmolLM2-135M-Instruct-Q8_0.gguf"]
        );
        assert!(files_to_fetch("org/m", &files, Some("Q2_K")).is_err());
        assert!(files_to_fetch("org/m", &repo(&[("README.md", 1)]), None).is_err());
    }
}
