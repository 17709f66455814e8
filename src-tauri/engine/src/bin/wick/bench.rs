//! `wick bench`: repeatable timings of engine parts, for BENCHMARKS.md.

use std::time::Instant;

use serde::Serialize;
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
        What::Embed {
            model,
            corpus,
            repeat,
            batch_size,
        } => {
            let texts = read_corpus(corpus)?;
            let (extractor, load_ms) = timed(|| {
                let dir = wick_engine::ModelSource::parse(model)?.resolve()?;
                wick_engine::tasks::feature_extraction::FeatureExtractor::load(&dir)
            })?;
            let ((), run_ms) = timed(|| {
                let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
                for _ in 0..*repeat {
                    if *batch_size <= 1 {
                        for text in &refs {
                            extractor.sentence_embedding(text)?;
                        }
                    } else {
                        extractor.sentence_embeddings(&refs, *batch_size)?;
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
