//! text-classification: labels with scores for a text or a text pair, with `transformers` 4.57's
//! `function_to_apply` and `top_k` rules.

use serde::Serialize;
use ts_rs::TS;

use super::scores::{order_desc, sigmoid, softmax, TopK};
use crate::blocks::heads::HeadKind;
use crate::cancel::CancelToken;
use crate::error::{Result, WickError};
use crate::loading::LoadSpec;
use crate::tasks::Task;
use crate::tokenize::Encoded;

/// What turns logits into scores (`function_to_apply`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum ScoreFunction {
    Softmax,
    Sigmoid,
    None,
}

impl std::str::FromStr for ScoreFunction {
    type Err = WickError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_lowercase().as_str() {
            "softmax" => Ok(Self::Softmax),
            "sigmoid" => Ok(Self::Sigmoid),
            "none" => Ok(Self::None),
            other => Err(WickError::InvalidInput(format!(
                "expected softmax, sigmoid or none, got `{other}`"
            ))),
        }
    }
}

/// Options, named as the pipeline's keyword arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClassifyOptions {
    /// `None` is the pipeline's default: the best label only, as a bare object.
    pub top_k: Option<TopK>,
    /// `None`: chosen from the config (`problem_type`, number of labels).
    pub function: Option<ScoreFunction>,
}

/// One input: a text, or a pair such as premise and hypothesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClassifyInput<'a> {
    Text(&'a str),
    Pair(&'a str, &'a str),
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct LabelScore {
    pub label: String,
    pub score: f32,
}

/// The result for one input.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct Classification {
    /// Every label, highest score first (the pipeline's `top_k=None` view).
    pub labels: Vec<LabelScore>,
    /// The raw logits by label id.
    pub logits: Vec<f32>,
    pub function: ScoreFunction,
    #[ts(type = "number")]
    pub truncated_tokens: usize,
}

#[derive(Debug)]
pub struct TextClassifier {
    encoder: super::Encoder,
}

impl TextClassifier {
    pub fn load(spec: &LoadSpec) -> Result<Self> {
        let encoder = super::Encoder::load(
            spec,
            Task::TextClassification,
            HeadKind::SequenceClassification,
        )?;
        Ok(Self { encoder })
    }

    /// The tokenizer and model it runs.
    pub fn encoder(&self) -> &super::Encoder {
        &self.encoder
    }

    /// Classifies `inputs`, `batch_size` at a time padded together.
    pub fn classify(
        &self,
        inputs: &[ClassifyInput],
        function: Option<ScoreFunction>,
        batch_size: usize,
        cancel: &CancelToken,
    ) -> Result<Vec<Classification>> {
        let encoded = inputs
            .iter()
            .map(|input| self.encode(*input))
            .collect::<Result<Vec<_>>>()?;
        let function = function.unwrap_or_else(|| self.default_function());
        let mut out = Vec::with_capacity(inputs.len());
        for chunk in encoded.chunks(batch_size.max(1)) {
            let rows: Vec<&Encoded> = chunk.iter().collect();
            let logits = self
                .encoder
                .model
                .sequence_logits(&self.encoder.model.batch(&rows, cancel)?)?;
            for (e, logits) in chunk.iter().zip(logits) {
                out.push(self.score(logits, function, e.truncated_tokens));
            }
        }
        Ok(out)
    }

    /// Raw logits for one encoded input (zero-shot builds on this).
    pub(crate) fn logits_for(
        &self,
        rows: &[&Encoded],
        cancel: &CancelToken,
    ) -> Result<Vec<Vec<f32>>> {
        self.encoder
            .model
            .sequence_logits(&self.encoder.model.batch(rows, cancel)?)
    }

    fn encode(&self, input: ClassifyInput) -> Result<Encoded> {
        let truncate = self.encoder.truncation(None);
        let windows = match input {
            ClassifyInput::Text(t) => {
                super::require_text(t, "text")?;
                self.encoder.tokenizer.encode_pipeline(t, None, truncate)?
            }
            ClassifyInput::Pair(a, b) => {
                super::require_text(a, "text")?;
                super::require_text(b, "text pair")?;
                self.encoder
                    .tokenizer
                    .encode_pipeline(a, Some(b), truncate)?
            }
        };
        super::single(windows)
    }

    /// transformers 4.57: regression -> none; multi-label or one label -> sigmoid; else softmax.
    fn default_function(&self) -> ScoreFunction {
        let labels = self.encoder.model.labels();
        match labels.problem_type.as_deref() {
            Some("regression") => ScoreFunction::None,
            Some("multi_label_classification") => ScoreFunction::Sigmoid,
            _ if labels.names.len() == 1 => ScoreFunction::Sigmoid,
            _ => ScoreFunction::Softmax,
        }
    }

    fn score(&self, logits: Vec<f32>, function: ScoreFunction, truncated: usize) -> Classification {
        let scores = match function {
            ScoreFunction::Softmax => softmax(&logits),
            ScoreFunction::Sigmoid => logits.iter().map(|x| sigmoid(*x)).collect(),
            ScoreFunction::None => logits.clone(),
        };
        let names = &self.encoder.model.labels().names;
        let labels = order_desc(&scores)
            .into_iter()
            .map(|i| LabelScore {
                label: names
                    .get(i)
                    .cloned()
                    .unwrap_or_else(|| format!("LABEL_{i}")),
                score: scores[i],
            })
            .collect();
        Classification {
            labels,
            logits,
            function,
            truncated_tokens: truncated,
        }
    }
}

impl Classification {
    /// The best label, as the pipeline picks it (the first on ties).
    pub fn best(&self) -> Option<&LabelScore> {
        self.labels.first()
    }
}

/// The JSON the `transformers` pipeline returns for these results: with the default `top_k`,
/// one `{label, score}` per input (a list even for one text); with `top_k`, a list of labels per
/// input (unwrapped for a single input).
pub fn pipeline_json(
    results: &[Classification],
    top_k: Option<TopK>,
    single_input: bool,
) -> Result<serde_json::Value> {
    let one = |c: &Classification| -> serde_json::Value {
        match top_k {
            // argmax over the label ids: the stable sort puts the first of tied labels first.
            None => serde_json::json!(c.best()),
            Some(TopK::All) => serde_json::json!(c.labels),
            Some(TopK::K(k)) => serde_json::json!(&c.labels[..k.min(c.labels.len())]),
        }
    };
    let all: Vec<serde_json::Value> = results.iter().map(one).collect();
    if single_input && top_k.is_some() {
        all.into_iter()
            .next()
            .ok_or_else(|| WickError::InvalidInput("no input to classify".into()))
    } else {
        Ok(serde_json::Value::Array(all))
    }
}
