//! `florence2-proxy`: the server as a process.

use std::process::ExitCode;

use clap::Parser;
use florence2_proxy::config::LogFormat;
use florence2_proxy::{
    ApiKey, BackendKind, ClientTokens, Config, build_backend, listen_for_hangups,
    serve_backend_with,
};

#[tokio::main]
async fn main() -> ExitCode {
    let mut config = Config::parse();
    florence2_process::init_logging(config.log_format == LogFormat::Json);
    // First: from here on a SIGHUP is handled (tokens reread, or ignored), never the default
    // action that ends the process, also while the model loads.
    let hangups = listen_for_hangups();
    if let Err(why) = config.check() {
        eprintln!("florence2-proxy: {why}");
        return ExitCode::from(2);
    }
    match std::env::var("NVIDIA_API_KEY") {
        // The local model needs no key; one in the environment is simply not used.
        _ if config.backend == BackendKind::Local => {}
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
    // Checked before listening, so that a bad file stops startup before the port line.
    if let Some(path) = &config.client_tokens
        && let Err(why) = ClientTokens::load(path)
    {
        eprintln!("florence2-proxy: {why}");
        return ExitCode::from(2);
    }
    if config.backend == BackendKind::Local {
        florence2_burn::cpu::keep_freed_memory();
    }
    // Sized before the model runs anything: the pool is built once per process.
    if let Some(n) = config.threads
        && let Err(why) = florence2_burn::cpu::set_threads(n.into())
    {
        eprintln!("florence2-proxy: --threads {n}: {why}");
        return ExitCode::from(2);
    }
    // Before listening: a model folder that does not load stops the proxy here, and the
    // `listening on` line means the model is ready.
    let backend = match build_backend(&config).await {
        Ok(backend) => backend,
        Err(e) => {
            eprintln!("florence2-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    let (listener, first_signal, second_signal) =
        match florence2_process::listen_staged(config.listen).await {
            Ok(started) => started,
            Err(e) => {
                eprintln!("florence2-proxy: cannot listen on {}: {e}", config.listen);
                return ExitCode::FAILURE;
            }
        };
    tokio::select! {
        served = serve_backend_with(&config, backend, listener, first_signal, hangups) => match served {
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
