//! `wick inspect`: inside a causal model on one prompt. `attention` prints every layer's and
//! head's attention weights; `logit-lens` each layer's guess at the next token (its output read
//! through the final norm and the LM head).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use serde_json::json;
use wick_engine::quant::Quantization;
use wick_engine::tasks::inside::{attention_of, load_to_inspect, logit_lens_of};
use wick_engine::Result;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Attention weights: `{"tokens", "ids", "attentions": [layer][head][query][key]}`, as
    /// transformers' output_attentions=True (eager attention).
    Attention(Common),
    /// The logit lens: `{"tokens", "ids", "layers": [layer][position] = [{"id", "token",
    /// "prob"}...]}` for layers 1..N (layer N is the model's own next-token distribution).
    LogitLens {
        #[command(flatten)]
        common: Common,
        /// Tokens shown per layer and position.
        #[arg(long, default_value_t = 5)]
        top_k: usize,
    },
}

#[derive(Debug, clap::Args)]
pub struct Common {
    /// A causal model or an encoder (attention only): a folder or GGUF file, or a Hub repo in
    /// the local cache.
    #[arg(short, long)]
    model: String,
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// The prompt, encoded as tokenizer(text) encodes it (special tokens added).
    text: String,
}

impl Command {
    pub fn json(&self) -> bool {
        match self {
            Command::Attention(c) | Command::LogitLens { common: c, .. } => c.json,
        }
    }
}

pub fn run(command: &Command) -> Result<()> {
    let common = match command {
        Command::Attention(c) | Command::LogitLens { common: c, .. } => c,
    };
    let path: PathBuf = crate::hub::model_path(&common.model, None)?;
    let run = crate::engine::begin()?;
    let pipeline =
        load_to_inspect(|task| crate::engine::pipeline(&run, task, &path, Quantization::AsStored))?;
    let cancel = run.cancel_token().clone();
    let mut out = String::new();
    match command {
        Command::Attention(_) => {
            let maps = attention_of(&pipeline, &common.text, &cancel)?;
            if common.json {
                out = json!(maps).to_string();
            } else {
                // What a terminal can show: for each layer and head, the key each query
                // attends to most, and its weight.
                let _ = writeln!(out, "tokens: {:?}", maps.tokens);
                for (l, layer) in maps.attentions.iter().enumerate() {
                    for (h, head) in layer.iter().enumerate() {
                        let most: Vec<String> = head
                            .iter()
                            .map(|row| {
                                let (k, w) =
                                    row.iter().enumerate().fold((0, f32::MIN), |b, (k, &w)| {
                                        if w > b.1 {
                                            (k, w)
                                        } else {
                                            b
                                        }
                                    });
                                format!("{k}:{w:.2}")
                            })
                            .collect();
                        let _ = writeln!(out, "layer {:>2} head {h:>2}  {}", l + 1, most.join(" "));
                    }
                }
                out.push_str(
                    "(each query's most attended key and its weight; --json has every weight)",
                );
            }
        }
        Command::LogitLens { top_k, .. } => {
            let lens = logit_lens_of(&pipeline, &common.text, *top_k, &cancel)?;
            if common.json {
                out = json!(lens).to_string();
            } else {
                let _ = writeln!(out, "tokens: {:?}", lens.tokens);
                for (l, layer) in lens.layers.iter().enumerate() {
                    let cells: Vec<String> = layer
                        .iter()
                        .map(|cands| {
                            cands.first().map_or_else(String::new, |c| {
                                format!("{:?} {:.2}", c.token, c.prob)
                            })
                        })
                        .collect();
                    let _ = writeln!(out, "layer {:>2}  {}", l + 1, cells.join(" | "));
                }
                let _ = write!(
                    out,
                    "(each position's most likely next token after each layer; --json has the top {top_k})"
                );
            }
        }
    }
    crate::tokenize::finish(writeln!(std::io::stdout().lock(), "{out}"))
}
