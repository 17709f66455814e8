//! Scalar math written so loops over it vectorise: no branches, no libm calls.

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;

/// Adding and subtracting 1.5 * 2^23 rounds an f32 to the nearest integer with plain
/// arithmetic: `floor` would be a libm call on the baseline x86-64 target (no SSE4.1), which
/// stops loops from vectorising.
const ROUNDER: f32 = 12_582_912.0;

/// `e^x` in f32 (relative error below 3e-7), without branches or calls so loops over it
/// vectorise.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let k = (x * LOG2E + ROUNDER) - ROUNDER;
    let r = x - k * LN2_HI - k * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    p * pow2(k)
}

/// `2^k` for a whole number `k` in [-126, 127], built from bits. `k as i32` would be Rust's
/// saturating conversion, which LLVM turns into per-lane scalar code on AVX-512 (a third of the
/// GELU kernel's time there). Instead, adding 2^23 puts `k + 127` in the low mantissa bits, and
/// shifting those into the exponent field drops the rest.
#[inline(always)]
fn pow2(k: f32) -> f32 {
    const MAGIC: f32 = 8_388_608.0 + 127.0;
    f32::from_bits((k + MAGIC).to_bits() << 23)
}

/// `erf(x)` (Abramowitz & Stegun 7.1.26, absolute error below 1.5e-7).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152 + t * 1.061_405_4))));
    (1.0 - poly * exp(-a * a)).copysign(x)
}

/// A dot product with eight independent sums, so it vectorises.
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ac.zip(bc) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The largest of `a` (-inf for none).
#[inline(always)]
pub(crate) fn max(a: &[f32]) -> f32 {
    fold_lanes(a, f32::NEG_INFINITY, |m, x| if x > m { x } else { m })
}

/// The sum of `a`.
#[inline(always)]
pub(crate) fn sum(a: &[f32]) -> f32 {
    fold_lanes(a, 0.0, |s, x| s + x)
}

/// `a` reduced by `op` over 16 independent lanes, then the lanes and the tail, so it
/// vectorises: a running sum or maximum stays scalar (float addition is not associative, and
/// `f32::max` keeps NaN rules), as the compiler must keep its order.
#[inline(always)]
fn fold_lanes(a: &[f32], identity: f32, op: impl Fn(f32, f32) -> f32 + Copy) -> f32 {
    let mut acc = [identity; 16];
    let chunks = a.chunks_exact(16);
    let tail = chunks.remainder().iter().fold(identity, |m, &x| op(m, x));
    for x in chunks {
        for (m, &x) in acc.iter_mut().zip(x) {
            *m = op(*m, x);
        }
    }
    op(acc.iter().fold(identity, |m, &x| op(m, x)), tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    #[test]
    fn exp_erf_and_gelu_are_accurate() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            let e = exp(x.min(80.0));
            assert!((e / x.min(80.0).exp() - 1.0).abs() < 3e-7, "exp({x})");
            let want = Tensor::new(&[x], &Device::Cpu).unwrap().gelu_erf().unwrap();
            let want = want.to_vec1::<f32>().unwrap()[0];
            assert!(
                (super::super::activation::gelu(x) - want).abs() < 2e-6 * (1.0 + x.abs()),
                "gelu({x}) {} vs {want}",
                super::super::activation::gelu(x)
            );
        }
    }
}
