//! zero-shot-classification: any labels, scored by an NLI model as "does the text entail
//! `This example is {label}.`?", as `transformers` 4.57 does it.

use serde::Serialize;
use ts_rs::TS;

use super::text_classification::TextClassifier;
use crate::cancel::CancelToken;
use crate::error::{Result, WickError};
use crate::loading::LoadSpec;
use crate::tasks::Task;
use crate::tokenize::{Encoded, Truncate};

pub const DEFAULT_TEMPLATE: &str = "This example is {}.";

#[derive(Debug, Clone)]
pub struct ZeroShotOptions {
    pub candidate_labels: Vec<String>,
    /// Where `{}` is replaced by each label.
    pub hypothesis_template: String,
    /// Score each label on its own (entailment vs contradiction) instead of sharing one
    /// distribution across labels.
    pub multi_label: bool,
}

/// The pipeline's output for one text, labels best first.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct ZeroShotResult {
    pub sequence: String,
    pub labels: Vec<String>,
    pub scores: Vec<f32>,
}

#[derive(Debug)]
pub struct ZeroShotClassifier {
    nli: TextClassifier,
    entailment: usize,
    contradiction: usize,
}

impl ZeroShotClassifier {
    pub fn load(spec: &LoadSpec) -> Result<Self> {
        spec.model.require_task(Task::ZeroShotClassification)?;
        let nli = TextClassifier::load(spec)?;
        let labels = nli.encoder().model.labels();
        let n = labels.names.len();
        // The first label (in label2id order) starting with "entail"; transformers falls back
        // to -1, i.e. the last label, and warns. We refuse: the scores would mean nothing.
        let entailment = labels
            .ids
            .iter()
            .find(|(name, _)| name.to_lowercase().starts_with("entail"))
            .map(|(_, id)| *id)
            .filter(|id| *id < n)
            .ok_or_else(|| {
                WickError::InvalidInput(format!(
                    "{} has no `entailment` label (its labels: {}); zero-shot classification \
                     needs a model trained on NLI",
                    nli.encoder().model.architecture(),
                    labels.names.join(", ")
                ))
            })?;
        let contradiction = if entailment == 0 { n - 1 } else { 0 };
        Ok(Self {
            nli,
            entailment,
            contradiction,
        })
    }

    pub fn classifier(&self) -> &TextClassifier {
        &self.nli
    }

    pub fn classify(
        &self,
        texts: &[&str],
        o: &ZeroShotOptions,
        batch_size: usize,
        cancel: &CancelToken,
    ) -> Result<Vec<ZeroShotResult>> {
        let labels: Vec<&str> = o
            .candidate_labels
            .iter()
            .map(|l| l.trim())
            .filter(|l| !l.is_empty())
            .collect();
        if labels.is_empty() {
            return Err(WickError::InvalidInput(
                "give at least one candidate label".into(),
            ));
        }
        if !o.hypothesis_template.contains("{}") {
            return Err(WickError::InvalidInput(format!(
                "the hypothesis template \"{}\" has no {{}} for the label to go in",
                o.hypothesis_template
            )));
        }
        let tokenizer = &self.nli.encoder().tokenizer;
        let limit = self.nli.encoder().limit(None);
        texts
            .iter()
            .map(|text| {
                super::require_text(text, "text")?;
                let pairs = labels
                    .iter()
                    .map(|label| {
                        let hypothesis = o.hypothesis_template.replacen("{}", label, 1);
                        // Cut the text, never the hypothesis; if the hypothesis alone is too
                        // long, cut whatever is longest.
                        let only_first = limit.map_or(Truncate::None, Truncate::OnlyFirst);
                        tokenizer
                            .encode_pipeline(text, Some(&hypothesis), only_first)
                            .or_else(|_| {
                                let longest = self.nli.encoder().truncation(None);
                                tokenizer.encode_pipeline(text, Some(&hypothesis), longest)
                            })
                            .and_then(super::single)
                    })
                    .collect::<Result<Vec<Encoded>>>()?;
                let mut logits = Vec::with_capacity(pairs.len());
                for chunk in pairs.chunks(batch_size.max(1)) {
                    let rows: Vec<&Encoded> = chunk.iter().collect();
                    logits.extend(self.nli.logits_for(&rows, cancel)?);
                }
                Ok(self.scores(text, &labels, &logits, o.multi_label))
            })
            .collect()
    }

    fn scores(
        &self,
        text: &str,
        labels: &[&str],
        logits: &[Vec<f32>],
        multi: bool,
    ) -> ZeroShotResult {
        let scores: Vec<f32> = if multi || labels.len() == 1 {
            logits
                .iter()
                .map(|l| {
                    let (c, e) = (l[self.contradiction], l[self.entailment]);
                    // exp(e) / (exp(c) + exp(e)), as the pipeline computes it.
                    e.exp() / (c.exp() + e.exp())
                })
                .collect()
        } else {
            let exps: Vec<f32> = logits.iter().map(|l| l[self.entailment].exp()).collect();
            let sum: f32 = exps.iter().sum();
            exps.into_iter().map(|x| x / sum).collect()
        };
        // NumPy's argsort (stable for short arrays) reversed: ties come out last label first.
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        order.reverse();
        ZeroShotResult {
            sequence: text.to_string(),
            labels: order.iter().map(|&i| labels[i].to_string()).collect(),
            scores: order.iter().map(|&i| scores[i]).collect(),
        }
    }
}
