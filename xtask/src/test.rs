//! `cargo xtask test`: everything, in the order that fails fastest, with a summary line.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::util::{
    Result, Server, cargo, describe, output, root, run_step, start_server, target_dir,
};
use crate::{build, setup};

pub fn run(args: &[String]) -> Result {
    if let Some(unknown) = args.first() {
        return Err(format!(
            "cargo xtask test takes no arguments (got {unknown:?})"
        ));
    }
    let started = Instant::now();
    let reference = reference_data()?;
    run_step(cargo().args(["fmt", "--all", "--check"]))?;
    setup::wasm_toolchain()?;
    setup::chromium()?;
    setup::node_tools()?;
    let chromium = output(Command::new("chromium").arg("--version"))
        .unwrap_or_default()
        .trim()
        .to_owned();

    run_step(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run_step(cargo().args(["test", "--workspace"]))?;
    let native_secs = started.elapsed().as_secs_f64();

    let double = start_double()?;
    let (_emulator, proxy) = start_proxy_to_emulator(None)?;
    let local = start_local_proxy()?;
    let browser = browser_tests(&double, Some(&proxy), local.as_ref(), None)?;

    let package = build::package()?;
    run_step(
        Command::new(setup::node_bin("tsc"))
            .arg("-p")
            .arg(root().join("pkg/tests")),
    )?;
    run_step(
        Command::new("node")
            .arg(root().join("tests/e2e/package.mjs"))
            .env("FLORENCE2_TEST_SERVER", &double.url),
    )?;
    let local_e2e = local_e2e()?;
    let demo = crate::web::build()?;
    let demo_e2e = crate::web::e2e()?;

    println!(
        "\nSUMMARY: fmt + clippy clean | {reference} | native tests passed ({native_secs:.0} s) | browser tests: {browser} in headless {chromium} | {package} | typings ok | package API in Chromium ok | {local_e2e} | {demo} | demo e2e: {demo_e2e} | total {:.1} min",
        started.elapsed().as_secs_f64() / 60.0
    );
    Ok(())
}

/// Says up front where the golden data of `../shared/reference` is looked for. In CI its
/// absence fails the run here; locally the tests that need it show as ignored (with reason).
fn reference_data() -> Result<String> {
    let dir = florence2_reference::location(&root());
    if dir.is_dir() {
        eprintln!("reference data: {}", dir.display());
        Ok(format!("reference data at {}", dir.display()))
    } else if std::env::var_os("CI").is_some() {
        Err(format!(
            "the reference data is missing: looked in {} (set {} to move it)",
            dir.display(),
            florence2_reference::ENV
        ))
    } else {
        eprintln!(
            "WARNING: no reference data at {} (set {}): the tests that need it will show as ignored",
            dir.display(),
            florence2_reference::ENV
        );
        Ok(format!(
            "reference data MISSING ({}): its tests ignored",
            dir.display()
        ))
    }
}

/// Writes the fixtures and starts the proxy double that serves them.
fn start_double() -> Result<Server> {
    let fixtures = fixtures()?;
    start_server(
        Command::new(target_dir().join("debug/proxy-double"))
            .arg("--fixtures")
            .arg(&fixtures),
    )
}

/// Writes the test fixtures (pictures, answers) into the target directory; returns where.
pub fn fixtures() -> Result<std::path::PathBuf> {
    let fixtures = target_dir().join("fixtures");
    run_step(cargo().args(["build", "-p", "florence2-fixtures", "--bins"]))?;
    run_step(Command::new(target_dir().join("debug/florence2-fixtures")).arg(&fixtures))?;
    Ok(fixtures)
}

/// The key the test proxy holds: the emulator accepts any.
const EMULATOR_KEY: &str = "emulator-accepts-any-key";

/// Starts `nvcf-emulator` and `florence2-proxy` in front of it, both on loopback; the proxy
/// serves `site` as its static files, if given.
pub fn start_proxy_to_emulator(site: Option<&std::path::Path>) -> Result<(Server, Server)> {
    run_step(cargo().args([
        "build",
        "-p",
        "florence2-proxy",
        "-p",
        "nvcf-emulator",
        "--bins",
    ]))?;
    let bin = target_dir().join("debug");
    let emulator =
        start_server(Command::new(bin.join("nvcf-emulator")).args(["--listen", "127.0.0.1:0"]))?;
    let mut proxy = proxy_to_emulator(&emulator);
    if let Some(site) = site {
        proxy.arg("--static").arg(site);
    }
    let proxy = start_server(&mut proxy)?;
    Ok((emulator, proxy))
}

/// The debug florence2-proxy's command in front of `emulator`: loopback, any port, the
/// emulator for both upstreams with a key it accepts, no rate limit (add the rest).
pub fn proxy_to_emulator(emulator: &Server) -> Command {
    let mut proxy = Command::new(target_dir().join("debug/florence2-proxy"));
    proxy
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &emulator.url,
            "--assets-upstream",
            &emulator.url,
            "--rate-limit",
            "0",
        ])
        .env("NVIDIA_API_KEY", EMULATOR_KEY)
        .env("RUST_LOG", "warn");
    proxy
}

/// The reference data's tiny end-to-end model folder (`FLORENCE2_REFERENCE_DIR`, by default
/// `../shared/reference` beside the workspace). Absent, it is an error under `CI` (the tests
/// that need it must not pass silently there) and a note elsewhere.
fn tiny_e2e_model() -> Result<Option<std::path::PathBuf>> {
    let model = florence2_reference::location(&root()).join("florence2-tiny-e2e");
    if model.is_dir() {
        Ok(Some(model))
    } else if std::env::var_os("CI").is_some() {
        Err(format!(
            "{} is missing: CI needs the reference data (FLORENCE2_REFERENCE_DIR)",
            model.display()
        ))
    } else {
        eprintln!(
            "note: {} not found: the local backend's browser tests will not run",
            model.display()
        );
        Ok(None)
    }
}

/// `florence2-proxy --backend local` on the tiny end-to-end model, also serving that folder as
/// its static files (the browser tests read the goldens and the picture from it). The binary
/// was built by [`start_proxy_to_emulator`].
fn start_local_proxy() -> Result<Option<Server>> {
    let Some(model) = tiny_e2e_model()? else {
        return Ok(None);
    };
    let mut proxy = Command::new(target_dir().join("debug/florence2-proxy"));
    proxy
        .args(["--listen", "127.0.0.1:0", "--backend", "local", "--model"])
        .arg(&model)
        .arg("--static")
        .arg(&model)
        .args(["--rate-limit", "0"])
        .env("RUST_LOG", "warn");
    start_server(&mut proxy).map(Some)
}

/// The backends `Florence2Local` is checked on, each against every golden case (WebGPU on
/// Chromium's SwiftShader: the CPU pretending to be a GPU, so slow, but the same kernels).
const LOCAL_BACKENDS: &str = "cpu,webgpu";

/// `Florence2Local` from the built package in headless Chromium (tests/e2e/local.mjs), on the
/// reference data's tiny end-to-end folder served by `florence2-proxy --models`; then the packed
/// package in a fresh Vite app (tests/e2e/vite.mjs).
fn local_e2e() -> Result<String> {
    let Some(model) = tiny_e2e_model()? else {
        return Ok("Florence2Local e2e IGNORED: no reference data".into());
    };
    run_step(cargo().args(["build", "-p", "florence2-cli", "--bin", "florence2"]))?;
    run_step(
        Command::new("node")
            .arg(root().join("tests/e2e/local.mjs"))
            .env("FLORENCE2_PKG", root().join("pkg"))
            .env(
                "FLORENCE2_PROXY_BIN",
                target_dir().join("debug/florence2-proxy"),
            )
            .env("FLORENCE2_CLI", target_dir().join("debug/florence2"))
            .env("FLORENCE2_E2E_MODEL", &model)
            .env("FLORENCE2_LOCAL_BACKENDS", LOCAL_BACKENDS)
            .env("RUST_LOG", "warn"),
    )?;
    run_step(
        Command::new("node")
            .arg(root().join("tests/e2e/vite.mjs"))
            .env("FLORENCE2_PKG", root().join("pkg"))
            .env(
                "FLORENCE2_PROXY_BIN",
                target_dir().join("debug/florence2-proxy"),
            )
            .env("FLORENCE2_E2E_MODEL", &model)
            .env("RUST_LOG", "warn"),
    )?;
    Ok(format!(
        "Florence2Local e2e passed ({LOCAL_BACKENDS}) | package in a fresh Vite app ok"
    ))
}

/// Runs the wasm-bindgen browser tests (release build, so the timings mean something) and
/// returns their result lines; `BENCH` lines are echoed.
fn browser_tests(
    double: &Server,
    proxy: Option<&Server>,
    local: Option<&Server>,
    filter: Option<&str>,
) -> Result<String> {
    let mut cmd = cargo();
    if let Some(proxy) = proxy {
        cmd.env("FLORENCE2_TEST_PROXY", &proxy.url);
    }
    if let Some(local) = local {
        cmd.env("FLORENCE2_TEST_LOCAL_PROXY", &local.url);
    }
    cmd.args([
        "test",
        "--release",
        "-p",
        "florence2",
        "--target",
        "wasm32-unknown-unknown",
        "--test",
        "browser",
        "--test",
        "browser_local",
        "--",
        "--nocapture",
    ])
    .args(filter)
    .current_dir(root().join("crate"))
    .env("FLORENCE2_TEST_SERVER", &double.url)
    .env(
        "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
        "wasm-bindgen-test-runner",
    )
    .env("CHROMEDRIVER", "/usr/bin/chromedriver")
    .env("WASM_BINDGEN_TEST_TIMEOUT", "300")
    .stdout(Stdio::piped());
    let shown = describe(&cmd);
    eprintln!("+ {shown}");
    let mut child = cmd.spawn().map_err(|e| format!("{shown}: {e}"))?;
    // One result line per test binary (browser, browser_local).
    let mut results = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out)
            .lines()
            .map_while(std::result::Result::ok)
        {
            println!("{line}");
            if let Some(r) = line.trim().strip_prefix("test result: ") {
                results.push(r.split(';').next().unwrap_or(r).to_owned());
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    match (status.success(), results.is_empty()) {
        (true, false) => Ok(results.join(" + ")),
        (true, true) => Err("the browser tests printed no result line".into()),
        (false, _) => Err(format!("{shown}: {status}")),
    }
}

/// `cargo xtask bench`: criterion natively, then the timed browser tests.
pub fn bench() -> Result {
    setup::wasm_toolchain()?;
    setup::chromium()?;
    run_step(cargo().args(["bench", "-p", "florence2"]))?;
    let double = start_double()?;
    browser_tests(&double, None, None, Some("fast"))?;
    browser_tests(&double, None, None, Some("quickly"))?;
    let package = build::package()?;
    println!("{package}");
    Ok(())
}
