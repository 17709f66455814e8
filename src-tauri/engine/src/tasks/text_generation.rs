//! The text-generation pipeline with transformers 4.57 semantics: a prompt (or a chat, through
//! the model's chat template) is tokenized, `generate()` runs with the pipeline's defaults over
//! the model's own settings, and each sequence comes back as `generated_text` (the prompt plus
//! the new text, or only the new text with `return_full_text=false`).
//!
//! Beyond the JSON, every generated token carries its probability, the alternatives and the
//! entropy, and text is streamed in whole characters as it is generated.

use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::cancel::CancelToken;
use crate::error::{Result, WickError};
use crate::families::causal::{self, Format, LoadedCausal, Session};
use crate::generate::config::{model_generation_json, GENERATE_KWARGS};
use crate::generate::GenerationConfig;
use crate::loading::LoadSpec;
use crate::tokenize::chat::{ChatTemplate, Message};
use crate::tokenize::{TokenizeOptions, WickTokenizer};

use super::kwargs::Kwargs;
use super::run_generation;
pub use super::run_generation::{
    GeneratedSequence, GeneratedToken, GenerationResult, GenerationStats, StreamPiece, TopToken,
};
use super::RunControl;

/// What a prompt is: plain text to continue, or a conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    Text(String),
    Chat(Vec<Message>),
}

/// Pipeline options read from the keyword arguments.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: GenerationConfig,
    pub return_full_text: bool,
    pub return_tensors: bool,
    pub clean_up: bool,
    pub prefix: Option<String>,
    pub continue_final_message: Option<bool>,
    pub add_special_tokens: Option<bool>,
    pub logprobs: usize,
    /// Things the person should know (e.g. max_new_tokens overriding max_length).
    pub notes: Vec<String>,
}

/// A loaded text-generation pipeline.
#[derive(Debug)]
pub struct TextGenerator {
    tokenizer: WickTokenizer,
    loaded: LoadedCausal,
    chat: Option<ChatTemplate>,
    /// The model's generation settings (generation_config.json, config.json or GGUF metadata).
    model_settings: Map<String, Value>,
    /// `task_specific_params["text-generation"]`, prefix removed.
    task_params: Map<String, Value>,
    prefix: String,
}

/// transformers' text-generation pipeline defaults.
fn pipeline_defaults() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("max_new_tokens".into(), json!(256));
    m.insert("do_sample".into(), json!(true));
    m.insert("temperature".into(), json!(0.7));
    m
}

impl TextGenerator {
    pub fn load(spec: &LoadSpec) -> Result<Self> {
        spec.model
            .require_task(crate::tasks::Task::TextGeneration)?;
        let path = spec.model.path.as_path();
        let loaded = causal::load(spec)?;
        spec.loading.check()?;
        let tokenizer = WickTokenizer::from_path(path)?;
        // Added tokens may lie beyond the model's rows (Gemma's image token); the base vocabulary
        // may not.
        let vocab = tokenizer.inner().get_vocab_size(false);
        if vocab > loaded.model.config.vocab_size {
            return Err(WickError::InvalidModel {
                path: path.to_path_buf(),
                reason: format!(
                    "the tokenizer has {vocab} tokens but the model only {}: they do not belong together",
                    loaded.model.config.vocab_size
                ),
            });
        }
        let (chat, model_settings, config_json) = match &loaded.format {
            Format::Gguf { file, .. } => {
                // A folder may carry a tokenizer_config.json with the template beside the GGUF.
                let chat = ChatTemplate::for_model(file)?;
                (chat, gguf_settings(&loaded), &Value::Null)
            }
            Format::Transformers { .. } => (
                ChatTemplate::from_folder(path)?,
                model_generation_json(path)?,
                &spec.model.config,
            ),
        };
        let mut task_params = config_json
            .get("task_specific_params")
            .and_then(|p| p.get("text-generation"))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let prefix = task_params
            .remove("prefix")
            .and_then(|p| p.as_str().map(str::to_string))
            .or_else(|| {
                config_json
                    .get("prefix")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_default();
        Ok(Self {
            tokenizer,
            loaded,
            chat,
            model_settings,
            task_params,
            prefix,
        })
    }

    pub fn tokenizer(&self) -> &WickTokenizer {
        &self.tokenizer
    }

    pub fn model(&self) -> &LoadedCausal {
        &self.loaded
    }

    pub fn has_chat_template(&self) -> bool {
        self.chat.is_some()
    }

    /// "f32", or the GGUF quantization.
    pub fn dtype_label(&self) -> String {
        match &self.loaded.format {
            Format::Gguf { quantization, .. } => quantization.clone(),
            Format::Transformers { quantized: Some(q) } => format!("f32 → {q}"),
            Format::Transformers { quantized: None } => {
                format!("{:?}", self.loaded.model.dtype()).to_lowercase()
            }
        }
    }

    /// Reads the keyword arguments: the pipeline's own, and generate()'s layered over the
    /// pipeline defaults and the model's settings. Unknown names are errors.
    pub fn options(&self, kwargs: &Map<String, Value>) -> Result<Options> {
        let mut args = Kwargs::new(kwargs);
        let return_full_text = args.bool("return_full_text")?.unwrap_or(true);
        let return_text = args.bool("return_text")?;
        let return_tensors = args.bool("return_tensors")?.unwrap_or(false);
        let clean_up = args.bool("clean_up_tokenization_spaces")?.unwrap_or(true);
        let prefix = args.string("prefix")?;
        let stop_sequence = args.string("stop_sequence")?;
        let continue_final_message = args.bool("continue_final_message")?;
        let add_special_tokens = args.bool("add_special_tokens")?;
        let logprobs = args.logprobs()?;
        args.finish_with("text-generation", GENERATE_KWARGS)?;
        if return_text == Some(true) && return_tensors {
            return Err(WickError::InvalidInput(
                "return_text and return_tensors cannot both be true".into(),
            ));
        }
        let mut notes = Vec::new();
        let mut merged =
            GenerationConfig::pipeline_layer(&pipeline_defaults(), &self.model_settings);
        for (k, v) in &self.task_params {
            merged.insert(k.clone(), v.clone());
        }
        let mut call = kwargs.clone();
        if let Some(stop) = &stop_sequence {
            // transformers: every token of the stop sequence becomes an end-of-sequence token.
            let ids = self.tokenizer.encode_ids(
                stop,
                &TokenizeOptions {
                    add_special_tokens: false,
                    ..Default::default()
                },
            )?;
            call.insert("eos_token_id".into(), json!(ids));
        }
        if call.get("max_length").is_some_and(|v| !v.is_null())
            && !call.contains_key("max_new_tokens")
            && merged.get("max_new_tokens").is_some_and(|v| !v.is_null())
        {
            notes.push(format!(
                "max_length was given, but the pipeline's max_new_tokens={} still applies (as in \
                 transformers); pass max_new_tokens to change the length",
                merged["max_new_tokens"]
            ));
        }
        let config = GenerationConfig::from_layers(&[&merged, &call])?;
        Ok(Options {
            config,
            return_full_text,
            return_tensors,
            clean_up,
            prefix,
            continue_final_message,
            add_special_tokens,
            logprobs,
            notes,
        })
    }

    /// The text and ids the model starts from. `cancel` stops a chat template's render.
    pub fn encode_prompt(
        &self,
        prompt: &Prompt,
        options: &Options,
        cancel: &CancelToken,
    ) -> Result<(String, Vec<u32>)> {
        match prompt {
            Prompt::Text(text) => {
                crate::tasks::require_text(text, "prompt")?;
                let prefix = options.prefix.as_deref().unwrap_or(&self.prefix);
                let full = format!("{prefix}{text}");
                let ids = self.tokenizer.encode_ids(
                    &full,
                    &TokenizeOptions {
                        add_special_tokens: options.add_special_tokens.unwrap_or(true),
                        ..Default::default()
                    },
                )?;
                Ok((full, ids))
            }
            Prompt::Chat(messages) => {
                let template = self.chat.as_ref().ok_or_else(|| {
                    WickError::InvalidInput(
                        "this model has no chat template: it is not a chat model. Write the \
                         prompt as plain text instead"
                            .into(),
                    )
                })?;
                if messages.is_empty() {
                    return Err(WickError::InvalidInput(
                        "the chat is empty: write a message first".into(),
                    ));
                }
                let continue_final = options
                    .continue_final_message
                    .unwrap_or_else(|| messages.last().is_some_and(|m| m.role == "assistant"));
                let text = template.render(messages, true, continue_final, cancel)?;
                let ids = self.tokenizer.encode_ids(
                    &text,
                    &TokenizeOptions {
                        add_special_tokens: false,
                        ..Default::default()
                    },
                )?;
                Ok((text, ids))
            }
        }
    }

    /// Generates from one prompt. `on_piece` sees each token as it comes (greedy and sampling)
    /// and may return `false` to stop; `control` can cancel at every stage.
    pub fn generate(
        &self,
        prompt: &Prompt,
        options: &Options,
        on_piece: &mut dyn FnMut(&StreamPiece) -> bool,
        control: &RunControl,
    ) -> Result<GenerationResult> {
        let started = Instant::now();
        control.cancel.check()?;
        let (prompt_text, prompt_ids) = self.encode_prompt(prompt, options, &control.cancel)?;
        control.cancel.check()?;
        if prompt_ids.is_empty() {
            return Err(WickError::InvalidInput(
                "the prompt gives no tokens: type some text first".into(),
            ));
        }
        let rows = self.loaded.model.config.vocab_size;
        if let Some(bad) = prompt_ids.iter().find(|&&id| id as usize >= rows) {
            return Err(WickError::InvalidInput(format!(
                "the prompt contains token {bad} ({:?}), which this model has no embedding \
                 for (it has {rows})",
                self.tokenizer.id_to_token(*bad).unwrap_or_default()
            )));
        }
        let mut session = Session::new(&self.loaded.model).cancelled_by(&control.cancel);
        let (sequences, stats, seed) = run_generation::run(
            run_generation::Run {
                tokenizer: &self.tokenizer,
                config: &options.config,
                logprobs: options.logprobs,
                prompt: &prompt_ids,
                max_positions: Some(self.loaded.model.config.max_positions),
                read_tokens: prompt_ids.len(),
                started,
                encode_s: 0.0,
                control,
            },
            &mut session,
            on_piece,
        )?;
        Ok(GenerationResult {
            prompt: prompt_text,
            prompt_ids,
            sequences,
            stats,
            seed,
            settings: serde_json::to_value(&options.config).unwrap_or(Value::Null),
        })
    }

    /// `pipeline("text-generation")(inputs, **kwargs)`: the JSON, every prompt's full result,
    /// and notes. `on_piece` streams (prompt index, piece).
    pub fn call(
        &self,
        inputs: &Value,
        kwargs: &Map<String, Value>,
        on_piece: &mut dyn FnMut(usize, &StreamPiece) -> bool,
        control: &RunControl,
    ) -> Result<(Value, Vec<GenerationResult>, Vec<String>)> {
        let options = self.options(kwargs)?;
        let (prompts, single) = prompts(inputs)?;
        let mut json_out = Vec::new();
        let mut results = Vec::new();
        for (i, prompt) in prompts.iter().enumerate() {
            let result = self.generate(prompt, &options, &mut |p| on_piece(i, p), control)?;
            json_out.push(self.output_json(prompt, &result, &options)?);
            results.push(result);
        }
        let json = if single {
            json_out.remove(0)
        } else {
            Value::Array(json_out)
        };
        Ok((json, results, options.notes))
    }

    /// The pipeline's JSON for one prompt: `[{"generated_text": ...}, ...]`.
    pub fn output_json(
        &self,
        prompt: &Prompt,
        result: &GenerationResult,
        options: &Options,
    ) -> Result<Value> {
        let prompt_decoded =
            self.tokenizer
                .decode_with(&result.prompt_ids, true, options.clean_up)?;
        let prompt_chars = prompt_decoded.chars().count();
        let mut records = Vec::new();
        for seq in &result.sequences {
            let mut ids = result.prompt_ids.clone();
            ids.extend(seq.tokens.iter().map(|t| t.id));
            if options.return_tensors {
                records.push(json!({"generated_token_ids": ids}));
                continue;
            }
            let text = self.tokenizer.decode_with(&ids, true, options.clean_up)?;
            let new_text: String = text.chars().skip(prompt_chars).collect();
            let value = if !options.return_full_text {
                Value::String(new_text)
            } else {
                match prompt {
                    Prompt::Text(original) => Value::String(format!("{original}{new_text}")),
                    Prompt::Chat(messages) => {
                        let continue_final = options.continue_final_message.unwrap_or_else(|| {
                            messages.last().is_some_and(|m| m.role == "assistant")
                        });
                        let mut out: Vec<Message> = messages.clone();
                        match out.last_mut() {
                            Some(last) if continue_final => last.content.push_str(&new_text),
                            _ => out.push(Message {
                                role: "assistant".into(),
                                content: new_text,
                            }),
                        }
                        serde_json::to_value(out).unwrap_or(Value::Null)
                    }
                }
            };
            records.push(json!({ "generated_text": value }));
        }
        Ok(Value::Array(records))
    }
}

/// Reads pipeline inputs: a string, a chat (list of {role, content}), or a list of either.
/// Returns the prompts and whether the input was a single one.
pub fn prompts(inputs: &Value) -> Result<(Vec<Prompt>, bool)> {
    fn one(v: &Value) -> Result<Prompt> {
        match v {
            Value::String(s) => Ok(Prompt::Text(s.clone())),
            Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
                serde_json::from_value(v.clone())
                    .map(Prompt::Chat)
                    .map_err(|e| {
                        WickError::InvalidInput(format!(
                            "a chat is a list of {{\"role\": ..., \"content\": ...}} messages: {e}"
                        ))
                    })
            }
            other => Err(WickError::InvalidInput(format!(
                "text-generation takes a text, a chat (a list of messages) or a list of those, \
                 got {other}"
            ))),
        }
    }
    match inputs {
        Value::Array(items) if !items.is_empty() && !items.iter().all(Value::is_object) => {
            Ok((items.iter().map(one).collect::<Result<_>>()?, false))
        }
        v => Ok((vec![one(v)?], true)),
    }
}

/// GGUF files carry their token ids in metadata; that is all the generation settings they have.
fn gguf_settings(loaded: &LoadedCausal) -> Map<String, Value> {
    let cfg = &loaded.model.config;
    let mut m = Map::new();
    if !cfg.eos_token_ids.is_empty() {
        m.insert("eos_token_id".into(), json!(cfg.eos_token_ids));
    }
    if let Some(b) = cfg.bos_token_id {
        m.insert("bos_token_id".into(), json!(b));
    }
    if let Some(p) = cfg.pad_token_id {
        m.insert("pad_token_id".into(), json!(p));
    }
    m
}
