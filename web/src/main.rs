//! The demo's entry point: in the browser it mounts the app; natively there is nothing to run.

#[cfg(target_arch = "wasm32")]
fn main() {
    florence2_demo::ui::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!(
        "florence2-demo runs in a browser: `cargo xtask demo` builds it and serves it on http://127.0.0.1:8080"
    );
}
