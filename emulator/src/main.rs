//! `nvcf-emulator`: the test double of NVIDIA's Florence-2 endpoint, as a process.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use nvcf_emulator::{Config, Emulator, shutdown_signal};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let listener = match TcpListener::bind(config.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("nvcf-emulator: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nvcf-emulator: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Signals are caught from before the port is announced: a harness may stop us at once.
    let shutdown = shutdown_signal();
    // The harness reads the port from this first line.
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "listening on http://{addr}").and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    drop(stdout);
    match Emulator::new(config).serve_until(listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nvcf-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}
