//! The "Auto" classes: which family runs a model, and which tasks it serves. One table,
//! [`FAMILIES`], maps `config.json`'s `model_type` and GGUF's `general.architecture` to a family
//! and its tasks; [`detect`] reads a model once (its config.json, or its GGUF header) and finds
//! its row, and every loader starts from what it found. Adding an architecture means a family file
//! and a row here.

use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Content;
use serde::Serialize;
use serde_json::Value;
use ts_rs::TS;

use super::causal::CausalFamily;
use crate::error::{Result, WickError};
use crate::tasks::Task;

/// Encoder bodies in `families/` (BERT-like models with task heads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderFamily {
    /// BERT and models that share its layout (MiniLM sentence-transformers).
    Bert,
    /// RoBERTa, XLM-RoBERTa, CamemBERT: BERT layers, positions numbered after the padding id.
    Roberta,
    DistilBert,
    DebertaV2,
}

/// Encoder-decoder families in `families/seq2seq/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seq2SeqFamily {
    T5,
    Bart,
    /// BART's layout with sinusoidal positions.
    Marian,
}

/// A family implementation, by the kind of model it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Encoder(EncoderFamily),
    Causal(CausalFamily),
    Seq2Seq(Seq2SeqFamily),
}

impl Family {
    /// `encoder`, `causal` or `seq2seq`, as the UI and `wick info` name the kind.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Encoder(_) => "encoder",
            Self::Causal(_) => "causal",
            Self::Seq2Seq(_) => "seq2seq",
        }
    }
}

/// One row of the table: a family, the names models give it, and what Wick runs with it.
#[derive(Debug)]
pub struct Row {
    pub family: Family,
    /// `model_type` values in config.json.
    pub model_types: &'static [&'static str],
    /// `general.architecture` values of GGUF files (none: Wick does not read its GGUF files).
    pub gguf_architectures: &'static [&'static str],
    pub tasks: &'static [Task],
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
const GENERATION: &[Task] = &[Task::TextGeneration];
const TEXT2TEXT: &[Task] = &[Task::Summarization, Task::Translation];

const fn encoder(family: EncoderFamily, model_types: &'static [&'static str]) -> Row {
    Row {
        family: Family::Encoder(family),
        model_types,
        gguf_architectures: &[],
        tasks: ENCODER_TASKS,
    }
}

const fn causal(
    family: CausalFamily,
    model_types: &'static [&'static str],
    gguf_architectures: &'static [&'static str],
) -> Row {
    Row {
        family: Family::Causal(family),
        model_types,
        gguf_architectures,
        tasks: GENERATION,
    }
}

const fn seq2seq(
    family: Seq2SeqFamily,
    model_types: &'static [&'static str],
    tasks: &'static [Task],
) -> Row {
    Row {
        family: Family::Seq2Seq(family),
        model_types,
        gguf_architectures: &[],
        tasks,
    }
}

/// Every architecture Wick runs.
pub const FAMILIES: &[Row] = &[
    encoder(EncoderFamily::Bert, &["bert"]),
    encoder(
        EncoderFamily::Roberta,
        &["roberta", "xlm-roberta", "camembert"],
    ),
    encoder(EncoderFamily::DistilBert, &["distilbert"]),
    encoder(EncoderFamily::DebertaV2, &["deberta-v2"]),
    causal(CausalFamily::Gpt2, &["gpt2"], &[]),
    causal(CausalFamily::Llama, &["llama", "mistral"], &["llama"]),
    causal(CausalFamily::Qwen2, &["qwen2"], &["qwen2"]),
    causal(CausalFamily::Qwen3, &["qwen3"], &["qwen3"]),
    causal(
        CausalFamily::Gemma3,
        &["gemma3_text", "gemma3"],
        &["gemma3"],
    ),
    causal(CausalFamily::Phi3, &["phi3"], &["phi3"]),
    seq2seq(Seq2SeqFamily::T5, &["t5", "mt5"], TEXT2TEXT),
    seq2seq(Seq2SeqFamily::Bart, &["bart"], TEXT2TEXT),
    // transformers' summarization pipeline takes any encoder-decoder, Marian's too.
    seq2seq(Seq2SeqFamily::Marian, &["marian"], TEXT2TEXT),
];

/// The row of a config.json `model_type`.
pub fn by_model_type(model_type: &str) -> Option<&'static Row> {
    FAMILIES
        .iter()
        .find(|r| r.model_types.contains(&model_type))
}

/// The row of a GGUF `general.architecture`.
pub fn by_gguf_architecture(arch: &str) -> Option<&'static Row> {
    FAMILIES
        .iter()
        .find(|r| r.gguf_architectures.contains(&arch))
}

/// Every `model_type` Wick runs, for error messages.
pub fn supported_list() -> String {
    names(|r| r.model_types)
}

/// Every GGUF `general.architecture` Wick runs.
pub fn supported_gguf() -> String {
    names(|r| r.gguf_architectures)
}

fn names(of: impl Fn(&Row) -> &'static [&'static str]) -> String {
    FAMILIES
        .iter()
        .flat_map(|r| of(r).iter().copied())
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a model's weights are stored.
#[derive(Debug)]
pub enum Stored {
    Safetensors,
    /// `pytorch_model.bin` (read through candle's pickle reader).
    Pytorch,
    /// A GGUF file, with its header (metadata and tensor index) already read.
    Gguf {
        file: PathBuf,
        header: Box<Content>,
    },
}

/// A model read once: its row, its names and its config, for the loaders to start from.
#[derive(Debug)]
pub struct Detected {
    /// The path as given: a folder, or a GGUF file.
    pub path: PathBuf,
    /// The model folder (for GGUF: the folder the file is in, or the folder given).
    pub dir: PathBuf,
    pub row: &'static Row,
    /// config.json's `model_type`, or GGUF's `general.architecture`.
    pub model_type: String,
    /// `architectures[0]` (e.g. `BertForMaskedLM`), when config.json names one.
    pub architecture: Option<String>,
    pub stored: Stored,
    /// config.json, parsed (`Null` for a GGUF file without one).
    pub config: Value,
    /// config.json's text, for the families that read it into their own structs.
    pub config_text: String,
}

impl Detected {
    pub fn family(&self) -> Family {
        self.row.family
    }

    /// The encoder family, or an error saying this model is not an encoder.
    pub fn encoder_family(&self) -> Result<EncoderFamily> {
        match self.family() {
            Family::Encoder(f) => Ok(f),
            _ => Err(self.not_a("an encoder")),
        }
    }

    /// The causal family, or an error saying this model is not decoder-only.
    pub fn causal_family(&self) -> Result<CausalFamily> {
        match self.family() {
            Family::Causal(f) => Ok(f),
            _ => Err(self.not_a("a decoder-only")),
        }
    }

    /// The encoder-decoder family, or an error saying this model is not one.
    pub fn seq2seq_family(&self) -> Result<Seq2SeqFamily> {
        match self.family() {
            Family::Seq2Seq(f) => Ok(f),
            _ => Err(self.not_a("an encoder-decoder")),
        }
    }

    fn not_a(&self, kind: &str) -> WickError {
        self.invalid_config(format!("`{}` is not {kind} model", self.model_type))
    }

    /// The folder's config.json (for messages).
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    /// An error about config.json's content.
    pub fn invalid_config(&self, reason: impl std::fmt::Display) -> WickError {
        WickError::InvalidModel {
            path: self.config_path(),
            reason: reason.to_string(),
        }
    }

    /// Checks that this model can run `task`, with an error that names what it can run.
    pub fn require_task(&self, task: Task) -> Result<()> {
        if self.row.tasks.contains(&task) {
            return Ok(());
        }
        let can: Vec<&str> = self.row.tasks.iter().map(|t| t.id()).collect();
        Err(WickError::UnsupportedTask {
            model_type: self.model_type.clone(),
            task: task.id().to_string(),
            supported: can.join(", "),
        })
    }

    /// What the model is, as `wick info` and the app describe it.
    pub fn describe(&self) -> Described {
        Described {
            format: match self.stored {
                Stored::Safetensors => "safetensors",
                Stored::Pytorch => "pytorch",
                Stored::Gguf { .. } => "gguf",
            }
            .into(),
            model_type: self.model_type.clone(),
            architecture: self.architecture.clone(),
            kind: self.row.family.kind().into(),
            tasks: self.row.tasks.to_vec(),
        }
    }
}

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

/// Reads the model at `path` (a folder with config.json, or a GGUF file or a folder holding one)
/// and finds its row, or says which architectures are supported.
pub fn detect(path: &Path) -> Result<Detected> {
    if let Some(file) = gguf_file(path) {
        return detect_gguf(path, file);
    }
    let config_path = path.join("config.json");
    let config_text =
        std::fs::read_to_string(&config_path).map_err(|e| WickError::io(&config_path, e))?;
    let config: Value =
        serde_json::from_str(&config_text).map_err(|e| WickError::InvalidModel {
            path: config_path.clone(),
            reason: e.to_string(),
        })?;
    super::plausible::check_config(&config).map_err(|e| WickError::InvalidModel {
        path: config_path.clone(),
        reason: e.0,
    })?;
    let model_type = config
        .get("model_type")
        .and_then(Value::as_str)
        .ok_or_else(|| WickError::InvalidModel {
            path: config_path.clone(),
            reason: "config.json has no model_type".into(),
        })?
        .to_string();
    let row = by_model_type(&model_type).ok_or_else(|| WickError::UnsupportedArchitecture {
        found: model_type.clone(),
        supported: supported_list(),
    })?;
    let stored = if path.join("model.safetensors").is_file()
        || path.join("model.safetensors.index.json").is_file()
    {
        Stored::Safetensors
    } else {
        Stored::Pytorch
    };
    let architecture = config
        .get("architectures")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Detected {
        path: path.to_path_buf(),
        dir: path.to_path_buf(),
        row,
        model_type,
        architecture,
        stored,
        config,
        config_text,
    })
}

fn detect_gguf(path: &Path, file: PathBuf) -> Result<Detected> {
    let reader =
        std::io::BufReader::new(std::fs::File::open(&file).map_err(|e| WickError::io(&file, e))?);
    let header = crate::gguf_header::read(reader, &file)?;
    let arch =
        super::causal::gguf::architecture_in(&header).ok_or_else(|| WickError::InvalidGguf {
            path: file.clone(),
            reason: "no general.architecture".into(),
        })?;
    super::plausible::check_gguf(&header).map_err(|e| WickError::InvalidGguf {
        path: file.clone(),
        reason: e.0,
    })?;
    let row = gguf_row(&arch)?;
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        file.parent().map_or_else(PathBuf::new, Path::to_path_buf)
    };
    Ok(Detected {
        path: path.to_path_buf(),
        dir,
        row,
        model_type: arch,
        architecture: None,
        stored: Stored::Gguf {
            file,
            header: Box::new(header),
        },
        config: Value::Null,
        config_text: String::new(),
    })
}

fn gguf_row(arch: &str) -> Result<&'static Row> {
    by_gguf_architecture(arch).ok_or_else(|| WickError::UnsupportedArchitecture {
        found: format!("{arch} (GGUF)"),
        supported: supported_gguf(),
    })
}

/// Describes the model at `path`, or says which architectures are supported.
pub fn describe(path: &Path) -> Result<Described> {
    detect(path).map(|d| d.describe())
}

/// A GGUF file of `general.architecture` `arch` (read elsewhere, e.g. from the Hub), or why it
/// is not supported.
pub fn describe_gguf(arch: String) -> Result<Described> {
    let row = gguf_row(&arch)?;
    Ok(Described {
        format: "gguf".into(),
        model_type: arch,
        architecture: None,
        kind: row.family.kind().into(),
        tasks: row.tasks.to_vec(),
    })
}

/// The GGUF file of a model path: the path itself, or the first `.gguf` (by name) in a folder
/// without a config.json.
pub fn gguf_file(path: &Path) -> Option<PathBuf> {
    let is_gguf = |p: &Path| {
        p.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
    };
    if path.is_file() {
        return is_gguf(path).then(|| path.to_path_buf());
    }
    if path.join("config.json").is_file() {
        return None;
    }
    let mut ggufs: Vec<PathBuf> = std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_gguf(p))
        .collect();
    ggufs.sort();
    ggufs.into_iter().next()
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
        assert_eq!(d.family(), Family::Encoder(EncoderFamily::Bert));
        assert_eq!(d.architecture.as_deref(), Some("BertModel"));
        assert!(d.require_task(Task::FeatureExtraction).is_ok());
        let err = d.require_task(Task::Translation).unwrap_err();
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
        assert!(
            err.to_string().contains("gpt2, llama") && err.to_string().contains("marian"),
            "{err}"
        );
        let dir = folder_with(r#"{"model_type":"llama","architectures":["LlamaForCausalLM"]}"#);
        let described = describe(dir.path()).unwrap();
        assert_eq!(
            (described.kind.as_str(), described.tasks.as_slice()),
            ("causal", &[Task::TextGeneration][..])
        );
        let dir = folder_with(r#"{"hidden_size": 8}"#);
        assert_eq!(
            detect(dir.path()).unwrap_err().code(),
            crate::ErrorCode::InvalidModel
        );
        let err = describe_gguf("mamba".into()).unwrap_err().to_string();
        assert!(
            err.contains("mamba (GGUF)") && err.contains("llama, qwen2"),
            "{err}"
        );
    }

    #[test]
    fn every_name_has_one_row() {
        let mut seen = std::collections::HashSet::new();
        for row in FAMILIES {
            for name in row.model_types {
                assert!(seen.insert(*name), "model_type {name} twice");
            }
            assert!(!row.tasks.is_empty());
        }
        let mut seen = std::collections::HashSet::new();
        for row in FAMILIES {
            for name in row.gguf_architectures {
                assert!(seen.insert(*name), "GGUF architecture {name} twice");
                assert_eq!(row.family.kind(), "causal");
            }
        }
    }
}
