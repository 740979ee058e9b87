//! Test-only facts, fixed at build time because libtest and wasm-bindgen-test cannot ignore a
//! test at run time: a test that needs something absent shows as ignored, with its reason,
//! never as a pass (see `florence2-reference`). Nothing here changes the library itself.

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    florence2_reference::build_script(&manifest_dir);
    // The browser tests read these with `option_env!`; `cargo xtask test` sets them.
    for (var, cfg) in [
        ("FLORENCE2_TEST_SERVER", "no_test_server"),
        ("FLORENCE2_TEST_PROXY", "no_test_proxy"),
        ("FLORENCE2_TEST_LOCAL_PROXY", "no_test_local_proxy"),
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        println!("cargo::rerun-if-env-changed={var}");
        if std::env::var_os(var).is_none() {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
