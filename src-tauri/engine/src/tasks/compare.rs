//! Two variants of one model side by side (say f32 and 4-bit): the first generates greedily,
//! the second reads the same tokens, and for every position we measure whether the second
//! would have picked the same token and how far its distribution is from the first's
//! (KL divergence), with each variant's speed and weight memory.

use std::time::Instant;

use serde::Serialize;
use ts_rs::TS;

use super::text_generation::{Options, Prompt, TextGenerator};
use super::RunControl;
use crate::error::{Result, WickError};
use crate::families::causal::Session;
use crate::generate::Decoder;

/// One position of the comparison.
#[derive(Debug, Clone, Serialize, PartialEq, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ComparedToken {
    /// The token variant A generated (greedy).
    pub id: u32,
    pub text: String,
    pub logprob_a: f32,
    /// Variant B's log-probability of the same token.
    pub logprob_b: f32,
    /// What variant B would have picked.
    pub top_b: u32,
    pub top_b_text: String,
    /// KL(A || B) of the two next-token distributions, in nats.
    pub kl: f32,
}

/// Speed and size of one variant.
#[derive(Debug, Clone, Serialize, PartialEq, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct VariantStats {
    /// E.g. "Q4_1", "f32 → Q4K".
    pub label: String,
    #[ts(type = "number")]
    pub weight_bytes: u64,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
}

/// The whole comparison.
#[derive(Debug, Clone, Serialize, PartialEq, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct Comparison {
    pub tokens: Vec<ComparedToken>,
    /// Share of positions where B's top token is A's.
    pub agreement: f32,
    pub mean_kl: f32,
    pub a: VariantStats,
    pub b: VariantStats,
}

fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_sum = max + logits.iter().map(|l| (l - max).exp()).sum::<f32>().ln();
    logits.iter().map(|l| l - log_sum).collect()
}

fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// KL(p || q) from log-probabilities.
fn kl(p: &[f32], q: &[f32]) -> f32 {
    p.iter()
        .zip(q)
        .filter(|(lp, _)| lp.is_finite())
        .map(|(lp, lq)| lp.exp() * (lp - lq))
        .sum::<f32>()
        .max(0.0)
}

/// A timed forward pass: logits and seconds.
fn timed(session: &mut Session, tokens: &[Vec<u32>]) -> Result<(Vec<f32>, f64)> {
    let t = Instant::now();
    let logits = session.step(tokens)?.into_iter().next().unwrap_or_default();
    Ok((logits, t.elapsed().as_secs_f64()))
}

/// Compares `b` against `a` on `prompt` for up to `max_new_tokens` greedy tokens of `a`.
pub fn compare(
    a: &TextGenerator,
    b: &TextGenerator,
    prompt: &Prompt,
    options: &Options,
    max_new_tokens: usize,
    control: &RunControl,
) -> Result<Comparison> {
    control.cancel.check()?;
    let (_, ids) = a.encode_prompt(prompt, options, &control.cancel)?;
    let vocab = a.model().model.config.vocab_size;
    if b.model().model.config.vocab_size != vocab {
        return Err(WickError::InvalidInput(
            "the two variants have different vocabularies: compare variants of one model".into(),
        ));
    }
    if ids.is_empty() {
        return Err(WickError::InvalidInput("the prompt is empty".into()));
    }
    let eos = &a.model().model.config.eos_token_ids;
    let mut sa = Session::new(&a.model().model).cancelled_by(&control.cancel);
    let mut sb = Session::new(&b.model().model).cancelled_by(&control.cancel);
    let (mut la, prefill_a) = timed(&mut sa, std::slice::from_ref(&ids))?;
    let (mut lb, prefill_b) = timed(&mut sb, std::slice::from_ref(&ids))?;
    let (mut decode_a, mut decode_b) = (0.0, 0.0);
    let mut tokens = Vec::new();
    for step in 0..max_new_tokens {
        // Between tokens: what was compared so far is dropped with the rest (a comparison is
        // read whole).
        control.cancel.check()?;
        let (pa, pb) = (log_softmax(&la), log_softmax(&lb));
        let id = argmax(&pa);
        let top_b = argmax(&pb);
        tokens.push(ComparedToken {
            id,
            text: a.tokenizer().decode_with(&[id], false, false)?,
            logprob_a: pa[id as usize],
            logprob_b: pb[id as usize],
            top_b,
            top_b_text: a.tokenizer().decode_with(&[top_b], false, false)?,
            kl: kl(&pa, &pb),
        });
        if eos.contains(&id) || step + 1 == max_new_tokens {
            break;
        }
        let (next_a, sa_s) = timed(&mut sa, &[vec![id]])?;
        let (next_b, sb_s) = timed(&mut sb, &[vec![id]])?;
        la = next_a;
        lb = next_b;
        decode_a += sa_s;
        decode_b += sb_s;
    }
    let n = tokens.len().max(1) as f32;
    let decoded = tokens.len().saturating_sub(1) as f64;
    let rate = |count: f64, s: f64| if s > 0.0 { count / s } else { 0.0 };
    let stats = |g: &TextGenerator, prefill: f64, decode: f64| VariantStats {
        label: g.dtype_label(),
        weight_bytes: g.model().model.weight_bytes() as u64,
        prefill_tokens_per_s: rate(ids.len() as f64, prefill),
        decode_tokens_per_s: rate(decoded, decode),
    };
    Ok(Comparison {
        agreement: tokens.iter().filter(|t| t.id == t.top_b).count() as f32 / n,
        mean_kl: tokens.iter().map(|t| t.kl).sum::<f32>() / n,
        a: stats(a, prefill_a, decode_a),
        b: stats(b, prefill_b, decode_b),
        tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kl_is_zero_for_equal_and_positive_otherwise() {
        let p = log_softmax(&[1.0, 2.0, 3.0]);
        assert!(kl(&p, &p).abs() < 1e-6);
        let q = log_softmax(&[3.0, 2.0, 1.0]);
        assert!(kl(&p, &q) > 0.5);
    }
}
