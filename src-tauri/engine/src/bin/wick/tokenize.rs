//! `wick tokenize`: the tokenizer inspector in a terminal.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::Serialize;
use wick_engine::cancel::CancelToken;
use wick_engine::tokenize::chat::{ChatTemplate, Message};
use wick_engine::tokenize::{
    ChatInspection, PaddingChoice, TokenizerComparison, TokenizerInfo, TruncationChoice,
};
use wick_engine::{Inspection, ModelSource, Result, TokenizeOptions, WickError, WickTokenizer};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A model folder, a tokenizer.json or .gguf file, or a Hub repo (org/name[@revision])
    /// already in the local Hugging Face cache.
    #[arg(short, long)]
    model: String,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Do not add the model's special tokens ([CLS], <bos> ...); transformers'
    /// add_special_tokens=False.
    #[arg(long)]
    no_special_tokens: bool,

    /// Pad: `max_length` (to --max-length) or `baked` (as the tokenizer.json says).
    #[arg(long, value_enum, default_value_t = Strategy::None)]
    padding: Strategy,

    /// Truncate: `--truncation` or `--truncation=max_length` (to --max-length), or
    /// `--truncation=baked` (as the tokenizer.json says).
    #[arg(long, value_enum, default_value_t = Strategy::None, num_args = 0..=1,
          require_equals = true, default_missing_value = "max_length")]
    truncation: Strategy,

    /// Length for --padding max_length and --truncation max_length.
    #[arg(long)]
    max_length: Option<u32>,

    /// Tokenize a conversation through the model's chat template instead of text: a JSON
    /// file holding a list of {"role", "content"} messages ("-" reads standard input), as
    /// transformers' apply_chat_template(messages, tokenize=True). Each token is traced to the
    /// message it came from.
    #[arg(long, value_name = "MESSAGES.json",
          conflicts_with_all = ["text", "no_special_tokens", "padding", "truncation", "max_length"])]
    chat: Option<PathBuf>,

    /// Tokenize the text with this second model's tokenizer too, side by side: where the
    /// token boundaries part, tokens, characters per token, unknown and byte-fallback pieces.
    #[arg(long, value_name = "MODEL", conflicts_with = "chat")]
    compare: Option<String>,

    /// With --chat: end the prompt where the assistant's reply begins.
    #[arg(long, requires = "chat")]
    add_generation_prompt: bool,

    /// The texts to tokenize; standard input when none is given.
    text: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
enum Strategy {
    None,
    MaxLength,
    Baked,
}

#[derive(Serialize)]
struct JsonOutput<'a> {
    tokenizer: &'a TokenizerInfo,
    text: &'a str,
    #[serde(flatten)]
    inspection: Inspection,
}

pub fn run(args: &Args) -> Result<()> {
    if let Some(file) = &args.chat {
        return run_chat(args, file);
    }
    let options = options(args)?;
    let texts = texts(args)?;
    let tokenizer = WickTokenizer::from_model(&args.model)?;
    if let Some(other) = &args.compare {
        let other = WickTokenizer::from_model(other)?;
        return run_compare(args, &tokenizer, &other, &texts, &options);
    }
    let inspections = texts
        .iter()
        .map(|t| tokenizer.inspect(t, &options))
        .collect::<Result<Vec<_>>>()?;

    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let items: Vec<JsonOutput> = texts
            .iter()
            .zip(inspections)
            .map(|(text, inspection)| JsonOutput {
                tokenizer: tokenizer.info(),
                text,
                inspection,
            })
            .collect();
        writeln!(out, "{}", one_or_list(&items)?)
    } else {
        print_tables(&mut out, tokenizer.info(), &texts, &inspections)
    };
    finish(written)
}

/// One text's answer as a JSON object, several as a list (as the pipelines answer one input
/// or a list).
fn one_or_list<T: Serialize>(items: &[T]) -> Result<String> {
    match items {
        [one] => serde_json::to_string(one),
        many => serde_json::to_string(many),
    }
    .map_err(|e| WickError::InvalidInput(e.to_string()))
}

/// A closed pipe (`wick tokenize ... | head`) is not an error worth a message.
pub(crate) fn finish(written: std::io::Result<()>) -> Result<()> {
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(WickError::io("stdout", e)),
        _ => Ok(()),
    }
}

/// `--compare`: each text through both tokenizers.
fn run_compare(
    args: &Args,
    a: &WickTokenizer,
    b: &WickTokenizer,
    texts: &[String],
    options: &TokenizeOptions,
) -> Result<()> {
    let comparisons = texts
        .iter()
        .map(|t| a.compare_with(b, t, options))
        .collect::<Result<Vec<_>>>()?;
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        writeln!(out, "{}", one_or_list(&comparisons)?)
    } else {
        comparisons
            .iter()
            .zip(texts)
            .try_for_each(|(c, text)| print_comparison(&mut out, c, text))
    };
    finish(written)
}

fn print_comparison(
    out: &mut impl Write,
    c: &TokenizerComparison,
    text: &str,
) -> std::io::Result<()> {
    writeln!(out, "text: {:?}", shorten(text, 60))?;
    for (name, side) in [("A", &c.a), ("B", &c.b)] {
        // Tokens separated by `|`, those whose boundaries the other side does not share in [].
        let pieces: Vec<String> = side
            .inspection
            .tokens
            .iter()
            .zip(&side.differs)
            .filter(|(t, _)| !t.padding)
            .map(|(t, differs)| {
                let shown = if t.text.is_empty() { &t.token } else { &t.text };
                let shown = format!("{shown:?}");
                if *differs {
                    format!("[{}]", &shown[1..shown.len() - 1])
                } else {
                    shown[1..shown.len() - 1].to_string()
                }
            })
            .collect();
        writeln!(
            out,
            "{name}: {} ({}): {} tokens, {:.2} chars/token, {} unknown, {} byte-fallback",
            side.tokenizer.path.display(),
            side.tokenizer.model_type,
            side.text_tokens,
            side.chars_per_token,
            side.unknown,
            side.byte_fallback
        )?;
        writeln!(out, "   {}", pieces.join("|"))?;
    }
    writeln!(
        out,
        "boundaries: {} shared, {} differ{}",
        c.shared_boundaries,
        c.differing_boundaries.len(),
        if c.differing_boundaries.is_empty() {
            String::new()
        } else {
            format!(" (at characters {:?})", c.differing_boundaries)
        }
    )?;
    writeln!(out)
}

#[derive(Serialize)]
struct ChatJson<'a> {
    tokenizer: &'a TokenizerInfo,
    #[serde(flatten)]
    chat: &'a ChatInspection,
}

/// `--chat`: the conversation through the model's own template.
fn run_chat(args: &Args, file: &Path) -> Result<()> {
    let messages = read_messages(file)?;
    let path = ModelSource::parse(&args.model)?.resolve()?;
    let template = ChatTemplate::for_model(&path)?.ok_or_else(|| {
        WickError::InvalidInput(format!(
            "{} has no chat template (no chat_template.jinja, no chat_template in \
             tokenizer_config.json, no tokenizer.chat_template in its GGUF): it is not a chat \
             model",
            path.display()
        ))
    })?;
    let tokenizer = WickTokenizer::from_path(&path)?;
    let chat = tokenizer.inspect_chat(
        &template,
        &messages,
        args.add_generation_prompt,
        &CancelToken::new(),
    )?;
    let mut out = std::io::stdout().lock();
    let written = if args.json {
        let value = serde_json::to_string(&ChatJson {
            tokenizer: tokenizer.info(),
            chat: &chat,
        })
        .map_err(|e| WickError::InvalidInput(e.to_string()))?;
        writeln!(out, "{value}")
    } else {
        print_chat(&mut out, tokenizer.info(), &chat)
    };
    finish(written)
}

/// The largest messages file read: the inspector's own text limit.
const MAX_MESSAGES_FILE: u64 = wick_engine::tokenize::MAX_INSPECT_BYTES as u64;

fn read_messages(file: &Path) -> Result<Vec<Message>> {
    let mut text = String::new();
    let read = if file == Path::new("-") {
        std::io::stdin()
            .take(MAX_MESSAGES_FILE + 1)
            .read_to_string(&mut text)
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_MESSAGES_FILE + 1).read_to_string(&mut text))
    };
    read.map_err(|e| WickError::io(file, e))?;
    if text.len() as u64 > MAX_MESSAGES_FILE {
        return Err(WickError::InvalidInput(format!(
            "{}: larger than {} MiB",
            file.display(),
            MAX_MESSAGES_FILE >> 20
        )));
    }
    serde_json::from_str(&text).map_err(|e| {
        WickError::InvalidInput(format!(
            "{}: not a list of {{\"role\", \"content\"}} messages: {e}",
            file.display()
        ))
    })
}

fn print_chat(
    out: &mut impl Write,
    info: &TokenizerInfo,
    chat: &ChatInspection,
) -> std::io::Result<()> {
    print_tokenizer(out, info)?;
    writeln!(out, "prompt: {:?}", chat.text)?;
    writeln!(out)?;
    writeln!(
        out,
        "{:>5}  {:>7}  {:<24}  {:>11}  from",
        "#", "id", "token", "chars"
    )?;
    for (i, t) in chat.tokens.iter().enumerate() {
        let from = match t.message {
            Some(m) => {
                let role = chat
                    .messages
                    .get(m as usize)
                    .map_or("?", |m| m.role.as_str());
                format!("message {m} ({role})")
            }
            None if t.generation_prompt => "generation prompt".to_string(),
            None => "template".to_string(),
        };
        writeln!(
            out,
            "{i:>5}  {:>7}  {:<24}  {:>11}  {from}",
            t.token.id,
            format!("{:?}", t.token.token),
            format!("{}..{}", t.token.start, t.token.end),
        )?;
    }
    writeln!(out, "ids: {:?}", chat.ids)?;
    let from_messages = chat.tokens.iter().filter(|t| t.message.is_some()).count();
    writeln!(
        out,
        "{} tokens for {} characters: {} from the {} messages, {} from the template",
        chat.tokens.len(),
        chat.char_count,
        from_messages,
        chat.messages.len(),
        chat.tokens.len() - from_messages
    )
}

fn options(args: &Args) -> Result<TokenizeOptions> {
    let need_length = |what: &str| {
        args.max_length.ok_or_else(|| {
            WickError::InvalidInput(format!("--{what} max_length needs --max-length N"))
        })
    };
    let padding = match args.padding {
        Strategy::None => PaddingChoice::None,
        Strategy::Baked => PaddingChoice::Baked,
        Strategy::MaxLength => PaddingChoice::MaxLength(need_length("padding")?),
    };
    let truncation = match args.truncation {
        Strategy::None => TruncationChoice::None,
        Strategy::Baked => TruncationChoice::Baked,
        Strategy::MaxLength => TruncationChoice::MaxLength(need_length("truncation")?),
    };
    Ok(TokenizeOptions {
        add_special_tokens: !args.no_special_tokens,
        padding,
        truncation,
    })
}

fn texts(args: &Args) -> Result<Vec<String>> {
    if !args.text.is_empty() {
        return Ok(args.text.clone());
    }
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(WickError::InvalidInput(
            "no text given: pass it as an argument or pipe it in".into(),
        ));
    }
    let mut text = String::new();
    stdin
        .read_to_string(&mut text)
        .map_err(|e| WickError::io("stdin", e))?;
    Ok(vec![text])
}

fn print_tables(
    out: &mut impl Write,
    info: &TokenizerInfo,
    texts: &[String],
    inspections: &[Inspection],
) -> std::io::Result<()> {
    print_tokenizer(out, info)?;
    for (text, ins) in texts.iter().zip(inspections) {
        writeln!(out)?;
        writeln!(
            out,
            "{:>5}  {:>7}  {:<24}  {:>11}  flags",
            "#", "id", "token", "chars"
        )?;
        for (i, t) in ins.tokens.iter().enumerate() {
            let flags = match (t.special, t.padding) {
                (_, true) => "pad",
                (true, _) => "special",
                _ => "",
            };
            writeln!(
                out,
                "{i:>5}  {:>7}  {:<24}  {:>11}  {flags}",
                t.id,
                format!("{:?}", t.token),
                format!("{}..{}", t.start, t.end),
            )?;
        }
        writeln!(out, "ids: {:?}", ins.ids)?;
        writeln!(out, "decoded: {:?}", ins.decoded)?;
        let mut summary = format!(
            "{} tokens for {} characters ({:?})",
            ins.tokens.len(),
            ins.char_count,
            shorten(text, 40)
        );
        if ins.truncated_tokens > 0 {
            summary.push_str(&format!(
                ", {} tokens cut by truncation",
                ins.truncated_tokens
            ));
        }
        writeln!(out, "{summary}")?;
    }
    Ok(())
}

/// The table's first line: which tokenizer this is.
fn print_tokenizer(out: &mut impl Write, info: &TokenizerInfo) -> std::io::Result<()> {
    writeln!(
        out,
        "tokenizer: {} ({}, {:?}, vocab {})",
        info.path.display(),
        info.model_type,
        info.origin,
        info.vocab_size
    )
}

fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        text.to_string()
    } else {
        let head: String = text.chars().take(max_chars).collect();
        format!("{head}…")
    }
}
