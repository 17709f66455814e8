//! What names one loaded model: the task's pipeline, the model, the snapshot it came from, the
//! weight format and the device. Two requests share a loaded model only when all of these agree.

use std::path::PathBuf;

use crate::quant::Quantization;
use crate::source::ModelSource;
use crate::tasks::Task;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelKey {
    pub task: Task,
    /// The model as the user named it (a folder, or a Hub repo at a branch).
    pub source: ModelSource,
    /// The Hub commit the name resolved to (when a branch moves, the new snapshot is a new
    /// model, and a result reports the commit that ran); `None` for local paths.
    pub commit: Option<String>,
    /// The folder or file the weights are read from.
    pub path: PathBuf,
    pub weights: Quantization,
    /// `cpu`, `cuda:0`, `metal`.
    pub device: String,
}

impl ModelKey {
    /// The model as a person reads it: `org/name@rev` or the path.
    pub fn model_name(&self) -> String {
        source_name(&self.source)
    }
}

/// A model source as a person reads it (and as the runtime remembers a "load anyway" for it).
pub fn source_name(source: &ModelSource) -> String {
    match source {
        ModelSource::Hub { repo, revision } if revision == "main" => repo.clone(),
        ModelSource::Hub { repo, revision } => format!("{repo}@{revision}"),
        ModelSource::Local(path) => path.display().to_string(),
    }
}

impl std::fmt::Display for ModelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} ({}, {})",
            self.task.id(),
            self.model_name(),
            self.weights.name(),
            self.device
        )
    }
}
