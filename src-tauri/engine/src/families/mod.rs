//! Model families, one file (or folder) each, written on the shared [`crate::blocks`] and
//! [`crate::kernels`]: a family knows its config.json fields, its weight names and its forward
//! pass, nothing else. [`registry`] maps model names to families and the tasks they serve;
//! [`encoder`] puts an encoder body and the head its checkpoint carries together.
//!
//! Adding an encoder family: a body file here, an `EncoderFamily` variant and a row in
//! [`registry`], and its head layout in [`encoder`]. Causal and encoder-decoder families are
//! added inside [`causal`] and [`seq2seq`] the same way.

pub mod bert;
pub mod causal;
pub mod deberta_v2;
pub mod distilbert;
pub mod encoder;
pub mod plausible;
pub mod registry;
pub mod seq2seq;

pub use registry::{detect, Detected, EncoderFamily, Family, Seq2SeqFamily};
