//! Chat templates: the Jinja template a model ships (in `tokenizer_config.json`,
//! `chat_template.jinja` or GGUF metadata) rendered over a conversation, as transformers'
//! `apply_chat_template` renders it (trim_blocks, lstrip_blocks, Python string methods,
//! `raise_exception`).

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use ts_rs::TS;

use super::template::RenderRequest;
use crate::cancel::CancelToken;
use crate::error::{Result, WickError};

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[ts(export)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A model's chat template and the special tokens it refers to.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
}

/// `bos_token` etc. are strings or AddedToken-like objects.
fn token_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(o)) => o
            .get("content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

impl ChatTemplate {
    pub fn new(source: String, bos_token: String, eos_token: String) -> Self {
        Self {
            source,
            bos_token,
            eos_token,
        }
    }

    /// The template of a transformers folder, if it has one: `chat_template.jinja`, else the
    /// `chat_template` of tokenizer_config.json (a string, or named templates: "default").
    pub fn from_folder(dir: &Path) -> Result<Option<Self>> {
        let config_path = dir.join("tokenizer_config.json");
        let config: Value = match std::fs::read_to_string(&config_path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| WickError::InvalidTokenizer {
                path: config_path.clone(),
                reason: e.to_string(),
            })?,
            Err(_) => Value::Null,
        };
        let jinja = dir.join("chat_template.jinja");
        let source = if jinja.is_file() {
            Some(std::fs::read_to_string(&jinja).map_err(|e| WickError::io(&jinja, e))?)
        } else {
            match config.get("chat_template") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Array(named)) => named
                    .iter()
                    .find(|t| t.get("name").and_then(Value::as_str) == Some("default"))
                    .or_else(|| named.first())
                    .and_then(|t| t.get("template"))
                    .and_then(Value::as_str)
                    .map(str::to_string),
                _ => None,
            }
        };
        Ok(source.map(|source| {
            Self::new(
                source,
                token_text(config.get("bos_token")),
                token_text(config.get("eos_token")),
            )
        }))
    }

    /// The template of a model path as generation uses it: a folder's (or the folder of a
    /// tokenizer.json or GGUF file) `chat_template.jinja` / `tokenizer_config.json` first, since
    /// a tokenizer_config.json beside a GGUF overrides what the GGUF says; else the GGUF's
    /// metadata (the file named, or the folder's first GGUF).
    pub fn for_model(path: &Path) -> Result<Option<Self>> {
        let dir = if path.is_dir() {
            path
        } else {
            path.parent().unwrap_or(path)
        };
        if let Some(template) = Self::from_folder(dir)? {
            return Ok(Some(template));
        }
        let gguf = if path.is_dir() {
            super::load::first_gguf_in(path)?
        } else {
            super::load::is_gguf_name(path).then(|| path.to_path_buf())
        };
        match gguf {
            Some(file) => Self::from_gguf(&file),
            None => Ok(None),
        }
    }

    /// Renders `messages`; with `add_generation_prompt` the text ends where the assistant's
    /// reply begins. With `continue_final_message` the last message is left open instead.
    ///
    /// The template is the model publisher's code: it runs with limits (see
    /// [`super::template`]), in a helper process when the binary isolates templates, and stops
    /// when `cancel` is raised.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
        continue_final_message: bool,
        cancel: &CancelToken,
    ) -> Result<String> {
        let request = RenderRequest {
            source: self.source.clone(),
            bos_token: self.bos_token.clone(),
            eos_token: self.eos_token.clone(),
            messages: messages.to_vec(),
            add_generation_prompt: add_generation_prompt && !continue_final_message,
        };
        let rendered = super::sandbox::render(&request, cancel)?;
        if !continue_final_message {
            return Ok(rendered);
        }
        // As transformers: cut the text right after the final message's content.
        let last = messages.last().map(|m| m.content.as_str()).unwrap_or("");
        let stripped = last.trim();
        let at = rendered.rfind(stripped).ok_or_else(|| {
            WickError::InvalidInput(
                "continue_final_message: the final message does not appear in the rendered chat"
                    .into(),
            )
        })?;
        let lstripped = last.trim_start();
        let end = if rendered[at..].starts_with(lstripped) && lstripped == last {
            at + lstripped.len()
        } else {
            at + stripped.len()
        };
        Ok(rendered[..end].to_string())
    }
}

/// A small strftime for the formats chat templates use (%d %m %Y %B %b %H %M %S %j %A %a).
pub(super) fn strftime_utc(format: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Thursday",
        "Friday",
        "Saturday",
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
    ];
    let month_name = MONTHS[(month - 1) as usize];
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('d') => out.push_str(&format!("{day:02}")),
            Some('m') => out.push_str(&format!("{month:02}")),
            Some('Y') => out.push_str(&year.to_string()),
            Some('B') => out.push_str(month_name),
            Some('b') => out.push_str(&month_name[..3]),
            Some('A') => out.push_str(weekday),
            Some('a') => out.push_str(&weekday[..3]),
            Some('H') => out.push_str(&format!("{:02}", rem / 3600)),
            Some('M') => out.push_str(&format!("{:02}", rem % 3600 / 60)),
            Some('S') => out.push_str(&format!("{:02}", rem % 60)),
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

impl ChatTemplate {
    /// The template a GGUF file carries (`tokenizer.chat_template`), with its BOS/EOS texts.
    pub fn from_gguf(path: &Path) -> Result<Option<Self>> {
        let reader =
            std::io::BufReader::new(std::fs::File::open(path).map_err(|e| WickError::io(path, e))?);
        let content = crate::gguf_header::read(reader, path)?;
        let meta = &content.metadata;
        let Some(source) = meta
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned()
        else {
            return Ok(None);
        };
        let tokens = meta
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.to_vec().ok());
        let text_of = |key: &str| -> String {
            let id = meta.get(key).and_then(|v| v.to_u32().ok());
            match (id, tokens) {
                (Some(id), Some(tokens)) => tokens
                    .get(id as usize)
                    .and_then(|t| t.to_string().ok())
                    .cloned()
                    .unwrap_or_default(),
                _ => String::new(),
            }
        };
        Ok(Some(Self::new(
            source,
            text_of("tokenizer.ggml.bos_token_id"),
            text_of("tokenizer.ggml.eos_token_id"),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn msgs(pairs: &[(&str, &str)]) -> Vec<Message> {
        pairs
            .iter()
            .map(|(r, c)| Message {
                role: r.to_string(),
                content: c.to_string(),
            })
            .collect()
    }

    #[test]
    fn chatml_renders_with_a_generation_prompt() {
        let t = ChatTemplate::new(CHATML.into(), String::new(), String::new());
        let out = t
            .render(&msgs(&[("user", "Hi")]), true, false, &CancelToken::new())
            .unwrap();
        assert_eq!(
            out,
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn continuing_the_final_message_leaves_it_open() {
        let t = ChatTemplate::new(CHATML.into(), String::new(), String::new());
        let out = t
            .render(
                &msgs(&[("user", "Hi"), ("assistant", "Hello,")]),
                true,
                true,
                &CancelToken::new(),
            )
            .unwrap();
        assert!(out.ends_with("<|im_start|>assistant\nHello,"), "{out:?}");
    }

    #[test]
    fn python_methods_and_raise_exception_work() {
        let t = ChatTemplate::new(
            "{% if messages[0]['role'] != 'user' %}{{ raise_exception('first must be user') }}{% endif %}{{ messages[0]['content'].strip().upper() }}".into(),
            String::new(),
            String::new(),
        );
        assert_eq!(
            t.render(
                &msgs(&[("user", "  hi ")]),
                false,
                false,
                &CancelToken::new()
            )
            .unwrap(),
            "HI"
        );
        let err = t
            .render(&msgs(&[("system", "x")]), false, false, &CancelToken::new())
            .unwrap_err();
        assert!(err.to_string().contains("first must be user"), "{err}");
    }

    #[test]
    fn strftime_formats_a_date() {
        let s = strftime_utc("%d %B %Y");
        assert_eq!(s.split(' ').count(), 3, "{s}");
    }
}
