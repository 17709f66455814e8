//! `wick run <task>`: a pipeline on the command line, printing what `transformers` prints.

use std::path::PathBuf;

use wick_engine::tasks::feature_extraction::FeatureExtractor;
use wick_engine::{ModelSource, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, clap::Subcommand)]
enum Task {
    /// Hidden states per token (as `pipeline("feature-extraction")`), or with
    /// --sentence-embedding one vector per text (as sentence-transformers' `encode`).
    FeatureExtraction {
        /// A model folder, or a Hub repo already in the local Hugging Face cache.
        #[arg(short, long)]
        model: String,
        /// Pool and normalise as the model's sentence-transformers config says (mean pooling
        /// without normalisation for plain models).
        #[arg(long)]
        sentence_embedding: bool,
        /// The texts.
        #[arg(required = true)]
        inputs: Vec<String>,
    },
}

pub fn run(args: &Args) -> Result<()> {
    match &args.task {
        Task::FeatureExtraction {
            model,
            sentence_embedding,
            inputs,
        } => {
            let dir: PathBuf = ModelSource::parse(model)?.resolve()?;
            let extractor = FeatureExtractor::load(&dir)?;
            let mut outputs = Vec::with_capacity(inputs.len());
            for text in inputs {
                let features = if *sentence_embedding {
                    extractor.sentence_embedding(text)?
                } else {
                    extractor.token_features(text)?
                };
                if features.truncated_tokens > 0 {
                    eprintln!(
                        "note: {} tokens beyond the model's limit were cut from {:?}",
                        features.truncated_tokens,
                        text.chars().take(40).collect::<String>()
                    );
                }
                outputs.push(if *sentence_embedding {
                    serde_json::json!(features.vectors[0])
                } else {
                    // The pipeline's shape: [batch = 1][tokens][hidden].
                    serde_json::json!([features.vectors])
                });
            }
            let value = if outputs.len() == 1 {
                outputs.remove(0)
            } else {
                serde_json::Value::Array(outputs)
            };
            println!("{value}");
            Ok(())
        }
    }
}
