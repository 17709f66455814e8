//! Task heads on top of an encoder body: sequence and token classification, the question-answering
//! span head, and the masked-LM head with its decoder tied to the word embeddings.
//!
//! The heads are the same few layers in every family; only the weight names and activations
//! differ, so a family describes them ([`Layout`], [`HeadSettings`]) rather than writing its own.

use candle_core::{IndexOp, Module, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use crate::blocks::{self, Activation, Dense};

/// Which head a checkpoint carries, from its `architectures` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadKind {
    /// The bare body (`BertModel`, sentence-transformers models).
    Base,
    SequenceClassification,
    TokenClassification,
    QuestionAnswering,
    MaskedLm,
}

impl HeadKind {
    /// `BertForTokenClassification` -> `TokenClassification`; anything else is a bare body.
    pub fn from_architecture(name: &str) -> Self {
        const SUFFIXES: [(&str, HeadKind); 4] = [
            (
                "ForSequenceClassification",
                HeadKind::SequenceClassification,
            ),
            ("ForTokenClassification", HeadKind::TokenClassification),
            ("ForQuestionAnswering", HeadKind::QuestionAnswering),
            ("ForMaskedLM", HeadKind::MaskedLm),
        ];
        SUFFIXES
            .iter()
            .find(|(suffix, _)| name.ends_with(suffix))
            .map_or(HeadKind::Base, |(_, kind)| *kind)
    }

    /// How a person would name the head, with the class suffix that has it.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Base => "no task head (a bare encoder, …Model)",
            Self::SequenceClassification => {
                "a sequence-classification head (…ForSequenceClassification)"
            }
            Self::TokenClassification => "a token-classification head (…ForTokenClassification)",
            Self::QuestionAnswering => "a question-answering head (…ForQuestionAnswering)",
            Self::MaskedLm => "a masked-language-model head (…ForMaskedLM)",
        }
    }
}

/// Weight names of a masked-LM head: transform dense, its layer norm, decoder, decoder bias.
#[derive(Debug, Clone, Copy)]
pub struct MlmNames {
    pub dense: &'static str,
    pub norm: &'static str,
    pub decoder: &'static str,
    pub bias: &'static str,
}

/// Where a family keeps its head weights. `{body}` stands for the body prefix with its dot
/// (`bert.`), or nothing for checkpoints saved without one.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// The dense layer applied to the first token before the sequence classifier.
    pub pooler: &'static str,
    pub classifier: &'static str,
    /// Masked-LM head names, tried in order (DeBERTa-v2 has a legacy and a current layout).
    pub mlm: &'static [MlmNames],
}

/// Activations and epsilon the heads take from the family's config.
#[derive(Debug, Clone, Copy)]
pub struct HeadSettings {
    pub pooler_act: Activation,
    pub mlm_act: Activation,
    pub eps: f64,
    /// Width of the pooler output (DeBERTa's `pooler_hidden_size`), when it differs.
    pub pooler_size: usize,
}

/// `classifier(act(pooler(hidden[:, 0])))`.
#[derive(Debug)]
pub struct SequenceHead {
    pooler: Dense,
    act: Activation,
    classifier: Dense,
}

/// `norm(act(dense(h))) · decoderᵀ + bias`, the decoder usually tied to the word embeddings.
#[derive(Debug)]
pub struct MaskedLmHead {
    dense: Dense,
    act: Activation,
    norm: LayerNorm,
    decoder: Tensor,
    bias: Tensor,
}

/// A loaded head.
#[derive(Debug)]
pub enum Head {
    Base,
    Sequence(SequenceHead),
    Token(Dense),
    Span(Dense),
    MaskedLm(MaskedLmHead),
}

/// What a head needs to know to load.
#[derive(Debug)]
pub struct HeadSpec<'a> {
    pub kind: HeadKind,
    pub layout: Layout,
    pub settings: HeadSettings,
    pub body_prefix: &'a str,
    pub hidden: usize,
    pub labels: usize,
    pub word_embeddings: &'a Tensor,
}

impl Head {
    pub fn load(vb: &VarBuilder, spec: &HeadSpec) -> candle_core::Result<Self> {
        let h = spec.hidden;
        Ok(match spec.kind {
            HeadKind::Base => Head::Base,
            HeadKind::SequenceClassification => {
                let pooler_name = spec.layout.pooler.replace("{body}", spec.body_prefix);
                let p = spec.settings.pooler_size;
                Head::Sequence(SequenceHead {
                    pooler: blocks::linear(vb, &pooler_name, h, p)?,
                    act: spec.settings.pooler_act,
                    classifier: blocks::linear(vb, spec.layout.classifier, p, spec.labels)?,
                })
            }
            HeadKind::TokenClassification => {
                Head::Token(blocks::linear(vb, "classifier", h, spec.labels)?)
            }
            HeadKind::QuestionAnswering => Head::Span(blocks::linear(vb, "qa_outputs", h, 2)?),
            HeadKind::MaskedLm => Head::MaskedLm(MaskedLmHead::load(vb, spec)?),
        })
    }
}

impl MaskedLmHead {
    fn load(vb: &VarBuilder, spec: &HeadSpec) -> candle_core::Result<Self> {
        let h = spec.hidden;
        let vocab = spec.word_embeddings.dim(0)?;
        // The first layout whose transform is in the checkpoint; the first one's error otherwise.
        let names = spec
            .layout
            .mlm
            .iter()
            .find(|n| vb.contains_tensor(&format!("{}.weight", n.dense)))
            .unwrap_or(&spec.layout.mlm[0]);
        let decoder_name = format!("{}.weight", names.decoder);
        let decoder = if vb.contains_tensor(&decoder_name) {
            vb.get((vocab, h), &decoder_name)?
        } else {
            spec.word_embeddings.clone()
        };
        Ok(Self {
            dense: blocks::linear(vb, names.dense, h, h)?,
            act: spec.settings.mlm_act,
            norm: blocks::layer_norm(vb, names.norm, h, spec.settings.eps)?,
            decoder,
            bias: vb.get(vocab, names.bias)?,
        })
    }

    /// Vocabulary logits `[rows, vocab]` for hidden states `[rows, hidden]`.
    pub fn forward(&self, rows: &Tensor) -> candle_core::Result<Tensor> {
        let x = self
            .norm
            .forward(&self.act.apply(&self.dense.forward(rows)?)?)?;
        x.matmul(&self.decoder.t()?)?.broadcast_add(&self.bias)
    }
}

impl SequenceHead {
    /// Label logits `[batch, labels]` from hidden states `[batch, tokens, hidden]`.
    pub fn forward(&self, hidden: &Tensor) -> candle_core::Result<Tensor> {
        let first = hidden.i((.., 0))?;
        self.classifier
            .forward(&self.act.apply(&self.pooler.forward(&first)?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_come_from_the_class_name() {
        assert_eq!(
            HeadKind::from_architecture("DebertaV2ForSequenceClassification"),
            HeadKind::SequenceClassification
        );
        assert_eq!(
            HeadKind::from_architecture("BertForMaskedLM"),
            HeadKind::MaskedLm
        );
        assert_eq!(HeadKind::from_architecture("BertModel"), HeadKind::Base);
        assert_eq!(
            HeadKind::from_architecture("XLMRobertaForQuestionAnswering"),
            HeadKind::QuestionAnswering
        );
    }
}
