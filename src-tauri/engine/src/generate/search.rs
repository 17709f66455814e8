//! The `generate()` loops: greedy and multinomial sampling (`_sample`) and beam search
//! (`_beam_search`), with transformers 4.57's stopping rules, over any model that can give the
//! next-token logits of a batch of rows ([`Decoder`]).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use ts_rs::TS;

use super::config::{EarlyStopping, GenerationConfig};
use super::processors::{softmax, Processors};
use crate::error::{Result, WickError};

/// A model with its state (key/value caches, encoder output), stepping a batch of rows.
pub trait Decoder {
    /// Feeds `tokens` (one slice per row, all the same length) after what each row has seen and
    /// returns the next-token logits of every row, `[rows][vocab]`.
    fn step(&mut self, tokens: &[Vec<u32>]) -> Result<Vec<Vec<f32>>>;
    /// Keeps rows `rows` in that order (beam reordering, or one prompt copied into several rows).
    fn select_rows(&mut self, rows: &[u32]) -> Result<()>;
    /// Bytes its key/value cache holds now, for the runtime's memory budget.
    fn cache_bytes(&self) -> u64 {
        0
    }
}

/// One alternative to a generated token.
#[derive(Debug, Clone, Serialize, PartialEq, TS)]
#[ts(export)]
pub struct Alternative {
    pub id: u32,
    pub logprob: f32,
}

/// What the model thought of one generated token, from its raw (unprocessed) distribution.
#[derive(Debug, Clone, Serialize, PartialEq, TS)]
#[ts(export)]
pub struct TokenInfo {
    pub id: u32,
    /// log-probability of this token under the model's distribution.
    pub logprob: f32,
    /// Entropy of the distribution, in nats.
    pub entropy: f32,
    /// The most likely tokens at this step, best first (as many as asked for).
    pub top: Vec<Alternative>,
}

/// Why a sequence stopped.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum StopReason {
    Eos,
    MaxLength,
    StopString,
    Cancelled,
}

/// One generated sequence.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Sequence {
    /// Prompt (decoder prompt for encoder-decoder models) plus the generated tokens, padded as
    /// transformers pads them.
    pub ids: Vec<u32>,
    /// How many of `ids` are the prompt.
    pub prompt_len: usize,
    /// The generated tokens (no padding), with what the model thought of each.
    pub tokens: Vec<TokenInfo>,
    /// Beam search: the length-normalised score (`sequences_scores`).
    pub score: Option<f32>,
    pub stop: StopReason,
}

/// Called for every generated token of row `row`; return `false` to stop generating.
pub type OnToken<'a> = dyn FnMut(usize, &TokenInfo) -> bool + 'a;

/// Tells whether a stop string ended within a sequence's last token.
pub type StopCheck<'a> = dyn Fn(&[u32]) -> bool + 'a;

/// What a `generate()` call needs besides the model.
pub struct Request<'a> {
    pub config: &'a GenerationConfig,
    /// The (decoder) prompt.
    pub prompt: &'a [u32],
    /// The model's position limit, which caps the default length.
    pub max_positions: Option<usize>,
    /// How many alternatives to record per token (0-20).
    pub top_logprobs: usize,
    pub stop_strings: Option<&'a StopCheck<'a>>,
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("config", self.config)
            .field("prompt", &self.prompt)
            .finish()
    }
}

/// The outcome of `generate()`.
#[derive(Debug, Clone)]
pub struct Generated {
    pub sequences: Vec<Sequence>,
    /// The sampler's seed (chosen at random when none was given), to reproduce the run.
    pub seed: Option<u64>,
}

/// A fresh seed, small enough to survive a trip through JavaScript numbers (2^53) so the one
/// shown can be typed back in to repeat the run.
fn random_seed() -> u64 {
    u64::from(rand::rng().random::<u32>())
}

fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    let log_sum = max + sum.ln();
    logits.iter().map(|l| l - log_sum).collect()
}

/// The token's log-probability, the distribution's entropy and its `k` best tokens.
fn token_info(logprobs: &[f32], id: u32, k: usize) -> TokenInfo {
    let entropy = -logprobs
        .iter()
        .filter(|l| l.is_finite())
        .map(|l| l.exp() * l)
        .sum::<f32>();
    let top = best(logprobs, k)
        .into_iter()
        .map(|i| Alternative {
            id: i as u32,
            logprob: logprobs[i],
        })
        .collect();
    TokenInfo {
        id,
        logprob: logprobs
            .get(id as usize)
            .copied()
            .unwrap_or(f32::NEG_INFINITY),
        entropy,
        top,
    }
}

/// The indices of the `k` largest values, largest first, ties in index order (as a stable sort
/// gives). One pass with a list of `k`: sorting the whole vocabulary's indices allocated its
/// size for every generated token (0.4 MB for SmolLM2, 2 MB for Gemma 3), and those pages,
/// faulted in and given back each token, slowed the decode steps around them by 9%.
fn best(values: &[f32], k: usize) -> Vec<usize> {
    use std::cmp::Ordering;
    let mut top: Vec<usize> = Vec::with_capacity(k + 1);
    if k == 0 {
        return top;
    }
    for (i, v) in values.iter().enumerate() {
        let beats_last = top
            .last()
            .is_none_or(|&last| v.total_cmp(&values[last]) == Ordering::Greater);
        if top.len() < k || beats_last {
            // After every value at least as large: a tie keeps the earlier index first.
            let at = top.partition_point(|&j| values[j].total_cmp(v) != Ordering::Less);
            top.insert(at, i);
            top.truncate(k);
        }
    }
    top
}

/// The first index of the largest score (as torch.argmax).
fn argmax(scores: &[f32]) -> u32 {
    let mut best = 0;
    for (i, s) in scores.iter().enumerate() {
        if *s > scores[best] {
            best = i;
        }
    }
    best as u32
}

fn sample(scores: &[f32], rng: &mut ChaCha8Rng) -> Result<u32> {
    let probs = softmax(scores);
    let total: f32 = probs.iter().sum();
    if total.is_nan() || total <= 0.0 {
        return Err(WickError::ModelFailed(
            "every token was filtered out; nothing left to sample".into(),
        ));
    }
    let mut u = rng.random::<f32>() * total;
    let mut last = 0;
    for (i, p) in probs.iter().enumerate() {
        if *p > 0.0 {
            last = i;
            if u < *p {
                return Ok(i as u32);
            }
            u -= p;
        }
    }
    Ok(last as u32)
}

/// Runs `generate()` on one prompt. `on_token` sees tokens as they come (greedy and sampling;
/// beam search reports its winners at the end).
pub fn generate(
    decoder: &mut dyn Decoder,
    request: &Request,
    on_token: &mut OnToken,
) -> Result<Generated> {
    let config = request.config;
    config.validate()?;
    if request.prompt.is_empty() {
        return Err(WickError::InvalidInput(
            "the prompt is empty: generation needs at least one token to start from".into(),
        ));
    }
    let max_length = config.resolved_max_length(request.prompt.len(), request.max_positions);
    if request.prompt.len() >= max_length {
        return Err(WickError::InvalidInput(format!(
            "the prompt is {} tokens, which leaves no room to generate (max_length is {}); \
             raise max_new_tokens or shorten the prompt",
            request.prompt.len(),
            max_length
        )));
    }
    if let Some(limit) = request.max_positions {
        if request.prompt.len() >= limit {
            return Err(WickError::InvalidInput(format!(
                "the prompt is {} tokens; this model reads at most {limit}",
                request.prompt.len()
            )));
        }
    }
    let max_length = request
        .max_positions
        .map_or(max_length, |m| max_length.min(m));
    let processors = Processors::new(config, request.prompt.len(), max_length);
    if config.num_beams > 1 {
        beam_search(decoder, request, &processors, max_length, on_token)
    } else {
        sample_or_greedy(decoder, request, &processors, max_length, on_token)
    }
}

fn sample_or_greedy(
    decoder: &mut dyn Decoder,
    request: &Request,
    processors: &Processors,
    max_length: usize,
    on_token: &mut OnToken,
) -> Result<Generated> {
    let config = request.config;
    let rows = config.num_return_sequences;
    let prompt = request.prompt;
    let seed = config
        .do_sample
        .then(|| config.seed.unwrap_or_else(random_seed));
    let mut rng = ChaCha8Rng::seed_from_u64(seed.unwrap_or(0));
    let pad = config
        .pad_token_id
        .or_else(|| config.eos_token_id.first().copied());
    let mut logits = decoder.step(&[prompt.to_vec()])?;
    if rows > 1 {
        decoder.select_rows(&vec![0; rows])?;
        let first = logits.pop().unwrap_or_default();
        logits = vec![first; rows];
    }
    let mut seqs: Vec<Sequence> = (0..rows)
        .map(|_| Sequence {
            ids: prompt.to_vec(),
            prompt_len: prompt.len(),
            tokens: Vec::new(),
            score: None,
            stop: StopReason::MaxLength,
        })
        .collect();
    let mut done = vec![false; rows];
    loop {
        let mut next = Vec::with_capacity(rows);
        for (r, seq) in seqs.iter_mut().enumerate() {
            if done[r] {
                next.push(vec![pad.unwrap_or(0)]);
                continue;
            }
            let raw = &logits[r];
            let mut scores = raw.clone();
            processors.apply(&seq.ids, &mut scores);
            let id = if config.do_sample {
                sample(&scores, &mut rng)?
            } else {
                argmax(&scores)
            };
            let info = token_info(&log_softmax(raw), id, request.top_logprobs);
            seq.ids.push(id);
            seq.tokens.push(info);
            let keep_going = on_token(r, seq.tokens.last().expect("just pushed"));
            let stop = if !keep_going {
                Some(StopReason::Cancelled)
            } else if config.eos_token_id.contains(&id) {
                Some(StopReason::Eos)
            } else if request.stop_strings.is_some_and(|check| check(&seq.ids)) {
                Some(StopReason::StopString)
            } else if seq.ids.len() >= max_length {
                Some(StopReason::MaxLength)
            } else {
                None
            };
            if let Some(reason) = stop {
                seq.stop = reason;
                done[r] = true;
            }
            next.push(vec![id]);
        }
        if done.iter().all(|d| *d) {
            break;
        }
        logits = decoder.step(&next)?;
    }
    // Rows that stopped early are padded to the longest, as transformers returns them.
    let longest = seqs.iter().map(|s| s.ids.len()).max().unwrap_or(0);
    for s in &mut seqs {
        s.ids.resize(longest, pad.unwrap_or(0));
    }
    Ok(Generated {
        sequences: seqs,
        seed,
    })
}

/// A finished beam hypothesis.
#[derive(Debug, Clone)]
struct Hypothesis {
    score: f32,
    ids: Vec<u32>,
    tokens: Vec<TokenInfo>,
    stop: StopReason,
}

/// Beam search as transformers 4.57's vectorised `_beam_search` does it (one prompt).
fn beam_search(
    decoder: &mut dyn Decoder,
    request: &Request,
    processors: &Processors,
    max_length: usize,
    on_token: &mut OnToken,
) -> Result<Generated> {
    let config = request.config;
    let prompt = request.prompt;
    let beams = config.num_beams;
    let prompt_len = prompt.len();
    let eos = &config.eos_token_id;
    let keep = (1 + eos.len()).max(2) * beams;
    let seed = config
        .do_sample
        .then(|| config.seed.unwrap_or_else(random_seed));
    let mut rng = ChaCha8Rng::seed_from_u64(seed.unwrap_or(0));
    let length_norm = |generated: usize| -> f32 { (generated as f32).powf(config.length_penalty) };

    let first = decoder.step(&[prompt.to_vec()])?;
    decoder.select_rows(&vec![0; beams])?;
    let mut logits: Vec<Vec<f32>> = vec![first.into_iter().next().unwrap_or_default(); beams];
    let mut running: Vec<Vec<u32>> = vec![prompt.to_vec(); beams];
    let mut running_tokens: Vec<Vec<TokenInfo>> = vec![Vec::new(); beams];
    let mut running_scores: Vec<f32> = (0..beams)
        .map(|b| if b == 0 { 0.0 } else { -1e9 })
        .collect();
    let mut finished: Vec<Hypothesis> = Vec::new();
    let mut cur_len = prompt_len;
    let mut heuristic_unsatisfied = true;
    let mut cancelled = false;

    loop {
        // Candidates over all beams: (score, beam, token).
        let mut candidates: Vec<(f32, usize, u32)> = Vec::with_capacity(beams * keep);
        let mut infos: Vec<Vec<f32>> = Vec::with_capacity(beams);
        for b in 0..beams {
            let raw_logprobs = log_softmax(&logits[b]);
            let mut scores = raw_logprobs.clone();
            processors.apply(&running[b], &mut scores);
            for (id, s) in scores.iter().enumerate() {
                let total = s + running_scores[b];
                if total > f32::NEG_INFINITY {
                    candidates.push((total, b, id as u32));
                }
            }
            infos.push(raw_logprobs);
        }
        let chosen: Vec<(f32, usize, u32)> = if config.do_sample {
            sample_without_replacement(&candidates, keep, &mut rng)
        } else {
            // Highest first; ties by flattened index (beam-major), as torch.topk returns them.
            candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
            candidates.truncate(keep);
            candidates
        };
        let generated = cur_len + 1 - prompt_len;
        let at_max = cur_len + 1 >= max_length;
        let accepting = heuristic_unsatisfied
            && !(finished.len() >= beams && config.early_stopping == EarlyStopping::Stop);
        let mut next_running: Vec<(f32, usize, u32)> = Vec::new();
        for (rank, &(score, b, id)) in chosen.iter().enumerate() {
            let mut ids = running[b].clone();
            ids.push(id);
            let hits_eos = eos.contains(&id);
            let hits_stop = request.stop_strings.is_some_and(|c| c(&ids));
            let hits = hits_eos || hits_stop || at_max;
            if !hits {
                next_running.push((score, b, id));
                continue;
            }
            if rank >= beams || !accepting {
                continue;
            }
            let normalised = score / length_norm(generated);
            let mut tokens = running_tokens[b].clone();
            tokens.push(token_info(&infos[b], id, request.top_logprobs));
            let hyp = Hypothesis {
                score: normalised,
                ids,
                tokens,
                stop: if hits_eos {
                    StopReason::Eos
                } else if hits_stop {
                    StopReason::StopString
                } else {
                    StopReason::MaxLength
                },
            };
            if finished.len() < beams {
                finished.push(hyp);
            } else if let Some(worst) = finished
                .iter_mut()
                .min_by(|a, b| a.score.total_cmp(&b.score))
                .filter(|w| w.score < normalised)
            {
                *worst = hyp;
            }
            finished.sort_by(|a, b| b.score.total_cmp(&a.score));
        }
        // All candidates finished (max length): nothing continues.
        if at_max || next_running.is_empty() {
            break;
        }
        next_running.sort_by(|a, b| b.0.total_cmp(&a.0));
        next_running.truncate(beams);
        while next_running.len() < beams {
            // Fewer live candidates than beams (tiny vocabularies): pad with dead copies.
            let last = next_running[next_running.len() - 1];
            next_running.push((-1e9, last.1, last.2));
        }
        let sources: Vec<u32> = next_running.iter().map(|c| c.1 as u32).collect();
        let mut new_running = Vec::with_capacity(beams);
        let mut new_tokens = Vec::with_capacity(beams);
        for &(_, b, id) in &next_running {
            let mut ids = running[b].clone();
            ids.push(id);
            new_running.push(ids);
            let mut toks = running_tokens[b].clone();
            toks.push(token_info(&infos[b], id, request.top_logprobs));
            new_tokens.push(toks);
        }
        running = new_running;
        running_tokens = new_tokens;
        running_scores = next_running.iter().map(|c| c.0).collect();
        cur_len += 1;

        // transformers' early-stop heuristic, with the new length.
        let span = match config.early_stopping {
            EarlyStopping::Never if config.length_penalty > 0.0 => max_length - prompt_len,
            _ => cur_len - prompt_len,
        };
        let best_possible = running_scores[0] / length_norm(span);
        let worst_finished = if finished.len() >= beams {
            finished
                .iter()
                .map(|h| h.score)
                .fold(f32::INFINITY, f32::min)
        } else {
            -1e9
        };
        heuristic_unsatisfied &= best_possible > worst_finished;
        let early_done = finished.len() >= beams && config.early_stopping == EarlyStopping::Stop;
        if !heuristic_unsatisfied || early_done {
            break;
        }
        if !on_token(0, running_tokens[0].last().expect("a token per step")) {
            cancelled = true;
            break;
        }
        decoder.select_rows(&sources)?;
        let feed: Vec<Vec<u32>> = next_running.iter().map(|c| vec![c.2]).collect();
        logits = decoder.step(&feed)?;
    }
    if cancelled {
        // The best running beam so far, as is.
        finished = vec![Hypothesis {
            score: running_scores[0] / length_norm(cur_len - prompt_len),
            ids: running[0].clone(),
            tokens: running_tokens[0].clone(),
            stop: StopReason::Cancelled,
        }];
    }
    finished.sort_by(|a, b| b.score.total_cmp(&a.score));
    finished.truncate(config.num_return_sequences);
    // transformers pads with `pad or eos[0]` (a pad id of 0 counts as unset there).
    let fill = if eos.is_empty() {
        u32::MAX
    } else {
        config.pad_token_id.filter(|&p| p != 0).unwrap_or(eos[0])
    };
    let longest = finished.iter().map(|h| h.ids.len()).max().unwrap_or(0);
    let sequences = finished
        .into_iter()
        .map(|h| {
            let mut ids = h.ids;
            ids.resize(longest, fill);
            Sequence {
                ids,
                prompt_len,
                tokens: h.tokens,
                score: Some(h.score),
                stop: h.stop,
            }
        })
        .collect();
    Ok(Generated { sequences, seed })
}

/// Beam sampling's candidate draw: `k` of the candidates without replacement, in draw order,
/// weighted by the softmax of their scores.
fn sample_without_replacement(
    candidates: &[(f32, usize, u32)],
    k: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<(f32, usize, u32)> {
    let scores: Vec<f32> = candidates.iter().map(|c| c.0).collect();
    let mut probs = softmax(&scores);
    let mut out = Vec::with_capacity(k);
    for _ in 0..k.min(candidates.len()) {
        let total: f32 = probs.iter().sum();
        if total.is_nan() || total <= 0.0 {
            break;
        }
        let mut u = rng.random::<f32>() * total;
        let mut pick = None;
        for (i, p) in probs.iter().enumerate() {
            if *p > 0.0 {
                pick = Some(i);
                if u < *p {
                    break;
                }
                u -= p;
            }
        }
        let Some(i) = pick else { break };
        out.push(candidates[i]);
        probs[i] = 0.0;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_k_are_what_a_stable_sort_gives() {
        let mut state = 7u64;
        for len in [0usize, 1, 5, 100, 1000] {
            // Few distinct values, so ties are many.
            let values: Vec<f32> = (0..len)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) % 17) as f32 - 8.0
                })
                .collect();
            for k in [0usize, 1, 3, 8, 20, 2000] {
                let mut order: Vec<usize> = (0..len).collect();
                order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
                order.truncate(k);
                assert_eq!(best(&values, k), order, "len {len} k {k}");
            }
        }
    }

    /// A toy model: the next token's logits depend only on the last token, from a table.
    struct Table {
        table: Vec<Vec<f32>>,
        rows: Vec<u32>,
        steps: usize,
    }

    impl Decoder for Table {
        fn step(&mut self, tokens: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
            self.steps += 1;
            self.rows = tokens.iter().map(|t| *t.last().unwrap()).collect();
            Ok(self
                .rows
                .iter()
                .map(|&r| self.table[r as usize].clone())
                .collect())
        }
        fn select_rows(&mut self, rows: &[u32]) -> Result<()> {
            self.rows = rows.iter().map(|&r| self.rows[r as usize]).collect();
            Ok(())
        }
    }

    fn table() -> Table {
        // Token 0 is EOS. From 1: 2 likely, 3 less. From 2: EOS likely. From 3: 1.
        let l = |p: [f32; 4]| p.iter().map(|x| x.ln()).collect::<Vec<f32>>();
        Table {
            table: vec![
                l([0.97, 0.01, 0.01, 0.01]),
                l([0.05, 0.05, 0.5, 0.4]),
                l([0.6, 0.2, 0.1, 0.1]),
                l([0.1, 0.7, 0.1, 0.1]),
            ],
            rows: Vec::new(),
            steps: 0,
        }
    }

    fn request<'a>(config: &'a GenerationConfig, prompt: &'a [u32]) -> Request<'a> {
        Request {
            config,
            prompt,
            max_positions: None,
            top_logprobs: 2,
            stop_strings: None,
        }
    }

    #[test]
    fn greedy_stops_at_eos_and_records_logprobs() {
        let config = GenerationConfig {
            eos_token_id: vec![0],
            max_new_tokens: Some(5),
            ..Default::default()
        };
        let mut model = table();
        let out = generate(&mut model, &request(&config, &[1]), &mut |_, _| true).unwrap();
        let seq = &out.sequences[0];
        assert_eq!(seq.ids, vec![1, 2, 0]);
        assert_eq!(seq.stop, StopReason::Eos);
        assert!((seq.tokens[0].logprob - 0.5f32.ln()).abs() < 1e-5);
        assert_eq!(seq.tokens[0].top[0].id, 2);
        assert_eq!(seq.tokens[0].top[1].id, 3);
    }

    #[test]
    fn cancel_stops_after_the_current_token() {
        let config = GenerationConfig {
            max_new_tokens: Some(50),
            ..Default::default()
        };
        let mut model = table();
        let mut seen = 0;
        let out = generate(&mut model, &request(&config, &[3]), &mut |_, _| {
            seen += 1;
            seen < 3
        })
        .unwrap();
        assert_eq!(out.sequences[0].tokens.len(), 3);
        assert_eq!(out.sequences[0].stop, StopReason::Cancelled);
        assert_eq!(model.steps, 3, "no forward pass after the cancel");
    }

    #[test]
    fn sampling_with_a_seed_repeats() {
        let config = GenerationConfig {
            do_sample: true,
            seed: Some(7),
            max_new_tokens: Some(12),
            num_return_sequences: 3,
            ..Default::default()
        };
        let run = || {
            let mut model = table();
            generate(&mut model, &request(&config, &[1]), &mut |_, _| true)
                .unwrap()
                .sequences
                .into_iter()
                .map(|s| s.ids)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(), run());
        assert_eq!(run().len(), 3);
    }

    #[test]
    fn beam_search_prefers_the_likelier_whole_sequence() {
        // Greedy from 1 picks 2 (0.5) then EOS (0.6): 0.30. The beam also sees 3 (0.4) -> 1
        // (0.7) ..., but 1 -> 2 -> 0 is the best finished hypothesis.
        let config = GenerationConfig {
            num_beams: 2,
            num_return_sequences: 2,
            eos_token_id: vec![0],
            max_new_tokens: Some(4),
            ..Default::default()
        };
        let mut model = table();
        let out = generate(&mut model, &request(&config, &[1]), &mut |_, _| true).unwrap();
        assert_eq!(out.sequences.len(), 2);
        assert_eq!(out.sequences[0].ids[..3], [1, 2, 0]);
        let expected = (0.5f32.ln() + 0.6f32.ln()) / 2.0;
        assert!((out.sequences[0].score.unwrap() - expected).abs() < 1e-5);
        assert!(out.sequences[0].score >= out.sequences[1].score);
    }

    #[test]
    fn a_prompt_at_the_length_limit_is_refused() {
        let config = GenerationConfig {
            max_length: 3,
            ..Default::default()
        };
        let mut model = table();
        let err =
            generate(&mut model, &request(&config, &[1, 2, 3]), &mut |_, _| true).unwrap_err();
        assert!(err.to_string().contains("no room"), "{err}");
        let empty = generate(&mut model, &request(&config, &[]), &mut |_, _| true).unwrap_err();
        assert!(empty.to_string().contains("empty"), "{empty}");
    }
}
