//! The engine's runtime as every command that runs a model uses it: the device `--device` names,
//! the fit check `--load-anyway` lifts, and load progress on stderr when it is a terminal.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use wick_engine::device::DeviceChoice;
use wick_engine::quant::Quantization;
use wick_engine::runtime::{LoadedPipeline, Run, RunEvent, Runtime};
use wick_engine::source::ModelSource;
use wick_engine::tasks::Task;
use wick_engine::{Result, WickError};

/// What the global flags ask of every run.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub device: DeviceChoice,
    pub load_anyway: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Called once, from `main`, with the global flags.
pub fn configure(settings: Settings) {
    let _ = SETTINGS.set(settings);
}

fn settings() -> Settings {
    SETTINGS.get().copied().unwrap_or(Settings {
        device: DeviceChoice::Auto,
        load_anyway: false,
    })
}

/// Starts this command's run on the device `--device` names (a command is one run).
pub fn begin() -> Result<Run> {
    let progress = std::io::stderr().is_terminal();
    Runtime::from_env().begin("wick", settings().device, move |event| {
        if let (true, RunEvent::Loading { model, progress }) = (progress, &event) {
            let share =
                |done: u64, all: u64| done.saturating_mul(100).checked_div(all).unwrap_or(0);
            let (bytes, layers) = if progress.layers_total > 0 {
                (
                    100,
                    share(progress.layers_built.into(), progress.layers_total.into()),
                )
            } else {
                (share(progress.bytes_read, progress.bytes_total), 0)
            };
            eprint!("\rloading {model}: weights {bytes:>3}% · layers {layers:>3}%");
            if progress.layers_total > 0 && progress.layers_built == progress.layers_total {
                eprintln!();
            }
            let _ = std::io::stderr().flush();
        }
    })
}

/// The `task` pipeline of the model at `path` (already downloaded), loaded by `run`.
pub fn pipeline(
    run: &Run,
    task: Task,
    path: &Path,
    quantization: Quantization,
) -> Result<Arc<LoadedPipeline>> {
    let source = ModelSource::Local(path.to_path_buf());
    if settings().load_anyway {
        run.insist(&wick_engine::runtime::key::source_name(&source));
    }
    run.pipeline_from(task, source, quantization)
        .map_err(|err| match err {
            WickError::DoesNotFit {
                what,
                needed,
                available,
            } => WickError::DoesNotFit {
                what: format!("{what} (use --load-anyway to try)"),
                needed,
                available,
            },
            other => other,
        })
}
