//! The Tauri shell around `wick-engine`: commands, state and IPC errors; no model code.

mod commands;
mod models;
mod state;

use tracing_subscriber::EnvFilter;

/// Starts the desktop app.
pub fn run() {
    wick_engine::system::fix_thread_count();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();

    let result = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .manage(state::AppState::default())
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::tokenize,
            commands::run_pipeline,
            commands::generate,
            commands::stop_generation,
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
