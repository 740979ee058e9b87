//! `nvcf-emulator`: the test double of NVIDIA's Florence-2 endpoint, as a process.

use std::process::ExitCode;

use clap::Parser;
use nvcf_emulator::{Config, Emulator};

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    florence2_process::init_logging(false);
    let (listener, shutdown) = match florence2_process::listen(config.listen).await {
        Ok(started) => started,
        Err(e) => {
            eprintln!("nvcf-emulator: cannot listen on {}: {e}", config.listen);
            return ExitCode::FAILURE;
        }
    };
    match Emulator::new(config).serve_until(listener, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nvcf-emulator: {e}");
            ExitCode::FAILURE
        }
    }
}
