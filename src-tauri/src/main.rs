// Keeps a console window from opening next to the app on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

/// The same allocator as the `wick` CLI: model activations are megabytes per layer, and mimalloc
/// reuses them where the system allocator returns them to the OS after every pass.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    wick_app_lib::run();
}
