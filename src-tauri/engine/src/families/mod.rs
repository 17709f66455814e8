//! Model families: thin wrappers over candle-transformers bodies, plus the heads candle lacks.
//! One file per family.

pub mod bert;
