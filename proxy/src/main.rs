//! `florence2-proxy`: the server as a process.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use florence2_proxy::config::LogFormat;
use florence2_proxy::{ApiKey, Config, serve_until, shutdown_signal};
use tokio::net::TcpListener;
use tracing_subscriber::filter::Targets;

#[tokio::main]
async fn main() -> ExitCode {
    let mut config = Config::parse();
    init_logging(config.log_format);
    match std::env::var("NVIDIA_API_KEY") {
        Ok(raw) if !raw.trim().is_empty() => match ApiKey::parse(&raw, "NVIDIA_API_KEY") {
            Ok(key) => config.api_key = Some(key),
            Err(e) => {
                eprintln!("florence2-proxy: {}", e.message);
                return ExitCode::from(2);
            }
        },
        _ => tracing::warn!("NVIDIA_API_KEY is not set: each request must bring its own key in X-Api-Key"),
    }
    let listener = match TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("florence2-proxy: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    let Ok(addr) = listener.local_addr() else {
        eprintln!("florence2-proxy: the listening socket has no address");
        return ExitCode::FAILURE;
    };
    // Signals are caught from before the port is announced: a harness may stop us at once.
    let shutdown = shutdown_signal();
    // Harnesses read the port from this first stdout line (logs go to stderr).
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "listening on http://{addr}").and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    drop(stdout);
    match serve_until(config, listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("florence2-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, filtered by `RUST_LOG` (`info`, `florence2_proxy=debug,info`; default `info`).
fn init_logging(format: LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = std::env::var("RUST_LOG").ok().and_then(|v| v.parse::<Targets>().ok()).unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let ansi = std::io::stderr().is_terminal();
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi)).init(),
        LogFormat::Json => registry.with(tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr)).init(),
    }
}
