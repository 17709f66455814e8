//! Rotary position embeddings: the inverse frequencies of a head (with Llama 3 or linear
//! scaling), turned into cos/sin tables for the positions a forward pass covers.

use candle_core::Tensor;

use super::config::{Llama3Scaling, RopeStyle};

#[derive(Debug, Clone)]
pub struct Rope {
    inv_freq: Vec<f64>,
    style: RopeStyle,
    /// Positions are divided by this (linear scaling).
    linear_factor: f64,
}

impl Rope {
    pub fn new(
        head_dim: usize,
        theta: f64,
        style: RopeStyle,
        llama3: Option<Llama3Scaling>,
        linear_factor: f64,
    ) -> Self {
        // As transformers computes it: base ** (2i / d) in float32.
        let mut inv_freq: Vec<f64> = (0..head_dim / 2)
            .map(|i| {
                let exponent = (2 * i) as f32 / head_dim as f32;
                (1.0 / (theta as f32).powf(exponent)) as f64
            })
            .collect();
        if let Some(s) = llama3 {
            inv_freq = llama3_frequencies(&inv_freq, &s);
        }
        Self {
            inv_freq,
            style,
            linear_factor,
        }
    }

    /// Rotates queries and keys (`[batch, heads, tokens, head_dim]`) as positions
    /// `offset..offset + tokens`, building the tables once for both.
    pub fn apply_pair(
        &self,
        q: &Tensor,
        k: &Tensor,
        offset: usize,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let (cos, sin) = self.tables(q, offset)?;
        Ok((self.rotate(q, &cos, &sin)?, self.rotate(k, &cos, &sin)?))
    }

    /// cos and sin `[tokens, head_dim / 2]` for `xs`'s tokens, in its dtype.
    fn tables(&self, xs: &Tensor, offset: usize) -> candle_core::Result<(Tensor, Tensor)> {
        let t = xs.dim(2)?;
        let half = self.inv_freq.len();
        let mut cos = Vec::with_capacity(t * half);
        let mut sin = Vec::with_capacity(t * half);
        for p in offset..offset + t {
            let pos = (p as f64 / self.linear_factor) as f32;
            for &f in &self.inv_freq {
                // float32 products, as transformers' `inv_freq @ position_ids`.
                let angle = pos * f as f32;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let dtype = xs.dtype();
        let cos = Tensor::from_vec(cos, (t, half), xs.device())?.to_dtype(dtype)?;
        let sin = Tensor::from_vec(sin, (t, half), xs.device())?.to_dtype(dtype)?;
        Ok((cos, sin))
    }

    fn rotate(&self, xs: &Tensor, cos: &Tensor, sin: &Tensor) -> candle_core::Result<Tensor> {
        let xs = xs.contiguous()?;
        match self.style {
            RopeStyle::Half => candle_nn::rotary_emb::rope(&xs, cos, sin),
            RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(&xs, cos, sin),
        }
    }
}

/// Llama 3's frequency scaling: long wavelengths are slowed by `factor`, short ones kept, and
/// the band between blended smoothly.
fn llama3_frequencies(inv_freq: &[f64], s: &Llama3Scaling) -> Vec<f64> {
    let low_wavelen = s.original_max_position_embeddings / s.low_freq_factor;
    let high_wavelen = s.original_max_position_embeddings / s.high_freq_factor;
    inv_freq
        .iter()
        .map(|&f| {
            let wavelen = 2.0 * std::f64::consts::PI / f;
            if wavelen < high_wavelen {
                f
            } else if wavelen > low_wavelen {
                f / s.factor
            } else {
                let smooth = (s.original_max_position_embeddings / wavelen - s.low_freq_factor)
                    / (s.high_freq_factor - s.low_freq_factor);
                (1.0 - smooth) * f / s.factor + smooth * f
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn position_zero_is_the_identity_and_norms_are_kept() {
        let rope = Rope::new(4, 10_000.0, RopeStyle::Half, None, 1.0);
        let xs = Tensor::new(&[[[[1f32, 2., 3., 4.], [1., 2., 3., 4.]]]], &Device::Cpu).unwrap();
        let out = rope
            .apply_pair(&xs, &xs, 0)
            .unwrap()
            .0
            .squeeze(0)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert_eq!(out[0], vec![1., 2., 3., 4.]);
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>();
        assert!((norm(&out[1]) - 30.0).abs() < 1e-4);
        // Position 1 rotates pair (x0, x2) by 1 radian.
        assert!((out[1][0] - (1f32.cos() - 3.0 * 1f32.sin())).abs() < 1e-5);
    }

    #[test]
    fn llama3_scaling_keeps_high_and_slows_low_frequencies() {
        let s = Llama3Scaling {
            factor: 8.0,
            low_freq_factor: 1.0,
            high_freq_factor: 4.0,
            original_max_position_embeddings: 8192.0,
        };
        let scaled = llama3_frequencies(&[1.0, 1e-5], &s);
        assert_eq!(scaled[0], 1.0);
        assert!((scaled[1] - 1e-5 / 8.0).abs() < 1e-12);
    }
}
