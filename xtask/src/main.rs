//! `cargo xtask <command>`: the project's build and test entry point.
//!
//! - `test`  — native tests, then the browser tests in headless Chromium, then the npm
//!   package's checks; installs what is missing first.
//! - `build` — release builds: the npm package into `pkg/`, the demo into `web/dist`.
//! - `demo`  — builds and serves the demo on http://127.0.0.1:8080.
//! - `e2e`   — builds the demo and runs only its end-to-end suite (optionally filtered).
//! - `bench` — the benchmarks (criterion natively, `performance.now()` in the browser);
//!   `bench model` — the model against PyTorch (or onnxruntime) on the CPU, side by side;
//!   `bench browser` — florence2-web against transformers.js in headless Chromium.

// The commands, each made of steps and services.
mod bench_browser;
mod bench_model;
mod build;
mod demo;
mod e2e;
mod test;

// What they combine: the steps of `test` (fmt, clippy, native build and tests, browser tests,
// the package's checks, the e2e suites), the servers the tests talk to, the release builds of
// the package and of the demo's site, the binaries and their one build, installing tools.
mod bins;
mod package;
mod services;
mod setup;
mod site;
mod steps;
mod util;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test::run(&args[1..]),
        Some("build") => build::run(),
        Some("demo") => demo::run(&args[1..]),
        Some("e2e") => e2e::run(&args[1..]),
        Some("bench") if args.get(1).map(String::as_str) == Some("model") => {
            bench_model::run(&args[2..])
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("browser") => {
            bench_browser::run(&args[2..])
        }
        Some("bench") => test::bench(),
        _ => {
            eprintln!("usage: cargo xtask <test|build|demo|e2e|bench>\n\n{}", HELP);
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let times = util::times();
            if !times.is_empty() {
                eprintln!("\nsteps: {times}");
            }
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

const HELP: &str = "\
  test   native tests, browser tests (headless Chromium), package checks; installs what is missing
  build  release builds: the npm package into pkg/, the demo into web/dist
  demo   build and serve the demo on http://127.0.0.1:8080 (--listen ADDR to change; --model DIR
         answers from that Florence-2 folder on this machine instead of NVIDIA, no key needed)
  e2e    build the demo and run only its end-to-end suite in headless Chromium (e2e FILTER: only
         the tests whose name contains FILTER)
  bench  benchmarks: criterion natively, performance.now() in headless Chromium
         (bench model --model DIR [--python PY] [--threads 1,2] [--onnx DIR]: the model against
         PyTorch, or onnxruntime on that ONNX export, on the CPU, alternating, with the table and
         ratios; bench browser --model DIR: florence2-web against transformers.js in headless
         Chromium, the same weights, picture and tokens)";
