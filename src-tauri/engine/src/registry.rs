//! The "Auto" classes: which family implementation runs a model, and which tasks it supports,
//! read from `config.json` (`model_type`, `architectures`). One row per architecture: adding one
//! means a file under `families/` and a row here.

use std::path::Path;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::{Result, WickError};
use crate::tasks::Task;

/// A family implementation in `families/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// BERT and models that share its layout (MiniLM sentence-transformers).
    Bert,
    /// RoBERTa, XLM-RoBERTa, CamemBERT: BERT layers, positions numbered after the padding id.
    Roberta,
    DistilBert,
    DebertaV2,
}

impl Family {
    /// The attribute name of the body inside `…For<Task>` classes, which prefixes its weights
    /// (`base_model_prefix` in transformers).
    pub fn body_prefix(self) -> &'static str {
        match self {
            Family::Bert => "bert",
            Family::Roberta => "roberta",
            Family::DistilBert => "distilbert",
            Family::DebertaV2 => "deberta",
        }
    }
}

/// What every encoder family runs (given a checkpoint with the right head).
const ENCODER_TASKS: &[Task] = &[
    Task::FeatureExtraction,
    Task::TextClassification,
    Task::TokenClassification,
    Task::QuestionAnswering,
    Task::FillMask,
    Task::ZeroShotClassification,
];

/// One supported architecture.
#[derive(Debug)]
pub struct Architecture {
    /// `model_type` values in config.json.
    pub model_types: &'static [&'static str],
    pub family: Family,
    /// The tasks Wick can run with it today.
    pub tasks: &'static [Task],
}

/// Every architecture Wick runs.
pub const ARCHITECTURES: &[Architecture] = &[
    Architecture {
        model_types: &["bert"],
        family: Family::Bert,
        tasks: ENCODER_TASKS,
    },
    Architecture {
        model_types: &["roberta", "xlm-roberta", "camembert"],
        family: Family::Roberta,
        tasks: ENCODER_TASKS,
    },
    Architecture {
        model_types: &["distilbert"],
        family: Family::DistilBert,
        tasks: ENCODER_TASKS,
    },
    Architecture {
        model_types: &["deberta-v2"],
        family: Family::DebertaV2,
        tasks: ENCODER_TASKS,
    },
];

/// What a model folder is, as far as choosing an implementation goes.
#[derive(Debug)]
pub struct Detected {
    pub model_type: String,
    /// `architectures[0]` from config.json (e.g. "BertForMaskedLM"), when present.
    pub architecture: Option<String>,
    pub spec: &'static Architecture,
}

#[derive(Deserialize)]
struct ConfigHead {
    model_type: Option<String>,
    #[serde(default)]
    architectures: Vec<String>,
}

/// Reads `config.json` in `dir` and finds its row, or says what is supported.
pub fn detect(dir: &Path) -> Result<Detected> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| WickError::io(&path, e))?;
    let head: ConfigHead = serde_json::from_str(&text).map_err(|e| WickError::InvalidModel {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let model_type = head.model_type.ok_or_else(|| WickError::InvalidModel {
        path: path.clone(),
        reason: "config.json has no model_type".into(),
    })?;
    let spec = ARCHITECTURES
        .iter()
        .find(|a| a.model_types.contains(&model_type.as_str()))
        .ok_or_else(|| WickError::UnsupportedArchitecture {
            found: model_type.clone(),
            supported: supported_list(),
        })?;
    Ok(Detected {
        model_type,
        architecture: head.architectures.into_iter().next(),
        spec,
    })
}

/// Checks that `detected` can run `task`, with an error that names what it can run.
pub fn require_task(detected: &Detected, task: Task) -> Result<()> {
    if detected.spec.tasks.contains(&task) {
        return Ok(());
    }
    let can: Vec<String> = detected
        .spec
        .tasks
        .iter()
        .filter_map(|t| serde_json::to_value(t).ok())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    Err(WickError::UnsupportedTask {
        model_type: detected.model_type.clone(),
        task: serde_json::to_value(task)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        supported: can.join(", "),
    })
}

/// Generative families: `model_type` values and the tasks they run. Their implementations
/// pick the exact family themselves (`families::causal::family_of`, `families::seq2seq`).
const GENERATIVE: &[(&[&str], &str, &[Task])] = &[
    (
        &[
            "gpt2",
            "llama",
            "mistral",
            "qwen2",
            "qwen3",
            "gemma3",
            "gemma3_text",
            "phi3",
        ],
        "causal",
        &[Task::TextGeneration],
    ),
    (
        &["t5", "mt5", "bart"],
        "seq2seq",
        &[Task::Summarization, Task::Translation],
    ),
    (&["marian"], "seq2seq", &[Task::Translation]),
];

/// What a model is and what Wick can run with it, for any family.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct Described {
    /// `safetensors`, `pytorch`, or `gguf`.
    pub format: String,
    /// config.json's `model_type`, or GGUF's `general.architecture`.
    pub model_type: String,
    /// `architectures[0]` (e.g. `BertForMaskedLM`).
    pub architecture: Option<String>,
    /// `encoder`, `causal` or `seq2seq`.
    pub kind: String,
    pub tasks: Vec<Task>,
}

/// Describes the model at `path` (a folder with config.json, or a GGUF file or folder), or says
/// which architectures are supported.
pub fn describe(path: &Path) -> Result<Described> {
    if let Some(file) = crate::families::causal::gguf_file(path) {
        return describe_gguf(crate::families::causal::gguf::architecture_of(&file)?);
    }
    let path_config = path.join("config.json");
    let text = std::fs::read_to_string(&path_config).map_err(|e| WickError::io(&path_config, e))?;
    let head: ConfigHead = serde_json::from_str(&text).map_err(|e| WickError::InvalidModel {
        path: path_config.clone(),
        reason: e.to_string(),
    })?;
    let format = if path.join("model.safetensors").is_file()
        || path.join("model.safetensors.index.json").is_file()
    {
        "safetensors"
    } else {
        "pytorch"
    };
    let model_type = head.model_type.clone().unwrap_or_default();
    let (kind, tasks) = if let Some(spec) = ARCHITECTURES
        .iter()
        .find(|a| a.model_types.contains(&model_type.as_str()))
    {
        ("encoder", spec.tasks.to_vec())
    } else if let Some((_, kind, tasks)) = GENERATIVE
        .iter()
        .find(|(types, ..)| types.contains(&model_type.as_str()))
    {
        (*kind, tasks.to_vec())
    } else {
        return Err(WickError::UnsupportedArchitecture {
            found: model_type,
            supported: supported_list(),
        });
    };
    Ok(Described {
        format: format.into(),
        model_type,
        architecture: head.architectures.into_iter().next(),
        kind: kind.into(),
        tasks,
    })
}

/// A GGUF file of `general.architecture` `arch`, or why it is not supported.
pub fn describe_gguf(arch: String) -> Result<Described> {
    if !crate::families::causal::gguf::is_supported(&arch) {
        return Err(WickError::UnsupportedArchitecture {
            found: format!("{arch} (GGUF)"),
            supported: crate::families::causal::gguf::supported(),
        });
    }
    Ok(Described {
        format: "gguf".into(),
        model_type: arch,
        architecture: None,
        kind: "causal".into(),
        tasks: vec![Task::TextGeneration],
    })
}

/// Every `model_type` Wick runs, for error messages.
pub fn supported_list() -> String {
    ARCHITECTURES
        .iter()
        .flat_map(|a| a.model_types.iter().copied())
        .chain(
            GENERATIVE
                .iter()
                .flat_map(|(types, ..)| types.iter().copied()),
        )
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder_with(config: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        dir
    }

    #[test]
    fn finds_bert_and_its_tasks() {
        let dir = folder_with(r#"{"model_type":"bert","architectures":["BertModel"]}"#);
        let d = detect(dir.path()).unwrap();
        assert_eq!(d.spec.family, Family::Bert);
        assert_eq!(d.architecture.as_deref(), Some("BertModel"));
        assert!(require_task(&d, Task::FeatureExtraction).is_ok());
        let err = require_task(&d, Task::Translation).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`bert` models cannot run translation in Wick yet; they can run: feature-extraction, \
             text-classification, token-classification, question-answering, fill-mask, \
             zero-shot-classification"
        );
    }

    #[test]
    fn unknown_architecture_lists_what_is_supported() {
        let dir = folder_with(r#"{"model_type":"mamba"}"#);
        let err = detect(dir.path()).unwrap_err();
        assert_eq!(err.code(), crate::ErrorCode::UnsupportedArchitecture);
        assert!(err.to_string().contains("supported: bert"), "{err}");
        let dir = folder_with(r#"{"model_type":"llama","architectures":["LlamaForCausalLM"]}"#);
        let described = describe(dir.path()).unwrap();
        assert_eq!(
            (described.kind.as_str(), described.tasks.as_slice()),
            ("causal", &[Task::TextGeneration][..])
        );
        let dir = folder_with(r#"{"model_type":"mamba"}"#);
        let err = describe(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("gpt2, llama") && err.contains("marian"),
            "{err}"
        );
        let dir = folder_with(r#"{"hidden_size": 8}"#);
        assert_eq!(
            detect(dir.path()).unwrap_err().code(),
            crate::ErrorCode::InvalidModel
        );
    }
}
