//! Wick's engine: everything that is not UI.
//!
//! The desktop app (`wick-app`) and the `wick` command line are thin front ends over this crate,
//! which has no Tauri dependency, so it builds and tests without a window system.

pub mod blocks;
pub mod cancel;
pub mod device;
pub mod error;
pub mod facts;
pub mod families;
pub mod fit;
pub mod generate;
pub mod gguf_header;
pub mod hub;
pub mod kernels;
pub mod loading;
pub mod quant;
pub mod runtime;
pub mod source;
pub mod system;
pub mod tasks;
pub mod tokenize;
pub mod weights;

pub use error::{ErrorCode, ErrorPayload, Result, WickError};
pub use source::ModelSource;
pub use tokenize::{Inspection, TokenView, TokenizeOptions, WickTokenizer};
