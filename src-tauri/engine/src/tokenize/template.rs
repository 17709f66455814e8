//! The Jinja engine chat templates run in, with limits. A template is code from whoever published
//! the model: it may loop for ever, print without end or build strings that double each step.
//! Here it gets a fixed budget of instructions (minijinja's fuel), an output cap, and the run's
//! stop flag; [`super::sandbox`] adds a memory limit by rendering in a helper process.

use minijinja::{Environment, ErrorKind};
use serde::{Deserialize, Serialize};

use super::chat::Message;
use crate::cancel::CancelToken;
use crate::error::{Result, WickError};

/// Instructions a render may execute: a 2,000-message chat renders within it with the starter
/// models' templates (`tests/tests/untrusted_files.rs`), while three nested loops of 100,000
/// stop after well under a second.
pub const FUEL: u64 = 20_000_000;

/// What a template may write beyond the conversation it is given: the conversation's text
/// appears in the output once (a template may repeat it a few times), plus markup.
const OUTPUT_SLACK: usize = 1 << 20;
const OUTPUT_PER_INPUT_BYTE: usize = 8;

/// One render: everything the template sees.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RenderRequest {
    pub source: String,
    pub bos_token: String,
    pub eos_token: String,
    pub messages: Vec<Message>,
    pub add_generation_prompt: bool,
}

impl RenderRequest {
    /// The most bytes the render may produce.
    pub fn output_cap(&self) -> usize {
        let input: usize = self
            .messages
            .iter()
            .map(|m| m.content.len() + m.role.len())
            .sum::<usize>()
            + self.bos_token.len()
            + self.eos_token.len();
        OUTPUT_SLACK.saturating_add(input.saturating_mul(OUTPUT_PER_INPUT_BYTE))
    }
}

/// Renders in this process, within the fuel and output limits, stopping when `cancel` is raised
/// (checked at each piece of output; the fuel bounds the work between pieces).
pub fn render_here(request: &RenderRequest, cancel: Option<&CancelToken>) -> Result<String> {
    let env = environment();
    let template = env.template_from_str(&request.source).map_err(failed)?;
    let mut out = CappedOutput {
        text: Vec::new(),
        cap: request.output_cap(),
        over: false,
        cancel,
    };
    let rendered = template.render_captured_to(
        minijinja::context! {
            messages => &request.messages,
            add_generation_prompt => request.add_generation_prompt,
            bos_token => &request.bos_token,
            eos_token => &request.eos_token,
        },
        &mut out,
    );
    if cancel.is_some_and(CancelToken::is_cancelled) {
        return Err(WickError::Cancelled);
    }
    if out.over {
        return Err(template_error(format!(
            "its output passed {} MiB, far more than the conversation it was given",
            out.cap >> 20
        )));
    }
    rendered.map(drop).map_err(failed)?;
    String::from_utf8(out.text)
        .map_err(|_| template_error("its output is not valid UTF-8".to_string()))
}

/// The error for a template that broke a rule: it names the template as the cause.
pub fn template_error(why: String) -> WickError {
    // One line: a template's own message (raise_exception) may hold line breaks.
    let why = why.split_whitespace().collect::<Vec<_>>().join(" ");
    WickError::InvalidInput(format!(
        "the model's chat template failed: {why}. The template comes with the model \
         (tokenizer_config.json, chat_template.jinja or the GGUF); use another model or a plain \
         text prompt"
    ))
}

fn failed(err: minijinja::Error) -> WickError {
    match err.kind() {
        ErrorKind::OutOfFuel => template_error(format!(
            "it ran more than {FUEL} instructions without finishing (a loop that does not end?)"
        )),
        _ => {
            // minijinja's Display includes the line; the detailed chain is for logs only.
            template_error(err.to_string())
        }
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_fuel(Some(FUEL));
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.add_function(
        "raise_exception",
        |message: String| -> std::result::Result<String, minijinja::Error> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, message))
        },
    );
    env.add_function("strftime_now", |format: String| -> String {
        // Templates use this for "today's date" in system prompts; render it in UTC.
        super::chat::strftime_utc(&format)
    });
    env
}

/// The render's output: refuses bytes past the cap, and stops when the run is cancelled.
struct CappedOutput<'a> {
    text: Vec<u8>,
    cap: usize,
    over: bool,
    cancel: Option<&'a CancelToken>,
}

impl std::io::Write for CappedOutput<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.cancel.is_some_and(CancelToken::is_cancelled) {
            return Err(std::io::Error::other("cancelled"));
        }
        if self.text.len().saturating_add(bytes.len()) > self.cap {
            self.over = true;
            return Err(std::io::Error::other("output cap"));
        }
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(source: &str) -> RenderRequest {
        RenderRequest {
            source: source.to_string(),
            bos_token: "<s>".into(),
            eos_token: "</s>".into(),
            messages: vec![Message {
                role: "user".into(),
                content: "hi".into(),
            }],
            add_generation_prompt: true,
        }
    }

    #[test]
    fn an_endless_loop_runs_out_of_fuel() {
        let started = std::time::Instant::now();
        let err = render_here(
            &request(
                "{% for a in range(100000) %}{% for b in range(100000) %}\
                 {% for c in range(100000) %}{% endfor %}{% endfor %}{% endfor %}",
            ),
            None,
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("chat template"), "{message}");
        assert!(message.contains("instructions"), "{message}");
        // Not a timing assertion on speed: only that it ended at all, in a debug build.
        assert!(started.elapsed() < std::time::Duration::from_secs(120));
    }

    #[test]
    fn output_is_capped() {
        let err = render_here(
            &request("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}"),
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("output passed"), "{err}");
    }

    #[test]
    fn a_cancel_stops_the_render() {
        let cancel = CancelToken::new();
        cancel.cancel();
        let err = render_here(&request("{{ messages[0].content }}"), Some(&cancel)).unwrap_err();
        assert!(matches!(err, WickError::Cancelled), "{err}");
    }

    #[test]
    fn a_cancel_from_another_thread_stops_a_long_render() {
        let cancel = CancelToken::new();
        let raiser = cancel.clone();
        let started = std::time::Instant::now();
        let stopper = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(20));
            raiser.cancel();
        });
        // Would run out of fuel much later than the cancel; prints as it goes.
        let mut long = request(
            "{% for a in range(100000) %}{% for b in range(100000) %}.{% endfor %}{% endfor %}",
        );
        long.messages[0].content = "x".repeat(1 << 24);
        let err = render_here(&long, Some(&cancel)).unwrap_err();
        assert!(matches!(err, WickError::Cancelled), "{err}");
        stopper.join().unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
    }

    #[test]
    fn errors_name_the_template() {
        for source in [
            "{{ raise_exception('boom') }}",
            "{% for %}",
            "{{ no_such_function() }}",
        ] {
            let err = render_here(&request(source), None).unwrap_err();
            assert!(
                err.to_string().contains("chat template failed"),
                "{source}: {err}"
            );
        }
        assert_eq!(
            render_here(&request("{{ bos_token }}{{ messages[0].content }}"), None).unwrap(),
            "<s>hi"
        );
    }
}
