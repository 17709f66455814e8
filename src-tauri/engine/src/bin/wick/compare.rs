//! `wick compare`: one model in two variants (e.g. as stored and 4-bit) on the same prompt:
//! per token, whether the second picks what the first generated and the KL divergence of their
//! distributions; then speed and weight memory side by side.

use std::path::PathBuf;

use serde_json::{json, Map};
use wick_engine::quant::Quantization;
use wick_engine::tasks::compare::compare;
use wick_engine::tasks::text_generation::Prompt;
use wick_engine::tasks::Task;
use wick_engine::tokenize::chat::Message;
use wick_engine::{Result, WickError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A model folder or GGUF file.
    #[arg(short, long)]
    model: String,
    /// The reference variant: as-stored, f32, q8_0 or q4_k.
    #[arg(long, default_value = "as-stored")]
    a: Quantization,
    /// The variant measured against it.
    #[arg(long, default_value = "q4_k")]
    b: Quantization,
    /// Send the prompt as a user message through the chat template.
    #[arg(long)]
    chat: bool,
    #[arg(long, default_value_t = 32)]
    max_new_tokens: usize,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    prompt: String,
}

pub fn run(args: &Args) -> Result<()> {
    let path: PathBuf = crate::hub::model_path(&args.model, None)?;
    let run = crate::engine::begin()?;
    let load = |q| crate::engine::pipeline(&run, Task::TextGeneration, &path, q);
    let (a, b) = (load(args.a)?, load(args.b)?);
    let not_generator = || WickError::InvalidInput("not a text-generation model".into());
    let a = a.text_generator().ok_or_else(not_generator)?;
    let b = b.text_generator().ok_or_else(not_generator)?;
    let prompt = if args.chat {
        Prompt::Chat(vec![Message {
            role: "user".into(),
            content: args.prompt.clone(),
        }])
    } else {
        Prompt::Text(args.prompt.clone())
    };
    let options = a.options(&Map::new())?;
    let c = compare(a, b, &prompt, &options, args.max_new_tokens, &run.control())?;
    if args.json {
        println!("{}", json!(c));
        return Ok(());
    }
    println!(
        "{:>4}  {:<16} {:>8} {:>8}  {:<16} {:>8}",
        "#", "token (A)", "p A", "p B", "B's pick", "KL"
    );
    for (i, t) in c.tokens.iter().enumerate() {
        let mark = if t.id == t.top_b { "" } else { " ≠" };
        println!(
            "{:>4}  {:<16} {:>7.1}% {:>7.1}%  {:<16} {:>8.4}{mark}",
            i + 1,
            format!("{:?}", t.text),
            t.logprob_a.exp() * 100.0,
            t.logprob_b.exp() * 100.0,
            format!("{:?}", t.top_b_text),
            t.kl
        );
    }
    println!(
        "top-1 agreement {:.1}% · mean KL {:.4} nats over {} tokens",
        c.agreement * 100.0,
        c.mean_kl,
        c.tokens.len()
    );
    for (name, v) in [("A", &c.a), ("B", &c.b)] {
        println!(
            "{name}: {:<14} weights {:>7.1} MiB · prefill {:>6.1} tok/s · decode {:>6.1} tok/s",
            v.label,
            v.weight_bytes as f64 / (1024.0 * 1024.0),
            v.prefill_tokens_per_s,
            v.decode_tokens_per_s
        );
    }
    Ok(())
}
