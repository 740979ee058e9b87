//! The demo's site (`web/`, package `florence2-demo`): its release build into `web/dist`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::util::{Result, build_release_wasm, gzip_len, root, run_step, target_dir};
use crate::{package, setup};

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
    package::wasm_opt(&bg)?;
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
/// `cargo xtask build` ([`package::build`]); when it is absent, that runs first.
fn copy_local_runtime(to: &Path) -> Result {
    let from = root().join("pkg/local");
    if !from.join("index.js").is_file() || !from.join("florence2_local_bg.wasm").is_file() {
        eprintln!(
            "note: pkg/local/ is missing: building the package first (the demo's Local mode needs its runtime)"
        );
        eprintln!("{}", package::build()?);
    }
    copy_tree(&from, to)
}

/// `from`'s files and folders (the threaded runtime in `threads/`, with its snippets) into `to`.
fn copy_tree(from: &Path, to: &Path) -> Result {
    std::fs::create_dir_all(to).map_err(|e| format!("{}: {e}", to.display()))?;
    for entry in std::fs::read_dir(from)
        .map_err(|e| format!("{}: {e}", from.display()))?
        .flatten()
    {
        let target = to.join(entry.file_name());
        match entry.file_type() {
            Ok(t) if t.is_dir() => copy_tree(&entry.path(), &target)?,
            Ok(t) if t.is_file() => {
                std::fs::copy(entry.path(), &target).map_err(|e| {
                    format!("{} -> {}: {e}", entry.path().display(), target.display())
                })?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Where the demo is built: what `cargo xtask demo` serves.
pub fn dist() -> PathBuf {
    root().join("web/dist")
}
