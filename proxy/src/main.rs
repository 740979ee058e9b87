//! `florence2-proxy`: the server as a process.

use std::process::ExitCode;

use clap::Parser;
use florence2_proxy::config::LogFormat;
use florence2_proxy::{ApiKey, Config, serve_until};

#[tokio::main]
async fn main() -> ExitCode {
    let mut config = Config::parse();
    florence2_process::init_logging(config.log_format == LogFormat::Json);
    match std::env::var("NVIDIA_API_KEY") {
        Ok(raw) if !raw.trim().is_empty() => match ApiKey::parse(&raw, "NVIDIA_API_KEY") {
            Ok(key) => config.api_key = Some(key),
            Err(e) => {
                eprintln!("florence2-proxy: {}", e.message);
                return ExitCode::from(2);
            }
        },
        _ => tracing::warn!(
            "NVIDIA_API_KEY is not set: each request must bring its own key in X-Api-Key"
        ),
    }
    let (listener, first_signal, second_signal) =
        match florence2_process::listen_staged(config.listen).await {
            Ok(started) => started,
            Err(e) => {
                eprintln!("florence2-proxy: cannot listen on {}: {e}", config.listen);
                return ExitCode::FAILURE;
            }
        };
    tokio::select! {
        served = serve_until(config, listener, first_signal) => match served {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("florence2-proxy: {e}");
                ExitCode::FAILURE
            }
        },
        () = second_signal => {
            tracing::warn!("second signal: exiting now, open requests dropped");
            // At once: no waiting on the runtime's blocking threads (a DNS lookup) either.
            std::process::exit(1)
        }
    }
}
