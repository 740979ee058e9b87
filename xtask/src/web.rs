//! The demo (`web/`, package `florence2-demo`): its release build into `web/dist`, and its
//! end-to-end suite (`tests/e2e/demo.mjs`) in headless Chromium through the real proxy to the
//! emulator.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::util::{Result, cargo, describe, gzip_len, root, run_step, start_server, target_dir};
use crate::{build, setup, test};

/// What `build()` made.
pub struct WebReport {
    pub wasm_bytes: usize,
    pub wasm_gzip_bytes: usize,
    pub seconds: f64,
}

impl std::fmt::Display for WebReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "demo: web/dist/demo_bg.wasm {:.1} KB, gzip {:.1} KB (built in {:.0} s)",
            self.wasm_bytes as f64 / 1024.0,
            self.wasm_gzip_bytes as f64 / 1024.0,
            self.seconds
        )
    }
}

/// Builds the demo into `web/dist`: the release wasm, its JS glue (wasm-bindgen), optimised
/// for size (npm's wasm-opt), and the static files of `web/static`. Every path in it is
/// relative, so `web/dist` works from any static host under any sub-path.
pub fn build() -> Result<WebReport> {
    let started = Instant::now();
    setup::wasm_toolchain()?;
    setup::node_tools()?;
    run_step(cargo().args([
        "build",
        "--release",
        "--target",
        "wasm32-unknown-unknown",
        "-p",
        "florence2-demo",
    ]))?;
    let dist = dist();
    // Start clean: files of an older build (wasm-bindgen snippets) must not linger.
    let _ = std::fs::remove_dir_all(&dist);
    let wasm = target_dir().join("wasm32-unknown-unknown/release/florence2-demo.wasm");
    run_step(
        Command::new("wasm-bindgen")
            .args([
                "--target",
                "web",
                "--no-typescript",
                "--out-name",
                "demo",
                "--out-dir",
            ])
            .arg(&dist)
            .arg(&wasm),
    )?;
    let bg = dist.join("demo_bg.wasm");
    build::wasm_opt(&bg)?;
    let assets = root().join("web/static");
    for entry in std::fs::read_dir(&assets)
        .map_err(|e| format!("{}: {e}", assets.display()))?
        .flatten()
    {
        let to = dist.join(entry.file_name());
        std::fs::copy(entry.path(), &to)
            .map_err(|e| format!("{} -> {}: {e}", entry.path().display(), to.display()))?;
    }
    let bytes = std::fs::read(&bg).map_err(|e| format!("{}: {e}", bg.display()))?;
    Ok(WebReport {
        wasm_bytes: bytes.len(),
        wasm_gzip_bytes: gzip_len(&bytes),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// An upstream where nothing listens (the discard port), for the "NVIDIA cannot be reached" paths.
const DEAD_UPSTREAM: &str = "http://127.0.0.1:9";

/// Runs the demo's end-to-end suite on `web/dist` (built by `build()`) and returns its summary
/// line. The page is served by florence2-proxy in front of nvcf-emulator; a second proxy, with
/// no key and a dead upstream, serves the paths a person without a key or internet meets.
pub fn e2e() -> Result<String> {
    let dist = dist();
    let fixtures = test::fixtures()?;
    let (emulator, proxy) = test::start_proxy_to_emulator(Some(&dist))?;
    let keyless = start_server(
        Command::new(target_dir().join("debug/florence2-proxy"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                DEAD_UPSTREAM,
                "--assets-upstream",
                DEAD_UPSTREAM,
                "--rate-limit",
                "0",
                "--static",
            ])
            .arg(&dist)
            .env_remove("NVIDIA_API_KEY")
            .env("RUST_LOG", "error"),
    )?;
    let mut cmd = Command::new("node");
    cmd.arg(root().join("tests/e2e/demo.mjs"))
        .env("FLORENCE2_DEMO_URL", &proxy.url)
        .env("FLORENCE2_KEYLESS_URL", &keyless.url)
        .env("FLORENCE2_EMULATOR_URL", &emulator.url)
        .env("FLORENCE2_FIXTURES", &fixtures)
        .env("FLORENCE2_ARTIFACTS", root().join("artifacts/e2e"))
        .stdout(Stdio::piped());
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

/// Where the demo is built: what `cargo xtask demo` serves.
pub fn dist() -> PathBuf {
    root().join("web/dist")
}
