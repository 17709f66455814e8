//! The little numeric helpers pipelines share, computed in f32 as the `transformers` pipelines
//! compute them in NumPy float32, so scores agree to the last digits.

use crate::error::WickError;

/// Softmax with the maximum subtracted first.
pub fn softmax(xs: &[f32]) -> Vec<f32> {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = xs.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// Index of the largest value; the first one on ties, as NumPy's argmax.
pub fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in xs.iter().enumerate() {
        if *x > xs[best] {
            best = i;
        }
    }
    best
}

/// Indices from the highest score down; ties keep input order.
pub fn order_desc(xs: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..xs.len()).collect();
    idx.sort_by(|&a, &b| xs[b].total_cmp(&xs[a]));
    idx
}

/// How many results to return, as `top_k` in the pipelines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopK {
    K(usize),
    /// `top_k=None`: every label.
    All,
}

impl std::str::FromStr for TopK {
    type Err = WickError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" | "none" | "None" => Ok(TopK::All),
            n => n
                .parse::<usize>()
                .ok()
                .filter(|k| *k > 0)
                .map(TopK::K)
                .ok_or_else(|| {
                    WickError::InvalidInput(format!(
                        "expected a positive number or `all`, got `{n}`"
                    ))
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_survives_large_logits() {
        let p = softmax(&[1000.0, 1000.0, -1000.0]);
        assert!((p[0] - 0.5).abs() < 1e-6 && p[2] == 0.0, "{p:?}");
        assert_eq!(argmax(&[0.1, 0.7, 0.7]), 1);
        assert_eq!(order_desc(&[0.1, 0.7, 0.3, 0.7]), vec![1, 3, 2, 0]);
        assert_eq!("all".parse::<TopK>().ok(), Some(TopK::All));
        assert!("0".parse::<TopK>().is_err());
    }
}
