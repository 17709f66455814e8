//! An encoder model ready to run: a family body plus the head its checkpoint carries, loaded from
//! a model folder (the `AutoModelFor…` of Wick's encoder pipelines).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use serde::Deserialize;

use super::bert::{Bert, BertConfig, Positions};
use super::deberta_v2::{DebertaV2, DebertaV2Config};
use super::distilbert::{DistilBert, DistilBertConfig};
use super::registry::EncoderFamily;
use crate::blocks::heads::{Head, HeadKind, HeadSettings, HeadSpec, Layout, MlmNames};
use crate::blocks::Activation;
use crate::cancel::CancelToken;
use crate::error::{ConfigError, Result, WickError};
use crate::loading::LoadSpec;
use crate::tokenize::Encoded;
use crate::weights::Weights;

/// The label names of a classification head and how its scores are meant to be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Labels {
    /// `id2label`, by id.
    pub names: Vec<String>,
    /// `label2id`, in the order transformers iterates it (config files store it sorted).
    pub ids: BTreeMap<String, usize>,
    /// `problem_type`: single_label_classification, multi_label_classification or regression.
    pub problem_type: Option<String>,
}

#[derive(Deserialize)]
struct LabelFields {
    #[serde(default)]
    id2label: Option<HashMap<String, String>>,
    #[serde(default)]
    label2id: Option<BTreeMap<String, usize>>,
    #[serde(default)]
    num_labels: Option<usize>,
    #[serde(default)]
    problem_type: Option<String>,
    #[serde(default)]
    pad_token_id: Option<u32>,
}

impl Labels {
    fn read(fields: &LabelFields) -> Self {
        let names: Vec<String> = match &fields.id2label {
            Some(map) => {
                let mut pairs: Vec<(usize, String)> = map
                    .iter()
                    .filter_map(|(k, v)| k.parse().ok().map(|k| (k, v.clone())))
                    .collect();
                pairs.sort();
                pairs.into_iter().map(|(_, v)| v).collect()
            }
            // transformers' default: LABEL_0, LABEL_1.
            None => (0..fields.num_labels.unwrap_or(2))
                .map(|i| format!("LABEL_{i}"))
                .collect(),
        };
        let ids = fields.label2id.clone().unwrap_or_else(|| {
            names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.clone(), i))
                .collect()
        });
        Self {
            names,
            ids,
            problem_type: fields.problem_type.clone(),
        }
    }
}

/// Start and end logits, `[batch][token]` each.
pub type SpanLogits = (Vec<Vec<f32>>, Vec<Vec<f32>>);

/// A loaded encoder: body, head, labels.
#[derive(Debug)]
pub struct EncoderModel {
    body: Box<dyn EncoderBody>,
    head: Head,
    kind: HeadKind,
    labels: Labels,
    pad_id: u32,
    architecture: String,
    device: Device,
}

/// Tokenized inputs padded to one length, on the model's device.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[batch, tokens]` u32 token ids.
    pub ids: Tensor,
    /// `[batch, tokens]` u32 token type (segment) ids.
    pub type_ids: Tensor,
    /// `[batch, tokens]` u32: 1 for real tokens, 0 for padding.
    pub mask: Tensor,
    /// Checked between layers: a cancelled run stops within one layer's work.
    pub cancel: CancelToken,
    /// Set when the run looks inside the model: every layer's attention weights go here.
    pub attentions: Option<crate::blocks::AttentionSink>,
}

/// The transformer body of an encoder: token ids in, last hidden states out.
pub trait EncoderBody: Send + Sync + std::fmt::Debug {
    /// `[batch, tokens, hidden]` hidden states of the last layer.
    fn forward(&self, batch: &Batch) -> candle_core::Result<Tensor>;
    /// The input embedding matrix `[vocab, hidden]`, which masked-LM decoders are tied to.
    fn word_embeddings(&self) -> &Tensor;
    fn hidden_size(&self) -> usize;
    /// The longest input the position embeddings cover, if they limit it.
    fn max_positions(&self) -> Option<usize>;
    /// Whether the body reads token type ids (BERT does; RoBERTa and DistilBERT do not).
    fn uses_token_types(&self) -> bool;
}

impl EncoderFamily {
    /// The attribute name of the body inside `…For<Task>` classes, which prefixes its weights
    /// (`base_model_prefix` in transformers).
    fn body_prefix(self) -> &'static str {
        match self {
            EncoderFamily::Bert => "bert",
            EncoderFamily::Roberta => "roberta",
            EncoderFamily::DistilBert => "distilbert",
            EncoderFamily::DebertaV2 => "deberta",
        }
    }

    /// Where the family keeps its head weights.
    fn head_layout(self) -> Layout {
        const BERT_MLM: MlmNames = MlmNames {
            dense: "cls.predictions.transform.dense",
            norm: "cls.predictions.transform.LayerNorm",
            decoder: "cls.predictions.decoder",
            bias: "cls.predictions.bias",
        };
        match self {
            EncoderFamily::Bert => Layout {
                pooler: "{body}pooler.dense",
                classifier: "classifier",
                mlm: &[BERT_MLM],
            },
            EncoderFamily::Roberta => Layout {
                pooler: "classifier.dense",
                classifier: "classifier.out_proj",
                mlm: &[MlmNames {
                    dense: "lm_head.dense",
                    norm: "lm_head.layer_norm",
                    decoder: "lm_head.decoder",
                    bias: "lm_head.bias",
                }],
            },
            EncoderFamily::DistilBert => Layout {
                pooler: "pre_classifier",
                classifier: "classifier",
                mlm: &[MlmNames {
                    dense: "vocab_transform",
                    norm: "vocab_layer_norm",
                    decoder: "vocab_projector",
                    bias: "vocab_projector.bias",
                }],
            },
            EncoderFamily::DebertaV2 => Layout {
                pooler: "pooler.dense",
                classifier: "classifier",
                mlm: &[
                    BERT_MLM,
                    MlmNames {
                        dense: "lm_predictions.lm_head.dense",
                        norm: "lm_predictions.lm_head.LayerNorm",
                        decoder: "lm_predictions.lm_head.decoder",
                        bias: "lm_predictions.lm_head.bias",
                    },
                ],
            },
        }
    }
}

/// Turns a candle error while reading weights into a message naming the folder.
fn weights_error(dir: &Path) -> impl Fn(candle_core::Error) -> WickError + '_ {
    move |e| {
        crate::cancel::from_candle(e, |e| WickError::InvalidModel {
            path: dir.to_path_buf(),
            reason: format!("the weights do not match config.json: {e}"),
        })
    }
}

impl EncoderModel {
    /// Loads the model `spec` names for a task that needs head `want` (`Base` takes the body of
    /// any checkpoint). A checkpoint without the head is refused, not given a random one.
    pub fn load(spec: &LoadSpec, want: HeadKind) -> Result<Self> {
        let detected = &spec.model;
        let dir = detected.dir.as_path();
        let family = detected.encoder_family()?;
        let architecture = detected
            .architecture
            .clone()
            .unwrap_or_else(|| detected.model_type.clone());
        let has = detected
            .architecture
            .as_deref()
            .map_or(HeadKind::Base, HeadKind::from_architecture);
        if want != HeadKind::Base && has != want {
            return Err(WickError::MissingHead {
                architecture,
                has: has.describe().into(),
                needs: want.describe().into(),
            });
        }
        let text = detected.config_text.as_str();
        let invalid_config = |reason: ConfigError| detected.invalid_config(reason);
        let label_fields: LabelFields = parse(text).map_err(invalid_config)?;
        let device = spec.device.clone();
        let weights = Weights::load(dir, &device, &spec.loading)?;
        let prefix = family.body_prefix();
        let body_prefix = if weights.has_prefix(prefix) {
            format!("{prefix}.")
        } else {
            String::new()
        };
        let vb = VarBuilder::from_tensors(weights.tensors, DType::F32, &device);
        let body_vb = if body_prefix.is_empty() {
            vb.clone()
        } else {
            vb.pp(prefix)
        };
        let bad_weights = weights_error(dir);
        let (body, settings): (Box<dyn EncoderBody>, HeadSettings) = match family {
            EncoderFamily::Bert | EncoderFamily::Roberta => {
                let c: BertConfig = parse(text).map_err(invalid_config)?;
                Bert::check(&c).map_err(invalid_config)?;
                let settings = HeadSettings {
                    pooler_act: Activation::Tanh,
                    // RobertaLMHead applies GELU whatever hidden_act says.
                    mlm_act: if family == EncoderFamily::Roberta {
                        Activation::Gelu
                    } else {
                        c.hidden_act
                    },
                    eps: c.layer_norm_eps,
                    pooler_size: c.hidden_size,
                };
                let numbering = if family == EncoderFamily::Roberta {
                    Positions::AfterPadding
                } else {
                    Positions::FromZero
                };
                let body =
                    Bert::load(&body_vb, c, numbering, &spec.loading).map_err(&bad_weights)?;
                (Box::new(body), settings)
            }
            EncoderFamily::DistilBert => {
                let c: DistilBertConfig = parse(text).map_err(invalid_config)?;
                let settings = HeadSettings {
                    pooler_act: Activation::Relu,
                    mlm_act: c.activation,
                    eps: 1e-12,
                    pooler_size: c.dim,
                };
                (
                    Box::new(DistilBert::load(&body_vb, c, &spec.loading).map_err(&bad_weights)?),
                    settings,
                )
            }
            EncoderFamily::DebertaV2 => {
                let c: DebertaV2Config = parse(text).map_err(invalid_config)?;
                DebertaV2::check(&c).map_err(invalid_config)?;
                #[derive(Deserialize)]
                struct Pooler {
                    pooler_hidden_act: Option<Activation>,
                    pooler_hidden_size: Option<usize>,
                }
                let p: Pooler = parse(text).map_err(invalid_config)?;
                let settings = HeadSettings {
                    pooler_act: p.pooler_hidden_act.unwrap_or(Activation::Gelu),
                    mlm_act: c.hidden_act,
                    eps: c.layer_norm_eps,
                    pooler_size: p.pooler_hidden_size.unwrap_or(c.hidden_size),
                };
                (
                    Box::new(DebertaV2::load(&body_vb, c, &spec.loading).map_err(&bad_weights)?),
                    settings,
                )
            }
        };
        let labels = Labels::read(&label_fields);
        if matches!(
            want,
            HeadKind::SequenceClassification | HeadKind::TokenClassification
        ) && labels.names.is_empty()
        {
            return Err(WickError::InvalidModel {
                path: dir.join("config.json"),
                reason: "a classifier with no labels (id2label is empty, or num_labels is 0)"
                    .into(),
            });
        }
        let head = Head::load(
            &vb,
            &HeadSpec {
                kind: want,
                layout: family.head_layout(),
                settings,
                body_prefix: &body_prefix,
                hidden: body.hidden_size(),
                labels: labels.names.len(),
                word_embeddings: body.word_embeddings(),
            },
        )
        .map_err(&bad_weights)?;
        tracing::info!(dir = %dir.display(), %architecture, "encoder loaded");
        Ok(Self {
            body,
            head,
            kind: want,
            labels,
            pad_id: label_fields
                .pad_token_id
                .unwrap_or(if family == EncoderFamily::Roberta {
                    1
                } else {
                    0
                }),
            architecture,
            device,
        })
    }

    pub fn labels(&self) -> &Labels {
        &self.labels
    }

    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    /// The longest input the model takes, if its position table limits it.
    pub fn max_positions(&self) -> Option<usize> {
        self.body.max_positions()
    }

    /// Pads encoded inputs on the right into one batch, which `cancel` stops between layers.
    pub fn batch(&self, rows: &[&Encoded], cancel: &CancelToken) -> Result<Batch> {
        cancel.check()?;
        let t = rows.iter().map(|r| r.len()).max().unwrap_or(0);
        let types = self.body.uses_token_types();
        let (mut ids, mut type_ids, mut mask) = (Vec::new(), Vec::new(), Vec::new());
        for r in rows {
            let pad = t - r.len();
            ids.extend(
                r.ids
                    .iter()
                    .copied()
                    .chain(std::iter::repeat_n(self.pad_id, pad)),
            );
            type_ids.extend(
                r.type_ids
                    .iter()
                    .map(|&x| if types { x } else { 0 })
                    .chain(std::iter::repeat_n(0, pad)),
            );
            mask.extend(std::iter::repeat_n(1u32, r.len()).chain(std::iter::repeat_n(0, pad)));
        }
        let shape = (rows.len(), t);
        let make = |v: Vec<u32>| Tensor::from_vec(v, shape, &self.device).map_err(failed);
        Ok(Batch {
            ids: make(ids)?,
            type_ids: make(type_ids)?,
            mask: make(mask)?,
            cancel: cancel.clone(),
            attentions: None,
        })
    }

    /// Last hidden states `[batch, tokens, hidden]`.
    pub fn hidden_states(&self, batch: &Batch) -> Result<Tensor> {
        self.body.forward(batch).map_err(failed)
    }

    /// Sequence-classification logits, one row per input.
    pub fn sequence_logits(&self, batch: &Batch) -> Result<Vec<Vec<f32>>> {
        let Head::Sequence(head) = &self.head else {
            return Err(self.wrong_head(HeadKind::SequenceClassification));
        };
        let hidden = self.hidden_states(batch)?;
        head.forward(&hidden)
            .and_then(|t| t.to_vec2::<f32>())
            .map_err(failed)
    }

    /// Token-classification logits `[batch][token][label]`.
    pub fn token_logits(&self, batch: &Batch) -> Result<Vec<Vec<Vec<f32>>>> {
        let Head::Token(head) = &self.head else {
            return Err(self.wrong_head(HeadKind::TokenClassification));
        };
        let hidden = self.hidden_states(batch)?;
        candle_core::Module::forward(head, &hidden)
            .and_then(|t| t.to_vec3::<f32>())
            .map_err(failed)
    }

    /// Start and end logits `[batch][token]` of the question-answering head.
    pub fn span_logits(&self, batch: &Batch) -> Result<SpanLogits> {
        let Head::Span(head) = &self.head else {
            return Err(self.wrong_head(HeadKind::QuestionAnswering));
        };
        let hidden = self.hidden_states(batch)?;
        let run = || -> candle_core::Result<_> {
            let logits = candle_core::Module::forward(head, &hidden)?;
            let start = logits.i((.., .., 0))?.to_vec2::<f32>()?;
            let end = logits.i((.., .., 1))?.to_vec2::<f32>()?;
            Ok((start, end))
        };
        run().map_err(failed)
    }

    /// Vocabulary logits at the given (row, token) positions of the batch.
    pub fn masked_lm_logits(
        &self,
        batch: &Batch,
        positions: &[(usize, usize)],
    ) -> Result<Vec<Vec<f32>>> {
        let Head::MaskedLm(head) = &self.head else {
            return Err(self.wrong_head(HeadKind::MaskedLm));
        };
        let hidden = self.hidden_states(batch)?;
        let run = || -> candle_core::Result<_> {
            let rows = positions
                .iter()
                .map(|&(b, t)| hidden.i((b, t)))
                .collect::<candle_core::Result<Vec<_>>>()?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            head.forward(&Tensor::stack(&rows, 0)?)?.to_vec2::<f32>()
        };
        run().map_err(failed)
    }

    fn wrong_head(&self, needs: HeadKind) -> WickError {
        WickError::MissingHead {
            architecture: self.architecture.clone(),
            has: self.kind.describe().into(),
            needs: needs.describe().into(),
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> std::result::Result<T, ConfigError> {
    serde_json::from_str(text).map_err(|e| ConfigError(e.to_string()))
}

fn failed(e: candle_core::Error) -> WickError {
    crate::cancel::model_failed(e)
}
