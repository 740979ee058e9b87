//! Installing what the tests need on a fresh machine: the wasm32 target, wasm-bindgen-cli at
//! exactly the version in Cargo.lock, Chromium + chromedriver (apt, as root), and the Node
//! tools of `tools/node` (npm ci).

use std::process::Command;

use crate::util::{Result, have, output, root, run_step};

pub fn wasm_toolchain() -> Result {
    let installed =
        output(Command::new("rustup").args(["target", "list", "--installed"])).unwrap_or_default();
    if !installed
        .lines()
        .any(|l| l.trim() == "wasm32-unknown-unknown")
    {
        run_step(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }
    let wanted = locked_version("wasm-bindgen")?;
    let current = output(Command::new("wasm-bindgen").arg("--version")).unwrap_or_default();
    if current.split_whitespace().nth(1) != Some(wanted.as_str()) {
        eprintln!(
            "wasm-bindgen-cli {wanted} is needed (found {:?}); installing (several minutes)",
            current.trim()
        );
        run_step(crate::util::cargo().args(["install", "wasm-bindgen-cli", "--version", &wanted]))?;
    }
    Ok(())
}

/// The nightly the threaded local runtime is built with: wasm threads need the standard
/// library rebuilt with atomics (`-Z build-std`), which stable cargo cannot do. Pinned, so a
/// build is the same every day; its `rust-src` is all it needs (no prebuilt wasm32 std).
pub const THREADS_NIGHTLY: &str = "nightly-2026-05-19";

/// Installs [`THREADS_NIGHTLY`] with `rust-src` when missing (rustup; ~10 s).
pub fn threads_toolchain() -> Result {
    let src = output(Command::new("rustup").args([
        "component",
        "list",
        "--installed",
        "--toolchain",
        THREADS_NIGHTLY,
    ]))
    .unwrap_or_default();
    if !src.lines().any(|l| l.trim() == "rust-src") {
        run_step(Command::new("rustup").args([
            "toolchain",
            "install",
            THREADS_NIGHTLY,
            "--profile",
            "minimal",
            "--component",
            "rust-src",
        ]))?;
    }
    Ok(())
}

/// The version of `package` in Cargo.lock.
pub fn locked_version(package: &str) -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock"))
        .map_err(|e| format!("Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{package}\"")
            && let Some(v) = lines.next().and_then(|l| l.strip_prefix("version = \""))
        {
            return Ok(v.trim_end_matches('"').to_owned());
        }
    }
    Err(format!("{package} is not in Cargo.lock"))
}

pub fn chromium() -> Result {
    if have("chromium") && have("chromedriver") {
        return Ok(());
    }
    let root_user = output(Command::new("id").arg("-u"))
        .map(|s| s.trim() == "0")
        .unwrap_or(false);
    if !root_user {
        return Err("Chromium and chromedriver are needed: run `sudo apt-get install -y chromium chromium-driver`".into());
    }
    run_step(
        Command::new("apt-get")
            .arg("update")
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )?;
    run_step(
        Command::new("apt-get")
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "chromium",
                "chromium-driver",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"),
    )
}

/// `npm ci` in tools/node when its node_modules is missing or older than the lockfile.
pub fn node_tools() -> Result {
    if !have("npm") {
        return Err("Node.js and npm are needed: run `sudo apt-get install -y nodejs npm`".into());
    }
    let dir = root().join("tools/node");
    let lock = std::fs::metadata(dir.join("package-lock.json"))
        .and_then(|m| m.modified())
        .ok();
    let installed = std::fs::metadata(dir.join("node_modules/.package-lock.json"))
        .and_then(|m| m.modified())
        .ok();
    if installed.is_none() || installed < lock {
        run_step(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir),
        )?;
    }
    Ok(())
}

pub fn node_bin(name: &str) -> std::path::PathBuf {
    root().join("tools/node/node_modules/.bin").join(name)
}
