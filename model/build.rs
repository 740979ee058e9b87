//! Tells the integration tests whether the reference folder is there, so that without it they
//! show as *ignored* (with the reason), never as passed: it sets `cfg(no_reference)` when
//! `FLORENCE2_REFERENCE_DIR` (default `../shared/reference` beside the workspace) is absent.
//! Under CI (`CI` set) it never does: there the tests run and a missing folder fails them.

use std::path::PathBuf;

fn main() {
    println!("cargo:rustc-check-cfg=cfg(no_reference)");
    println!("cargo:rerun-if-env-changed=FLORENCE2_REFERENCE_DIR");
    println!("cargo:rerun-if-env-changed=CI");
    let dir = match std::env::var_os("FLORENCE2_REFERENCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference"),
    };
    // Watched so that the folder appearing (or going) is noticed on the next build.
    println!("cargo:rerun-if-changed={}", dir.display());
    if !dir.is_dir() && std::env::var_os("CI").is_none() {
        println!("cargo:rustc-cfg=no_reference");
    }
}
