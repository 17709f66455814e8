//! `wick run text-generation`: the text-generation pipeline on the command line. Flags are the
//! keyword arguments of `pipeline("text-generation")(prompt, **kwargs)`; `--stream` prints text
//! as it is generated and `--logprobs K` adds each token's probability and K alternatives.

use std::io::{Read, Write};
use std::path::PathBuf;

use serde_json::{json, Map, Value};
use wick_engine::quant::Quantization;
use wick_engine::runtime::Run;
use wick_engine::tasks::pipeline::Pipeline;
use wick_engine::tasks::text_generation::{GenerationResult, StreamPiece};
use wick_engine::tasks::Task;
use wick_engine::{Result, WickError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A model folder or GGUF file, or a Hub repo `org/name[@revision]` (downloaded when it is
    /// not in the Hugging Face cache).
    #[arg(short, long)]
    model: String,
    /// In a Hub repo of GGUF files: the quantization (`Q4_K_M`) or file to use.
    #[arg(long)]
    gguf: Option<String>,
    /// The prompt; none reads the whole of standard input as one prompt.
    prompt: Option<String>,
    /// Send the prompt as a user message through the model's chat template.
    #[arg(long)]
    chat: bool,
    /// A system message before the user's (implies --chat).
    #[arg(long)]
    system: Option<String>,
    /// Stop at this text's tokens (transformers' stop_sequence).
    #[arg(long)]
    stop_sequence: Option<String>,
    /// Include the prompt in generated_text (default true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    return_full_text: Option<bool>,
    #[arg(long)]
    prefix: Option<String>,
    /// Convert the weights at load: q8_0 or q4_k (8 or 4 bits, like load_in_8bit/4bit), f16 or
    /// bf16 (like torch_dtype; safetensors), f32 (dequantize a GGUF file), or as-stored (the
    /// default).
    #[arg(long, default_value = "as-stored")]
    quantize: Quantization,
    #[command(flatten)]
    flags: Flags,
}

/// `wick run summarization|translation`.
#[derive(Debug, clap::Args)]
pub struct Text2TextArgs {
    /// A model folder (T5, flan-T5, BART, Marian), or a Hub repo `org/name[@revision]`.
    #[arg(short, long)]
    model: String,
    /// The texts; none reads one text per line from standard input.
    inputs: Vec<String>,
    /// Source language (translation), e.g. en: picks the model's `translation_en_to_..` prefix.
    #[arg(long)]
    src_lang: Option<String>,
    /// Target language (translation), e.g. de.
    #[arg(long)]
    tgt_lang: Option<String>,
    /// Cut texts longer than the model reads instead of refusing them.
    #[arg(long)]
    truncation: bool,
    #[command(flatten)]
    flags: Flags,
}

/// The keyword arguments of generate(), shared by every generation task.
#[derive(Debug, clap::Args)]
pub struct Flags {
    /// Print the text as it is generated (with --json: one JSON event per token).
    #[arg(long)]
    stream: bool,
    /// Add each token's log-probability and this many alternatives (0-20) to the output.
    #[arg(long, value_name = "K")]
    logprobs: Option<usize>,
    #[arg(long)]
    max_new_tokens: Option<usize>,
    #[arg(long)]
    max_length: Option<usize>,
    #[arg(long)]
    min_new_tokens: Option<usize>,
    #[arg(long)]
    min_length: Option<usize>,
    /// Sample (true, the text-generation pipeline's default) or pick the most likely token.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    do_sample: Option<bool>,
    #[arg(long)]
    temperature: Option<f32>,
    /// `all` for no top-k filtering.
    #[arg(long)]
    top_k: Option<String>,
    #[arg(long)]
    top_p: Option<f32>,
    #[arg(long)]
    min_p: Option<f32>,
    #[arg(long)]
    typical_p: Option<f32>,
    #[arg(long)]
    repetition_penalty: Option<f32>,
    #[arg(long)]
    no_repeat_ngram_size: Option<usize>,
    #[arg(long)]
    num_beams: Option<usize>,
    #[arg(long)]
    length_penalty: Option<f32>,
    /// true, false or never.
    #[arg(long)]
    early_stopping: Option<String>,
    #[arg(long)]
    num_return_sequences: Option<usize>,
    /// Seed of the sampler, to repeat a sampled run.
    #[arg(long)]
    seed: Option<u64>,
    /// Stop once the text contains this (repeatable).
    #[arg(long)]
    stop_strings: Vec<String>,
}

impl Flags {
    fn kwargs(&self) -> Result<Map<String, Value>> {
        let mut m = Map::new();
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                m.insert(k.to_string(), v);
            }
        };
        put("max_new_tokens", self.max_new_tokens.map(Value::from));
        put("max_length", self.max_length.map(Value::from));
        put("min_new_tokens", self.min_new_tokens.map(Value::from));
        put("do_sample", self.do_sample.map(Value::from));
        put("temperature", self.temperature.map(Value::from));
        put("top_p", self.top_p.map(Value::from));
        put("min_p", self.min_p.map(Value::from));
        put("typical_p", self.typical_p.map(Value::from));
        put(
            "repetition_penalty",
            self.repetition_penalty.map(Value::from),
        );
        put(
            "no_repeat_ngram_size",
            self.no_repeat_ngram_size.map(Value::from),
        );
        put("num_beams", self.num_beams.map(Value::from));
        put("length_penalty", self.length_penalty.map(Value::from));
        put(
            "num_return_sequences",
            self.num_return_sequences.map(Value::from),
        );
        put("seed", self.seed.map(Value::from));
        put("min_length", self.min_length.map(Value::from));
        put("logprobs", self.logprobs.map(Value::from));
        if !self.stop_strings.is_empty() {
            put("stop_strings", Some(json!(self.stop_strings)));
        }
        let top_k = match self.top_k.as_deref() {
            None => None,
            Some("all") | Some("none") => Some(Value::Null),
            Some(k) => Some(Value::from(k.parse::<usize>().map_err(|_| {
                WickError::InvalidInput(format!("--top-k: expected a number or `all`, got {k}"))
            })?)),
        };
        put("top_k", top_k);
        let early = match self.early_stopping.as_deref() {
            None => None,
            Some("true") => Some(json!(true)),
            Some("false") => Some(json!(false)),
            Some("never") => Some(json!("never")),
            Some(other) => {
                return Err(WickError::InvalidInput(format!(
                    "--early-stopping: expected true, false or never, got {other}"
                )))
            }
        };
        put("early_stopping", early);
        Ok(m)
    }
}

impl Args {
    fn kwargs(&self) -> Result<Map<String, Value>> {
        let mut m = self.flags.kwargs()?;
        if let Some(s) = &self.stop_sequence {
            m.insert("stop_sequence".into(), Value::from(s.as_str()));
        }
        if let Some(r) = self.return_full_text {
            m.insert("return_full_text".into(), Value::from(r));
        }
        if let Some(p) = &self.prefix {
            m.insert("prefix".into(), Value::from(p.as_str()));
        }
        Ok(m)
    }

    fn input(&self) -> Result<Value> {
        let text = match &self.prompt {
            Some(p) => p.clone(),
            None => {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .map_err(|e| WickError::io("standard input", e))?;
                s.trim_end_matches('\n').to_string()
            }
        };
        if self.chat || self.system.is_some() {
            let mut messages = Vec::new();
            if let Some(system) = &self.system {
                messages.push(json!({"role": "system", "content": system}));
            }
            messages.push(json!({"role": "user", "content": text}));
            Ok(Value::Array(messages))
        } else {
            Ok(Value::String(text))
        }
    }
}

pub fn run(args: &Args, json_mode: bool) -> Result<()> {
    let path: PathBuf = crate::hub::model_path(&args.model, args.gguf.as_deref())?;
    let run = crate::engine::begin()?;
    let pipeline = crate::engine::pipeline(&run, Task::TextGeneration, &path, args.quantize)?;
    print_run(
        &run,
        &pipeline,
        &args.input()?,
        &args.kwargs()?,
        &args.flags,
        json_mode,
    )
}

pub fn run_text2text(task: Task, args: &Text2TextArgs, json_mode: bool) -> Result<()> {
    let path: PathBuf = crate::hub::model_path(&args.model, None)?;
    let run = crate::engine::begin()?;
    let pipeline = crate::engine::pipeline(&run, task, &path, Quantization::AsStored)?;
    let mut kwargs = args.flags.kwargs()?;
    for (k, v) in [("src_lang", &args.src_lang), ("tgt_lang", &args.tgt_lang)] {
        if let Some(v) = v {
            kwargs.insert(k.into(), Value::from(v.as_str()));
        }
    }
    if args.truncation {
        kwargs.insert("truncation".into(), Value::from(true));
    }
    let texts = crate::run::read_inputs(&args.inputs)?;
    let input = match <[String; 1]>::try_from(texts) {
        Ok([one]) => Value::from(one),
        Err(many) => Value::from(many),
    };
    print_run(&run, &pipeline, &input, &kwargs, &args.flags, json_mode)
}

/// Runs a generation pipeline and prints its JSON, or the text as it comes with --stream.
fn print_run(
    run: &Run,
    pipeline: &Pipeline,
    input: &Value,
    kwargs: &Map<String, Value>,
    flags: &Flags,
    json_mode: bool,
) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    let mut streamed = false;
    let mut on_piece = |_: usize, piece: &StreamPiece| -> bool {
        if !flags.stream || piece.sequence != 0 {
            return true;
        }
        streamed = true;
        let written = if json_mode {
            serde_json::to_string(&json!({ "token": piece.token }))
                .map(|line| writeln!(stdout, "{line}"))
                .is_ok()
        } else {
            write!(stdout, "{}", piece.token.text).is_ok()
        };
        // A closed pipe (`| head`) stops generation instead of failing on every token.
        written && stdout.flush().is_ok()
    };
    let (mut output, results, notes) =
        pipeline.stream(input, kwargs, &mut on_piece, &run.control())?;
    for note in &notes {
        eprintln!("note: {note}");
    }
    if flags.logprobs.is_some() {
        add_logprobs(&mut output, &results);
    }
    if flags.stream && !json_mode {
        if !streamed {
            // Beam search settles its text only at the end.
            for r in &results {
                if let Some(seq) = r.sequences.first() {
                    print!("{}", seq.text);
                }
            }
        }
        println!();
        for r in &results {
            eprintln!("{}", stats_line(r, pipeline));
        }
        return Ok(());
    }
    if flags.stream {
        println!("{}", json!({ "result": output }));
    } else {
        println!("{output}");
    }
    Ok(())
}

/// Puts each sequence's tokens beside its `generated_text`.
fn add_logprobs(output: &mut Value, results: &[GenerationResult]) {
    let lists: Vec<&mut Value> = match output {
        Value::Array(items) if items.first().is_some_and(Value::is_array) => {
            items.iter_mut().collect()
        }
        other => vec![other],
    };
    for (list, result) in lists.into_iter().zip(results) {
        if let Value::Array(records) = list {
            for (record, seq) in records.iter_mut().zip(&result.sequences) {
                if let Value::Object(map) = record {
                    map.insert("tokens".into(), json!(seq.tokens));
                }
            }
        }
    }
}

fn stats_line(r: &GenerationResult, g: &Pipeline) -> String {
    let s = &r.stats;
    format!(
        "{} prompt + {} generated tokens · first token {:.0} ms · prefill {:.1} tok/s · decode {:.1} tok/s · {} {}{}",
        s.prompt_tokens,
        s.generated_tokens,
        s.time_to_first_token_ms,
        s.prefill_tokens_per_s,
        s.decode_tokens_per_s,
        g.architecture(),
        g.dtype_label(),
        r.seed.map(|s| format!(" · seed {s}")).unwrap_or_default()
    )
}
