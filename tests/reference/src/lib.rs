//! The golden data of `../shared/reference` (tiny models, goldens, the real tokenizer) is not
//! in this repository. A test that needs it must never pass without it:
//!
//! - locally it shows as *ignored*, with the reason: the package's build script calls
//!   [`build_script`], which sets `cfg(reference_missing)` when the folder is absent, and the
//!   test carries `#[cfg_attr(reference_missing, ignore = "…")]` (libtest cannot ignore a test
//!   at run time, hence the build script);
//! - in CI (`CI` set) the cfg is never set, so the test runs and [`dir`] fails it, saying
//!   where it looked.

use std::path::{Path, PathBuf};

/// Overrides where the reference folder is.
pub const ENV: &str = "FLORENCE2_REFERENCE_DIR";

/// The reference folder: `$FLORENCE2_REFERENCE_DIR`, else `shared/reference` beside the
/// workspace (the folder holding `Cargo.lock`, found from `manifest_dir` upwards).
pub fn location(manifest_dir: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os(ENV) {
        return PathBuf::from(dir);
    }
    let workspace = manifest_dir
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .unwrap_or(manifest_dir);
    workspace.join("../shared/reference")
}

/// For a test: the reference folder (or one of its subfolders, `sub`), or a failure that
/// says where it was looked for. Call it as `florence2_reference::dir(env!("CARGO_MANIFEST_DIR"), "…")`.
pub fn dir(manifest_dir: &str, sub: &str) -> PathBuf {
    let dir = location(Path::new(manifest_dir)).join(sub);
    assert!(
        dir.is_dir(),
        "the reference data {} is missing (set {ENV}, or put ../shared/reference beside the \
         workspace); in CI this is a failure, locally such tests are ignored",
        dir.display()
    );
    dir
}

/// For a build script: declares `cfg(reference_missing)` and sets it when the folder is absent
/// and `CI` is not set; asks to be rerun when either changes.
pub fn build_script(manifest_dir: &str) {
    let dir = location(Path::new(manifest_dir));
    println!("cargo::rustc-check-cfg=cfg(reference_missing)");
    println!("cargo::rerun-if-env-changed={ENV}");
    println!("cargo::rerun-if-env-changed=CI");
    // A missing path makes cargo rerun this script every build, so the cfg follows the
    // folder's arrival; a present one reruns it when the folder's own entries change.
    println!("cargo::rerun-if-changed={}", dir.display());
    if !dir.is_dir() && std::env::var_os("CI").is_none() {
        println!("cargo::rustc-cfg=reference_missing");
        println!(
            "cargo::warning=reference data not found at {}: the tests that need it are ignored",
            dir.display()
        );
    }
}
