//! A conversation as the model reads it: the model's own chat template rendered over the
//! messages, the prompt tokenized as `transformers`' `apply_chat_template(messages,
//! tokenize=True)` tokenizes it (no special tokens added: the template writes its own), and each
//! token traced back to the message it came from (`wick tokenize --chat`, the inspector's Chat
//! mode).
//!
//! Templates are code that builds a string; nothing tells which output character came from
//! which message. Each message's content is looked for in the rendered text, in order, after the
//! previous one: templates insert the content verbatim (some trim it), so this finds every
//! message of the templates people ship. Where a template rewrites the content (a case change, a
//! translation of roles into text), that message has no span and its tokens count as template
//! text. The generation prompt is what rendering with `add_generation_prompt` adds to the end.

use serde::Serialize;
use ts_rs::TS;

use super::chat::{ChatTemplate, Message};
use super::{Inspection, TokenView, TokenizeOptions, WickTokenizer};
use crate::cancel::CancelToken;
use crate::error::{Result, WickError};

/// The most messages one view takes: far beyond any conversation a person edits, low enough that
/// a pasted file cannot make the template loop for minutes before its fuel runs out.
pub const MAX_MESSAGES: usize = 4096;

/// A stretch of the rendered prompt, in characters (as Python counts them) and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct Span {
    pub start: u32,
    pub end: u32,
    pub byte_start: u32,
    pub byte_end: u32,
}

/// Where one message's content landed in the prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[ts(export)]
pub struct MessageSpan {
    pub role: String,
    /// `None` when the template changed the content so that it does not appear as written.
    pub span: Option<Span>,
}

/// One token of the rendered prompt and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ChatToken {
    #[serde(flatten)]
    #[ts(flatten)]
    pub token: TokenView,
    /// Index of the message whose content this token covers (part of), `None` for template text
    /// (role markers, `<|im_start|>`, BOS, newlines the template writes).
    pub message: Option<u32>,
    /// The token is part of the generation prompt (`add_generation_prompt`).
    pub generation_prompt: bool,
}

/// A conversation through a model's chat template.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(export)]
pub struct ChatInspection {
    /// The prompt the template rendered.
    pub text: String,
    pub ids: Vec<u32>,
    pub tokens: Vec<ChatToken>,
    /// One per message, in order.
    pub messages: Vec<MessageSpan>,
    /// What `add_generation_prompt` appended, when it was asked for and the template appends one.
    pub generation_prompt: Option<Span>,
    /// `decode(ids)` with special tokens kept.
    pub decoded: String,
    pub char_count: u32,
}

impl WickTokenizer {
    /// Renders `messages` with `template` and tokenizes the prompt as `apply_chat_template(
    /// messages, tokenize=True, add_generation_prompt=...)` does.
    pub fn inspect_chat(
        &self,
        template: &ChatTemplate,
        messages: &[Message],
        add_generation_prompt: bool,
        cancel: &CancelToken,
    ) -> Result<ChatInspection> {
        if messages.len() > MAX_MESSAGES {
            return Err(WickError::InvalidInput(format!(
                "{} messages: the chat view takes at most {MAX_MESSAGES}",
                messages.len()
            )));
        }
        let text = template.render(messages, add_generation_prompt, false, cancel)?;
        let generation_prompt = if add_generation_prompt {
            // What the flag adds: the text rendered without it is where the prompt began.
            let without = template.render(messages, false, false, cancel)?;
            (text.len() > without.len() && text.starts_with(&without))
                .then(|| span(&text, without.len(), text.len()))
        } else {
            None
        };
        let options = TokenizeOptions {
            add_special_tokens: false,
            ..Default::default()
        };
        let Inspection {
            ids,
            tokens,
            decoded,
            char_count,
            ..
        } = self.inspect(&text, &options)?;
        let spans = find_messages(&text, messages);
        let tokens = tokens
            .into_iter()
            .map(|token| ChatToken {
                message: message_of(&token, &spans),
                generation_prompt: generation_prompt.is_some_and(|g| token.byte_end > g.byte_start),
                token,
            })
            .collect();
        Ok(ChatInspection {
            ids,
            tokens,
            messages: messages
                .iter()
                .zip(spans)
                .map(|(m, span)| MessageSpan {
                    role: m.role.clone(),
                    span,
                })
                .collect(),
            generation_prompt,
            decoded,
            char_count,
            text,
        })
    }
}

/// Each message's content in `text`, searched in order from where the previous one ended: as
/// written, else trimmed (templates such as Llama 3's and Gemma's call `| trim`).
fn find_messages(text: &str, messages: &[Message]) -> Vec<Option<Span>> {
    let mut from = 0;
    messages
        .iter()
        .map(|m| {
            let found = [m.content.as_str(), m.content.trim()]
                .into_iter()
                .filter(|c| !c.is_empty())
                .find_map(|c| {
                    text[from..]
                        .find(c)
                        .map(|at| (from + at, from + at + c.len()))
                });
            found.map(|(start, end)| {
                from = end;
                span(text, start, end)
            })
        })
        .collect()
}

/// The first message whose content the token overlaps.
fn message_of(token: &TokenView, spans: &[Option<Span>]) -> Option<u32> {
    spans
        .iter()
        .position(|s| {
            s.is_some_and(|s| token.byte_start < s.byte_end && token.byte_end > s.byte_start)
        })
        .and_then(|i| u32::try_from(i).ok())
}

/// Byte range `start..end` of `text` as a [`Span`] (both ends on character boundaries).
fn span(text: &str, start: usize, end: usize) -> Span {
    let chars = |b: usize| u32::try_from(text[..b].chars().count()).unwrap_or(u32::MAX);
    let bytes = |b: usize| u32::try_from(b).unwrap_or(u32::MAX);
    Span {
        start: chars(start),
        end: chars(end),
        byte_start: bytes(start),
        byte_end: bytes(end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(role: &str, content: &str) -> Message {
        Message {
            role: role.into(),
            content: content.into(),
        }
    }

    #[test]
    fn messages_are_found_in_order_even_when_one_repeats_another() {
        let text = "<s>user: hi</s><s>assistant: hi there</s><s>user: hi</s>";
        let spans = find_messages(
            text,
            &[
                msg("user", "hi"),
                msg("assistant", "hi there"),
                msg("user", "hi"),
            ],
        );
        let at: Vec<_> = spans.iter().map(|s| s.map(|s| (s.start, s.end))).collect();
        assert_eq!(at, [Some((9, 11)), Some((29, 37)), Some((50, 52))]);
    }

    #[test]
    fn trimmed_content_is_found_and_rewritten_content_is_not() {
        let text = "[INST] Hello [/INST] ÉTÉ";
        let spans = find_messages(text, &[msg("user", "  Hello\n"), msg("assistant", "été")]);
        assert_eq!(spans[0].map(|s| (s.start, s.end)), Some((7, 12)));
        assert_eq!(spans[1], None);
    }

    #[test]
    fn spans_count_characters_as_python_does() {
        let s = span("é😀ab", 6, 8);
        assert_eq!((s.start, s.end, s.byte_start, s.byte_end), (2, 4, 6, 8));
    }
}
