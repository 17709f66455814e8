//! Serves the test-model cache as a local Hugging Face Hub until killed.
//!
//! `wick-hub-server [--port N] [--repo org/name=FOLDER]...`: without `--repo`, the fetched test
//! models (`scripts/fetch_models.py`) under their Hub names. Prints the endpoint.

use wick_tests::hub_server::{test_model_repos, HubServer, ServedRepo};

fn main() {
    let mut port = 0u16;
    let mut repos = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--port", Some(p)) => port = p.parse().unwrap_or_else(|_| usage()),
            ("--repo", Some(spec)) => match spec.split_once('=') {
                Some((id, dir)) => {
                    repos.push(ServedRepo::from_folder(id, std::path::Path::new(dir)))
                }
                None => usage(),
            },
            _ => usage(),
        }
    }
    if repos.is_empty() {
        repos = test_model_repos();
    }
    let ids: Vec<String> = repos.iter().map(|r| r.id.clone()).collect();
    let server = HubServer::start_on(repos, port);
    println!("{}", server.endpoint());
    for id in ids {
        eprintln!("  serving {id}");
    }
    loop {
        std::thread::park();
    }
}

fn usage() -> ! {
    eprintln!("usage: wick-hub-server [--port N] [--repo org/name=FOLDER]...");
    std::process::exit(2)
}
