//! The demo (`web/`, package `florence2-demo`): its release build into `web/dist`, and its
//! end-to-end suite (`tests/e2e/demo.mjs`) in headless Chromium through the real proxy to the
//! emulator (and, for Local mode, the reference data's tiny model served beside the page).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::util::{
    Result, build_release_wasm, describe, gzip_len, root, run_step, start_server, target_dir,
};
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
/// for size (npm's wasm-opt), the static files of `web/static`, and the package's local
/// runtime (`pkg/local/`, built first when absent) as `local/` for Local mode. Every path in
/// it is relative, so `web/dist` works from any static host under any sub-path.
pub fn build() -> Result<WebReport> {
    let started = Instant::now();
    setup::wasm_toolchain()?;
    setup::node_tools()?;
    build_release_wasm(&["-p", "florence2-demo"])?;
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
    copy_local_runtime(&dist.join("local"))?;
    let bytes = std::fs::read(&bg).map_err(|e| format!("{}: {e}", bg.display()))?;
    Ok(WebReport {
        wasm_bytes: bytes.len(),
        wasm_gzip_bytes: gzip_len(&bytes),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Copies the package's local runtime (`Florence2Local`: index.js, its worker, its wasm and
/// glue) into `to`: the demo's JS imports `./local/index.js`. `pkg/local/` is built by
/// `cargo xtask build` (`build::package`); when it is absent, that runs first.
fn copy_local_runtime(to: &Path) -> Result {
    let from = root().join("pkg/local");
    if !from.join("index.js").is_file() || !from.join("florence2_local_bg.wasm").is_file() {
        eprintln!(
            "note: pkg/local/ is missing: building the package first (the demo's Local mode needs its runtime)"
        );
        eprintln!("{}", build::package()?);
    }
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in std::fs::read_dir(&from)
        .map_err(|e| format!("{}: {e}", from.display()))?
        .flatten()
    {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let target = to.join(entry.file_name());
            std::fs::copy(entry.path(), &target)
                .map_err(|e| format!("{} -> {}: {e}", entry.path().display(), target.display()))?;
        }
    }
    Ok(())
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
    let model = florence2_reference::location(&root()).join("florence2-tiny-e2e");
    if !model.join("config.json").is_file() {
        if std::env::var_os("CI").is_some() {
            return Err(format!(
                "{} is missing: CI needs the reference data (FLORENCE2_REFERENCE_DIR)",
                model.display()
            ));
        }
        eprintln!(
            "note: {} not found: the demo's Local-mode tests will not run",
            model.display()
        );
        return Ok(None);
    }
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

/// `cargo xtask e2e [FILTER]`: builds the demo and runs only its end-to-end suite (the tests
/// whose name contains FILTER, when given).
pub fn run_e2e(args: &[String]) -> Result {
    if args.len() > 1 {
        return Err("usage: cargo xtask e2e [FILTER]".into());
    }
    eprintln!("{}", build()?);
    let summary = e2e_only(args.first().map(String::as_str))?;
    println!("\nSUMMARY: demo e2e: {summary}");
    Ok(())
}

/// An upstream where nothing listens (the discard port), for the "NVIDIA cannot be reached" paths.
const DEAD_UPSTREAM: &str = "http://127.0.0.1:9";

/// Runs the demo's end-to-end suite on `web/dist` (built by `build()`) and returns its summary
/// line. The page is served by florence2-proxy in front of nvcf-emulator; a second proxy, with
/// no key and a dead upstream, serves the paths a person without a key or internet meets.
pub fn e2e() -> Result<String> {
    e2e_only(None)
}

/// [`e2e`], only the tests whose name contains `filter` when given (`FLORENCE2_E2E_ONLY`).
fn e2e_only(filter: Option<&str>) -> Result<String> {
    let dist = dist();
    let fixtures = test::fixtures()?;
    let (emulator, proxy) = test::start_proxy_to_emulator(Some(&dist))?;
    // Local mode: the same site, with the tiny model served beside it at models/<name>/.
    let models = e2e_models()?;
    let local_site = match &models {
        Some((models, _)) => Some(start_server(
            test::proxy_to_emulator(&emulator)
                .arg("--static")
                .arg(&dist)
                .arg("--models")
                .arg(models),
        )?),
        None => None,
    };
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

/// Where the demo is built: what `cargo xtask demo` serves.
pub fn dist() -> PathBuf {
    root().join("web/dist")
}
