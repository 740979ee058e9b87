//! Whether the reference data (`../shared/reference`, or `FLORENCE2_REFERENCE_DIR`) is there,
//! as `cfg(florence2_reference)`: the local backend's golden tests are `#[ignore]`d without
//! it on a developer's machine (listed as ignored, never passed silently), and run — and fail
//! loudly when it is missing — wherever `CI` is set.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(florence2_reference)");
    println!("cargo::rerun-if-env-changed=FLORENCE2_REFERENCE_DIR");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-changed=build.rs");
    let dir = match std::env::var_os("FLORENCE2_REFERENCE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference"),
    };
    let e2e = dir.join("florence2-tiny-e2e");
    // Watching a path that does not exist reruns this script on every build: cheap, and it
    // notices the folder appearing.
    println!("cargo::rerun-if-changed={}", e2e.display());
    if std::env::var_os("CI").is_some() || e2e.is_dir() {
        println!("cargo::rustc-cfg=florence2_reference");
    }
}
