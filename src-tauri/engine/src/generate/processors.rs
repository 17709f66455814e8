//! Logits processors and warpers, in the order and with the arithmetic of transformers 4.57
//! (`_get_logits_processor`): each takes one row of scores and the row's tokens so far (prompt
//! included; decoder tokens for encoder-decoder models) and edits the scores in place.

use std::collections::{HashMap, HashSet};

use super::config::GenerationConfig;

/// What the processors of one `generate()` call need to know.
#[derive(Debug, Clone)]
pub struct Processors {
    repetition_penalty: Option<f32>,
    no_repeat_ngram: Option<usize>,
    /// Total length below which EOS is forbidden.
    min_length: usize,
    eos: Vec<u32>,
    forced_bos: Option<u32>,
    forced_eos: Vec<u32>,
    max_length: usize,
    suppress: Vec<u32>,
    begin_suppress: Vec<u32>,
    begin_index: usize,
    warpers: Warpers,
}

/// The sampling warpers (only when sampling).
#[derive(Debug, Clone, Default)]
pub struct Warpers {
    pub temperature: Option<f32>,
    pub top_k: Option<usize>,
    pub top_p: Option<f32>,
    pub min_p: Option<f32>,
    pub typical_p: Option<f32>,
    pub min_tokens_to_keep: usize,
}

impl Warpers {
    /// The warpers `config` switches on (transformers skips those left at neutral values).
    pub fn from_config(config: &GenerationConfig, min_tokens_to_keep: usize) -> Self {
        Self {
            temperature: config.temperature.filter(|&t| t != 1.0),
            top_k: config.top_k.filter(|&k| k != 0),
            top_p: config.top_p.filter(|&p| p < 1.0),
            min_p: config.min_p,
            typical_p: config.typical_p.filter(|&p| p < 1.0),
            min_tokens_to_keep,
        }
    }

    /// Applies the warpers in transformers' order: temperature, top-k, top-p, min-p, typical.
    pub fn apply(&self, scores: &mut [f32]) {
        if let Some(t) = self.temperature {
            scores.iter_mut().for_each(|s| *s /= t);
        }
        if let Some(k) = self.top_k {
            top_k(scores, k.max(self.min_tokens_to_keep));
        }
        if let Some(p) = self.top_p {
            top_p(scores, p, self.min_tokens_to_keep);
        }
        if let Some(p) = self.min_p {
            min_p(scores, p, self.min_tokens_to_keep);
        }
        if let Some(p) = self.typical_p {
            typical(scores, p, self.min_tokens_to_keep);
        }
    }
}

impl Processors {
    /// `prompt_len`: the (decoder) prompt length when generation starts; `max_length`: the
    /// resolved total length.
    pub fn new(config: &GenerationConfig, prompt_len: usize, max_length: usize) -> Self {
        let beams = config.num_beams > 1;
        let min_tokens_to_keep = if beams {
            if config.eos_token_id.is_empty() {
                2
            } else {
                config.eos_token_id.len() + 1
            }
        } else {
            1
        };
        let mut begin_index = prompt_len;
        if prompt_len == 1 && config.forced_bos_token_id.is_some() {
            begin_index += 1;
        }
        Self {
            repetition_penalty: config.repetition_penalty.filter(|&p| p != 1.0),
            no_repeat_ngram: config.no_repeat_ngram_size.filter(|&n| n > 0),
            min_length: if config.eos_token_id.is_empty() {
                0
            } else {
                config.resolved_min_length(prompt_len)
            },
            eos: config.eos_token_id.clone(),
            forced_bos: config.forced_bos_token_id,
            forced_eos: config.forced_eos_token_id.clone(),
            max_length,
            suppress: config.suppress_tokens.clone().unwrap_or_default(),
            begin_suppress: config.begin_suppress_tokens.clone().unwrap_or_default(),
            begin_index,
            warpers: if config.do_sample {
                Warpers::from_config(config, min_tokens_to_keep)
            } else {
                Warpers::default()
            },
        }
    }

    pub fn warpers(&self) -> &Warpers {
        &self.warpers
    }

    /// Every processor, then (when sampling) every warper.
    pub fn apply(&self, tokens: &[u32], scores: &mut [f32]) {
        if let Some(p) = self.repetition_penalty {
            repetition_penalty(scores, tokens, p);
        }
        if let Some(n) = self.no_repeat_ngram {
            for id in banned_ngram_tokens(tokens, n) {
                ban(scores, id);
            }
        }
        let len = tokens.len();
        if len < self.min_length {
            for &id in &self.eos {
                ban(scores, id);
            }
        }
        if let (Some(bos), 1) = (self.forced_bos, len) {
            force(scores, &[bos]);
        }
        if !self.forced_eos.is_empty() && len + 1 == self.max_length {
            force(scores, &self.forced_eos);
        }
        for &id in &self.suppress {
            ban(scores, id);
        }
        if len == self.begin_index {
            for &id in &self.begin_suppress {
                ban(scores, id);
            }
        }
        self.warpers.apply(scores);
    }
}

fn ban(scores: &mut [f32], id: u32) {
    if let Some(s) = scores.get_mut(id as usize) {
        *s = f32::NEG_INFINITY;
    }
}

/// Everything but `ids` becomes -inf; `ids` become 0.
fn force(scores: &mut [f32], ids: &[u32]) {
    scores.iter_mut().for_each(|s| *s = f32::NEG_INFINITY);
    for &id in ids {
        if let Some(s) = scores.get_mut(id as usize) {
            *s = 0.0;
        }
    }
}

/// Each token already present (once, however often it occurs) is made less likely: negative
/// scores multiplied by the penalty, positive ones divided.
pub fn repetition_penalty(scores: &mut [f32], tokens: &[u32], penalty: f32) {
    let seen: HashSet<u32> = tokens.iter().copied().collect();
    for id in seen {
        if let Some(s) = scores.get_mut(id as usize) {
            *s = if *s < 0.0 { *s * penalty } else { *s / penalty };
        }
    }
}

/// Tokens that would complete an n-gram already present in `tokens`.
pub fn banned_ngram_tokens(tokens: &[u32], n: usize) -> Vec<u32> {
    let len = tokens.len();
    if len + 1 < n {
        return Vec::new();
    }
    let mut followers: HashMap<&[u32], Vec<u32>> = HashMap::new();
    if len >= n {
        for gram in tokens.windows(n) {
            followers
                .entry(&gram[..n - 1])
                .or_default()
                .push(gram[n - 1]);
        }
    }
    let prefix = &tokens[len + 1 - n..];
    followers.get(prefix).cloned().unwrap_or_default()
}

/// Keeps the `k` highest scores (and any tied with the k-th).
pub fn top_k(scores: &mut [f32], k: usize) {
    let k = k.min(scores.len());
    if k == 0 {
        return;
    }
    let mut sorted: Vec<f32> = scores.to_vec();
    sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let kth = sorted[k - 1];
    scores
        .iter_mut()
        .filter(|s| **s < kth)
        .for_each(|s| *s = f32::NEG_INFINITY);
}

/// Softmax of scores, with -inf giving 0.
pub fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return vec![0.0; scores.len()];
    }
    let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Indices sorted by score, ascending (ties in index order, as a stable sort gives).
fn ascending(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    order
}

/// Nucleus sampling: drops the least likely tokens whose total probability is at most
/// `1 - p`, keeping at least `keep`.
pub fn top_p(scores: &mut [f32], p: f32, keep: usize) {
    let order = ascending(scores);
    let sorted: Vec<f32> = order.iter().map(|&i| scores[i]).collect();
    let probs = softmax(&sorted);
    let n = order.len();
    let mut cumulative = 0.0f32;
    for (rank, (&i, prob)) in order.iter().zip(probs).enumerate() {
        cumulative += prob;
        if cumulative <= 1.0 - p && rank < n.saturating_sub(keep) {
            scores[i] = f32::NEG_INFINITY;
        }
    }
}

/// Drops tokens less likely than `p` times the most likely one, keeping at least `keep`.
pub fn min_p(scores: &mut [f32], p: f32, keep: usize) {
    let probs = softmax(scores);
    let top = probs.iter().copied().fold(0.0f32, f32::max);
    let threshold = p * top;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let kept: HashSet<usize> = order.into_iter().take(keep).collect();
    for (i, prob) in probs.iter().enumerate() {
        if *prob < threshold && !kept.contains(&i) {
            scores[i] = f32::NEG_INFINITY;
        }
    }
}

/// Locally typical sampling.
pub fn typical(scores: &mut [f32], mass: f32, keep: usize) {
    let probs = softmax(scores);
    let entropy: f32 = probs
        .iter()
        .filter(|p| **p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    let shifted: Vec<f32> = probs
        .iter()
        .map(|p| {
            if *p > 0.0 {
                (-p.ln() - entropy).abs()
            } else {
                f32::INFINITY
            }
        })
        .collect();
    let order = ascending(&shifted);
    let mut cumulative = 0.0;
    let mut last = 0;
    for &i in &order {
        cumulative += probs[i];
        if cumulative < mass {
            last += 1;
        }
    }
    let last = last.min(order.len().saturating_sub(1));
    let cut = shifted[order[last]];
    for (rank, &i) in order.iter().enumerate() {
        if shifted[i] > cut && rank >= keep {
            scores[i] = f32::NEG_INFINITY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn repetition_penalty_divides_positive_and_multiplies_negative() {
        let mut s = vec![2.0, -2.0, 1.0];
        repetition_penalty(&mut s, &[0, 1, 1], 2.0);
        assert_eq!(s, vec![1.0, -4.0, 1.0]);
    }

    #[test]
    fn ngrams_ban_what_would_repeat() {
        // 5 6 7 ... 5 6 -> 7 is banned for n = 3.
        assert_eq!(banned_ngram_tokens(&[5, 6, 7, 1, 5, 6], 3), vec![7]);
        assert!(banned_ngram_tokens(&[5, 6], 3).is_empty());
        // n = 1 bans every token seen.
        let mut banned = banned_ngram_tokens(&[3, 4, 3], 1);
        banned.sort();
        assert_eq!(banned, vec![3, 3, 4]);
    }

    #[test]
    fn top_k_keeps_ties() {
        let mut s = vec![1.0, 3.0, 2.0, 2.0, 0.0];
        top_k(&mut s, 2);
        assert_eq!(s, vec![NEG, 3.0, 2.0, 2.0, NEG]);
    }

    #[test]
    fn top_p_keeps_the_smallest_nucleus() {
        // probabilities ~ 0.64, 0.24, 0.09, 0.03
        let mut s: Vec<f32> = [0.64f32, 0.24, 0.09, 0.03].iter().map(|p| p.ln()).collect();
        top_p(&mut s, 0.8, 1);
        assert!(s[0].is_finite() && s[1].is_finite());
        assert_eq!(s[2..], [NEG, NEG]);
        let mut one: Vec<f32> = [0.9f32, 0.1].iter().map(|p| p.ln()).collect();
        top_p(&mut one, 0.0, 1);
        assert!(one[0].is_finite() && one[1] == NEG);
    }

    #[test]
    fn min_p_scales_with_the_top_probability() {
        let mut s: Vec<f32> = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
        min_p(&mut s, 0.2, 1);
        assert!(s[2].is_finite());
        assert_eq!(s[3], NEG);
    }

    #[test]
    fn forced_and_min_length_processors() {
        let config = GenerationConfig {
            eos_token_id: vec![2],
            min_new_tokens: Some(2),
            forced_bos_token_id: Some(1),
            ..Default::default()
        };
        let procs = Processors::new(&config, 1, 10);
        let mut s = vec![0.5; 4];
        procs.apply(&[0], &mut s);
        assert_eq!(s, vec![NEG, 0.0, NEG, NEG]);
        let mut s = vec![0.5; 4];
        procs.apply(&[0, 1], &mut s);
        assert_eq!(s[2], NEG, "EOS is banned before min_new_tokens");
        let mut s = vec![0.5; 4];
        procs.apply(&[0, 1, 3], &mut s);
        assert_eq!(s[2], 0.5);
    }
}
