//! The pipeline tasks Wick offers, in one table: the UI builds its tabs from it and the CLI
//! validates task names against it. Adding a task starts with a row here.

pub mod compare;
pub mod embedding_map;
pub mod feature_extraction;
pub mod fill_mask;
pub mod inside;
pub mod kwargs;
pub mod pipeline;
pub mod question_answering;
pub mod run_generation;
pub mod scores;
pub mod text2text;
pub mod text_classification;
pub mod text_generation;
pub mod token_classification;
pub mod zero_shot;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::cancel::CancelToken;

/// How a run is steered from outside: its cancel flag, and a meter told how many bytes the run's
/// key/value caches hold as they grow (the runtime counts them against its memory budget).
#[derive(Clone, Default)]
pub struct RunControl {
    pub cancel: CancelToken,
    meter: Option<Arc<dyn Fn(u64) + Send + Sync>>,
}

impl std::fmt::Debug for RunControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunControl")
            .field("cancelled", &self.cancel.is_cancelled())
            .field("metered", &self.meter.is_some())
            .finish()
    }
}

impl RunControl {
    /// A run stopped by `cancel`, its caches not metered.
    pub fn new(cancel: CancelToken) -> Self {
        Self {
            cancel,
            meter: None,
        }
    }

    /// Tells `meter` the bytes the run's caches hold after every step.
    pub fn metered(mut self, meter: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.meter = Some(Arc::new(meter));
        self
    }

    pub(crate) fn cache_bytes(&self, bytes: u64) {
        if let Some(meter) = &self.meter {
            meter(bytes);
        }
    }
}

/// A pipeline task, named as `transformers`' `pipeline()` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "kebab-case")]
#[ts(export)]
pub enum Task {
    TextGeneration,
    TextClassification,
    TokenClassification,
    QuestionAnswering,
    FillMask,
    Summarization,
    Translation,
    ZeroShotClassification,
    FeatureExtraction,
}

/// How far along a task's implementation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum Availability {
    Ready,
    Coming,
}

/// What a front end shows about a task.
#[derive(Debug, Clone, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct TaskInfo {
    pub task: Task,
    /// The `transformers` pipeline name, e.g. "text-generation".
    pub id: &'static str,
    pub title: &'static str,
    /// One sentence for people who have never used the task.
    pub summary: &'static str,
    /// A sample input, shown in the tokenizer inspector until the user types their own.
    pub example: &'static str,
    pub availability: Availability,
}

/// Every task, in the order the tabs appear.
pub const TASKS: &[TaskInfo] = &[
    info(Task::TextGeneration, "text-generation", "Text generation",
        "Continue a prompt or chat with a model, token by token, and see how sure it was of each one.",
        "What is the capital of France?"),
    info(Task::TextClassification, "text-classification", "Text classification",
        "Sort a text into labels such as positive or negative, with a probability for each.",
        "I loved this film: the story was gripping and the music beautiful!"),
    info(Task::TokenClassification, "token-classification", "Named entities",
        "Find names, places, e-mail addresses and other entities, highlighted in the text.",
        "Hi, I am John Smith. Email me at john.smith@gmail.com or call +1 555 0100."),
    info(Task::QuestionAnswering, "question-answering", "Question answering",
        "Ask a question about a passage and see the answer marked in it.",
        "Where do the penguins live? Emperor penguins live in Antarctica."),
    info(Task::FillMask, "fill-mask", "Fill the blank",
        "Hide a word and let the model guess what fits, with its best candidates.",
        "Paris is the [MASK] of France."),
    info(Task::Summarization, "summarization", "Summarization",
        "Condense a long text into a few sentences.",
        "The city council met on Tuesday to discuss the new bike lanes."),
    info(Task::Translation, "translation", "Translation",
        "Translate text between languages, word by word as the model writes.",
        "The house is wonderful."),
    info(Task::ZeroShotClassification, "zero-shot-classification", "Zero-shot labels",
        "Score a text against labels you make up, without training anything.",
        "The new phone has a great camera but the battery dies by noon."),
    info(Task::FeatureExtraction, "feature-extraction", "Embeddings",
        "Turn sentences into vectors and see which ones mean similar things.",
        "A man is eating food. A man is eating a piece of bread."),
];

const fn info(
    task: Task,
    id: &'static str,
    title: &'static str,
    summary: &'static str,
    example: &'static str,
) -> TaskInfo {
    TaskInfo {
        task,
        id,
        title,
        summary,
        example,
        // Every task's pipeline has landed. A task added to the table before its pipeline is
        // marked `Coming`, and its tab says so.
        availability: Availability::Ready,
    }
}

impl Task {
    /// Looks a task up by its pipeline name.
    pub fn from_id(id: &str) -> Option<Task> {
        TASKS.iter().find(|t| t.id == id).map(|t| t.task)
    }

    /// The pipeline name, e.g. "fill-mask".
    pub fn id(self) -> &'static str {
        TASKS
            .iter()
            .find(|t| t.task == self)
            .map_or("unknown", |t| t.id)
    }
}

/// A tokenizer and an encoder (with the head a task needs) loaded from one model folder: what
/// every encoder pipeline starts from.
#[derive(Debug)]
pub struct Encoder {
    pub tokenizer: crate::tokenize::WickTokenizer,
    pub model: crate::families::encoder::EncoderModel,
}

impl Encoder {
    /// Loads both, after checking that the architecture can run `task` at all.
    pub(crate) fn load(
        spec: &crate::loading::LoadSpec,
        task: Task,
        head: crate::blocks::heads::HeadKind,
    ) -> crate::Result<Self> {
        spec.model.require_task(task)?;
        let model = crate::families::encoder::EncoderModel::load(spec, head)?;
        let tokenizer = crate::tokenize::WickTokenizer::from_path(&spec.model.dir)?;
        Ok(Self { tokenizer, model })
    }

    /// The longest input (special tokens included) a pipeline feeds the model: the tokenizer's
    /// `model_max_length`, the model's position table and any limit of the task, whichever is
    /// smallest. Longer inputs are truncated and the result says by how much.
    pub fn limit(&self, task_limit: Option<usize>) -> Option<usize> {
        [
            self.tokenizer.model_max_length(),
            self.model.max_positions(),
            task_limit,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// How `limit` truncates: cut whatever is longest.
    pub(crate) fn truncation(&self, task_limit: Option<usize>) -> crate::tokenize::Truncate {
        self.limit(task_limit).map_or(
            crate::tokenize::Truncate::None,
            crate::tokenize::Truncate::LongestFirst,
        )
    }

    /// Encodes each text on its own, truncated to [`Self::limit`]; empty texts are refused.
    pub(crate) fn encode_texts(
        &self,
        texts: &[&str],
        task_limit: Option<usize>,
    ) -> crate::Result<Vec<crate::tokenize::Encoded>> {
        let truncate = self.truncation(task_limit);
        texts
            .iter()
            .map(|t| {
                require_text(t, "text")?;
                single(self.tokenizer.encode_pipeline(t, None, truncate)?)
            })
            .collect()
    }
}

/// Refuses empty (or whitespace-only) text with a message naming what was empty.
pub(crate) fn require_text(text: &str, what: &str) -> crate::Result<()> {
    if text.trim().is_empty() {
        return Err(crate::WickError::InvalidInput(format!(
            "the {what} is empty: type some text first"
        )));
    }
    Ok(())
}

/// The first window of an encoding that does not overflow.
pub(crate) fn single(
    mut windows: Vec<crate::tokenize::Encoded>,
) -> crate::Result<crate::tokenize::Encoded> {
    if windows.is_empty() {
        return Err(crate::WickError::Tokenize(
            "the tokenizer returned nothing".into(),
        ));
    }
    Ok(windows.swap_remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_serde_names_and_are_unique() {
        for t in TASKS {
            let json = serde_json::to_value(t.task).unwrap();
            assert_eq!(json, serde_json::Value::String(t.id.to_string()));
            assert_eq!(Task::from_id(t.id), Some(t.task));
        }
        assert_eq!(TASKS.len(), 9);
        assert_eq!(Task::from_id("nope"), None);
    }
}
