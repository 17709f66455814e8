//! The window benchmark: the speed a person sees in the app users run (the release build), beside
//! the `wick` command line (release) doing the same work, as whole processes and in-process.
//!
//! `scripts/bench_window.sh` runs it (`cargo test --test e2e -- --bench` under Xvfb). For SmolLM2
//! (GGUF Q4_1) and Gemma 3 (GGUF Q4_K_M): greedy completions of 64 tokens; the window's first
//! token is timed from the click on Generate to the token on screen, its decode rate both as the
//! engine measured it and as tokens arrived in the window. For MiniLM: the 256 sentences of
//! `tests/fixtures/bench/sentences.json` in the embeddings tab at batch size 32. Each figure is
//! the median of [`rounds`] runs after an untimed one (which loads the model). The table goes to
//! stdout and `tests/e2e-output/bench.json`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::{json, Value};
use wick_tests::{fixture, model_dir, release_binary};

use crate::encoder_tabs::{open_tab, run, set};
use crate::webdriver::{Result, Session};
use crate::UI_TIMEOUT;

/// Runs per figure (`WICK_BENCH_ROUNDS` overrides).
fn rounds() -> usize {
    std::env::var("WICK_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
}
const PROMPT: &str = "The history of the city of Paris";
const NEW_TOKENS: usize = 64;

/// Clicks Run and waits for the run to end inside the page (one WebDriver request, not a poll:
/// polling ran JavaScript in the window every 150 ms, which on two cores took 15-20% from the
/// engine the measurement is about).
fn run_quietly(s: &Session) -> Result<()> {
    let outcome = s.script_async(
        "const done = arguments[arguments.length - 1]; \
         const card = document.querySelector('.run-card'); const before = card.dataset.runs; \
         new MutationObserver((_, o) => { if (card.dataset.runs !== before) { o.disconnect(); \
           done(document.querySelector('.run-card .error-banner')?.textContent ?? 'ok'); } }) \
           .observe(card, { attributes: true }); \
         document.querySelector('#run').click();",
        json!([]),
    )?;
    if outcome == "ok" {
        Ok(())
    } else {
        Err(format!("the run failed: {outcome}"))
    }
}

/// A run in the window after the window has settled, with the CPU the app and the web view used
/// during it (stderr).
fn measured_run(s: &Session) -> Result<()> {
    settle();
    let (app, web, x, threads, wall) = (
        cpu_seconds("wick-app"),
        cpu_seconds("WebKitWebProces"),
        cpu_seconds("Xvfb"),
        thread_cpu_seconds("wick-app"),
        Instant::now(),
    );
    run_quietly(s)?;
    let mut by_thread: Vec<(String, f64)> = thread_cpu_seconds("wick-app")
        .into_iter()
        .map(|(name, t)| (name.clone(), t - threads.get(&name).copied().unwrap_or(0.0)))
        .filter(|(_, t)| *t > 0.0)
        .collect();
    by_thread.sort_by(|a, b| b.1.total_cmp(&a.1));
    eprintln!(
        "  window run: {:.2} s, app {:.2} CPU s ({}), web view {:.2} CPU s, X server {:.2} CPU s",
        wall.elapsed().as_secs_f64(),
        cpu_seconds("wick-app") - app,
        by_thread
            .iter()
            .map(|(n, t)| format!("{n} {t:.2}"))
            .collect::<Vec<_>>()
            .join(", "),
        cpu_seconds("WebKitWebProces") - web,
        cpu_seconds("Xvfb") - x,
    );
    Ok(())
}

/// Lets the window finish drawing a result before the next run starts: a person reads the
/// answer before asking again, and a run must not be measured against the drawing of the last.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(2000));
}

/// CPU seconds used so far by the processes named `comm` (Linux), to see who computed during a
/// window run: the app, or the web view's renderer beside it (printed for every run).
fn cpu_seconds(comm: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return f64::NAN;
    };
    let ticks: u64 = dir
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| stat.contains(&format!("({comm}")))
        .filter_map(|stat| {
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum();
    ticks as f64 / 100.0
}

/// CPU seconds so far of each thread name in the processes named `comm` (Linux), summed over
/// threads of one name: which of the app's threads competed with the engine's workers.
fn thread_cpu_seconds(comm: &str) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for process in dir.filter_map(|e| e.ok()) {
        let is_it = std::fs::read_to_string(process.path().join("stat"))
            .is_ok_and(|stat| stat.contains(&format!("({comm}")));
        let tasks = match std::fs::read_dir(process.path().join("task")) {
            Ok(tasks) if is_it => tasks,
            _ => continue,
        };
        for task in tasks.filter_map(|e| e.ok()) {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let name = head.split_once('(').map_or("?", |(_, n)| n).to_string();
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = fields
                .get(11)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
                + fields
                    .get(12)
                    .and_then(|f| f.parse::<u64>().ok())
                    .unwrap_or(0);
            *out.entry(name).or_insert(0.0) += ticks as f64 / 100.0;
        }
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One greedy completion in the window: (first token ms from the click, engine decode tok/s,
/// decode tok/s as tokens arrived in the window).
fn window_generation(s: &Session) -> Result<(f64, f64, f64)> {
    measured_run(s)?;
    let v = s.script(
        "const f = document.querySelector('[data-testid=first-token]'); \
         const d = document.querySelector('[data-testid=decode-rate]'); \
         return [Number(f.dataset.ms), Number(d.dataset.rate), Number(d.dataset.windowRate)];",
        json!([]),
    )?;
    let num = |i: usize| v[i].as_f64().unwrap_or(f64::NAN);
    Ok((num(0), num(1), num(2)))
}

/// The same completion by the `wick` command line, a whole process: (first token ms, decode
/// tok/s) from the stats line it prints.
fn cli_generation(model: &Path) -> Result<(f64, f64)> {
    let out = Command::new(release_binary("wick"))
        .args(["run", "text-generation", "--model"])
        .arg(model)
        .args(["--do-sample", "false", "--max-new-tokens"])
        .arg(NEW_TOKENS.to_string())
        .args(["--return-full-text", "false", "--stream", PROMPT])
        .output()
        .map_err(|e| format!("wick: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let field = |name: &str, unit: &str| -> f64 {
        stderr
            .split(" · ")
            .find_map(|part| {
                part.trim()
                    .strip_prefix(name)?
                    .trim()
                    .strip_suffix(unit)?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or(f64::NAN)
    };
    let (first, decode) = (field("first token", "ms"), field("decode", "tok/s"));
    if first.is_nan() || decode.is_nan() {
        return Err(format!("no stats from wick: {stderr}"));
    }
    Ok((first, decode))
}

/// `wick bench generate` (in-process, llama-bench's pp128/tg64): its decode tok/s.
fn cli_bench_generate(model: &Path) -> Result<f64> {
    let out = Command::new(release_binary("wick"))
        .args(["bench", "generate", "--model"])
        .arg(model)
        .args(["--repeat", "3"])
        .output()
        .map_err(|e| format!("wick: {e}"))?;
    let report: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("wick bench: {e}: {}", String::from_utf8_lossy(&out.stderr)))?;
    Ok(report["decode_tokens_per_s"].as_f64().unwrap_or(f64::NAN))
}

fn generation(s: &Session, name: &str) -> Result<Value> {
    let model = model_dir(name);
    open_tab(s, "text-generation", &model)?;
    s.scroll_and_click(&s.find("#mode-completion", UI_TIMEOUT)?)?;
    s.scroll_and_click(&s.find(".presets button:first-child", UI_TIMEOUT)?)?;
    set(
        s,
        ".params input[type=number]",
        &json!(NEW_TOKENS.to_string()),
    )?;
    set(s, "#task-input", &json!(PROMPT))?;
    inject_css(s)?;
    window_generation(s)?; // loads the model
    let (mut first, mut engine, mut arrived, mut cli_first, mut cli_decode) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..rounds() {
        let (f, e, a) = window_generation(s)?;
        first.push(f);
        engine.push(e);
        arrived.push(a);
        let (cf, cd) = cli_generation(&model)?;
        cli_first.push(cf);
        cli_decode.push(cd);
    }
    let bench = cli_bench_generate(&model)?;
    let window = median(engine.clone());
    Ok(json!({
        "model": name,
        "window_first_token_ms": median(first),
        "window_decode_tok_s": window,
        "window_decode_as_arrived_tok_s": median(arrived),
        "cli_first_token_ms": median(cli_first),
        "cli_decode_tok_s": median(cli_decode.clone()),
        "cli_bench_decode_tok_s": bench,
        "window_vs_cli": window / median(cli_decode),
    }))
}

fn embeddings(s: &Session) -> Result<Value> {
    let model = model_dir("all-minilm-l6-v2");
    let corpus_path = fixture("bench/sentences.json");
    let corpus: Vec<String> =
        serde_json::from_str(&std::fs::read_to_string(&corpus_path).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    open_tab(s, "feature-extraction", &model)?;
    set(s, "#task-input", &json!(corpus.join("\n")))?;
    set(s, "#batch-size", &json!("32"))?;
    run(s)?; // loads the model
    let (mut engine, mut window) = (vec![], vec![]);
    for _ in 0..rounds() {
        measured_run(s)?;
        let v = s.script(
            "const t = document.querySelector('[data-testid=throughput]'); \
             return [Number(t.dataset.engineRate), Number(t.dataset.windowRate)];",
            json!([]),
        )?;
        engine.push(v[0].as_f64().unwrap_or(f64::NAN));
        window.push(v[1].as_f64().unwrap_or(f64::NAN));
    }
    // The command line, a whole process per round (loading included, as a user runs it).
    let lines = corpus.join("\n");
    let mut cli = vec![];
    for _ in 0..rounds() {
        let started = Instant::now();
        let mut child = Command::new(release_binary("wick"))
            .args([
                "run",
                "feature-extraction",
                "--sentence-embedding",
                "--batch-size",
                "32",
                "--model",
            ])
            .arg(&model)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("wick: {e}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            std::io::Write::write_all(&mut stdin, lines.as_bytes()).map_err(|e| e.to_string())?;
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("wick run feature-extraction: {status}"));
        }
        cli.push(corpus.len() as f64 / started.elapsed().as_secs_f64());
    }
    let out = Command::new(release_binary("wick"))
        .args([
            "bench",
            "embed",
            "--batch-size",
            "32",
            "--repeat",
            "3",
            "--model",
        ])
        .arg(&model)
        .arg("--corpus")
        .arg(&corpus_path)
        .output()
        .map_err(|e| format!("wick: {e}"))?;
    let bench: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let window_engine = median(engine);
    let bench_rate = bench["texts_per_s"].as_f64().unwrap_or(f64::NAN);
    Ok(json!({
        "model": "all-minilm-l6-v2",
        "sentences": corpus.len(),
        "window_texts_s": window_engine,
        "window_round_trip_texts_s": median(window),
        "cli_process_texts_s": median(cli),
        "cli_bench_texts_s": bench_rate,
        "window_vs_cli_bench": window_engine / bench_rate,
    }))
}

/// For A/B runs of a style change without a rebuild: `WICK_BENCH_CSS` is added to the page as a
/// style sheet before the runs.
fn inject_css(s: &Session) -> Result<()> {
    let Ok(css) = std::env::var("WICK_BENCH_CSS") else {
        return Ok(());
    };
    s.script(
        "const st = document.createElement('style'); st.textContent = arguments[0]; \
         document.head.appendChild(st); return true;",
        json!([css]),
    )?;
    Ok(())
}

/// Runs the benchmark in the open window; prints the table and writes it as JSON to `out`.
pub fn run_all(s: &Session, out: &Path) -> Result<()> {
    let cpu = wick_engine::system::SystemInfo::read().cpu;
    let threads = rayon_threads();
    let results = json!({
        "cpu": cpu,
        "threads": threads,
        "generation": [generation(s, "smollm2-135m-instruct")?, generation(s, "gemma3-270m")?],
        "embeddings": if std::env::var_os("WICK_BENCH_NO_EMBEDDINGS").is_some() { json!({}) } else { embeddings(s)? },
    });
    std::fs::write(
        out.join("bench.json"),
        serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    println!(
        "window benchmark on {cpu}, {threads} threads, medians of {}:",
        rounds()
    );
    println!("| model | window first token | window decode (engine / as arrived) | CLI process first token / decode | `wick bench generate` decode | window / CLI |");
    println!("|---|---|---|---|---|---|");
    for g in results["generation"].as_array().into_iter().flatten() {
        println!(
            "| {} | {:.0} ms | {:.1} / {:.1} tok/s | {:.0} ms / {:.1} tok/s | {:.1} tok/s | {:.2} |",
            g["model"].as_str().unwrap_or_default(),
            g["window_first_token_ms"].as_f64().unwrap_or(f64::NAN),
            g["window_decode_tok_s"].as_f64().unwrap_or(f64::NAN),
            g["window_decode_as_arrived_tok_s"].as_f64().unwrap_or(f64::NAN),
            g["cli_first_token_ms"].as_f64().unwrap_or(f64::NAN),
            g["cli_decode_tok_s"].as_f64().unwrap_or(f64::NAN),
            g["cli_bench_decode_tok_s"].as_f64().unwrap_or(f64::NAN),
            g["window_vs_cli"].as_f64().unwrap_or(f64::NAN),
        );
    }
    let e = &results["embeddings"];
    println!(
        "| MiniLM, 256 sentences, batch 32 | window {:.1} texts/s (round trip {:.1}) | CLI process {:.1} texts/s | `wick bench embed` {:.1} texts/s | window / bench {:.2} |",
        e["window_texts_s"].as_f64().unwrap_or(f64::NAN),
        e["window_round_trip_texts_s"].as_f64().unwrap_or(f64::NAN),
        e["cli_process_texts_s"].as_f64().unwrap_or(f64::NAN),
        e["cli_bench_texts_s"].as_f64().unwrap_or(f64::NAN),
        e["window_vs_cli_bench"].as_f64().unwrap_or(f64::NAN),
    );
    Ok(())
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            wick_engine::system::SystemInfo::read()
                .physical_cores
                .unwrap_or(1)
        })
}
