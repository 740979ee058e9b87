//! The steps of `cargo xtask test` (and of the commands that reuse some of them), each one
//! command or suite with what it reports: formatting, lints, the native build and tests, the
//! browser tests, the package's checks, the Florence2Local and demo end-to-end suites.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::bins::{self, CLI, PROXY};
use crate::services;
use crate::setup;
use crate::util::{
    Result, Server, cargo, describe, output, root, run_step, start_server, target_dir,
};

/// Says up front where the golden data of `../shared/reference` is looked for. In CI its
/// absence fails the run here; locally the tests that need it show as ignored (with reason).
pub fn reference_data() -> Result<String> {
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

pub fn fmt() -> Result {
    run_step(cargo().args(["fmt", "--all", "--check"]))
}

/// What the browser steps need on this machine (installed when missing); returns Chromium's
/// version.
pub fn setup() -> Result<String> {
    setup::wasm_toolchain()?;
    setup::chromium()?;
    setup::node_tools()?;
    Ok(output(Command::new("chromium").arg("--version"))
        .unwrap_or_default()
        .trim()
        .to_owned())
}

pub fn clippy() -> Result {
    run_step(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))
}

/// Every native test and binary, one feature set ([`bins::build`]).
pub fn native_build() -> Result {
    bins::build()
}

/// `cargo test --workspace`: after [`native_build`] it compiles only the doctests, and runs.
pub fn native_tests() -> Result {
    run_step(cargo().args(["test", "--workspace"]))
}

/// Runs the wasm-bindgen browser tests (release build, so the timings mean something) and
/// returns their result lines; `BENCH` lines are echoed.
pub fn browser_tests(
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

/// The package's TypeScript types compile against its tests (`pkg/tests`).
pub fn typings() -> Result {
    run_step(
        Command::new(setup::node_bin("tsc"))
            .arg("-p")
            .arg(root().join("pkg/tests")),
    )
}

/// The package's API in Chromium, used as DESIGN.md writes it (tests/e2e/package.mjs), against
/// the proxy double.
pub fn package_api(double: &Server) -> Result {
    run_step(
        Command::new("node")
            .arg(root().join("tests/e2e/package.mjs"))
            .env("FLORENCE2_TEST_SERVER", &double.url),
    )
}

/// The backends `Florence2Local` is checked on, each against every golden case (WebGPU on
/// Chromium's SwiftShader: the CPU pretending to be a GPU, so slow, but the same kernels).
const LOCAL_BACKENDS: &str = "cpu,webgpu";

/// `Florence2Local` from the built package in headless Chromium (tests/e2e/local.mjs), on the
/// reference data's tiny end-to-end folder served by `florence2-proxy --models`; then the packed
/// package in a fresh Vite app (tests/e2e/vite.mjs).
pub fn local_e2e() -> Result<String> {
    let Some(model) = services::tiny_e2e_model("the Florence2Local e2e")? else {
        return Ok("Florence2Local e2e IGNORED: no reference data".into());
    };
    bins::build()?;
    let quantized = quantized_models(&model)?;
    run_step(
        Command::new("node")
            .arg(root().join("tests/e2e/local.mjs"))
            .env("FLORENCE2_E2E_QUANTIZED", &quantized)
            .env("FLORENCE2_PKG", root().join("pkg"))
            .env("FLORENCE2_PROXY_BIN", PROXY.debug())
            .env("FLORENCE2_CLI", CLI.debug())
            .env("FLORENCE2_E2E_MODEL", &model)
            .env("FLORENCE2_LOCAL_BACKENDS", LOCAL_BACKENDS)
            .env("RUST_LOG", "warn"),
    )?;
    run_step(
        Command::new("node")
            .arg(root().join("tests/e2e/vite.mjs"))
            .env("FLORENCE2_PKG", root().join("pkg"))
            .env("FLORENCE2_PROXY_BIN", PROXY.debug())
            .env("FLORENCE2_E2E_MODEL", &model)
            .env("RUST_LOG", "warn"),
    )?;
    Ok(format!(
        "Florence2Local e2e passed ({LOCAL_BACKENDS}) | package in a fresh Vite app ok"
    ))
}

/// The quantization schemes the Florence2Local e2e loads, each against its own goldens
/// (`tests/fixtures/quantized/SCHEME/golden_e2e.json`: transformers on the dequantized twin).
const QUANTIZED_SCHEMES: [&str; 3] = ["q8", "q4", "mixed"];

/// `florence2 quantize` of the tiny end-to-end folder into `<target>/e2e-quantized/SCHEME/`,
/// each with the reference picture and its scheme's goldens; returns `scheme=DIR,…`.
fn quantized_models(model: &std::path::Path) -> Result<String> {
    let dir = target_dir().join("e2e-quantized");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut list = Vec::new();
    for scheme in QUANTIZED_SCHEMES {
        let out = dir.join(scheme);
        run_step(
            Command::new(CLI.debug())
                .args(["quantize", "--scheme", scheme, "--model"])
                .arg(model)
                .arg("--out")
                .arg(&out),
        )?;
        let golden = root()
            .join("tests/fixtures/quantized")
            .join(scheme)
            .join("golden_e2e.json");
        for (from, to) in [
            (model.join("test_image.png"), out.join("test_image.png")),
            (golden, out.join("golden_e2e.json")),
        ] {
            std::fs::copy(&from, &to)
                .map_err(|e| format!("{} -> {}: {e}", from.display(), to.display()))?;
        }
        list.push(format!("{scheme}={}", out.display()));
    }
    Ok(list.join(","))
}

/// The reference data's tiny model files a Local-mode page loads.
const TINY_MODEL_FILES: [&str; 6] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "generation_config.json",
    "processor_config.json",
    "preprocessor_config.json",
];

/// Copies the reference data's `florence2-tiny-e2e` folder into `<target>/e2e-models/` (the
/// proxy refuses symlinks that lead outside its root), for `florence2-proxy --models`. Returns
/// that directory and the reference folder (its picture is the tests'), `None` when the
/// reference data is absent.
fn e2e_models() -> Result<Option<(PathBuf, PathBuf)>> {
    let Some(model) = services::tiny_e2e_model("the demo's Local-mode tests")? else {
        return Ok(None);
    };
    let models = target_dir().join("e2e-models");
    let folder = models.join("florence2-tiny-e2e");
    // The reference files are read-only: start afresh rather than overwrite copies of them.
    let _ = std::fs::remove_dir_all(&models);
    std::fs::create_dir_all(&folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    for file in TINY_MODEL_FILES {
        let from = model.join(file);
        if from.is_file() {
            std::fs::copy(&from, folder.join(file))
                .map_err(|e| format!("{} -> {}: {e}", from.display(), folder.display()))?;
        }
    }
    Ok(Some((models, model)))
}

/// Runs the demo's end-to-end suite on `web/dist` (built by `site::build`) and returns its
/// summary line; only the tests whose name contains `filter` when given (`FLORENCE2_E2E_ONLY`).
/// The page is served by florence2-proxy in front of nvcf-emulator; a second proxy, with no key
/// and a dead upstream, serves the paths a person without a key or internet meets.
pub fn demo_e2e(filter: Option<&str>) -> Result<String> {
    let dist = crate::site::dist();
    let fixtures = services::fixtures()?;
    let (emulator, proxy) = services::emulator_and_proxy(Some(&dist))?;
    // Local mode: the same site, with the tiny model served beside it at models/<name>/.
    let models = e2e_models()?;
    let local_site = match &models {
        Some((models, _)) => Some(start_server(
            services::proxy_to_emulator(&emulator)?
                .arg("--static")
                .arg(&dist)
                .arg("--models")
                .arg(models),
        )?),
        None => None,
    };
    let keyless = services::keyless_proxy(&dist)?;
    let mut cmd = Command::new("node");
    cmd.arg(root().join("tests/e2e/demo.mjs"))
        .env("FLORENCE2_DEMO_URL", &proxy.url)
        .env("FLORENCE2_KEYLESS_URL", &keyless.url)
        .env("FLORENCE2_EMULATOR_URL", &emulator.url)
        .env("FLORENCE2_FIXTURES", &fixtures)
        .env("FLORENCE2_ARTIFACTS", root().join("artifacts/e2e"))
        .stdout(Stdio::piped());
    if let Some(filter) = filter {
        cmd.env("FLORENCE2_E2E_ONLY", filter);
    }
    if let (Some(site), Some((_, reference))) = (&local_site, &models) {
        cmd.env("FLORENCE2_LOCAL_DEMO_URL", &site.url)
            .env("FLORENCE2_LOCAL_MODEL", reference);
    }
    summary_of(&mut cmd, "demo e2e: ")
}

/// Runs `cmd`, echoing its output, and returns the rest of its line that starts with `prefix`.
fn summary_of(cmd: &mut Command, prefix: &str) -> Result<String> {
    let shown = describe(cmd);
    eprintln!("+ {shown}");
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("{shown}: cannot start: {e}"))?;
    let mut summary = None;
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out)
            .lines()
            .map_while(std::result::Result::ok)
        {
            println!("{line}");
            if let Some(rest) = line.strip_prefix(prefix) {
                summary = Some(rest.to_owned());
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    match (status.success(), summary) {
        (true, Some(s)) => Ok(s),
        (true, None) => Err(format!("{shown} printed no summary line")),
        (false, _) => Err(format!("{shown}: {status}")),
    }
}
