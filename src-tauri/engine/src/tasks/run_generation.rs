//! Running `generate()` for a pipeline: text streamed in whole characters as tokens come, each
//! token described for the pictures (its text, probability, alternatives), and timing. Shared
//! by text generation and the encoder-decoder tasks (summarization, translation).

use std::time::Instant;

use serde::Serialize;
use serde_json::Value;
use ts_rs::TS;

use crate::error::Result;
use crate::generate::{self, Decoder, GenerationConfig, Request, StopReason, TextStream};
use crate::tokenize::WickTokenizer;

use super::RunControl;

/// One alternative to a generated token, with its text.
#[derive(Debug, Clone, Serialize, PartialEq, TS)]
#[ts(export)]
pub struct TopToken {
    pub id: u32,
    pub text: String,
    pub logprob: f32,
}

/// A generated token as the pictures show it.
#[derive(Debug, Clone, Serialize, PartialEq, TS)]
#[ts(export)]
pub struct GeneratedToken {
    pub id: u32,
    /// The text this token completed (empty while a character it starts is unfinished);
    /// the pieces of a sequence add up to its text.
    pub text: String,
    /// The vocabulary entry, as `convert_ids_to_tokens`.
    pub token: String,
    pub logprob: f32,
    pub entropy: f32,
    pub top: Vec<TopToken>,
    /// Whether the tokenizer counts it as special (EOS, chat markers).
    pub special: bool,
}

/// One generated sequence.
#[derive(Debug, Clone, Serialize, PartialEq, TS)]
#[ts(export)]
pub struct GeneratedSequence {
    /// The new text (special tokens skipped, no clean-up): the streamed pieces joined.
    pub text: String,
    pub tokens: Vec<GeneratedToken>,
    pub stop: StopReason,
    /// Beam search's length-normalised score.
    pub score: Option<f32>,
}

/// How fast a run was.
#[derive(Debug, Clone, Serialize, PartialEq, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct GenerationStats {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// From the start of the call to the first generated token (tokenizing and prefill).
    pub time_to_first_token_ms: f64,
    pub prefill_tokens_per_s: f64,
    /// Generated tokens per second after the first (summed over rows).
    pub decode_tokens_per_s: f64,
    pub total_ms: f64,
}

/// Everything one prompt's generation produced.
#[derive(Debug, Clone, Serialize, PartialEq, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct GenerationResult {
    /// The text the model was given (a chat rendered through its template, prefix included).
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    pub sequences: Vec<GeneratedSequence>,
    pub stats: GenerationStats,
    /// The sampler's seed, to reproduce a sampled run.
    #[ts(type = "number | null")]
    pub seed: Option<u64>,
    /// The settings generate() ran with.
    #[ts(type = "Record<string, unknown>")]
    pub settings: Value,
}

/// A piece of streamed output.
#[derive(Debug, Clone, Serialize, PartialEq, TS)]
#[ts(export)]
pub struct StreamPiece {
    /// Which returned sequence (0 unless num_return_sequences > 1).
    pub sequence: usize,
    pub token: GeneratedToken,
}

/// What one generation needs besides the model.
#[derive(Debug)]
pub struct Run<'a> {
    pub tokenizer: &'a WickTokenizer,
    pub config: &'a GenerationConfig,
    /// Alternatives recorded per token.
    pub logprobs: usize,
    /// The decoder's prompt: the text's tokens for causal models, the start token for
    /// encoder-decoder ones.
    pub prompt: &'a [u32],
    pub max_positions: Option<usize>,
    /// Tokens the model read before generating (prompt or source), for the prefill rate.
    pub read_tokens: usize,
    /// When the call started (time to first token counts from here).
    pub started: Instant,
    /// Seconds already spent encoding the source (encoder-decoder models).
    pub encode_s: f64,
    pub control: &'a RunControl,
}

fn token_text(tokenizer: &WickTokenizer, id: u32) -> String {
    tokenizer.inner().decode(&[id], false).unwrap_or_default()
}

fn describe(
    tokenizer: &WickTokenizer,
    info: &generate::TokenInfo,
    piece: String,
) -> GeneratedToken {
    GeneratedToken {
        id: info.id,
        text: piece,
        token: tokenizer.id_to_token(info.id).unwrap_or_default(),
        logprob: info.logprob,
        entropy: info.entropy,
        top: info
            .top
            .iter()
            .map(|a| TopToken {
                id: a.id,
                text: token_text(tokenizer, a.id),
                logprob: a.logprob,
            })
            .collect(),
        special: tokenizer.is_special(info.id),
    }
}

/// Runs `generate()` on `decoder`, streaming pieces to `on_piece` (which may return `false`
/// to stop). Returns the sequences, the timing and the sampler's seed.
pub fn run(
    run: Run,
    decoder: &mut dyn Decoder,
    on_piece: &mut dyn FnMut(&StreamPiece) -> bool,
) -> Result<(Vec<GeneratedSequence>, GenerationStats, Option<u64>)> {
    let Run {
        tokenizer,
        config,
        prompt,
        started,
        ..
    } = run;
    let decode =
        |ids: &[u32]| -> String { tokenizer.decode_with(ids, true, false).unwrap_or_default() };
    let stops = config.stop_strings.clone();
    let prompt_len = prompt.len();
    let stop_check = move |ids: &[u32]| -> bool {
        let generated = &ids[prompt_len.min(ids.len())..];
        if generated.is_empty() {
            return false;
        }
        let before = decode(&generated[..generated.len() - 1]).len();
        let now = decode(generated);
        stops.iter().filter(|s| !s.is_empty()).any(|s| {
            now.match_indices(s.as_str())
                .any(|(i, m)| i + m.len() > before)
        })
    };
    // Before anything is sized by the settings (they may come from a model's files).
    config.validate()?;
    let rows = config.num_return_sequences.max(1);
    let mut streams: Vec<TextStream> = (0..rows).map(|_| TextStream::new(prompt)).collect();
    let beams = config.num_beams > 1;
    let control = run.control;
    let mut timed = Timed::new(decoder, run.encode_s, control);
    let request = Request {
        config,
        prompt,
        max_positions: run.max_positions,
        top_logprobs: run.logprobs,
        stop_strings: (!config.stop_strings.is_empty()).then_some(&stop_check),
    };
    let mut first_token: Option<f64> = None;
    // A cancel during a decode step lets the step finish: the loop then stops before the next,
    // keeping the text so far (a prompt's step, which can take seconds, stops between layers).
    let out = generate::generate(&mut timed, &request, &mut |row, info| {
        first_token.get_or_insert_with(|| started.elapsed().as_secs_f64() * 1000.0);
        if control.cancel.is_cancelled() {
            return false;
        }
        if beams {
            // Beams reorder until the end; only cancellation is offered meanwhile.
            return on_piece(&StreamPiece {
                sequence: usize::MAX,
                token: describe(tokenizer, info, String::new()),
            });
        }
        let piece = streams
            .get_mut(row)
            .and_then(|s| s.push(info.id, &decode))
            .unwrap_or_default();
        on_piece(&StreamPiece {
            sequence: row,
            token: describe(tokenizer, info, piece),
        })
    })?;
    let total_ms = started.elapsed().as_secs_f64() * 1000.0;
    let sequences: Vec<GeneratedSequence> = out
        .sequences
        .iter()
        .enumerate()
        .map(|(row, seq)| {
            // The pieces again, from the final tokens (beam search did not stream).
            let mut stream = TextStream::new(prompt);
            let mut tokens: Vec<GeneratedToken> = seq
                .tokens
                .iter()
                .map(|t| {
                    let piece = stream.push(t.id, &decode).unwrap_or_default();
                    describe(tokenizer, t, piece)
                })
                .collect();
            if let (Some(rest), Some(last)) = (stream.finish(&decode), tokens.last_mut()) {
                last.text.push_str(&rest);
                if !beams {
                    on_piece(&StreamPiece {
                        sequence: row,
                        token: GeneratedToken {
                            text: rest,
                            ..last.clone()
                        },
                    });
                }
            }
            GeneratedSequence {
                text: tokens.iter().map(|t| t.text.as_str()).collect(),
                tokens,
                stop: seq.stop,
                score: seq.score,
            }
        })
        .collect();
    let generated: usize = sequences.iter().map(|s| s.tokens.len()).sum();
    let stats = timed.stats(
        run.read_tokens,
        generated,
        first_token.unwrap_or(total_ms),
        total_ms,
    );
    Ok((sequences, stats, out.seed))
}

/// A decoder that times its steps: the first is the prefill, the rest decode.
struct Timed<'a> {
    inner: &'a mut dyn Decoder,
    control: &'a RunControl,
    prefill_s: f64,
    decode_s: f64,
    steps: usize,
}

impl<'a> Timed<'a> {
    fn new(inner: &'a mut dyn Decoder, encode_s: f64, control: &'a RunControl) -> Self {
        Self {
            inner,
            control,
            prefill_s: encode_s,
            decode_s: 0.0,
            steps: 0,
        }
    }

    fn stats(
        &self,
        prompt: usize,
        generated: usize,
        ttft_ms: f64,
        total_ms: f64,
    ) -> GenerationStats {
        let per_s = |n: f64, s: f64| if s > 0.0 { n / s } else { 0.0 };
        GenerationStats {
            prompt_tokens: prompt,
            generated_tokens: generated,
            time_to_first_token_ms: ttft_ms,
            prefill_tokens_per_s: per_s(prompt as f64, self.prefill_s),
            decode_tokens_per_s: per_s(generated.saturating_sub(1) as f64, self.decode_s),
            total_ms,
        }
    }
}

impl Decoder for Timed<'_> {
    fn step(&mut self, tokens: &[Vec<u32>]) -> Result<Vec<Vec<f32>>> {
        let t = Instant::now();
        let out = self.inner.step(tokens);
        let s = t.elapsed().as_secs_f64();
        if self.steps == 0 {
            self.prefill_s += s;
        } else {
            self.decode_s += s;
        }
        self.steps += 1;
        self.control.cache_bytes(self.inner.cache_bytes());
        out
    }

    fn select_rows(&mut self, rows: &[u32]) -> Result<()> {
        self.inner.select_rows(rows)
    }
}
