//! `wick run <task>`: a pipeline on the command line, printing the JSON `transformers` returns.
//! Flags carry the pipeline's keyword-argument names, so `top_k=3` is `--top-k 3` and
//! `top_k=None` is `--top-k all`.

use std::io::BufRead;
use std::path::PathBuf;

use serde_json::{json, Map, Value};
use wick_engine::quant::Quantization;
use wick_engine::tasks::pipeline::Detail;
use wick_engine::tasks::scores::TopK;
use wick_engine::{Result, WickError};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    task: Task,
    /// Errors as a `{code, message}` JSON object on stderr (results are always JSON).
    #[arg(long, global = true)]
    pub json: bool,
}

/// What every task takes.
#[derive(Debug, clap::Args)]
struct Common {
    /// A model folder, or a Hub repo `org/name[@revision]` (downloaded when not in the cache).
    #[arg(short, long)]
    model: String,
    /// Inputs run together, padded to one length (results do not change, speed does).
    #[arg(long, default_value_t = 1)]
    batch_size: usize,
    /// The texts; none reads one text per line from standard input.
    inputs: Vec<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Task {
    /// Continue a prompt (or answer a chat message) token by token.
    TextGeneration(crate::generate::Args),
    /// Condense each text (T5, BART).
    Summarization(crate::generate::Text2TextArgs),
    /// Translate each text (T5 with --src-lang/--tgt-lang, Marian).
    Translation(crate::generate::Text2TextArgs),
    /// Labels with scores for each text (or text pair).
    TextClassification {
        #[command(flatten)]
        common: Common,
        /// How many labels to return; `all` for every label. Default: the best label only.
        #[arg(long)]
        top_k: Option<String>,
        /// softmax, sigmoid or none. Default: from the model's config.
        #[arg(long)]
        function_to_apply: Option<String>,
        /// A second text paired with each input (e.g. the hypothesis for an NLI model).
        #[arg(long)]
        text_pair: Option<String>,
    },
    /// Entities (names, places, e-mails...) in each text.
    TokenClassification {
        #[command(flatten)]
        common: Common,
        /// none, simple, first, average or max.
        #[arg(long)]
        aggregation_strategy: Option<String>,
        /// Comma-separated labels to leave out (default: O); empty for none.
        #[arg(long)]
        ignore_labels: Option<String>,
    },
    /// The span of --context that answers --question.
    QuestionAnswering {
        #[arg(short, long)]
        model: String,
        #[arg(long)]
        question: String,
        #[arg(long)]
        context: String,
        #[arg(long)]
        top_k: Option<usize>,
        #[arg(long)]
        doc_stride: Option<usize>,
        #[arg(long)]
        max_answer_len: Option<usize>,
        #[arg(long)]
        max_seq_len: Option<usize>,
        /// Also consider that the context holds no answer.
        #[arg(long)]
        handle_impossible_answer: bool,
        /// Keep answers at token boundaries instead of widening them to whole words.
        #[arg(long)]
        no_align_to_words: bool,
    },
    /// Candidates for the mask token ([MASK], <mask>) in each text.
    FillMask {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        top_k: Option<usize>,
        /// Comma-separated words to score instead of the whole vocabulary.
        #[arg(long)]
        targets: Option<String>,
    },
    /// Scores for labels you choose, from an NLI model.
    ZeroShotClassification {
        #[command(flatten)]
        common: Common,
        /// Comma-separated labels.
        #[arg(long)]
        candidate_labels: String,
        /// The hypothesis with {} where the label goes (default: "This example is {}.").
        #[arg(long)]
        hypothesis_template: Option<String>,
        /// Score every label on its own instead of sharing one distribution.
        #[arg(long)]
        multi_label: bool,
    },
    /// Hidden states per token (as `pipeline("feature-extraction")`), or with
    /// --sentence-embedding one vector per text (as sentence-transformers' `encode`).
    FeatureExtraction {
        #[command(flatten)]
        common: Common,
        /// Pool and normalise as the model's sentence-transformers config says (mean pooling
        /// without normalisation for plain models).
        #[arg(long)]
        sentence_embedding: bool,
        /// Print the sentence embeddings as a 2-D map instead: each text's coordinates on the
        /// batch's first two principal components (scikit-learn's PCA) and the share of the
        /// variance each explains.
        #[arg(long, requires = "sentence_embedding")]
        map: bool,
    },
}

pub fn run(args: &Args) -> Result<()> {
    let mut kwargs = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            kwargs.insert(key.to_string(), v);
        }
    };
    let (task, model, inputs, batch_size) = match &args.task {
        Task::TextGeneration(gen) => return crate::generate::run(gen, args.json),
        Task::Summarization(a) => {
            return crate::generate::run_text2text(
                wick_engine::tasks::Task::Summarization,
                a,
                args.json,
            )
        }
        Task::Translation(a) => {
            return crate::generate::run_text2text(
                wick_engine::tasks::Task::Translation,
                a,
                args.json,
            )
        }
        Task::TextClassification {
            common,
            top_k,
            function_to_apply,
            text_pair,
        } => {
            put("top_k", top_k.as_deref().map(top_k_value).transpose()?);
            put(
                "function_to_apply",
                function_to_apply.clone().map(Value::from),
            );
            let texts = read_inputs(&common.inputs)?;
            let inputs = match text_pair {
                Some(pair) => texts
                    .iter()
                    .map(|t| json!({"text": t, "text_pair": pair}))
                    .collect(),
                None => texts.into_iter().map(Value::from).collect(),
            };
            (
                "text-classification",
                &common.model,
                inputs,
                common.batch_size,
            )
        }
        Task::TokenClassification {
            common,
            aggregation_strategy,
            ignore_labels,
        } => {
            put(
                "aggregation_strategy",
                aggregation_strategy.clone().map(Value::from),
            );
            put("ignore_labels", ignore_labels.as_deref().map(comma_list));
            let inputs = text_values(common)?;
            (
                "token-classification",
                &common.model,
                inputs,
                common.batch_size,
            )
        }
        Task::QuestionAnswering {
            model,
            question,
            context,
            top_k,
            doc_stride,
            max_answer_len,
            max_seq_len,
            handle_impossible_answer,
            no_align_to_words,
        } => {
            put("top_k", top_k.map(Value::from));
            put("doc_stride", doc_stride.map(Value::from));
            put("max_answer_len", max_answer_len.map(Value::from));
            put("max_seq_len", max_seq_len.map(Value::from));
            put(
                "handle_impossible_answer",
                Some((*handle_impossible_answer).into()),
            );
            put("align_to_words", Some((!no_align_to_words).into()));
            let inputs = vec![json!({"question": question, "context": context})];
            ("question-answering", model, inputs, 1)
        }
        Task::FillMask {
            common,
            top_k,
            targets,
        } => {
            put("top_k", top_k.map(Value::from));
            put("targets", targets.as_deref().map(comma_list));
            let inputs = text_values(common)?;
            ("fill-mask", &common.model, inputs, common.batch_size)
        }
        Task::ZeroShotClassification {
            common,
            candidate_labels,
            hypothesis_template,
            multi_label,
        } => {
            put("candidate_labels", Some(comma_list(candidate_labels)));
            put(
                "hypothesis_template",
                hypothesis_template.clone().map(Value::from),
            );
            put("multi_label", Some((*multi_label).into()));
            let inputs = text_values(common)?;
            (
                "zero-shot-classification",
                &common.model,
                inputs,
                common.batch_size,
            )
        }
        Task::FeatureExtraction {
            common, map: true, ..
        } => return print_map(common),
        Task::FeatureExtraction {
            common,
            sentence_embedding,
            map: false,
        } => {
            if *sentence_embedding {
                put("sentence_embedding", Some(true.into()));
            }
            let inputs = text_values(common)?;
            (
                "feature-extraction",
                &common.model,
                inputs,
                common.batch_size,
            )
        }
    };
    let dir: PathBuf = crate::hub::model_path(model, None)?;
    let task = wick_engine::tasks::Task::from_id(task)
        .ok_or_else(|| WickError::InvalidInput(format!("unknown task {task}")))?;
    let run = crate::engine::begin()?;
    let pipeline = crate::engine::pipeline(&run, task, &dir, Quantization::AsStored)?;
    // One input is passed bare, as `pipeline(text)`; several as a list.
    let inputs = match <[Value; 1]>::try_from(inputs) {
        Ok([one]) => one,
        Err(many) => Value::Array(many),
    };
    let output = pipeline.call_with_notes(&inputs, &kwargs, batch_size)?;
    for note in &output.notes {
        eprintln!("note: {note}");
    }
    println!("{}", output.json);
    Ok(())
}

/// `feature-extraction --sentence-embedding --map`: the texts' sentence embeddings as a 2-D map.
fn print_map(common: &Common) -> Result<()> {
    let texts = read_inputs(&common.inputs)?;
    let dir: PathBuf = crate::hub::model_path(&common.model, None)?;
    let run = crate::engine::begin()?;
    let task = wick_engine::tasks::Task::FeatureExtraction;
    let pipeline = crate::engine::pipeline(&run, task, &dir, Quantization::AsStored)?;
    let mut kwargs = Map::new();
    kwargs.insert("sentence_embedding".into(), true.into());
    let output = pipeline.call_with_detail(
        &Value::from(texts.clone()),
        &kwargs,
        common.batch_size,
        &wick_engine::tasks::RunControl::default(),
    )?;
    for note in &output.notes {
        eprintln!("note: {note}");
    }
    let Some(Detail::Embeddings { map, .. }) = output.detail else {
        return Err(WickError::InvalidInput(
            "the model gave no sentence embeddings to map".into(),
        ));
    };
    println!(
        "{}",
        json!({
            "texts": texts,
            "points": map.points,
            "explained_variance_ratio": map.explained_variance_ratio,
        })
    );
    Ok(())
}

/// The inputs as pipeline arguments (JSON strings).
fn text_values(common: &Common) -> Result<Vec<Value>> {
    Ok(read_inputs(&common.inputs)?
        .into_iter()
        .map(Value::from)
        .collect())
}

/// The positional inputs, or one per non-empty line of standard input.
pub(crate) fn read_inputs(given: &[String]) -> Result<Vec<String>> {
    if !given.is_empty() {
        return Ok(given.to_vec());
    }
    let lines: Vec<String> = std::io::stdin()
        .lock()
        .lines()
        .collect::<std::io::Result<_>>()
        .map_err(|e| WickError::io("standard input", e))?;
    let lines: Vec<String> = lines.into_iter().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return Err(WickError::InvalidInput(
            "no input: give texts as arguments or one per line on standard input".into(),
        ));
    }
    Ok(lines)
}

fn comma_list(s: &str) -> Value {
    Value::Array(
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(Value::from)
            .collect(),
    )
}

/// `--top-k 3` -> 3, `--top-k all` -> null (the pipeline's `top_k=None`).
fn top_k_value(s: &str) -> Result<Value> {
    match s.parse::<TopK>() {
        Ok(TopK::All) => Ok(Value::Null),
        Ok(TopK::K(k)) => Ok(Value::from(k)),
        Err(e) => Err(WickError::InvalidInput(format!("--top-k: {e}"))),
    }
}
