//! The local runtime of the `florence2-web` package: florence2-burn, compiled to its own wasm
//! that `Florence2Local.load` fetches only when it is used, running inside the package's Web
//! Worker (`js/worker.js`) so the page never freezes. WebGPU through burn's wgpu backend, the
//! CPU through burn-flex; the same model code, search and post-processor as natively.
//!
//! The plain logic (what a run asks for, which error code a failure gets) is here and tested
//! natively; `js` is the thin wasm-bindgen boundary the worker calls.

pub mod error;
pub mod request;

#[cfg(target_arch = "wasm32")]
mod js;
