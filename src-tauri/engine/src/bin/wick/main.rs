//! `wick`: the engine on the command line, for scripts and for people without the window.

mod bench;
mod compare;
mod engine;
mod generate;
mod hub;
mod inspect;
mod run;
mod tokenize;

use std::process::ExitCode;

/// mimalloc keeps freed blocks for reuse: each layer's activations are megabytes, and the
/// system allocator hands those back to the OS and faults them in again on every forward pass
/// (5% of an embedding run in the profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};
use wick_engine::WickError;

#[derive(Debug, Parser)]
#[command(
    name = "wick",
    version,
    about = "Try Hugging Face models locally: tokenize, run, inspect."
)]
struct Cli {
    /// Log more (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    /// Where models run: auto, cpu, cuda, cuda:N, metal. A device this build or machine does
    /// not have is an error, never a silent fallback.
    #[arg(long, global = true, default_value = "auto")]
    device: String,

    /// Load a model even when the memory estimate says it will not fit.
    #[arg(long, global = true)]
    load_anyway: bool,

    /// Print the process's peak memory (resident set) on stderr at the end.
    #[arg(long, global = true)]
    peak_memory: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show how a model's tokenizer splits text: tokens, ids, offsets, special tokens.
    Tokenize(tokenize::Args),
    /// Run a pipeline task and print its output as JSON, as `transformers` returns it.
    Run(Box<run::Args>),
    /// Time engine parts (see BENCHMARKS.md).
    Bench(bench::Args),
    /// Look inside a causal model on one prompt: attention weights, the logit lens.
    #[command(subcommand)]
    Inspect(inspect::Command),
    /// Compare two variants of a model (e.g. as stored vs 4-bit): agreement, KL, speed, memory.
    Compare(compare::Args),
    /// Download a model from the Hub into the Hugging Face cache (resumes, verifies).
    Download(hub::DownloadArgs),
    /// Describe a model without loading it: architecture, tasks, files, sizes, memory fit.
    Info(hub::InfoArgs),
    /// Find models on the Hub.
    #[command(subcommand)]
    Models(hub::ModelsCommand),
    /// The Hugging Face cache: list, remove, verify.
    #[command(subcommand)]
    Cache(hub::CacheCommand),
}

fn main() -> ExitCode {
    // The chat-template helper is this executable started again: it serves and exits here.
    wick_engine::tokenize::sandbox::serve_if_helper();
    wick_engine::tokenize::sandbox::isolate_templates();
    wick_engine::system::fix_thread_count();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Text that is not UTF-8 is bad input, not a usage mistake: one line, exit 1.
        Err(err) if err.kind() == clap::error::ErrorKind::InvalidUtf8 => {
            return report(
                &WickError::InvalidInput(
                    "an argument is not valid UTF-8 text; pass the text on standard input or \
                     fix its encoding"
                        .into(),
                ),
                false,
            );
        }
        Err(err) => err.exit(),
    };
    init_logging(cli.verbose);
    let device = match wick_engine::device::DeviceChoice::parse(&cli.device) {
        Ok(device) => device,
        Err(err) => return report(&err, false),
    };
    // A device this build or machine does not have is refused before anything else runs.
    if let Err(err) = device.resolve() {
        return report(&err, false);
    }
    engine::configure(engine::Settings {
        device,
        load_anyway: cli.load_anyway,
    });
    let (json, result) = match cli.command {
        Command::Tokenize(args) => (args.json, tokenize::run(&args)),
        Command::Run(args) => (args.json, run::run(&args)),
        Command::Bench(args) => (true, bench::run(&args)),
        Command::Compare(args) => (args.json, compare::run(&args)),
        Command::Inspect(command) => (command.json(), inspect::run(&command)),
        Command::Download(args) => (args.json, hub::download(&args)),
        Command::Info(args) => (args.json, hub::info(&args)),
        Command::Models(command) => (false, hub::models(&command)),
        Command::Cache(command) => (false, hub::cache(&command)),
    };
    if cli.peak_memory {
        if let Some(bytes) = wick_engine::system::peak_rss() {
            eprintln!(
                "peak memory: {bytes} bytes ({})",
                wick_engine::error::human_bytes(bytes)
            );
        }
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(&err, json),
    }
}

/// Errors go to stderr; with `--json` as the same `{code, message}` object the app receives.
fn report(err: &WickError, json: bool) -> ExitCode {
    if json {
        match serde_json::to_string(&err.payload()) {
            Ok(text) => eprintln!("{text}"),
            Err(_) => eprintln!("error: {err}"),
        }
    } else {
        eprintln!("error: {err}");
    }
    ExitCode::from(1)
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
