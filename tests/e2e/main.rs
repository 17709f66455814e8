//! End-to-end tests of the real Wick window, driven through WebKitWebDriver.
//!
//! Run by `scripts/test.sh` under `dbus-run-session -- xvfb-run -a`; needs the app built with
//! its UI as users run it (`target/release/wick-app`, from `cargo build --release -p wick-app`)
//! and the test models fetched. Each case prints ok/FAILED,
//! screenshots land in `tests/e2e-output/`, and the last line is `e2e: N passed, N failed`.

mod bench;
mod encoder_tabs;
mod generation_tab;
mod models;
mod runs;
mod webdriver;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{json, Value};
use webdriver::{Driver, Result, Session};
use wick_engine::{TokenizeOptions, WickTokenizer};
use wick_tests::{app_binary, model_dir, repo_root};

pub(crate) const UI_TIMEOUT: Duration = Duration::from_secs(30);

const CHIP_IDS: &str = "return Array.from(document.querySelectorAll('[data-testid=chips] .chip'))\
    .map(c => Number(c.dataset.id));";

type Case = fn(&Session, &Path) -> Result<()>;

fn main() -> ExitCode {
    let cases: &[(&str, Case)] = &[
        ("window shows the nine task tabs", nine_tabs),
        (
            "every tab shows whether it is ready or coming",
            coming_states,
        ),
        (
            "inspector chips match the engine (tokenizer.json)",
            inspector_tokenizer_json,
        ),
        ("inspector shows token details on hover", inspector_hover),
        (
            "pasted emoji and CJK tokenize as in the engine",
            inspector_paste,
        ),
        (
            "inspector chips match the engine (GGUF-only model)",
            inspector_gguf,
        ),
        (
            "inspector options: no special tokens, padding",
            inspector_options,
        ),
        (
            "inspector compares two tokenizers side by side",
            inspector_compare,
        ),
        (
            "inspector Chat mode: the template's prompt as tokens, by message",
            inspector_chat,
        ),
        (
            "inspector Inside: attention maps and the logit lens (the starter models)",
            inspector_inside,
        ),
        ("a missing model shows a clear error", missing_model_error),
        ("NER tab highlights entities (Rampart)", encoder_tabs::ner),
        (
            "fill-mask tab shows candidates (splade-tiny)",
            encoder_tabs::fill_mask,
        ),
        (
            "embeddings tab shows a similarity heat map (MiniLM)",
            encoder_tabs::embeddings,
        ),
        (
            "classification tab shows label bars and a batch table",
            encoder_tabs::classification,
        ),
        (
            "question answering tab marks the answer",
            encoder_tabs::question_answering,
        ),
        ("zero-shot tab scores your labels", encoder_tabs::zero_shot),
        (
            "text generation streams a chat reply (SmolLM2 GGUF)",
            generation_tab::chat,
        ),
        (
            "clicking an alternative branches the reply",
            generation_tab::branch,
        ),
        ("Stop ends a generation", generation_tab::stop),
        (
            "every returned sequence is drawn, stop strings end them",
            generation_tab::sequences,
        ),
        (
            "a second run waits for the first, with Cancel",
            runs::second_run_waits,
        ),
        (
            "a model load shows its progress and Stop cancels it",
            runs::load_progress_and_cancel,
        ),
        (
            "the device picker: CPU runs, a missing GPU is disabled with its reason",
            runs::device_picker,
        ),
        (
            "compare variants: Q4_1 against f32",
            generation_tab::compare_variants,
        ),
        (
            "translation tab translates (flan-T5)",
            generation_tab::translation,
        ),
        (
            "summarization tab runs beam search (flan-T5)",
            generation_tab::summarization,
        ),
        (
            "a model without the task's head is a clear error",
            encoder_tabs::missing_head,
        ),
        (
            "Hub: search, download with progress, cancel, run (local Hub)",
            models::search_download_cancel_run,
        ),
        (
            "system panel lists the machine and the loaded model",
            models::system_panel,
        ),
    ];
    // `WICK_E2E_ONLY=inspector` runs the cases whose name holds that text (while working on them;
    // CI runs all).
    let only = std::env::var("WICK_E2E_ONLY").ok();
    let cases: Vec<(&str, Case)> = cases
        .iter()
        .filter(|(name, _)| only.as_deref().is_none_or(|o| name.contains(o)))
        .copied()
        .collect();
    let cases = &cases[..];
    let out_dir = repo_root().join("tests").join("e2e-output");
    let app = app_binary();
    if std::env::args().any(|a| a == "--bench") {
        return match bench_window(&app, &out_dir) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("window benchmark failed: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let (mut passed, mut failed) = match run_all(&app, &out_dir, cases) {
        Ok(counts) => counts,
        Err(e) => {
            eprintln!("e2e setup failed: {e}");
            (0, cases.len())
        }
    };
    // The dark theme needs a fresh app whose GTK theme is dark.
    let name = "the window follows a dark system theme";
    match dark_theme(&app, &out_dir) {
        _ if only.is_some() => {}
        Ok(()) => {
            passed += 1;
            println!("e2e {name} ... ok");
        }
        Err(e) => {
            failed += 1;
            println!("e2e {name} ... FAILED\n    {e}");
        }
    }
    println!("e2e: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_all(app: &Path, out_dir: &Path, cases: &[(&str, Case)]) -> Result<(usize, usize)> {
    if !app.is_file() {
        return Err(format!(
            "{} is missing: build it with `cargo build --release -p wick-app` (the build \
             `scripts/run.sh` makes)",
            app.display()
        ));
    }
    // The app downloads from a local Hub into a cache of its own.
    let hub_cache = std::env::temp_dir().join(format!("wick-e2e-hub-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&hub_cache);
    let hub = models::HUB.get_or_init(|| {
        wick_tests::hub_server::HubServer::start(wick_tests::hub_server::test_model_repos())
    });
    let endpoint = hub.endpoint();
    let cache = hub_cache.display().to_string();
    let driver = Driver::start(&[
        ("HF_ENDPOINT", endpoint.as_str()),
        ("HF_HUB_CACHE", cache.as_str()),
        ("HF_HUB_OFFLINE", ""),
    ])?;
    let session = driver.open_app(app)?;
    // The window is up once the tab bar has been drawn from the engine's task table.
    session.find(".tab", UI_TIMEOUT)?;
    let (mut passed, mut failed) = (0, 0);
    for (name, case) in cases {
        match case(&session, out_dir) {
            Ok(()) => {
                passed += 1;
                println!("e2e {name} ... ok");
            }
            Err(e) => {
                failed += 1;
                println!("e2e {name} ... FAILED\n    {e}");
                let _ = session.screenshot(&out_dir.join(format!("failed-{}.png", slug(name))));
            }
        }
    }
    let _ = session.close();
    let _ = std::fs::remove_dir_all(&hub_cache);
    Ok((passed, failed))
}

/// `--bench`: the window benchmark ([`bench`]) instead of the cases.
fn bench_window(app: &Path, out: &Path) -> Result<()> {
    if !app.is_file() {
        return Err(format!(
            "{} is missing: run scripts/bench_window.sh",
            app.display()
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| e.to_string())?;
    let driver = Driver::start(&[])?;
    let session = driver.open_app(app)?;
    session.find(".tab", UI_TIMEOUT)?;
    let result = bench::run_all(&session, out);
    let _ = session.close();
    result
}

fn dark_theme(app: &Path, out: &Path) -> Result<()> {
    let driver = Driver::start(&[("GTK_THEME", "Adwaita:dark")])?;
    let s = driver.open_app(app)?;
    s.find(".tab", UI_TIMEOUT)?;
    let looks = s.script(
        "return [matchMedia('(prefers-color-scheme: dark)').matches, \
         getComputedStyle(document.body.parentElement).backgroundColor];",
        json!([]),
    )?;
    ensure(looks[0] == true, || {
        format!("prefers-color-scheme was not dark: {looks}")
    })?;
    // The dark background is #14162e.
    ensure(looks[1] == "rgb(20, 22, 46)", || {
        format!("background was {}", looks[1])
    })?;
    choose_model(&s, &model_dir("smollm2-135m-instruct"))?;
    type_into_inspector(&s, CHAT_TEXT)?;
    let model = model_dir("smollm2-135m-instruct");
    expect_chips(
        &s,
        &engine_ids(&model, CHAT_TEXT, &TokenizeOptions::default())?,
    )?;
    s.screenshot(&out.join("dark-theme.png"))?;
    s.close()
}

fn slug(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

pub(crate) fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

fn nine_tabs(s: &Session, _: &Path) -> Result<()> {
    let tasks = s.script(
        "return Array.from(document.querySelectorAll('.tab')).map(t => t.dataset.task);",
        json!([]),
    )?;
    // The tabs come from the engine's task table, in its order.
    let expected: Vec<&str> = wick_engine::tasks::TASKS.iter().map(|t| t.id).collect();
    let expected = json!(expected);
    ensure(tasks == expected, || format!("tabs were {tasks}"))?;
    let title = s.script("return document.title;", json!([]))?;
    ensure(title == "Wick", || format!("title was {title}"))
}

/// Every tab shows its card: "ready" for tasks whose pipeline has landed, "coming" for the rest,
/// as the engine's task table says.
fn coming_states(s: &Session, out: &Path) -> Result<()> {
    let tabs = s.script(
        "return Array.from(document.querySelectorAll('.tab')).map(t => t.id);",
        json!([]),
    )?;
    for id in tabs
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
    {
        let tab = s.find(&format!("#{id}"), UI_TIMEOUT)?;
        s.scroll_and_click(&tab)?;
        let state = s.wait_for(
            "the task card",
            "const c = document.querySelector('.task-card'); \
             const t = document.querySelector('.tab.active'); \
             return c && t ? [c.dataset.state, c.querySelector('h1').textContent, t.id] : null;",
            UI_TIMEOUT,
            |v| v.get(2).and_then(Value::as_str) == Some(id),
        )?;
        let task = id.trim_start_matches("tab-");
        let want = match wick_engine::tasks::TASKS.iter().find(|t| t.id == task) {
            Some(t) if t.availability == wick_engine::tasks::Availability::Ready => "ready",
            _ => "coming",
        };
        ensure(state[0] == want, || format!("{id}: card state {state}"))?;
    }
    // Back to the first tab for the next cases.
    s.scroll_and_click(&s.find("#tab-text-generation", UI_TIMEOUT)?)?;
    s.screenshot(&out.join("tabs-coming.png"))
}

/// Points the model field at `model` the way a user would: select, type, press Enter.
pub(crate) fn choose_model(s: &Session, model: &Path) -> Result<()> {
    let field = s.find("#model-path", UI_TIMEOUT)?;
    s.clear(&field)?;
    s.type_text(&field, &format!("{}\u{E007}", model.display()))
}

fn type_into_inspector(s: &Session, text: &str) -> Result<()> {
    let area = s.find("#inspector-text", UI_TIMEOUT)?;
    s.clear(&area)?;
    s.type_text(&area, text)
}

/// Waits until the chips show exactly `expected`.
fn expect_chips(s: &Session, expected: &[u32]) -> Result<()> {
    let want = json!(expected);
    s.wait_for(
        "chips to match the engine's ids",
        CHIP_IDS,
        UI_TIMEOUT,
        |v| *v == want,
    )
    .map(drop)
}

/// Chooses the starter model `name`, types `text` and waits for chips equal to the engine's ids,
/// which it returns.
fn type_and_expect(s: &Session, name: &str, text: &str) -> Result<Vec<u32>> {
    let model = model_dir(name);
    choose_model(s, &model)?;
    type_into_inspector(s, text)?;
    let ids = engine_ids(&model, text, &TokenizeOptions::default())?;
    expect_chips(s, &ids)?;
    Ok(ids)
}

fn engine_ids(model: &Path, text: &str, options: &TokenizeOptions) -> Result<Vec<u32>> {
    WickTokenizer::from_path(model)
        .and_then(|t| t.encode_ids(text, options))
        .map_err(|e| e.to_string())
}

const MINILM_TEXT: &str =
    "Wick shows how a model reads text: tokens, ids & offsets — even for naïve café, 東京 and Ünïcödé!";

fn inspector_tokenizer_json(s: &Session, out: &Path) -> Result<()> {
    let ids = type_and_expect(s, "all-minilm-l6-v2", MINILM_TEXT)?;
    let count = s.script(
        "return document.querySelector('[data-testid=token-count] strong').textContent;",
        json!([]),
    )?;
    ensure(count == json!(format!("{} tokens", ids.len())), || {
        format!("count said {count}, engine has {} tokens", ids.len())
    })?;
    // The MiniLM tokenizer.json bakes in padding to 128: the inspector must say so.
    let notice = s.script(
        "const n = document.querySelector('[data-testid=baked-notice]'); return n && n.textContent;",
        json!([]),
    )?;
    ensure(
        notice.as_str().is_some_and(|n| n.contains("pad to 128")),
        || format!("baked padding notice was {notice}"),
    )?;
    s.screenshot(&out.join("inspector-minilm.png"))
}

fn inspector_hover(s: &Session, out: &Path) -> Result<()> {
    // Keyboard focus shows the same card as hovering.
    s.script(
        "document.querySelectorAll('[data-testid=chips] .chip')[4].focus(); return true;",
        json!([]),
    )?;
    let tip = s.wait_for(
        "the token detail card",
        "const t = document.querySelector('.tip'); return t && t.textContent;",
        UI_TIMEOUT,
        |v| v.is_string(),
    )?;
    let tip = tip.as_str().unwrap_or_default();
    ensure(tip.contains("chars") && tip.contains("bytes"), || {
        format!("detail card was {tip:?}")
    })?;
    s.screenshot(&out.join("inspector-hover.png"))
}

const PASTED_TEXT: &str = "Emoji 🕯️🔥 and flags 🇫🇷 — 我爱自然语言处理";

fn inspector_paste(s: &Session, out: &Path) -> Result<()> {
    let model = model_dir("gemma3-270m");
    choose_model(s, &model)?;
    s.paste("#inspector-text", PASTED_TEXT)?;
    expect_chips(
        s,
        &engine_ids(&model, PASTED_TEXT, &TokenizeOptions::default())?,
    )?;
    s.screenshot(&out.join("inspector-paste-gemma.png"))
}

const CHAT_TEXT: &str =
    "<|im_start|>user\nHow many r's are in \"strawberry\"? Count 1, 2, 3…<|im_end|>";

fn inspector_gguf(s: &Session, out: &Path) -> Result<()> {
    type_and_expect(s, "smollm2-135m-instruct", CHAT_TEXT)?;
    let facts = s.script(
        "return document.querySelector('[data-testid=tokenizer-facts]').textContent;",
        json!([]),
    )?;
    ensure(facts.as_str().is_some_and(|f| f.contains("GGUF")), || {
        format!("facts were {facts}")
    })?;
    s.screenshot(&out.join("inspector-gguf.png"))
}

const COMPARE_TEXT: &str = "Tokenizers disagree: naïve café, 東京, and 🙂.";

/// "Compare with": MiniLM (WordPiece) beside Gemma 3 (SentencePiece BPE) on one text; each row
/// is that tokenizer's own ids, and the tokens whose boundaries part are outlined.
fn inspector_compare(s: &Session, out: &Path) -> Result<()> {
    let (a, b) = (model_dir("all-minilm-l6-v2"), model_dir("gemma3-270m"));
    choose_model(s, &a)?;
    s.paste("#inspector-text", COMPARE_TEXT)?; // typing drops the emoji
    encoder_tabs::set(s, "#opt-compare", &json!(b.display().to_string()))?;
    let options = TokenizeOptions::default();
    let want = WickTokenizer::from_path(&a)
        .and_then(|ta| ta.compare_with(&WickTokenizer::from_path(&b)?, COMPARE_TEXT, &options))
        .map_err(|e| e.to_string())?;
    let row = |name: &str| {
        format!(
            "return Array.from(document.querySelectorAll('[data-testid=chips-{name}] .chip'))\
               .map(c => Number(c.dataset.id));"
        )
    };
    s.wait_for("row A to be MiniLM's ids", &row("A"), UI_TIMEOUT, |v| {
        *v == json!(want.a.inspection.ids)
    })?;
    s.wait_for("row B to be Gemma 3's ids", &row("B"), UI_TIMEOUT, |v| {
        *v == json!(want.b.inspection.ids)
    })?;
    let outlined = s.script(
        "return document.querySelectorAll('[data-testid=chips-A] .chip.differs').length + \
           document.querySelectorAll('[data-testid=chips-B] .chip.differs').length;",
        json!([]),
    )?;
    let want_outlined = want
        .a
        .differs
        .iter()
        .chain(&want.b.differs)
        .filter(|d| **d)
        .count();
    ensure(
        outlined == json!(want_outlined) && want_outlined > 0,
        || format!("{outlined} chips outlined, the engine says {want_outlined}"),
    )?;
    let summary = s.script(
        "return document.querySelector('[data-testid=compare-summary]').textContent;",
        json!([]),
    )?;
    let differ = want.differing_boundaries.len().to_string();
    ensure(
        summary.as_str().is_some_and(|t| t.contains(&differ)),
        || format!("summary was {summary}, {differ} boundaries differ"),
    )?;
    s.script(
        "document.querySelector('[data-testid=compare-side-A]').scrollIntoView({block: 'start'}); return true;",
        json!([]),
    )?;
    s.screenshot(&out.join("inspector-compare.png"))?;
    encoder_tabs::set(s, "#opt-compare", &json!(""))
}

/// The engine's ids for `messages` through `model`'s chat template (generation prompt added).
fn engine_chat_ids(
    model: &Path,
    messages: &[wick_engine::tokenize::chat::Message],
) -> Result<Vec<u32>> {
    let template = wick_engine::tokenize::chat::ChatTemplate::for_model(model)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{} has no chat template", model.display()))?;
    WickTokenizer::from_path(model)
        .and_then(|t| {
            t.inspect_chat(
                &template,
                messages,
                true,
                &wick_engine::cancel::CancelToken::new(),
            )
        })
        .map(|chat| chat.ids)
        .map_err(|e| e.to_string())
}

/// Waits until the Chat view's chips are `ids`.
fn wait_for_chat(s: &Session, ids: &[u32]) -> Result<()> {
    s.wait_for(
        "the chat's chips to be the engine's ids",
        "return Array.from(document.querySelectorAll('[data-testid=chat-chips] .chip'))\
           .map(c => Number(c.dataset.id));",
        UI_TIMEOUT,
        |v| *v == json!(ids),
    )
    .map(drop)
}

/// Chat mode: a three-message conversation through SmolLM2's own template (from its GGUF); the
/// chips are the engine's ids for the same messages, and the tokens of each message are tinted
/// by its role, apart from the template's text.
fn inspector_chat(s: &Session, out: &Path) -> Result<()> {
    use wick_engine::tokenize::chat::Message;
    let model = model_dir("smollm2-135m-instruct");
    choose_model(s, &model)?;
    s.scroll_and_click(&s.find("#inspect-chat", UI_TIMEOUT)?)?;
    let said = [
        ("user", "What is the capital of France?"),
        ("assistant", "Paris."),
        ("user", "And of Italy?"),
    ];
    for (i, (_, content)) in said.iter().enumerate() {
        if i > 0 {
            s.scroll_and_click(&s.find("[data-testid=chat-add]", UI_TIMEOUT)?)?;
        }
        let area = s.find(
            &format!("[data-testid=chat-message]:nth-child({}) textarea", i + 1),
            UI_TIMEOUT,
        )?;
        s.clear(&area)?;
        s.type_text(&area, content)?;
    }
    let messages: Vec<Message> = said
        .iter()
        .map(|(role, content)| Message {
            role: role.to_string(),
            content: content.to_string(),
        })
        .collect();
    wait_for_chat(s, &engine_chat_ids(&model, &messages)?)?;
    let by_message = s.script(
        "const text = (m) => Array.from(document.querySelectorAll(`[data-testid=chat-chips] \
           .chip[data-message='${m}']`)).map(c => c.querySelector('.chip-text').textContent).join(''); \
         return [text(0), text(2), document.querySelectorAll('[data-testid=chat-chips] .chip.template').length, \
           document.querySelectorAll('[data-testid=chat-chips] .chip.gen').length];",
        json!([]),
    )?;
    ensure(
        by_message[0] == json!("What·is·the·capital·of·France?")
            && by_message[1] == json!("And·of·Italy?")
            && by_message[2].as_u64().is_some_and(|n| n > 0)
            && by_message[3].as_u64().is_some_and(|n| n > 0),
        || format!("message chips were {by_message}"),
    )?;
    s.script(
        "document.querySelector('[data-testid=chat-mode]').scrollIntoView({block: 'start'}); return true;",
        json!([]),
    )?;
    s.screenshot(&out.join("inspector-chat.png"))?;
    // The same conversation through Gemma 3's own template.
    let gemma = model_dir("gemma3-270m");
    choose_model(s, &gemma)?;
    wait_for_chat(s, &engine_chat_ids(&gemma, &messages)?)?;
    s.script(
        "document.querySelector('[data-testid=chat-mode]').scrollIntoView({block: 'start'}); return true;",
        json!([]),
    )?;
    s.screenshot(&out.join("inspector-chat-gemma.png"))?;
    // Back to text for the cases after this one.
    s.scroll_and_click(&s.find("#inspect-text", UI_TIMEOUT)?)
}

/// Clicks "Look inside" and waits for the run to end.
fn look_inside(s: &Session) -> Result<()> {
    const RUNS: &str = "return document.querySelector('[data-testid=inside]').dataset.runs;";
    let before = s.script(RUNS, json!([]))?;
    s.scroll_and_click(&s.find("#inside-run", UI_TIMEOUT)?)?;
    s.wait_for("the inside run to end", RUNS, UI_TIMEOUT, |v| *v != before)?;
    let error = s.script(
        "return document.querySelector('[data-testid=inside-error]')?.textContent ?? null;",
        json!([]),
    )?;
    ensure(error.is_null(), || format!("the run failed: {error}"))
}

/// Attention maps and the logit lens of the starter models in the window, against `wick
/// inspect` on the same text.
fn inspector_inside(s: &Session, out: &Path) -> Result<()> {
    const TEXT: &str = "The capital of France is";
    let model = model_dir("smollm2-135m-instruct");
    choose_model(s, &model)?;
    s.scroll_and_click(&s.find("#inspect-inside", UI_TIMEOUT)?)?;
    encoder_tabs::set(s, "#inside-text", &json!(TEXT))?;
    look_inside(s)?;
    let shape = s.script(
        "return [document.querySelectorAll('[data-testid=attention-map] .w').length, \
           document.querySelectorAll('[data-testid=attention-heads] .head').length];",
        json!([]),
    )?;
    // SmolLM2: 5 tokens here, 9 heads a layer.
    ensure(shape == json!([25, 9]), || {
        format!("map cells and heads: {shape}")
    })?;
    s.script(
        "document.querySelectorAll('[data-testid=attention-map] .row-label')[4].click(); return true;",
        json!([]),
    )?;
    s.find("[data-testid=attention-from]", UI_TIMEOUT)?;
    s.script(
        "document.querySelector('[data-testid=inside]').scrollIntoView({block: 'start'}); return true;",
        json!([]),
    )?;
    s.screenshot(&out.join("inspector-attention.png"))?;

    s.scroll_and_click(&s.find("#inside-lens", UI_TIMEOUT)?)?;
    look_inside(s)?;
    let cli = std::process::Command::new(wick_tests::target_binary("wick"))
        .args(["inspect", "logit-lens", "--json", "--model"])
        .arg(&model)
        .arg(TEXT)
        .output()
        .map_err(|e| e.to_string())?;
    let want: Value = serde_json::from_slice(&cli.stdout).map_err(|e| e.to_string())?;
    let layers = want["layers"]
        .as_array()
        .ok_or("no layers from wick inspect")?;
    let top_row: Vec<Value> = layers
        .last()
        .and_then(Value::as_array)
        .ok_or("no last layer")?
        .iter()
        .map(|cands| cands[0]["token"].clone())
        .collect();
    let shown = s.script(
        "const rows = document.querySelectorAll('[data-testid=logit-lens] tbody tr'); \
         return [rows.length, Array.from(rows[0].querySelectorAll('.lens-cell')).map(c => c.title.split(' · ')[0])];",
        json!([]),
    )?;
    ensure(
        shown[0] == json!(layers.len()) && shown[1] == json!(top_row),
        || {
            format!(
                "lens rows/top row {shown}, wick inspect says {} / {top_row:?}",
                layers.len()
            )
        },
    )?;
    s.script(
        "document.querySelectorAll('[data-testid=logit-lens] tbody tr')[0].querySelectorAll('.lens-cell')[4].click(); \
         document.querySelector('[data-testid=inside]').scrollIntoView({block: 'start'}); return true;",
        json!([]),
    )?;
    s.find("[data-testid=lens-detail]", UI_TIMEOUT)?;
    s.screenshot(&out.join("inspector-logit-lens.png"))?;

    // The other starter models: Gemma 3's lens has a row per layer; the encoders (MiniLM,
    // Rampart) show attention maps of the shape `wick inspect` gives, and refuse the lens.
    choose_model(s, &model_dir("gemma3-270m"))?;
    look_inside(s)?;
    let rows = s.script(
        "return document.querySelectorAll('[data-testid=logit-lens] tbody tr').length;",
        json!([]),
    )?;
    ensure(rows == json!(18), || format!("Gemma 3 lens rows: {rows}"))?;
    s.scroll_and_click(&s.find("#inside-attention", UI_TIMEOUT)?)?;
    for name in ["rampart-ner", "all-minilm-l6-v2"] {
        let encoder = model_dir(name);
        choose_model(s, &encoder)?;
        look_inside(s)?;
        let cli = std::process::Command::new(wick_tests::target_binary("wick"))
            .args(["inspect", "attention", "--json", "--model"])
            .arg(&encoder)
            .arg(TEXT)
            .output()
            .map_err(|e| e.to_string())?;
        let want: Value = serde_json::from_slice(&cli.stdout).map_err(|e| e.to_string())?;
        let t = want["tokens"].as_array().map_or(0, Vec::len);
        let heads = want["attentions"][0].as_array().map_or(0, Vec::len);
        let shape = s.script(
            "return [document.querySelectorAll('[data-testid=attention-map] .w').length, \
               document.querySelectorAll('[data-testid=attention-heads] .head').length];",
            json!([]),
        )?;
        ensure(shape == json!([t * t, heads]) && t > 0, || {
            format!(
                "{name}: map cells and heads {shape}, wick inspect has {t} tokens, {heads} heads"
            )
        })?;
    }
    s.script(
        "document.querySelector('[data-testid=inside]').scrollIntoView({block: 'start'}); return true;",
        json!([]),
    )?;
    s.screenshot(&out.join("inspector-attention-minilm.png"))?;
    s.scroll_and_click(&s.find("#inside-lens", UI_TIMEOUT)?)?;
    s.scroll_and_click(&s.find("#inside-run", UI_TIMEOUT)?)?;
    s.wait_for(
        "the lens to be refused for an encoder",
        "return document.querySelector('[data-testid=inside-error]')?.textContent ?? null;",
        UI_TIMEOUT,
        |v| v.as_str().is_some_and(|t| t.contains("LM head")),
    )?;
    s.scroll_and_click(&s.find("#inside-attention", UI_TIMEOUT)?)?;
    s.scroll_and_click(&s.find("#inspect-text", UI_TIMEOUT)?)
}

fn inspector_options(s: &Session, out: &Path) -> Result<()> {
    let model = model_dir("all-minilm-l6-v2");
    choose_model(s, &model)?;
    let text = "Padding makes every input the same length.";
    type_into_inspector(s, text)?;
    s.click(&s.find("#opt-special", UI_TIMEOUT)?)?;
    let plain = TokenizeOptions {
        add_special_tokens: false,
        ..TokenizeOptions::default()
    };
    expect_chips(s, &engine_ids(&model, text, &plain)?)?;
    s.click(&s.find("#opt-special", UI_TIMEOUT)?)?;
    // Pad to 16 (the Max length field's value is set the way a person would type it).
    let length = s.find("#opt-max-length", UI_TIMEOUT)?;
    s.clear(&length)?;
    s.type_text(&length, "16")?;
    s.script(
        "const p = document.querySelector('#opt-padding'); p.value = 'max_length'; \
         p.dispatchEvent(new Event('change', {bubbles: true})); return true;",
        json!([]),
    )?;
    let padded = TokenizeOptions {
        padding: wick_engine::tokenize::PaddingChoice::MaxLength(16),
        ..TokenizeOptions::default()
    };
    let ids = engine_ids(&model, text, &padded)?;
    ensure(ids.len() == 16, || {
        format!("engine padded to {}", ids.len())
    })?;
    expect_chips(s, &ids)?;
    s.screenshot(&out.join("inspector-padding.png"))?;
    // Leave the options as a person would find them.
    s.script(
        "const p = document.querySelector('#opt-padding'); p.value = 'none'; \
         p.dispatchEvent(new Event('change', {bubbles: true})); return true;",
        json!([]),
    )
    .map(drop)
}

fn missing_model_error(s: &Session, out: &Path) -> Result<()> {
    let missing = PathBuf::from("/nonexistent/wick-model");
    choose_model(s, &missing)?;
    let banner = s.wait_for(
        "the error banner",
        "const e = document.querySelector('[data-testid=inspector-error]'); \
         return e && [e.querySelector('.code').textContent, e.textContent];",
        UI_TIMEOUT,
        |v| v.is_array(),
    )?;
    ensure(banner[0] == "not_found", || {
        format!("error code was {}", banner[0])
    })?;
    ensure(
        banner[1]
            .as_str()
            .is_some_and(|t| t.contains("/nonexistent/wick-model")),
        || format!("error text was {}", banner[1]),
    )?;
    s.screenshot(&out.join("error-missing-model.png"))?;
    // Leave a working model behind so the window is useful if someone looks at it.
    choose_model(s, &model_dir("all-minilm-l6-v2"))
}
