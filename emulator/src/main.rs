//! `nvcf-emulator`: the test double of NVIDIA's Florence-2 endpoint, as a process.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use nvcf_emulator::{Config, Emulator, shutdown_signal};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    init_logging();
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

/// Logs to stderr, filtered by `RUST_LOG` (plain `target=level` directives; default `info`).
fn init_logging() {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("RUST_LOG").ok().and_then(|v| v.parse::<Targets>().ok()).unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let output = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal());
    tracing_subscriber::registry().with(filter).with(output).init();
}
