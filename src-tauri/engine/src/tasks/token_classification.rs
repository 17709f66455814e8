//! token-classification (NER): a label per token, optionally merged into words and entities with
//! `transformers` 4.57's `aggregation_strategy` rules.

use serde::Serialize;
use ts_rs::TS;

use super::scores::{argmax, softmax};
use crate::blocks::heads::HeadKind;
use crate::cancel::CancelToken;
use crate::error::{Result, WickError};
use crate::loading::LoadSpec;
use crate::tasks::Task;
use crate::tokenize::Encoded;

/// How tokens are merged (`aggregation_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, TS)]
#[serde(rename_all = "lowercase")]
#[ts(export)]
pub enum Aggregation {
    /// One result per token.
    #[default]
    None,
    /// Adjacent tokens with the same entity type merged.
    Simple,
    /// Words take the label of their first token, then merged as `simple`.
    First,
    /// Words take the label with the best average score over their tokens.
    Average,
    /// Words take the label of their most confident token.
    Max,
}

impl std::str::FromStr for Aggregation {
    type Err = WickError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_lowercase().as_str() {
            "none" => Ok(Self::None),
            "simple" => Ok(Self::Simple),
            "first" => Ok(Self::First),
            "average" => Ok(Self::Average),
            "max" => Ok(Self::Max),
            other => Err(WickError::InvalidInput(format!(
                "expected none, simple, first, average or max, got `{other}`"
            ))),
        }
    }
}

/// One result: a token (`entity`, `index`) or a merged group (`entity_group`).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(untagged)]
#[ts(export)]
pub enum Entity {
    Token {
        entity: String,
        score: f32,
        #[ts(type = "number")]
        index: usize,
        word: String,
        #[ts(type = "number")]
        start: usize,
        #[ts(type = "number")]
        end: usize,
    },
    Group {
        entity_group: String,
        score: f32,
        word: String,
        #[ts(type = "number")]
        start: usize,
        #[ts(type = "number")]
        end: usize,
    },
}

/// Per-token detail for pictures: every label's probability, whatever the aggregation.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct TokenScores {
    pub token: String,
    #[ts(type = "number")]
    pub start: usize,
    #[ts(type = "number")]
    pub end: usize,
    pub scores: Vec<f32>,
}

/// The result for one text.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct Entities {
    pub entities: Vec<Entity>,
    /// Label names by id, for `tokens[].scores`.
    pub labels: Vec<String>,
    pub tokens: Vec<TokenScores>,
    #[ts(type = "number")]
    pub truncated_tokens: usize,
}

#[derive(Debug, Clone)]
pub struct NerOptions {
    pub aggregation: Aggregation,
    /// Labels left out of the results; `["O"]` by default.
    pub ignore_labels: Vec<String>,
}

impl Default for NerOptions {
    fn default() -> Self {
        Self {
            aggregation: Aggregation::None,
            ignore_labels: vec!["O".into()],
        }
    }
}

#[derive(Debug)]
pub struct TokenClassifier {
    encoder: super::Encoder,
}

/// A token before aggregation (`pre_entity` in transformers).
struct PreEntity {
    word: String,
    scores: Vec<f32>,
    start: usize,
    end: usize,
    index: usize,
    is_subword: bool,
}

/// A token or word with its label, before grouping.
struct Labelled {
    entity: String,
    score: f32,
    index: Option<usize>,
    word: String,
    start: usize,
    end: usize,
}

impl TokenClassifier {
    pub fn load(spec: &LoadSpec) -> Result<Self> {
        let encoder = super::Encoder::load(
            spec,
            Task::TokenClassification,
            HeadKind::TokenClassification,
        )?;
        Ok(Self { encoder })
    }

    /// The tokenizer and model it runs.
    pub fn encoder(&self) -> &super::Encoder {
        &self.encoder
    }

    /// Finds entities in each text, `batch_size` texts at a time padded together.
    pub fn run(
        &self,
        texts: &[&str],
        options: &NerOptions,
        batch_size: usize,
        cancel: &CancelToken,
    ) -> Result<Vec<Entities>> {
        let encoded = self.encoder.encode_texts(texts, None)?;
        let mut out = Vec::with_capacity(texts.len());
        for (chunk, texts) in encoded
            .chunks(batch_size.max(1))
            .zip(texts.chunks(batch_size.max(1)))
        {
            let rows: Vec<&Encoded> = chunk.iter().collect();
            let logits = self
                .encoder
                .model
                .token_logits(&self.encoder.model.batch(&rows, cancel)?)?;
            for ((e, text), logits) in chunk.iter().zip(texts).zip(logits) {
                out.push(self.postprocess(text, e, &logits, options)?);
            }
        }
        Ok(out)
    }

    fn postprocess(
        &self,
        text: &str,
        e: &Encoded,
        logits: &[Vec<f32>],
        options: &NerOptions,
    ) -> Result<Entities> {
        let chars: Vec<char> = text.chars().collect();
        let slice = |s: usize, e: usize| -> String {
            chars[s.min(chars.len())..e.min(chars.len())]
                .iter()
                .collect()
        };
        let words_known = self.encoder.tokenizer.marks_subwords();
        let unk = self
            .encoder
            .tokenizer
            .roles()
            .unk
            .as_ref()
            .map(|(id, _)| *id);
        let mut pre = Vec::new();
        let mut tokens = Vec::new();
        for (idx, row) in logits.iter().enumerate().take(e.len()) {
            let scores = softmax(row);
            let (start, end) = e.offsets[idx];
            let mut word = self
                .encoder
                .tokenizer
                .id_to_token(e.ids[idx])
                .unwrap_or_default();
            if e.special[idx] {
                continue;
            }
            tokens.push(TokenScores {
                token: word.clone(),
                start,
                end,
                scores: scores.clone(),
            });
            let word_ref = slice(start, end);
            let mut is_subword = if words_known {
                word.chars().count() != word_ref.chars().count()
            } else {
                // transformers' fallback for tokenizers that do not mark word pieces.
                start > 0 && !slice(start - 1, start + 1).contains(' ')
            };
            if Some(e.ids[idx]) == unk {
                word = word_ref;
                is_subword = false;
            }
            pre.push(PreEntity {
                word,
                scores,
                start,
                end,
                index: idx,
                is_subword,
            });
        }
        let names = &self.encoder.model.labels().names;
        let label = |i: usize| {
            names
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("LABEL_{i}"))
        };
        let labelled: Vec<Labelled> = match options.aggregation {
            Aggregation::None | Aggregation::Simple => pre
                .iter()
                .map(|p| {
                    let i = argmax(&p.scores);
                    Labelled {
                        entity: label(i),
                        score: p.scores[i],
                        index: Some(p.index),
                        word: p.word.clone(),
                        start: p.start,
                        end: p.end,
                    }
                })
                .collect(),
            strategy => self.aggregate_words(&pre, strategy, &label)?,
        };
        let entities: Vec<Entity> = if options.aggregation == Aggregation::None {
            labelled
                .into_iter()
                .map(|l| Entity::Token {
                    entity: l.entity,
                    score: l.score,
                    index: l.index.unwrap_or_default(),
                    word: l.word,
                    start: l.start,
                    end: l.end,
                })
                .collect()
        } else {
            self.group(labelled)?
        };
        let entities = entities
            .into_iter()
            .filter(|ent| {
                let name = match ent {
                    Entity::Token { entity, .. } => entity,
                    Entity::Group { entity_group, .. } => entity_group,
                };
                !options.ignore_labels.contains(name)
            })
            .collect();
        Ok(Entities {
            entities,
            labels: names.clone(),
            tokens,
            truncated_tokens: e.truncated_tokens,
        })
    }

    /// Merges word pieces into words and labels each word (`aggregate_words`).
    fn aggregate_words(
        &self,
        pre: &[PreEntity],
        strategy: Aggregation,
        label: &dyn Fn(usize) -> String,
    ) -> Result<Vec<Labelled>> {
        let mut groups: Vec<Vec<&PreEntity>> = Vec::new();
        for p in pre {
            match groups.last_mut() {
                Some(g) if p.is_subword => g.push(p),
                _ => groups.push(vec![p]),
            }
        }
        groups
            .iter()
            .map(|g| {
                let words: Vec<String> = g.iter().map(|p| p.word.clone()).collect();
                let word = self.encoder.tokenizer.tokens_to_string(&words)?;
                let (i, score) = match strategy {
                    Aggregation::First => {
                        let i = argmax(&g[0].scores);
                        (i, g[0].scores[i])
                    }
                    Aggregation::Max => {
                        let mut best = g[0];
                        for p in &g[1..] {
                            if max_of(&p.scores) > max_of(&best.scores) {
                                best = p;
                            }
                        }
                        let i = argmax(&best.scores);
                        (i, best.scores[i])
                    }
                    Aggregation::Average => {
                        let n = g.len() as f32;
                        let avg: Vec<f32> = (0..g[0].scores.len())
                            .map(|k| g.iter().map(|p| p.scores[k]).sum::<f32>() / n)
                            .collect();
                        let i = argmax(&avg);
                        (i, avg[i])
                    }
                    Aggregation::None | Aggregation::Simple => {
                        return Err(WickError::InvalidInput(
                            "none and simple do not merge words".into(),
                        ))
                    }
                };
                Ok(Labelled {
                    entity: label(i),
                    score,
                    index: None,
                    word,
                    start: g[0].start,
                    end: g[g.len() - 1].end,
                })
            })
            .collect()
    }

    /// Groups adjacent tokens or words of one entity type (`group_entities`): a `B-` tag or a
    /// change of type starts a new group.
    fn group(&self, items: Vec<Labelled>) -> Result<Vec<Entity>> {
        let mut groups: Vec<Vec<Labelled>> = Vec::new();
        for item in items {
            let (bi, tag) = split_tag(&item.entity);
            match groups.last_mut() {
                Some(g) if split_tag(&g[g.len() - 1].entity).1 == tag && bi != "B" => g.push(item),
                _ => groups.push(vec![item]),
            }
        }
        groups
            .into_iter()
            .map(|g| {
                let entity_group = match g[0].entity.split_once('-') {
                    Some((_, rest)) => rest.to_string(),
                    None => g[0].entity.clone(),
                };
                let words: Vec<String> = g.iter().map(|l| l.word.clone()).collect();
                Ok(Entity::Group {
                    entity_group,
                    score: g.iter().map(|l| l.score).sum::<f32>() / g.len() as f32,
                    word: self.encoder.tokenizer.tokens_to_string(&words)?,
                    start: g[0].start,
                    end: g[g.len() - 1].end,
                })
            })
            .collect()
    }
}

fn max_of(xs: &[f32]) -> f32 {
    xs.iter().copied().fold(f32::NEG_INFINITY, f32::max)
}

/// `B-PER` -> ("B", "PER"); a label without a B-/I- prefix counts as inside.
fn split_tag(label: &str) -> (&str, &str) {
    if let Some(tag) = label.strip_prefix("B-") {
        ("B", tag)
    } else if let Some(tag) = label.strip_prefix("I-") {
        ("I", tag)
    } else {
        ("I", label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_split_as_transformers_does() {
        assert_eq!(split_tag("B-PER"), ("B", "PER"));
        assert_eq!(split_tag("I-LOC"), ("I", "LOC"));
        assert_eq!(split_tag("EMAIL"), ("I", "EMAIL"));
    }
}
