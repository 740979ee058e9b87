//! The browser side, as a Rust API: image preparation on the browser's own codecs and the
//! client of our proxy. The JS API (`crate::js`) and the Leptos demo both stand on it.

pub mod client;
pub mod image;
mod scaled_jpeg;

use wasm_bindgen::{JsCast, JsValue};

/// A JS exception or rejection value as text, for error messages.
pub fn describe(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}
