//! question-answering: the span of a context that answers a question, over contexts longer than
//! the model by overlapping windows (`doc_stride`), with `transformers` 4.57's span scoring.

use serde::Serialize;
use ts_rs::TS;

use super::scores::softmax;
use crate::blocks::heads::HeadKind;
use crate::cancel::CancelToken;
use crate::error::{Result, WickError};
use crate::loading::LoadSpec;
use crate::tasks::Task;
use crate::tokenize::{Encoded, Truncate};

/// Options, named as the pipeline's keyword arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QaOptions {
    pub top_k: usize,
    /// Overlap between windows of a long context; `min(max_seq_len / 2, 128)` by default.
    pub doc_stride: Option<usize>,
    pub max_answer_len: usize,
    /// Tokens per window; `min(model_max_length, 384)` by default.
    pub max_seq_len: Option<usize>,
    /// Also consider "no answer" (the classifier token), scored by its start × end probability.
    pub handle_impossible_answer: bool,
    /// Widen answers to whole words.
    pub align_to_words: bool,
}

impl Default for QaOptions {
    fn default() -> Self {
        Self {
            top_k: 1,
            doc_stride: None,
            max_answer_len: 15,
            max_seq_len: None,
            handle_impossible_answer: false,
            align_to_words: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct Answer {
    /// f64 because scores of answers with the same text are summed, as the pipeline does.
    pub score: f64,
    #[ts(type = "number")]
    pub start: usize,
    #[ts(type = "number")]
    pub end: usize,
    pub answer: String,
}

/// Start and end probabilities of the context tokens of one window, for the heat map.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct WindowHeat {
    /// Character spans in the context.
    pub spans: Vec<(u32, u32)>,
    pub start: Vec<f32>,
    pub end: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[ts(export)]
pub struct Answers {
    pub answers: Vec<Answer>,
    pub windows: Vec<WindowHeat>,
}

#[derive(Debug)]
pub struct QuestionAnswerer {
    encoder: super::Encoder,
}

impl QuestionAnswerer {
    pub fn load(spec: &LoadSpec) -> Result<Self> {
        let encoder =
            super::Encoder::load(spec, Task::QuestionAnswering, HeadKind::QuestionAnswering)?;
        Ok(Self { encoder })
    }

    /// The tokenizer and model it runs.
    pub fn encoder(&self) -> &super::Encoder {
        &self.encoder
    }

    pub fn answer(
        &self,
        question: &str,
        context: &str,
        o: &QaOptions,
        cancel: &CancelToken,
    ) -> Result<Answers> {
        super::require_text(question, "question")?;
        super::require_text(context, "context")?;
        if o.top_k == 0 || o.max_answer_len == 0 {
            return Err(WickError::InvalidInput(
                "top_k and max_answer_len must be at least 1".into(),
            ));
        }
        // transformers: min(model_max_length, 384) unless given; never past the position table.
        let max_seq_len = match o.max_seq_len {
            Some(n) => self.encoder.model.max_positions().map_or(n, |m| m.min(n)),
            None => self.encoder.limit(Some(384)).unwrap_or(384),
        };
        let stride = o.doc_stride.unwrap_or((max_seq_len / 2).min(128));
        if stride > max_seq_len {
            return Err(WickError::InvalidInput(format!(
                "doc_stride ({stride}) is larger than max_seq_len ({max_seq_len})"
            )));
        }
        let windows = self.encoder.tokenizer.encode_pipeline(
            question,
            Some(context),
            Truncate::OnlySecond {
                max_length: max_seq_len,
                stride,
            },
        )?;
        let rows: Vec<&Encoded> = windows.iter().collect();
        let (starts, ends) = self
            .encoder
            .model
            .span_logits(&self.encoder.model.batch(&rows, cancel)?)?;
        let context_chars: Vec<char> = context.chars().collect();
        let cls = self
            .encoder
            .tokenizer
            .roles()
            .cls
            .as_ref()
            .map(|(id, _)| *id);
        let pre_top_k = if o.align_to_words {
            o.top_k * 2 + 10
        } else {
            o.top_k
        };
        let mut answers: Vec<Answer> = Vec::new();
        let mut heat = Vec::new();
        let mut min_null = 1_000_000f64;
        for ((w, start), end) in windows.iter().zip(&starts).zip(&ends) {
            // Tokens that may be part of an answer: the context's, and the classifier token.
            let allowed: Vec<bool> = (0..w.len())
                .map(|i| w.sequence[i] == Some(1) || Some(w.ids[i]) == cls)
                .collect();
            let masked = |xs: &[f32]| -> Vec<f32> {
                (0..w.len())
                    .map(|i| if allowed[i] { xs[i] } else { -10000.0 })
                    .collect()
            };
            let mut p_start = softmax(&masked(start));
            let mut p_end = softmax(&masked(end));
            if o.handle_impossible_answer {
                min_null = min_null.min(f64::from(p_start[0] * p_end[0]));
            }
            p_start[0] = 0.0;
            p_end[0] = 0.0;
            heat.push(window_heat(w, &p_start, &p_end));
            for (s, e, score) in best_spans(&p_start, &p_end, &allowed, pre_top_k, o.max_answer_len)
            {
                let (a, b) = self.char_span(w, s, e, o.align_to_words);
                let text: String = context_chars
                    [a.min(context_chars.len())..b.min(context_chars.len())]
                    .iter()
                    .collect();
                if let Some(existing) = answers
                    .iter_mut()
                    .find(|x| x.answer.to_lowercase() == text.to_lowercase())
                {
                    existing.score += f64::from(score);
                } else {
                    answers.push(Answer {
                        score: f64::from(score),
                        start: a,
                        end: b,
                        answer: text,
                    });
                }
            }
        }
        if o.handle_impossible_answer {
            answers.push(Answer {
                score: min_null,
                start: 0,
                end: 0,
                answer: String::new(),
            });
        }
        answers.sort_by(|a, b| b.score.total_cmp(&a.score));
        answers.truncate(o.top_k);
        Ok(Answers {
            answers,
            windows: heat,
        })
    }

    /// Character span of tokens `s..=e` in the context, widened to whole words if asked.
    fn char_span(&self, w: &Encoded, s: usize, e: usize, align: bool) -> (usize, usize) {
        if align {
            let start_word = w.words[s].and_then(|word| w.word_chars(word, 1));
            let end_word = w.words[e].and_then(|word| w.word_chars(word, 1));
            if let (Some((a, _)), Some((_, b))) = (start_word, end_word) {
                return (a, b);
            }
        }
        (w.offsets[s].0, w.offsets[e].1)
    }
}

/// The `k` best spans `(start, end, p_start × p_end)` with `start <= end < start + max_len`
/// over allowed tokens, best first (`decode_spans`).
fn best_spans(
    p_start: &[f32],
    p_end: &[f32],
    allowed: &[bool],
    k: usize,
    max_len: usize,
) -> Vec<(usize, usize, f32)> {
    let n = p_start.len();
    let mut spans = Vec::new();
    for s in (0..n).filter(|&s| allowed[s]) {
        for e in (s..n.min(s + max_len)).filter(|&e| allowed[e]) {
            spans.push((s, e, p_start[s] * p_end[e]));
        }
    }
    // Highest score first; ties in row-major order, as the flattened argsort sees them.
    spans.sort_by(|a, b| b.2.total_cmp(&a.2));
    spans.truncate(k);
    spans
}

fn window_heat(w: &Encoded, p_start: &[f32], p_end: &[f32]) -> WindowHeat {
    let context: Vec<usize> = (0..w.len()).filter(|&i| w.sequence[i] == Some(1)).collect();
    WindowHeat {
        spans: context
            .iter()
            .map(|&i| (w.offsets[i].0 as u32, w.offsets[i].1 as u32))
            .collect(),
        start: context.iter().map(|&i| p_start[i]).collect(),
        end: context.iter().map(|&i| p_end[i]).collect(),
    }
}

/// The pipeline's JSON: one answer as an object, several as a list.
pub fn pipeline_json(answers: &Answers) -> serde_json::Value {
    if answers.answers.len() == 1 {
        serde_json::json!(answers.answers[0])
    } else {
        serde_json::json!(answers.answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_respect_order_length_and_mask() {
        let p = [0.0, 0.5, 0.3, 0.2];
        let allowed = [true, true, true, false];
        let spans = best_spans(&p, &p, &allowed, 10, 2);
        assert_eq!(spans[0], (1, 1, 0.25));
        assert!(spans.iter().all(|(s, e, _)| s <= e && e - s < 2 && *e != 3));
    }
}
