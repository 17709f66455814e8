//! `pipeline(task, model)(inputs, **kwargs)`: every encoder task behind one call taking and
//! returning JSON shaped as `transformers` 4.57 takes and returns it. The CLI maps its flags to
//! these keyword arguments, and the parity tests feed the recorded calls straight in.

use serde::Serialize;
use serde_json::{json, Map, Value};
use ts_rs::TS;

use super::feature_extraction::FeatureExtractor;
use super::fill_mask::{self, FillOptions, Filled, MaskFiller};
use super::kwargs::Kwargs;
use super::question_answering::{self, Answers, QaOptions, QuestionAnswerer};
use super::run_generation::StreamPiece;
use super::text2text::Text2Text;
use super::text_classification::{self, Classification, ClassifyInput, TextClassifier};
use super::text_generation::{GenerationResult, TextGenerator};
use super::token_classification::{Entities, NerOptions, TokenClassifier};
use super::zero_shot::{ZeroShotClassifier, ZeroShotOptions, ZeroShotResult, DEFAULT_TEMPLATE};
use super::{RunControl, Task};
use crate::error::{Result, WickError};
use crate::loading::LoadSpec;
use crate::quant::Quantization;

/// A loaded encoder pipeline.
#[derive(Debug)]
pub enum Pipeline {
    FeatureExtraction(FeatureExtractor),
    TextClassification(TextClassifier),
    TokenClassification(TokenClassifier),
    QuestionAnswering(QuestionAnswerer),
    FillMask(MaskFiller),
    ZeroShotClassification(ZeroShotClassifier),
    TextGeneration(Box<TextGenerator>),
    /// Summarization and translation.
    Text2Text(Box<Text2Text>),
}

impl Pipeline {
    /// Loads the `task` pipeline for the model `spec` describes. Weight conversions (its
    /// quantization) apply to text generation only; other tasks run in f32.
    pub fn load(task: Task, spec: &LoadSpec) -> Result<Self> {
        if spec.quantization != Quantization::AsStored && task != Task::TextGeneration {
            return Err(WickError::InvalidInput(format!(
                "{} runs in f32 only; quantization applies to text generation",
                task.id()
            )));
        }
        Ok(match task {
            Task::FeatureExtraction => Self::FeatureExtraction(FeatureExtractor::load(spec)?),
            Task::TextClassification => Self::TextClassification(TextClassifier::load(spec)?),
            Task::TokenClassification => Self::TokenClassification(TokenClassifier::load(spec)?),
            Task::QuestionAnswering => Self::QuestionAnswering(QuestionAnswerer::load(spec)?),
            Task::FillMask => Self::FillMask(MaskFiller::load(spec)?),
            Task::ZeroShotClassification => {
                Self::ZeroShotClassification(ZeroShotClassifier::load(spec)?)
            }
            Task::TextGeneration => Self::TextGeneration(Box::new(TextGenerator::load(spec)?)),
            Task::Summarization | Task::Translation => {
                Self::Text2Text(Box::new(Text2Text::load(task, spec)?))
            }
        })
    }

    /// Runs the pipeline on `inputs` with `kwargs`, `batch_size` inputs at a time.
    pub fn call(
        &self,
        inputs: &Value,
        kwargs: &Map<String, Value>,
        batch_size: usize,
    ) -> Result<Value> {
        Ok(self.call_with_notes(inputs, kwargs, batch_size)?.json)
    }

    /// [`Self::call`], also saying what was done to the inputs (truncation).
    pub fn call_with_notes(
        &self,
        inputs: &Value,
        kwargs: &Map<String, Value>,
        batch_size: usize,
    ) -> Result<Output> {
        self.run(inputs, kwargs, batch_size, false, &RunControl::default())
    }

    /// [`Self::call_with_notes`] plus [`Output::detail`], what the tabs draw from; `control`
    /// cancels between batches and layers.
    pub fn call_with_detail(
        &self,
        inputs: &Value,
        kwargs: &Map<String, Value>,
        batch_size: usize,
        control: &RunControl,
    ) -> Result<Output> {
        self.run(inputs, kwargs, batch_size, true, control)
    }

    fn run(
        &self,
        inputs: &Value,
        kwargs: &Map<String, Value>,
        batch_size: usize,
        with_detail: bool,
        control: &RunControl,
    ) -> Result<Output> {
        let cancel = &control.cancel;
        let mut args = Kwargs::new(kwargs);
        let mut notes = Notes::default();
        let (out, detail) = match self {
            Self::TextGeneration(_) | Self::Text2Text(_) => {
                // Their keyword arguments are checked by the generators (generate()'s and theirs).
                let (json, results, generation_notes) =
                    self.stream(inputs, kwargs, &mut |_, _| true, control)?;
                notes.0.extend(generation_notes);
                (json, Some(Detail::Generation { results }))
            }
            Self::FeatureExtraction(p) => {
                // Wick's `sentence_embedding=True`: one vector per text, as sentence-transformers'
                // `encode(texts)` gives them (the pictures need only those). Without it, the
                // pipeline's per-token features.
                let sentence = args.bool("sentence_embedding")?.unwrap_or(false);
                args.finish("feature-extraction")?;
                let (texts, single) = texts(inputs)?;
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let sentence_vectors = |notes: &mut Notes| -> Result<Vec<Vec<f32>>> {
                    let features = p.sentence_embeddings(&refs, batch_size, cancel)?;
                    Ok(features
                        .into_iter()
                        .enumerate()
                        .map(|(i, f)| {
                            notes.truncated(i, f.truncated_tokens);
                            f.vectors.into_iter().next().unwrap_or_default()
                        })
                        .collect())
                };
                let (out, vectors) = if sentence {
                    let vectors = sentence_vectors(&mut notes)?;
                    (vectors.iter().map(|v| json!(v)).collect(), Some(vectors))
                } else {
                    let mut out = Vec::new();
                    for (i, t) in texts.iter().enumerate() {
                        let features = p.token_features(t, cancel)?;
                        notes.truncated(i, features.truncated_tokens);
                        // The pipeline's shape: [batch = 1][tokens][hidden].
                        out.push(json!([features.vectors]));
                    }
                    // Sentence embeddings are a second run: only when pictures need them.
                    let vectors = with_detail
                        .then(|| sentence_vectors(&mut Notes::default()))
                        .transpose()?;
                    (out, vectors)
                };
                let detail = vectors.filter(|_| with_detail).map(|vectors| {
                    let similarity = cosine_matrix(&vectors);
                    let map = super::embedding_map::pca_2d(&vectors);
                    Detail::Embeddings {
                        vectors,
                        similarity,
                        map,
                    }
                });
                (unwrap_single(out, single), detail)
            }
            Self::TextClassification(p) => {
                let top_k = args.top_k("top_k")?;
                let function = args.parsed("function_to_apply")?;
                args.finish("text-classification")?;
                let (pairs, single) = classify_inputs(inputs)?;
                let refs: Vec<ClassifyInput> = pairs
                    .iter()
                    .map(|(a, b)| match b {
                        Some(b) => ClassifyInput::Pair(a, b),
                        None => ClassifyInput::Text(a),
                    })
                    .collect();
                let results = p.classify(&refs, function, batch_size, cancel)?;
                for (i, r) in results.iter().enumerate() {
                    notes.truncated(i, r.truncated_tokens);
                }
                (
                    text_classification::pipeline_json(&results, top_k, single)?,
                    Some(Detail::Classification { results }),
                )
            }
            Self::TokenClassification(p) => {
                let mut o = NerOptions::default();
                if let Some(a) = args.parsed("aggregation_strategy")? {
                    o.aggregation = a;
                }
                if let Some(labels) = args.strings("ignore_labels")? {
                    o.ignore_labels = labels;
                }
                args.finish("token-classification")?;
                let (texts, single) = texts(inputs)?;
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let results = p.run(&refs, &o, batch_size, cancel)?;
                for (i, r) in results.iter().enumerate() {
                    notes.truncated(i, r.truncated_tokens);
                }
                let out = results.iter().map(|r| json!(r.entities)).collect();
                (
                    unwrap_single(out, single),
                    Some(Detail::Entities { results }),
                )
            }
            Self::QuestionAnswering(p) => {
                let d = QaOptions::default();
                let o = QaOptions {
                    top_k: args.usize("top_k")?.unwrap_or(d.top_k),
                    doc_stride: args.usize("doc_stride")?,
                    max_answer_len: args.usize("max_answer_len")?.unwrap_or(d.max_answer_len),
                    max_seq_len: args.usize("max_seq_len")?,
                    handle_impossible_answer: args
                        .bool("handle_impossible_answer")?
                        .unwrap_or(d.handle_impossible_answer),
                    align_to_words: args.bool("align_to_words")?.unwrap_or(d.align_to_words),
                };
                args.usize("max_question_len")?; // accepted; fast tokenizers ignore it
                args.finish("question-answering")?;
                let (questions, single) = qa_inputs(inputs)?;
                let mut out = Vec::new();
                let mut results = Vec::new();
                for (q, c) in &questions {
                    let answers = p.answer(q, c, &o, cancel)?;
                    out.push(question_answering::pipeline_json(&answers));
                    results.push(answers);
                }
                (
                    unwrap_single(out, single),
                    Some(Detail::Answers { results }),
                )
            }
            Self::FillMask(p) => {
                let o = FillOptions {
                    top_k: args.usize("top_k")?,
                    targets: args.strings("targets")?,
                };
                args.finish("fill-mask")?;
                let (texts, single) = texts(inputs)?;
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let results = p.fill(&refs, &o, batch_size, cancel)?;
                for (i, r) in results.iter().enumerate() {
                    notes.truncated(i, r.truncated_tokens);
                }
                let out = results.iter().map(fill_mask::pipeline_json).collect();
                (
                    unwrap_single(out, single),
                    Some(Detail::Filled {
                        results,
                        mask_token: p.mask_token().to_string(),
                    }),
                )
            }
            Self::ZeroShotClassification(p) => {
                let o = ZeroShotOptions {
                    candidate_labels: args.strings("candidate_labels")?.ok_or_else(|| {
                        WickError::InvalidInput("candidate_labels is required".into())
                    })?,
                    hypothesis_template: args
                        .string("hypothesis_template")?
                        .unwrap_or_else(|| DEFAULT_TEMPLATE.into()),
                    multi_label: args.bool("multi_label")?.unwrap_or(false),
                };
                args.finish("zero-shot-classification")?;
                let (texts, single) = texts(inputs)?;
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                let results = p.classify(&refs, &o, batch_size, cancel)?;
                let out = results.iter().map(|r| json!(r)).collect();
                (
                    unwrap_single(out, single),
                    Some(Detail::ZeroShot { results }),
                )
            }
        };
        Ok(Output {
            json: out,
            notes: notes.0,
            detail: detail.filter(|_| with_detail),
        })
    }

    /// The text generator, for what only text generation offers (variant comparison).
    /// The tokenizer and encoder of an encoder task, for the views inside the model.
    pub fn encoder(&self) -> Option<&super::Encoder> {
        match self {
            Self::FeatureExtraction(p) => Some(p.encoder()),
            Self::TextClassification(p) => Some(p.encoder()),
            Self::TokenClassification(p) => Some(p.encoder()),
            Self::QuestionAnswering(p) => Some(p.encoder()),
            Self::FillMask(p) => Some(p.encoder()),
            Self::ZeroShotClassification(p) => Some(p.classifier().encoder()),
            Self::TextGeneration(_) | Self::Text2Text(_) => None,
        }
    }

    pub fn text_generator(&self) -> Option<&TextGenerator> {
        match self {
            Self::TextGeneration(g) => Some(g),
            _ => None,
        }
    }

    /// Runs a generation task, streaming (input index, piece) to `on_piece`, which may return
    /// `false` to stop. Other tasks are an error.
    pub fn stream(
        &self,
        inputs: &Value,
        kwargs: &Map<String, Value>,
        on_piece: &mut dyn FnMut(usize, &StreamPiece) -> bool,
        control: &RunControl,
    ) -> Result<(Value, Vec<GenerationResult>, Vec<String>)> {
        match self {
            Self::TextGeneration(g) => g.call(inputs, kwargs, on_piece, control),
            Self::Text2Text(g) => g.call(inputs, kwargs, on_piece, control),
            _ => Err(WickError::InvalidInput(
                "this pipeline does not generate text".into(),
            )),
        }
    }

    /// The precision the weights run in: "f32", or a GGUF quantization such as "Q4_1".
    pub fn dtype_label(&self) -> String {
        match self {
            Self::TextGeneration(g) => g.dtype_label(),
            _ => "f32".into(),
        }
    }

    /// What the model is, for the result header.
    pub fn architecture(&self) -> &str {
        match self {
            Self::FeatureExtraction(p) => p.encoder().model.architecture(),
            Self::TextClassification(p) => p.encoder().model.architecture(),
            Self::TokenClassification(p) => p.encoder().model.architecture(),
            Self::QuestionAnswering(p) => p.encoder().model.architecture(),
            Self::FillMask(p) => p.encoder().model.architecture(),
            Self::ZeroShotClassification(p) => p.classifier().encoder().model.architecture(),
            Self::TextGeneration(p) => &p.model().architecture,
            Self::Text2Text(p) => p.architecture(),
        }
    }
}

/// A pipeline's JSON plus notes for the person running it and the full results the pictures
/// are drawn from.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub json: Value,
    /// E.g. that an input was longer than the model takes and was cut.
    pub notes: Vec<String>,
    /// The full results, from [`Pipeline::call_with_detail`].
    pub detail: Option<Detail>,
}

/// Everything a task computed, one entry per input: more than the pipeline JSON carries
/// (every label's score, per-token probabilities, start/end heat, raw logits).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "kind", rename_all = "camelCase")]
#[ts(export)]
pub enum Detail {
    Classification {
        results: Vec<Classification>,
    },
    Entities {
        results: Vec<Entities>,
    },
    Answers {
        results: Vec<Answers>,
    },
    #[serde(rename_all = "camelCase")]
    Filled {
        results: Vec<Filled>,
        mask_token: String,
    },
    ZeroShot {
        results: Vec<ZeroShotResult>,
    },
    /// Generated sequences with per-token probabilities and timing, one per prompt.
    Generation {
        results: Vec<GenerationResult>,
    },
    /// Sentence embeddings, their pairwise cosine similarities, and the batch as a 2-D map.
    Embeddings {
        vectors: Vec<Vec<f32>>,
        similarity: Vec<Vec<f32>>,
        map: super::embedding_map::EmbeddingMap,
    },
}

fn cosine_matrix(vectors: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    let norms: Vec<f32> = vectors.iter().map(|v| norm(v)).collect();
    vectors
        .iter()
        .enumerate()
        .map(|(i, a)| {
            vectors
                .iter()
                .enumerate()
                .map(|(j, b)| {
                    a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (norms[i] * norms[j])
                })
                .collect()
        })
        .collect()
}

#[derive(Default)]
struct Notes(Vec<String>);

impl Notes {
    fn truncated(&mut self, input: usize, tokens: usize) {
        if tokens > 0 {
            self.0.push(format!(
                "input {}: {tokens} tokens beyond the model's limit were cut off (as transformers \
                 truncates); the result covers the start of the text",
                input + 1
            ));
        }
    }
}

fn unwrap_single(mut out: Vec<Value>, single: bool) -> Value {
    if single && out.len() == 1 {
        out.remove(0)
    } else {
        Value::Array(out)
    }
}

fn bad_input(what: &str) -> WickError {
    WickError::InvalidInput(format!("expected {what}"))
}

/// A text or a list of texts; `single` when it was one text (or a list of one, which the
/// pipelines also unwrap).
fn texts(inputs: &Value) -> Result<(Vec<String>, bool)> {
    match inputs {
        Value::String(s) => Ok((vec![s.clone()], true)),
        Value::Array(items) => {
            let texts = items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad_input("a text or a list of texts"))?;
            Ok((texts, false))
        }
        _ => Err(bad_input("a text or a list of texts")),
    }
}

type Pair = (String, Option<String>);

fn classify_inputs(inputs: &Value) -> Result<(Vec<Pair>, bool)> {
    let one = |v: &Value| -> Result<Pair> {
        match v {
            Value::String(s) => Ok((s.clone(), None)),
            Value::Object(m) => {
                let get = |k: &str| m.get(k).and_then(Value::as_str).map(str::to_string);
                let text = get("text").ok_or_else(|| bad_input("{\"text\", \"text_pair\"}"))?;
                Ok((text, get("text_pair")))
            }
            _ => Err(bad_input(
                "a text, a {text, text_pair} object, or a list of them",
            )),
        }
    };
    match inputs {
        Value::Array(items) => Ok((items.iter().map(one).collect::<Result<_>>()?, false)),
        v => Ok((vec![one(v)?], true)),
    }
}

fn qa_inputs(inputs: &Value) -> Result<(Vec<(String, String)>, bool)> {
    let one = |v: &Value| -> Result<(String, String)> {
        let get = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        match (get("question"), get("context")) {
            (Some(q), Some(c)) => Ok((q, c)),
            (Some(_), None) => Err(WickError::InvalidInput(
                "the question has no context: give the text to find the answer in".into(),
            )),
            _ => Err(bad_input("{\"question\", \"context\"}")),
        }
    };
    match inputs {
        Value::Array(items) => Ok((items.iter().map(one).collect::<Result<_>>()?, false)),
        v => Ok((vec![one(v)?], true)),
    }
}
