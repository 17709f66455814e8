//! `generate()`: decoding strategies over any model that gives next-token logits, with the
//! settings, processors and stopping rules of transformers 4.57, per-token probabilities for the
//! pictures, and text streamed in whole characters.

pub mod config;
pub mod processors;
pub mod search;
pub mod stream;

pub use config::{EarlyStopping, GenerationConfig};
pub use search::{
    generate, Alternative, Decoder, Generated, Request, Sequence, StopReason, TokenInfo,
};
pub use stream::TextStream;
