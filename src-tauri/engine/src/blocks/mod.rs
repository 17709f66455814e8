//! Building blocks that several families share: dense layers (on Wick's packed panels on the
//! CPU), activations named as `config.json` names them, layer norms fused with their residual,
//! multi-head self-attention over a padded or packed batch, the post-norm encoder layer, and the
//! task heads an encoder body carries. Blocks know layers, not families: a family file says
//! which blocks it stacks and where its weights are named.

pub mod activation;
pub mod attention;
pub mod dense;
pub mod encoder_layer;
pub mod heads;
pub mod norm;

pub use activation::Activation;
pub use attention::{
    attend, attention_bias, merge_heads, split_heads, AttentionSink, SelfAttention, Tokens,
};
pub use dense::{linear, linear_no_bias, Dense};
pub use encoder_layer::{positions_from_zero, run_layers, FeedForward, PostNormLayer};
pub use norm::{layer_norm, Norm};
