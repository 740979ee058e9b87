//! `cargo xtask test`: everything, in the order that fails fastest, with a summary line.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::util::{Result, Server, cargo, describe, output, root, run_step, start_server, target_dir};
use crate::{build, setup};

pub fn run(args: &[String]) -> Result {
    if let Some(unknown) = args.first() {
        return Err(format!("cargo xtask test takes no arguments (got {unknown:?})"));
    }
    let started = Instant::now();
    setup::wasm_toolchain()?;
    setup::chromium()?;
    setup::node_tools()?;
    let chromium = output(Command::new("chromium").arg("--version")).unwrap_or_default().trim().to_owned();

    run_step(cargo().args(["test", "--workspace"]))?;
    let native_secs = started.elapsed().as_secs_f64();

    let double = start_double()?;
    let browser = browser_tests(&double, None)?;

    let package = build::package()?;
    run_step(Command::new(setup::node_bin("tsc")).arg("-p").arg(root().join("pkg/tests")))?;
    run_step(Command::new("node").arg(root().join("tests/e2e/package.mjs")).env("FLORENCE2_TEST_SERVER", &double.url))?;

    println!(
        "\nSUMMARY: native tests passed ({native_secs:.0} s) | browser tests: {browser} in headless {chromium} | {package} | typings ok | package API in Chromium ok | total {:.1} min",
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// Writes the fixtures and starts the proxy double that serves them.
fn start_double() -> Result<Server> {
    let fixtures = target_dir().join("fixtures");
    run_step(cargo().args(["build", "-p", "florence2-fixtures", "--bins"]))?;
    let bin = target_dir().join("debug");
    run_step(Command::new(bin.join("florence2-fixtures")).arg(&fixtures))?;
    start_server(Command::new(bin.join("proxy-double")).arg("--fixtures").arg(&fixtures))
}

/// Runs the wasm-bindgen browser tests (release build, so the timings mean something) and
/// returns their result line; `BENCH` lines are echoed.
fn browser_tests(double: &Server, filter: Option<&str>) -> Result<String> {
    let mut cmd = cargo();
    cmd.args(["test", "--release", "-p", "florence2", "--target", "wasm32-unknown-unknown", "--test", "browser", "--", "--nocapture"])
        .args(filter)
        .current_dir(root().join("crate"))
        .env("FLORENCE2_TEST_SERVER", &double.url)
        .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER", "wasm-bindgen-test-runner")
        .env("CHROMEDRIVER", "/usr/bin/chromedriver")
        .env("WASM_BINDGEN_TEST_TIMEOUT", "300")
        .stdout(Stdio::piped());
    let shown = describe(&cmd);
    eprintln!("+ {shown}");
    let mut child = cmd.spawn().map_err(|e| format!("{shown}: {e}"))?;
    let mut result = None;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(std::result::Result::ok) {
            println!("{line}");
            if let Some(r) = line.trim().strip_prefix("test result: ") {
                result = Some(r.split(';').next().unwrap_or(r).to_owned());
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    match (status.success(), result) {
        (true, Some(r)) => Ok(r),
        (true, None) => Err("the browser tests printed no result line".into()),
        (false, _) => Err(format!("{shown}: {status}")),
    }
}

/// `cargo xtask bench`: criterion natively, then the timed browser tests.
pub fn bench() -> Result {
    setup::wasm_toolchain()?;
    setup::chromium()?;
    run_step(cargo().args(["bench", "-p", "florence2"]))?;
    let double = start_double()?;
    browser_tests(&double, Some("fast"))?;
    browser_tests(&double, Some("quickly"))?;
    let package = build::package()?;
    println!("{package}");
    Ok(())
}
