//! `wick download`, `wick info`, `wick models search`, `wick cache ls|rm|verify`, and the model
//! lookup every other command uses (a Hub repo not in the cache is downloaded first, as
//! `pipeline("task", model="org/name")` does).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::Instant;

use wick_engine::error::human_bytes;
use wick_engine::hub::{self, DownloadEvent, HubClient, SearchQuery};
use wick_engine::quant::Quantization;
use wick_engine::{ModelSource, Result, WickError};

/// The folder of `spec`: a local path as is; a Hub repo from the cache, downloaded first when
/// it is not there (progress on stderr). `gguf` picks a file in a repo of GGUF files.
pub fn model_path(spec: &str, gguf: Option<&str>) -> Result<PathBuf> {
    match ModelSource::parse(spec)? {
        ModelSource::Local(path) => ModelSource::Local(path).resolve(),
        ModelSource::Hub { repo, revision } => {
            let client = HubClient::from_env();
            let printer = Printer::new(false);
            let sink = |e: DownloadEvent| printer.show(&e);
            let never = AtomicBool::new(false);
            let downloaded = hub::fetch_model(&client, &repo, &revision, gguf, &sink, &never)?;
            // Which commit ran is part of the result: a branch moves.
            eprintln!("note: {repo}@{revision} is commit {}", downloaded.commit);
            Ok(downloaded.model_path())
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct DownloadArgs {
    /// The Hub repo, `org/name[@revision]`.
    repo: String,
    /// In a repo of GGUF files: the quantization (`Q4_K_M`) or file name to fetch.
    #[arg(long)]
    gguf: Option<String>,
    /// Fetch exactly these files instead of what the model needs.
    #[arg(long = "include", value_name = "FILE")]
    include: Vec<String>,
    /// One JSON event per line on stdout (started, progress, fileDone, done).
    #[arg(long)]
    pub json: bool,
}

pub fn download(args: &DownloadArgs) -> Result<()> {
    let (repo, revision) = ModelSource::parse_hub(&args.repo)?;
    let client = HubClient::from_env();
    let printer = Printer::new(args.json);
    let sink = |e: DownloadEvent| printer.show(&e);
    let never = AtomicBool::new(false);
    let downloaded = if args.include.is_empty() {
        hub::fetch_model(
            &client,
            &repo,
            &revision,
            args.gguf.as_deref(),
            &sink,
            &never,
        )?
    } else {
        client.download(&repo, &revision, &args.include, &sink, &never)?
    };
    if !args.json {
        println!("{}", downloaded.snapshot.display());
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// A model folder, GGUF file, or Hub repo `org/name[@revision]`.
    model: String,
    /// In a repo of GGUF files: the quantization or file to describe.
    #[arg(long)]
    gguf: Option<String>,
    /// The weights as they would be loaded: as-stored, f32, q8_0, q4_k.
    #[arg(long, default_value = "as-stored")]
    quantize: Quantization,
    /// Tokens of context to budget the key/value cache for.
    #[arg(long, default_value_t = 4096)]
    context: u64,
    #[arg(long)]
    pub json: bool,
}

pub fn info(args: &InfoArgs) -> Result<()> {
    let facts = match ModelSource::parse(&args.model)? {
        ModelSource::Local(path) => {
            wick_engine::facts::local_facts(&path, args.quantize, args.context)?
        }
        ModelSource::Hub { repo, revision } => {
            let client = HubClient::from_env();
            if client.offline {
                let dir = ModelSource::Hub { repo, revision }.resolve()?;
                wick_engine::facts::local_facts(&dir, args.quantize, args.context)?
            } else {
                wick_engine::facts::hub_facts(
                    &client,
                    &repo,
                    &revision,
                    args.gguf.as_deref(),
                    args.quantize,
                    args.context,
                )?
            }
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&facts).unwrap_or_default()
        );
        return Ok(());
    }
    println!("{}", facts.source);
    if let Some(commit) = &facts.commit {
        println!("  commit        {commit}");
    }
    match (&facts.described, &facts.unsupported) {
        (Some(d), _) => {
            println!(
                "  architecture  {} ({}, {})",
                d.architecture.as_deref().unwrap_or(&d.model_type),
                d.model_type,
                d.format
            );
            let tasks: Vec<&str> = d.tasks.iter().map(|t| t.id()).collect();
            println!("  tasks         {}", tasks.join(", "));
        }
        (None, Some(why)) => println!("  not runnable  {why}"),
        (None, None) => {}
    }
    if let Some(p) = facts.fit.parameters {
        println!("  parameters    {}", human_count(p));
    }
    if let Some(s) = &facts.shape {
        println!(
            "  shape         {} layers, hidden {}, {} heads ({} kv), vocab {}",
            s.layers, s.hidden, s.heads, s.kv_heads, s.vocab
        );
    }
    println!("  files");
    for f in &facts.files {
        let mark = if facts.to_fetch.contains(&f.name) {
            "*"
        } else {
            " "
        };
        let size = f.size.map(human_bytes).unwrap_or_default();
        println!("    {mark} {:<48} {size:>10}", f.name);
    }
    if !facts.to_fetch.is_empty() {
        println!("    (* downloaded: {})", human_bytes(facts.download_bytes));
    }
    if facts.gguf_variants.len() > 1 {
        println!("  GGUF variants (--gguf)");
        for v in &facts.gguf_variants {
            println!(
                "    {:<8} {:<48} {:>10}",
                v.quantization,
                v.file,
                v.size.map(human_bytes).unwrap_or_default()
            );
        }
    }
    let fit = &facts.fit;
    println!(
        "  memory        {} ({:?}) of {} free: weights {} ({}), kv cache {} for {} tokens, working {}",
        human_bytes(fit.total),
        fit.verdict,
        human_bytes(fit.available),
        human_bytes(fit.weights),
        fit.held_as,
        human_bytes(fit.kv_cache),
        fit.context,
        human_bytes(fit.working)
    );
    Ok(())
}

#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Search the Hub's models.
    Search {
        /// Words in the model name.
        #[arg(default_value = "")]
        query: String,
        /// Only models for this pipeline task (text-generation, fill-mask, …).
        #[arg(long)]
        task: Option<String>,
        /// downloads, likes, lastModified or trendingScore.
        #[arg(long, default_value = "downloads")]
        sort: String,
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

pub fn models(command: &ModelsCommand) -> Result<()> {
    let ModelsCommand::Search {
        query,
        task,
        sort,
        limit,
        json,
    } = command;
    let found = HubClient::from_env().search(&SearchQuery {
        search: query.clone(),
        pipeline_tag: task.clone(),
        sort: Some(sort.clone()),
        limit: Some(*limit),
    })?;
    if *json {
        println!(
            "{}",
            serde_json::to_string_pretty(&found).unwrap_or_default()
        );
        return Ok(());
    }
    for m in &found {
        println!(
            "{:<50} {:<24} {:>10} downloads {:>7} likes",
            m.id,
            m.pipeline_tag.as_deref().unwrap_or("-"),
            m.downloads.unwrap_or(0),
            m.likes.unwrap_or(0)
        );
    }
    if found.is_empty() {
        eprintln!("no models found");
    }
    Ok(())
}

#[derive(Debug, clap::Subcommand)]
pub enum CacheCommand {
    /// List the models in the Hugging Face cache.
    Ls {
        #[arg(long)]
        json: bool,
    },
    /// Delete a model (`org/name`) or one revision of it (`org/name@revision`).
    Rm { repo: String },
    /// Recompute the sha256 of a cached model's LFS files.
    Verify { repo: String },
}

pub fn cache(command: &CacheCommand) -> Result<()> {
    let client = HubClient::from_env();
    match command {
        CacheCommand::Ls { json } => {
            let repos = client.cache.list();
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&repos).unwrap_or_default()
                );
                return Ok(());
            }
            println!("{}", client.cache.root.display());
            for r in &repos {
                let refs: Vec<String> = r
                    .revisions
                    .iter()
                    .map(|v| {
                        let short = &v.commit[..v.commit.len().min(8)];
                        if v.refs.is_empty() {
                            short.to_string()
                        } else {
                            format!("{} ({short})", v.refs.join(", "))
                        }
                    })
                    .collect();
                let partial = if r.incomplete_bytes > 0 {
                    format!(", {} partial", human_bytes(r.incomplete_bytes))
                } else {
                    String::new()
                };
                println!(
                    "  {:<50} {:>10}{partial}  {}",
                    r.repo,
                    human_bytes(r.size_bytes),
                    refs.join("; ")
                );
            }
            Ok(())
        }
        CacheCommand::Rm { repo } => {
            let (name, revision) = match repo.split_once('@') {
                Some((n, r)) => (n, Some(r)),
                None => (repo.as_str(), None),
            };
            let freed = client.cache.remove(name, revision)?;
            println!("removed {repo}: {} freed", human_bytes(freed));
            Ok(())
        }
        CacheCommand::Verify { repo } => {
            let corrupt = hub::download::verify_blobs(&client, repo)?;
            if corrupt.is_empty() {
                println!("{repo}: every LFS file matches its sha256");
                Ok(())
            } else {
                Err(WickError::Corrupt {
                    file: corrupt
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    expected: "the sha256 in its name".into(),
                    actual: "a different content".into(),
                })
            }
        }
    }
}

fn human_count(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.2} B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.1} M", n as f64 / 1e6),
        n => format!("{n}"),
    }
}

/// Download events on the terminal: one line redrawn in place on a terminal, a line every few
/// seconds otherwise; JSON lines on stdout with `--json`.
struct Printer {
    json: bool,
    tty: bool,
    last_line: Mutex<Option<Instant>>,
}

impl Printer {
    fn new(json: bool) -> Self {
        Self {
            json,
            tty: std::io::stderr().is_terminal(),
            last_line: Mutex::new(None),
        }
    }

    fn show(&self, event: &DownloadEvent) {
        if self.json {
            if let Ok(line) = serde_json::to_string(event) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
            return;
        }
        let mut err = std::io::stderr().lock();
        match event {
            DownloadEvent::Started {
                repo,
                commit,
                files,
                to_fetch,
                ..
            } => {
                let _ = writeln!(
                    err,
                    "{repo} ({}): {} files, {} to download",
                    &commit[..commit.len().min(8)],
                    files.len(),
                    human_bytes(*to_fetch)
                );
            }
            DownloadEvent::Progress {
                file,
                fetched,
                to_fetch,
                bytes_per_second,
                eta_seconds,
                ..
            } => {
                let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
                if !self.tty && last.is_some_and(|t| t.elapsed().as_secs() < 3) {
                    return;
                }
                *last = Some(Instant::now());
                let pct = if *to_fetch > 0 {
                    *fetched as f64 * 100.0 / *to_fetch as f64
                } else {
                    100.0
                };
                let eta = eta_seconds
                    .map(|s| format!(", {s:.0} s left"))
                    .unwrap_or_default();
                let line = format!(
                    "  {pct:5.1}%  {} of {}  {}/s{eta}  {file}",
                    human_bytes(*fetched),
                    human_bytes(*to_fetch),
                    human_bytes(*bytes_per_second as u64)
                );
                let _ = if self.tty {
                    write!(err, "\r\x1b[2K{line}")
                } else {
                    writeln!(err, "{line}")
                };
            }
            DownloadEvent::FileDone {
                file,
                verified,
                from_cache,
                resumed_from,
            } => {
                let how = match (from_cache, *resumed_from > 0) {
                    (true, _) => "cached".to_string(),
                    (false, true) => format!("resumed from {}", human_bytes(*resumed_from)),
                    (false, false) => "downloaded".to_string(),
                };
                let check = if *verified { ", hash ok" } else { "" };
                let clear = if self.tty { "\r\x1b[2K" } else { "" };
                let _ = writeln!(err, "{clear}  {file}: {how}{check}");
            }
            DownloadEvent::Done {
                fetched, seconds, ..
            } if *fetched > 0 => {
                let _ = writeln!(
                    err,
                    "done: {} in {seconds:.1} s ({}/s)",
                    human_bytes(*fetched),
                    human_bytes((*fetched as f64 / seconds.max(1e-9)) as u64)
                );
            }
            _ => {}
        }
    }
}
