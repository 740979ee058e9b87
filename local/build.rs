//! The `threads` build (wasm32 with atomics) links its memory as shared and imported, so that
//! the pool's Web Workers instantiate the same module on the same memory (wasm-bindgen's
//! threads support looks for exactly this), with room for wasm32's full 4 GiB, which the
//! base model in f32 needs about a quarter of.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if arch == "wasm32" && features.split(',').any(|f| f == "atomics") {
        for arg in [
            "--shared-memory",
            "--import-memory",
            "--max-memory=4294967296",
            "--export=__wasm_init_tls",
            "--export=__tls_size",
            "--export=__tls_align",
            "--export=__tls_base",
        ] {
            println!("cargo:rustc-link-arg-cdylib={arg}");
        }
    }
}
