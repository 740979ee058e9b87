//! The npm package (`pkg/`): the release wasm of `florence2` with its glue and types, the
//! local runtime (`pkg/local/`), `index.js`/`index.d.ts` and the licences.

use std::process::Command;

use crate::setup;
use crate::util::{Result, build_release_wasm, gzip_len, root, run_step, target_dir};

/// What [`build`] made.
pub struct PackageReport {
    pub wasm_bytes: usize,
    pub wasm_gzip_bytes: usize,
    pub local_wasm_bytes: usize,
    pub local_wasm_gzip_bytes: usize,
}

impl std::fmt::Display for PackageReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "package: pkg/florence2_bg.wasm {:.1} KB, gzip {:.1} KB; local runtime pkg/local/florence2_local_bg.wasm {:.1} MB, gzip {:.1} MB",
            self.wasm_bytes as f64 / 1024.0,
            self.wasm_gzip_bytes as f64 / 1024.0,
            self.local_wasm_bytes as f64 / 1048576.0,
            self.local_wasm_gzip_bytes as f64 / 1048576.0
        )
    }
}

/// Builds the npm package into `pkg/`: the release wasm, its JS glue and types
/// (wasm-bindgen), optimised for size (npm's wasm-opt), plus `index.js`/`index.d.ts`, which add
/// the `TASKS` constant generated from the Rust task table.
pub fn build() -> Result<PackageReport> {
    setup::wasm_toolchain()?;
    setup::node_tools()?;
    let pkg = root().join("pkg");
    build_release_wasm(&["-p", "florence2", "--lib"])?;
    let wasm = target_dir().join("wasm32-unknown-unknown/release/florence2.wasm");
    run_step(
        Command::new("wasm-bindgen")
            .args(["--target", "web", "--out-name", "florence2", "--out-dir"])
            .arg(&pkg)
            .arg(&wasm),
    )?;
    let bg = pkg.join("florence2_bg.wasm");
    wasm_opt(&bg)?;
    let local = local_runtime(&pkg.join("local"))?;
    write_index(&pkg)?;
    for licence in LICENCES {
        std::fs::copy(root().join(licence), pkg.join(licence))
            .map_err(|e| format!("copying {licence} into pkg/: {e}"))?;
    }
    check_packed_files(&pkg)?;
    let bytes = std::fs::read(&bg).map_err(|e| format!("{}: {e}", bg.display()))?;
    let local = std::fs::read(&local).map_err(|e| format!("{}: {e}", local.display()))?;
    Ok(PackageReport {
        wasm_bytes: bytes.len(),
        wasm_gzip_bytes: gzip_len(&bytes),
        local_wasm_bytes: local.len(),
        local_wasm_gzip_bytes: gzip_len(&local),
    })
}

/// The local runtime is built with wasm SIMD: the model's CPU kernels and burn-flex's ops are
/// written to vectorise, and one float at a time they ran 4x slower than natively. For this
/// build only (`--config` appends to `.cargo/config.toml`'s wasm32 flags: cargo joins arrays),
/// so the package's core wasm, the endpoint's client, still loads where SIMD is missing.
const LOCAL_RUSTFLAGS: &str =
    r#"target.wasm32-unknown-unknown.rustflags=["-Ctarget-feature=+simd128"]"#;

/// The threaded build's flags: wasm atomics and bulk memory on top of SIMD, for the standard
/// library too (`build-std`); `local/build.rs` links its memory as shared.
const THREADS_RUSTFLAGS: &str = r#"target.wasm32-unknown-unknown.rustflags=["-Ctarget-feature=+simd128,+atomics,+bulk-memory"]"#;

/// The local runtime's threaded CPU build (`pkg/local/threads/`), which the worker loads on a
/// cross-origin isolated page: no WebGPU (wgpu's browser types are not `Send`, and a GPU
/// needs no CPU threads), built by the pinned nightly into its own target folder.
fn threaded_runtime(out: &std::path::Path) -> Result {
    setup::threads_toolchain()?;
    let target = target_dir().join("wasm-threads");
    run_step(
        Command::new("rustup")
            .args(["run", setup::THREADS_NIGHTLY, "cargo", "build", "--release"])
            .args([
                "--target",
                "wasm32-unknown-unknown",
                "-Z",
                "build-std=panic_abort,std",
            ])
            .args(["-p", "florence2-local", "--lib", "--features", "threads"])
            .args(["--config", THREADS_RUSTFLAGS])
            .env("CARGO_TARGET_DIR", &target)
            .env_remove("CARGO")
            .env_remove("RUSTC")
            .env_remove("RUSTDOC"),
    )?;
    bind_local_runtime(
        &target.join("wasm32-unknown-unknown/release/florence2_local.wasm"),
        out,
    )
}

/// wasm-bindgen's glue for a build of the local runtime, into `out`.
fn bind_local_runtime(wasm: &std::path::Path, out: &std::path::Path) -> Result {
    run_step(
        Command::new("wasm-bindgen")
            .args([
                "--target",
                "web",
                "--out-name",
                "florence2_local",
                "--out-dir",
            ])
            .arg(out)
            .arg(wasm),
    )
}

/// The local runtime (`local/`): its own wasm, fetched only by `Florence2Local.load`, with
/// its glue, the page-side class and the worker, into `pkg/local/`. Returns the wasm's path.
fn local_runtime(out: &std::path::Path) -> Result<std::path::PathBuf> {
    build_release_wasm(&[
        "-p",
        "florence2-local",
        "--lib",
        "--features",
        "webgpu",
        "--config",
        LOCAL_RUSTFLAGS,
    ])?;
    let wasm = target_dir().join("wasm32-unknown-unknown/release/florence2_local.wasm");
    let _ = std::fs::remove_dir_all(out);
    bind_local_runtime(&wasm, out)?;
    for js in ["index.js", "index.d.ts", "worker.js"] {
        std::fs::copy(root().join("local/js").join(js), out.join(js))
            .map_err(|e| format!("copying local/js/{js} into pkg/local/: {e}"))?;
    }
    threaded_runtime(&out.join("threads"))?;
    Ok(out.join("florence2_local_bg.wasm"))
}

/// The licence the manifests declare (MIT OR Apache-2.0), shipped in the package too.
const LICENCES: [&str; 2] = ["LICENSE-MIT", "LICENSE-APACHE"];

/// What `npm pack` would publish must hold the code, the types, the README and both licences:
/// asks npm itself (`--dry-run`: nothing is written or sent).
fn check_packed_files(pkg: &std::path::Path) -> Result {
    let listing = crate::util::output(
        Command::new("npm")
            .args(["pack", "--dry-run", "--json", "--ignore-scripts"])
            .current_dir(pkg),
    )?;
    let packed: serde_json::Value =
        serde_json::from_str(&listing).map_err(|e| format!("npm pack --json: {e}"))?;
    let paths: Vec<&str> = packed[0]["files"]
        .as_array()
        .map(|files| files.iter().filter_map(|f| f["path"].as_str()).collect())
        .unwrap_or_default();
    let wanted = [
        "index.js",
        "index.d.ts",
        "florence2_bg.wasm",
        "README.md",
        "local/index.js",
        "local/worker.js",
        "local/florence2_local.js",
        "local/florence2_local_bg.wasm",
        "local/threads/florence2_local.js",
        "local/threads/florence2_local_bg.wasm",
    ];
    let missing: Vec<&str> = wanted
        .iter()
        .chain(LICENCES.iter())
        .copied()
        .filter(|want| !paths.contains(want))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "npm pack would leave out {missing:?} (it packs {paths:?})"
        ))
    }
}

/// Optimises a wasm-bindgen output for size, in place (npm's wasm-opt).
pub fn wasm_opt(wasm: &std::path::Path) -> Result {
    run_step(
        Command::new(setup::node_bin("wasm-opt"))
            .args([
                "-Oz",
                "--enable-bulk-memory",
                "--enable-nontrapping-float-to-int",
                "--enable-sign-ext",
                "--enable-mutable-globals",
                "--enable-reference-types",
                "--enable-multivalue",
            ])
            .arg(wasm)
            .arg("-o")
            .arg(wasm),
    )
}

fn write_index(pkg: &std::path::Path) -> Result {
    let tasks = serde_json::to_string_pretty(&florence2::task::endpoint_task_infos())
        .map_err(|e| e.to_string())?;
    let js = format!(
        "// Generated by `cargo xtask build` from crate/src/task.rs; do not edit.\n\
         export * from \"./florence2.js\";\n\
         export {{ default }} from \"./florence2.js\";\n\n\
         /** The endpoint's 14 tasks (the same list as `tasks()`, available before `init()`). */\n\
         export const TASKS = Object.freeze({tasks}.map(Object.freeze));\n\n\
         /** Florence-2 in this browser (WebGPU or CPU): its runtime loads only when used. */\n\
         export {{ Florence2Local }} from \"./local/index.js\";\n"
    );
    let dts = "// Generated by `cargo xtask build`; do not edit.\n\
               export * from \"./florence2.js\";\n\
               export { default } from \"./florence2.js\";\n\
               import type { TaskInfo } from \"./florence2.js\";\n\n\
               /** The endpoint's 14 tasks (the same list as `tasks()`, available before `init()`). */\n\
               export declare const TASKS: readonly TaskInfo[];\n\n\
               export { Florence2Local } from \"./local/index.js\";\n";
    std::fs::write(pkg.join("index.js"), js).map_err(|e| format!("pkg/index.js: {e}"))?;
    std::fs::write(pkg.join("index.d.ts"), dts).map_err(|e| format!("pkg/index.d.ts: {e}"))
}
