//! `wick bench`: repeatable timings of engine parts, for BENCHMARKS.md.

use std::time::Instant;

use serde::Serialize;
use wick_engine::cancel::CancelToken;
use wick_engine::loading::LoadSpec;
use wick_engine::{Result, TokenizeOptions, WickError, WickTokenizer};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, clap::Subcommand)]
enum What {
    /// Load a tokenizer, then encode a corpus to ids one text at a time (ids only: no offsets,
    /// views or decoding, to compare like with like against `tokenizer(text)` in Python).
    Tokenize {
        /// A model folder, tokenizer.json or .gguf file, or a cached Hub repo.
        #[arg(short, long)]
        model: String,
        /// A JSON list of strings (e.g. tests/fixtures/tokenizer/corpus.json).
        #[arg(long)]
        corpus: std::path::PathBuf,
        /// Passes over the corpus.
        #[arg(long, default_value_t = 20)]
        repeat: u32,
    },
    /// Load a sentence-transformers model, then embed a corpus `--batch-size` texts at a time.
    Embed {
        /// A model folder or a cached Hub repo.
        #[arg(short, long)]
        model: String,
        /// A JSON list of strings.
        #[arg(long)]
        corpus: std::path::PathBuf,
        /// Passes over the corpus.
        #[arg(long, default_value_t = 3)]
        repeat: u32,
        /// Texts per forward pass (1: one at a time; larger: the corpus is passed whole and
        /// batched by length, as sentence-transformers' `encode(texts, batch_size=...)`).
        #[arg(long, default_value_t = 1)]
        batch_size: usize,
    },
    /// Prefill and decode speed of a causal model, as llama-bench measures them: a prompt of
    /// `--prompt-tokens` tokens in one pass (pp), then `--gen-tokens` tokens one at a time (tg).
    Generate {
        /// A model folder or GGUF file.
        #[arg(short, long)]
        model: String,
        /// as-stored, f32, q8_0 or q4_k.
        #[arg(long, default_value = "as-stored")]
        quantize: wick_engine::quant::Quantization,
        #[arg(long, default_value_t = 128)]
        prompt_tokens: usize,
        #[arg(long, default_value_t = 64)]
        gen_tokens: usize,
        /// Runs of each; the median is reported.
        #[arg(long, default_value_t = 3)]
        repeat: usize,
        /// Skip the untimed first run that llama-bench also makes: it takes one-time costs,
        /// such as candle repacking quantized weights into tiles on their first product.
        #[arg(long)]
        no_warmup: bool,
    },
}

/// Prefill and decode rates of a causal model (medians), one JSON line.
#[derive(Serialize)]
struct GenerateReport {
    model: String,
    weights: String,
    load_ms: f64,
    prompt_tokens: usize,
    gen_tokens: usize,
    prefill_tokens_per_s: f64,
    decode_tokens_per_s: f64,
    weight_mib: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Timings of loading a model and running it over a corpus, one JSON line.
#[derive(Serialize)]
struct EmbedReport {
    model: String,
    batch_size: usize,
    load_ms: f64,
    texts: usize,
    run_ms: f64,
    texts_per_s: f64,
}

#[derive(Serialize)]
struct TokenizeReport {
    model: String,
    load_ms: f64,
    texts: usize,
    tokens: usize,
    encode_ms: f64,
    texts_per_s: f64,
    tokens_per_s: f64,
}

fn read_corpus(corpus: &std::path::Path) -> Result<Vec<String>> {
    let raw = std::fs::read_to_string(corpus).map_err(|e| WickError::io(corpus, e))?;
    serde_json::from_str(&raw).map_err(|e| {
        WickError::InvalidInput(format!(
            "{}: not a JSON list of strings: {e}",
            corpus.display()
        ))
    })
}

/// Runs `work` and returns its result with the milliseconds it took.
fn timed<T>(work: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    let started = Instant::now();
    let value = work()?;
    Ok((value, started.elapsed().as_secs_f64() * 1e3))
}

fn print_json(report: &impl Serialize) -> Result<()> {
    let json = serde_json::to_string(report).map_err(|e| WickError::InvalidInput(e.to_string()))?;
    println!("{json}");
    Ok(())
}

pub fn run(args: &Args) -> Result<()> {
    match &args.what {
        What::Generate {
            model,
            quantize,
            prompt_tokens,
            gen_tokens,
            repeat,
            no_warmup,
        } => {
            let (loaded, load_ms) = timed(|| {
                let path = crate::hub::model_path(model, None)?;
                wick_engine::families::causal::load(
                    &LoadSpec::new(&path)?.with_quantization(*quantize),
                )
            })?;
            let lm = &loaded.model;
            let vocab = lm.config.vocab_size as u64;
            // Fixed pseudo-random prompt ids (llama-bench uses random tokens too).
            let prompt: Vec<u32> = (0..*prompt_tokens as u64)
                .map(|i| ((i * 7919 + 13) % vocab) as u32)
                .collect();
            let failed = |e: candle_core::Error| WickError::ModelFailed(e.to_string());
            let (mut pp, mut tg) = (Vec::new(), Vec::new());
            // As generation runs it: on the pool (see `kernels::on_pool`).
            let never = CancelToken::new();
            wick_engine::kernels::on_pool(|| -> Result<()> {
                let warmup = usize::from(!*no_warmup);
                for run in 0..warmup + (*repeat).max(1) {
                    let mut cache = lm.new_cache();
                    let started = Instant::now();
                    let logits = lm
                        .forward(std::slice::from_ref(&prompt), &mut cache, &never)
                        .map_err(failed)?;
                    let prefill = *prompt_tokens as f64 / started.elapsed().as_secs_f64();
                    let mut next = logits
                        .argmax(candle_core::D::Minus1)
                        .and_then(|t| t.to_vec1::<u32>())
                        .map_err(failed)?;
                    let started = Instant::now();
                    for _ in 0..*gen_tokens {
                        let logits = lm
                            .forward(std::slice::from_ref(&next), &mut cache, &never)
                            .map_err(failed)?;
                        next = logits
                            .argmax(candle_core::D::Minus1)
                            .and_then(|t| t.to_vec1::<u32>())
                            .map_err(failed)?;
                    }
                    if run >= warmup {
                        pp.push(prefill);
                        tg.push(*gen_tokens as f64 / started.elapsed().as_secs_f64());
                    }
                }
                Ok(())
            })?;
            let weights = match &loaded.format {
                wick_engine::families::causal::Format::Gguf { quantization, .. } => {
                    quantization.clone()
                }
                wick_engine::families::causal::Format::Transformers { quantized } => quantized
                    .clone()
                    .map_or("f32".into(), |q| format!("f32 → {q}")),
            };
            print_json(&GenerateReport {
                model: model.clone(),
                weights,
                load_ms,
                prompt_tokens: *prompt_tokens,
                gen_tokens: *gen_tokens,
                prefill_tokens_per_s: median(pp),
                decode_tokens_per_s: median(tg),
                weight_mib: lm.weight_bytes() as f64 / 1048576.0,
            })
        }
        What::Embed {
            model,
            corpus,
            repeat,
            batch_size,
        } => {
            let texts = read_corpus(corpus)?;
            let (extractor, load_ms) = timed(|| {
                let dir = crate::hub::model_path(model, None)?;
                wick_engine::tasks::feature_extraction::FeatureExtractor::load(&LoadSpec::new(
                    &dir,
                )?)
            })?;
            let ((), run_ms) = timed(|| {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                for _ in 0..*repeat {
                    if *batch_size <= 1 {
                        for text in &refs {
                            extractor.sentence_embedding(text)?;
                        }
                    } else {
                        extractor.sentence_embeddings(&refs, *batch_size, &CancelToken::new())?;
                    }
                }
                Ok(())
            })?;
            let n = texts.len() * *repeat as usize;
            print_json(&EmbedReport {
                model: model.clone(),
                batch_size: *batch_size,
                load_ms,
                texts: n,
                run_ms,
                texts_per_s: n as f64 / (run_ms / 1e3),
            })
        }
        What::Tokenize {
            model,
            corpus,
            repeat,
        } => {
            let texts = read_corpus(corpus)?;
            let (tokenizer, load_ms) = timed(|| WickTokenizer::from_model(model))?;
            let options = TokenizeOptions::default();
            let (tokens, encode_ms) = timed(|| {
                let mut tokens = 0;
                for _ in 0..*repeat {
                    for text in &texts {
                        tokens += tokenizer.encode_ids(text, &options)?.len();
                    }
                }
                Ok(tokens)
            })?;
            let n = texts.len() * *repeat as usize;
            let secs = encode_ms / 1e3;
            print_json(&TokenizeReport {
                model: model.clone(),
                load_ms,
                texts: n,
                tokens,
                encode_ms,
                texts_per_s: n as f64 / secs,
                tokens_per_s: tokens as f64 / secs,
            })
        }
    }
}
