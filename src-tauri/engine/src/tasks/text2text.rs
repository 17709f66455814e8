//! Summarization and translation with encoder-decoder models, with transformers 4.57's
//! `SummarizationPipeline` / `TranslationPipeline` semantics: the model's task prefix
//! (`task_specific_params`, e.g. T5's "summarize: "), the pipeline defaults (up to 256 new
//! tokens, 4 beams) under the model's own settings, and `{"summary_text": ...}` /
//! `{"translation_text": ...}` records.

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Map, Value};

use super::kwargs::Kwargs;
use super::run_generation::{self, GenerationResult, StreamPiece};
use super::RunControl;
use super::Task;
use crate::error::{Result, WickError};
use crate::families::seq2seq::{Seq2Seq, Session};
use crate::generate::config::{model_generation_json, GENERATE_KWARGS};
use crate::generate::GenerationConfig;
use crate::loading::LoadSpec;
use crate::tokenize::{Truncate, WickTokenizer};

/// A loaded summarization or translation pipeline.
#[derive(Debug)]
pub struct Text2Text {
    task: Task,
    tokenizer: WickTokenizer,
    model: Seq2Seq,
    model_settings: Map<String, Value>,
    task_params: Map<String, Value>,
    architecture: String,
}

/// Options of one call.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: GenerationConfig,
    pub prefix: String,
    pub truncation: bool,
    pub clean_up: bool,
    pub return_tensors: bool,
    pub logprobs: usize,
}

impl Text2Text {
    pub fn load(task: Task, spec: &LoadSpec) -> Result<Self> {
        spec.model.require_task(task)?;
        let dir = spec.model.dir.as_path();
        let model = Seq2Seq::load(spec)?;
        spec.loading.check()?;
        let tokenizer = WickTokenizer::from_path(dir)?;
        let config = &spec.model.config;
        let architecture = spec
            .model
            .architecture
            .clone()
            .unwrap_or_else(|| "encoder-decoder".into());
        Ok(Self {
            task,
            tokenizer,
            model,
            model_settings: model_generation_json(dir)?,
            task_params: config
                .get("task_specific_params")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            architecture,
        })
    }

    pub fn architecture(&self) -> &str {
        &self.architecture
    }

    pub fn tokenizer(&self) -> &WickTokenizer {
        &self.tokenizer
    }

    fn output_key(&self) -> &'static str {
        match self.task {
            Task::Summarization => "summary_text",
            _ => "translation_text",
        }
    }

    /// `task_specific_params` key: "summarization", or "translation_xx_to_yy" from the
    /// languages given, else the model's first translation entry (as `pipeline("translation")`).
    fn params_key(&self, src_lang: Option<&str>, tgt_lang: Option<&str>) -> Option<String> {
        match self.task {
            Task::Summarization => Some("summarization".into()),
            _ => match (src_lang, tgt_lang) {
                (Some(src), Some(tgt)) => Some(format!("translation_{src}_to_{tgt}")),
                _ => self
                    .task_params
                    .keys()
                    .find(|k| k.starts_with("translation"))
                    .cloned(),
            },
        }
    }

    pub fn options(&self, kwargs: &Map<String, Value>) -> Result<Options> {
        let mut args = Kwargs::new(kwargs);
        args.bool("return_text")?;
        let return_tensors = args.bool("return_tensors")?.unwrap_or(false);
        let clean_up = args.bool("clean_up_tokenization_spaces")?.unwrap_or(false);
        let truncation = args.bool("truncation")?.unwrap_or(false);
        let src_lang = args.string("src_lang")?;
        let tgt_lang = args.string("tgt_lang")?;
        let logprobs = args.logprobs()?;
        args.finish_with(self.task.id(), GENERATE_KWARGS)?;
        let mut defaults = Map::new();
        defaults.insert("max_new_tokens".into(), json!(256));
        defaults.insert("num_beams".into(), json!(4));
        let mut merged = GenerationConfig::pipeline_layer(&defaults, &self.model_settings);
        let mut prefix = String::new();
        if let Some(params) = self
            .params_key(src_lang.as_deref(), tgt_lang.as_deref())
            .and_then(|k| self.task_params.get(&k))
            .and_then(Value::as_object)
        {
            for (k, v) in params {
                if k == "prefix" {
                    prefix = v.as_str().unwrap_or_default().to_string();
                } else {
                    merged.insert(k.clone(), v.clone());
                }
            }
        }
        let config = GenerationConfig::from_layers(&[&merged, kwargs])?;
        Ok(Options {
            config,
            prefix,
            truncation,
            clean_up,
            return_tensors,
            logprobs,
        })
    }

    /// Summarizes or translates one text.
    pub fn generate(
        &self,
        text: &str,
        options: &Options,
        on_piece: &mut dyn FnMut(&StreamPiece) -> bool,
        control: &RunControl,
    ) -> Result<GenerationResult> {
        let started = Instant::now();
        super::require_text(text, "text")?;
        let source_text = format!("{}{text}", options.prefix);
        let limit = self.model.max_source_positions();
        let truncate = match (options.truncation, limit) {
            (true, Some(n)) => Truncate::LongestFirst(n),
            _ => Truncate::None,
        };
        let encoded = super::single(self.tokenizer.encode_pipeline(
            &source_text,
            None,
            truncate,
        )?)?;
        let source = encoded.ids;
        if let Some(n) = limit.filter(|n| source.len() > *n) {
            return Err(WickError::InvalidInput(format!(
                "the text is {} tokens; this model reads at most {n}. Shorten it, or pass \
                 truncation=true to cut it",
                source.len()
            )));
        }
        let encode_started = Instant::now();
        let mut session = Session::new(&self.model, &source, &control.cancel)?;
        let encode_s = encode_started.elapsed().as_secs_f64();
        let start = options
            .config
            .decoder_start_token_id
            .or(options.config.bos_token_id)
            .ok_or_else(|| WickError::InvalidModel {
                path: Path::new("config.json").to_path_buf(),
                reason: "neither decoder_start_token_id nor bos_token_id is set".into(),
            })?;
        let prompt = [start];
        let (sequences, stats, seed) = run_generation::run(
            run_generation::Run {
                tokenizer: &self.tokenizer,
                config: &options.config,
                logprobs: options.logprobs,
                prompt: &prompt,
                max_positions: self.model.max_decoder_positions(),
                read_tokens: source.len(),
                started,
                encode_s,
                control,
            },
            &mut session,
            on_piece,
        )?;
        Ok(GenerationResult {
            prompt: source_text,
            prompt_ids: source,
            sequences,
            stats,
            seed,
            settings: serde_json::to_value(&options.config).unwrap_or(Value::Null),
        })
    }

    /// `pipeline(task)(inputs, **kwargs)`: the JSON, each input's result, and notes.
    pub fn call(
        &self,
        inputs: &Value,
        kwargs: &Map<String, Value>,
        on_piece: &mut dyn FnMut(usize, &StreamPiece) -> bool,
        control: &RunControl,
    ) -> Result<(Value, Vec<GenerationResult>, Vec<String>)> {
        let options = self.options(kwargs)?;
        let (texts, single) = match inputs {
            Value::String(s) => (vec![s.clone()], true),
            Value::Array(items) => (
                items
                    .iter()
                    .map(|v| {
                        v.as_str().map(str::to_string).ok_or_else(|| {
                            WickError::InvalidInput(format!("expected texts, got {v}"))
                        })
                    })
                    .collect::<Result<Vec<_>>>()?,
                false,
            ),
            other => {
                return Err(WickError::InvalidInput(format!(
                    "{} takes a text or a list of texts, got {other}",
                    self.task.id()
                )))
            }
        };
        let mut per_input = Vec::new();
        let mut results = Vec::new();
        for (i, text) in texts.iter().enumerate() {
            let result = self.generate(text, &options, &mut |p| on_piece(i, p), control)?;
            let records: Vec<Value> = result
                .sequences
                .iter()
                .map(|seq| -> Result<Value> {
                    let ids: Vec<u32> = seq.tokens.iter().map(|t| t.id).collect();
                    if options.return_tensors {
                        // As generate() returns them: after the decoder start token.
                        let mut all: Vec<u32> =
                            options.config.decoder_start_token_id.into_iter().collect();
                        all.extend(&ids);
                        return Ok(
                            json!({ self.output_key().replace("_text", "_token_ids"): all }),
                        );
                    }
                    let text = self.tokenizer.decode_with(&ids, true, options.clean_up)?;
                    Ok(json!({ self.output_key(): text }))
                })
                .collect::<Result<_>>()?;
            per_input.push(records);
            results.push(result);
        }
        // transformers flattens a list input whose results are single records.
        let json = if single {
            Value::Array(per_input.remove(0))
        } else if per_input.iter().all(|r| r.len() == 1) {
            Value::Array(per_input.into_iter().flatten().collect())
        } else {
            Value::Array(per_input.into_iter().map(Value::Array).collect())
        };
        Ok((json, results, Vec::new()))
    }
}
