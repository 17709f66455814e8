//! Sentence embeddings as a map: the two principal components of a batch (PCA, as scikit-learn's
//! `PCA(n_components=2).fit_transform` computes them), so clusters of sentences show as clusters
//! of points beside the similarity heat map.
//!
//! The axes come from subspace iteration on `Xᵀ X` (X centred), applied as two products with X
//! per step, never as a `d × d` or `n × n` matrix: a batch of thousands of 1024-wide embeddings
//! costs a few milliseconds a step. Each axis' sign is fixed as scikit-learn fixes it (its largest
//! coefficient positive), so the same batch draws the same picture every time.

use serde::Serialize;
use ts_rs::TS;

/// Steps of subspace iteration at most; convergence is checked every step.
const MAX_STEPS: usize = 500;
/// Stop when no axis coefficient moved by more than this in a step.
const TOLERANCE: f64 = 1e-9;

/// The 2-D map of a batch of embeddings.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct EmbeddingMap {
    /// Each embedding's coordinates on the first two principal components, in input order.
    pub points: Vec<[f32; 2]>,
    /// The share of the batch's variance each axis explains (`explained_variance_ratio_`).
    pub explained_variance_ratio: [f32; 2],
}

/// Projects `vectors` (all of one length) on their first two principal components. Fewer than
/// two vectors, or vectors that do not vary, map to the origin.
pub fn pca_2d(vectors: &[Vec<f32>]) -> EmbeddingMap {
    let n = vectors.len();
    let d = vectors.first().map_or(0, Vec::len);
    let origin = EmbeddingMap {
        points: vec![[0.0; 2]; n],
        explained_variance_ratio: [0.0; 2],
    };
    if n < 2 || d == 0 || vectors.iter().any(|v| v.len() != d) {
        return origin;
    }
    // Centred rows, in f64: the variance of close sentences is small against their norms.
    let mut mean = vec![0f64; d];
    for v in vectors {
        for (m, x) in mean.iter_mut().zip(v) {
            *m += f64::from(*x) / n as f64;
        }
    }
    let x: Vec<Vec<f64>> = vectors
        .iter()
        .map(|v| {
            v.iter()
                .zip(&mean)
                .map(|(x, m)| f64::from(*x) - m)
                .collect()
        })
        .collect();
    let total: f64 = x.iter().flatten().map(|v| v * v).sum();
    if !total.is_finite() || total <= 0.0 {
        return origin;
    }
    let axes = principal_axes(&x, d);
    let scores = |axis: &[f64]| -> Vec<f64> { x.iter().map(|row| dot(row, axis)).collect() };
    let (s0, s1) = (scores(&axes[0]), scores(&axes[1]));
    let variance = |s: &[f64]| (s.iter().map(|v| v * v).sum::<f64>() / total) as f32;
    EmbeddingMap {
        explained_variance_ratio: [variance(&s0), variance(&s1)],
        points: s0
            .iter()
            .zip(&s1)
            .map(|(a, b)| [*a as f32, *b as f32])
            .collect(),
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The top two unit eigenvectors of `xᵀ x`, by subspace iteration from a fixed start.
fn principal_axes(x: &[Vec<f64>], d: usize) -> [Vec<f64>; 2] {
    // A start that is not orthogonal to any axis in practice, and the same every call.
    let mut axes = [
        (0..d)
            .map(|i| 1.0 + (i as f64 * 0.618).sin())
            .collect::<Vec<f64>>(),
        (0..d)
            .map(|i| (i as f64 * 1.414 + 0.5).cos())
            .collect::<Vec<f64>>(),
    ];
    orthonormalise(&mut axes);
    for _ in 0..MAX_STEPS {
        let mut next = axes.clone().map(|a| {
            let projected: Vec<f64> = x.iter().map(|row| dot(row, &a)).collect();
            let mut back = vec![0f64; d];
            for (row, p) in x.iter().zip(&projected) {
                for (b, v) in back.iter_mut().zip(row) {
                    *b += p * v;
                }
            }
            back
        });
        orthonormalise(&mut next);
        let moved = axes
            .iter()
            .zip(&next)
            .flat_map(|(a, b)| a.iter().zip(b).map(|(p, q)| (p - q).abs()))
            .fold(0f64, f64::max);
        axes = next;
        if moved < TOLERANCE {
            break;
        }
    }
    // Subspace iteration converges to the span; order the two by the variance they carry.
    let carried = |a: &[f64]| x.iter().map(|row| dot(row, a).powi(2)).sum::<f64>();
    if carried(&axes[1]) > carried(&axes[0]) {
        axes.swap(0, 1);
    }
    for a in &mut axes {
        flip_sign(a);
    }
    axes
}

/// Gram-Schmidt on two vectors; a vector that vanishes stays zero.
fn orthonormalise(axes: &mut [Vec<f64>; 2]) {
    let normalise = |a: &mut Vec<f64>| {
        let norm = dot(a, a).sqrt();
        if norm > 1e-300 {
            a.iter_mut().for_each(|v| *v /= norm);
        } else {
            a.iter_mut().for_each(|v| *v = 0.0);
        }
    };
    // The first axis' own sign is kept from step to step (the products preserve it), so
    // convergence is measured on the coefficients themselves.
    normalise(&mut axes[0]);
    let along = dot(&axes[1], &axes[0]);
    let first = axes[0].clone();
    axes[1]
        .iter_mut()
        .zip(&first)
        .for_each(|(v, f)| *v -= along * f);
    normalise(&mut axes[1]);
}

/// scikit-learn's `svd_flip(u_based_decision=False)`: the coefficient of largest magnitude is
/// positive.
fn flip_sign(axis: &mut [f64]) {
    let largest = axis
        .iter()
        .copied()
        .fold(0f64, |m, v| if v.abs() > m.abs() { v } else { m });
    if largest < 0.0 {
        axis.iter_mut().for_each(|v| *v = -*v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Points on a known plane: a spread of 2.8 along (1,1,0,0)/√2 and 0.5 along (0,0,1,0),
    /// uncorrelated (every value of one meets every value of the other), nothing on the fourth.
    fn plane() -> Vec<Vec<f32>> {
        let s = std::f32::consts::FRAC_1_SQRT_2;
        (0..40)
            .map(|i| {
                let t = ((i % 8) as f32 - 3.5) * 0.8;
                let u = if (i / 8) % 2 == 0 { 0.5 } else { -0.5 };
                vec![t * s + 5.0, t * s - 2.0, u + 1.0, 0.25]
            })
            .collect()
    }

    #[test]
    fn finds_the_axes_of_a_known_plane() {
        let vectors = plane();
        let map = pca_2d(&vectors);
        let mean = |k: usize| vectors.iter().map(|v| f64::from(v[k])).sum::<f64>() / 40.0;
        // The first coordinate is the projection on (1,1,0,0)/√2 (sign: largest coefficient
        // positive), the second on (0,0,1,0).
        for (v, p) in vectors.iter().zip(&map.points) {
            let s = std::f64::consts::FRAC_1_SQRT_2;
            let first = (f64::from(v[0]) - mean(0)) * s + (f64::from(v[1]) - mean(1)) * s;
            let second = f64::from(v[2]) - mean(2);
            assert!((f64::from(p[0]) - first).abs() < 1e-3, "{p:?} vs {first}");
            assert!((f64::from(p[1]) - second).abs() < 1e-3, "{p:?} vs {second}");
        }
        let [a, b] = map.explained_variance_ratio;
        assert!(
            a > b && b > 0.0 && a + b > 0.9999 && a + b <= 1.0001,
            "{a} {b}"
        );
    }

    #[test]
    fn degenerate_batches_map_to_the_origin() {
        assert_eq!(pca_2d(&[]).points.len(), 0);
        assert_eq!(pca_2d(&[vec![1.0, 2.0]]).points, vec![[0.0, 0.0]]);
        let same = vec![vec![0.5f32; 8]; 3];
        assert_eq!(pca_2d(&same).points, vec![[0.0, 0.0]; 3]);
        let ragged = vec![vec![1.0f32, 2.0], vec![1.0]];
        assert_eq!(pca_2d(&ragged).explained_variance_ratio, [0.0, 0.0]);
    }

    #[test]
    fn two_points_lie_on_the_first_axis() {
        let map = pca_2d(&[vec![0.0, 0.0, 1.0], vec![2.0, 0.0, 1.0]]);
        assert!((map.points[0][0] + 1.0).abs() < 1e-6 && (map.points[1][0] - 1.0).abs() < 1e-6);
        assert!(map.points.iter().all(|p| p[1].abs() < 1e-6));
        assert!((map.explained_variance_ratio[0] - 1.0).abs() < 1e-6);
    }
}
