//! The Tauri shell around `wick-engine`: commands that convert and forward to the engine's
//! runtime, the app state that holds it, IPC errors. No model code and no policy of its own.

mod commands;
mod models;

use std::sync::Arc;

use tauri::Manager;
use tracing_subscriber::EnvFilter;
use wick_engine::runtime::runs::RunRegistry;
use wick_engine::runtime::Runtime;

/// What the app keeps between commands. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct AppState {
    /// Loaded models, the device queue, runs in progress.
    pub runtime: Runtime,
    /// Downloads in progress, by id, so that a later command can cancel one.
    pub downloads: Arc<RunRegistry>,
}

/// Starts the desktop app.
pub fn run() {
    // The chat-template helper is this executable started again: it serves and exits here,
    // before any window exists.
    wick_engine::tokenize::sandbox::serve_if_helper();
    wick_engine::tokenize::sandbox::isolate_templates();
    wick_engine::tokenize::sandbox::start_helper_early();
    wick_engine::system::fix_thread_count();
    composite_in_software_only_with_a_gpu();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let result = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .manage(AppState {
            runtime: Runtime::from_env(),
            downloads: Arc::default(),
        })
        .on_window_event(|window, event| {
            // A closed window cancels what it started: nobody is left to see it.
            if let tauri::WindowEvent::Destroyed = event {
                let state = window.state::<AppState>();
                state.runtime.cancel_all();
                state.downloads.cancel_all();
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::tokenize,
            commands::tokenize_chat,
            commands::tokenize_compare,
            commands::inspect_model,
            commands::run_pipeline,
            commands::generate,
            commands::cancel_run,
            commands::compare_variants,
            models::system_report,
            models::search_models,
            models::model_facts,
            models::download_model,
            models::cancel_download,
            models::cached_models,
            models::remove_cached_model,
            models::unload_model,
            models::load_anyway,
        ])
        .run(tauri::generate_context!());
    if let Err(err) = result {
        tracing::error!(%err, "Wick could not start");
        eprintln!("Wick could not start: {err}");
        std::process::exit(1);
    }
}

/// Without a GPU (no DRI render node: a VM, a server, some laptops' drivers), WebKitGTK still
/// composites the window through OpenGL, which Mesa then renders on the CPU (llvmpipe): every
/// redraw of the window costs the cores the engine computes on. Measured on a two-core VM, while
/// SmolLM2 streamed tokens the web view took 1.5 cores and decode fell from 108 tok/s (the CLI)
/// to 60; without compositing the web view paints only what changed. With a GPU nothing changes;
/// `WEBKIT_DISABLE_COMPOSITING_MODE` set either way by the user wins.
fn composite_in_software_only_with_a_gpu() {
    if !cfg!(target_os = "linux") || std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_some() {
        return;
    }
    let has_render_node = std::fs::read_dir("/dev/dri").is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    });
    if !has_render_node {
        // Before any thread or webview exists (this runs first in `run`).
        std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1");
    }
}
