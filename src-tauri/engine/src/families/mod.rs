//! Model families, written on candle-nn: one file per family body, the heads shared in `heads`.
//!
//! A family file knows its config.json fields, its weight names and its forward pass; `encoder`
//! puts a body and a head together for a model folder. Adding an encoder family means a body file
//! here, a row in `registry`, and its head names in `heads`.

pub mod bert;
pub mod causal;
pub mod deberta_v2;
pub mod distilbert;
pub mod encoder;
pub mod heads;
pub mod kernels;
pub mod layers;
pub mod panels;
pub mod q4_1_packed;
pub mod q5_0_prompt;
pub mod qmatmul;
pub mod row_split;
pub mod seq2seq;

use candle_core::Tensor;

/// Runs `work` on one of rayon's worker threads. A forward pass is hundreds of small parallel
/// loops (Wick's kernels, candle's ops, gemm): started from a thread outside the pool, each one
/// hands its work over and sleeps until it is done, two context switches per loop. From inside
/// the pool the caller takes part instead. Measured on SmolLM2 decode: 40-44 -> 60-66 tok/s.
pub fn on_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return work();
    }
    rayon::scope(|_| work())
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
