//! Conversions across the JS boundary: options in, results and typed errors out.

use js_sys::{ArrayBuffer, Object, Reflect, Uint8Array};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::image_prep::PreparedImage;
use crate::response::{Overlay, ParsedResponse};
use crate::{Error, ErrorCode};

/// A JS `Error` named `Florence2Error` carrying `code` (and `status`, `retryAfterSecs` when
/// known).
pub fn js_error(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.message);
    err.set_name("Florence2Error");
    let obj: &JsValue = err.as_ref();
    // Setting a property on a fresh Error object cannot fail.
    let _ = Reflect::set(obj, &"code".into(), &e.code.as_str().into());
    if let Some(status) = e.status {
        let _ = Reflect::set(obj, &"status".into(), &status.into());
    }
    if let Some(secs) = e.retry_after_secs {
        let _ = Reflect::set(obj, &"retryAfterSecs".into(), &secs.into());
    }
    err.into()
}

pub fn error(code: ErrorCode, message: impl Into<String>) -> JsValue {
    js_error(Error::new(code, message))
}

/// Reads a JS value into a Rust type; a wrong shape is a typed error with `code`.
pub fn from_js<T: DeserializeOwned>(value: JsValue, code: ErrorCode, what: &str) -> Result<T, JsValue> {
    serde_wasm_bindgen::from_value(value).map_err(|e| error(code, format!("{what}: {e}")))
}

/// Plain JS objects (not Maps), `null` for missing values: what JSON would give.
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| error(ErrorCode::ResponseInvalid, format!("cannot convert the result for JS: {e}")))
}

/// The bytes of a `Uint8Array`, an `ArrayBuffer` or a `Blob`/`File`.
pub async fn bytes_of(value: &JsValue) -> Result<Vec<u8>, JsValue> {
    if let Some(blob) = value.dyn_ref::<web_sys::Blob>() {
        let buffer = JsFuture::from(blob.array_buffer())
            .await
            .map_err(|e| error(ErrorCode::ImageDecode, format!("the file cannot be read: {}", describe(&e))))?;
        return Ok(Uint8Array::new(&buffer).to_vec());
    }
    sync_bytes_of(value)
}

/// The bytes of a `Uint8Array` (or another typed-array view) or an `ArrayBuffer`.
pub fn sync_bytes_of(value: &JsValue) -> Result<Vec<u8>, JsValue> {
    if let Some(array) = value.dyn_ref::<Uint8Array>() {
        return Ok(array.to_vec());
    }
    if value.is_instance_of::<ArrayBuffer>() {
        return Ok(Uint8Array::new(value).to_vec());
    }
    if ArrayBuffer::is_view(value) {
        let view: &js_sys::DataView = value.unchecked_ref();
        return Ok(Uint8Array::new_with_byte_offset_and_length(&view.buffer(), view.byte_offset() as u32, view.byte_length() as u32).to_vec());
    }
    Err(error(ErrorCode::BadOption, "expected bytes: a Uint8Array, an ArrayBuffer or a Blob"))
}

pub fn describe(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    // Defining a property on a plain object we just made cannot fail.
    let _ = Reflect::set(obj, &key.into(), &value.into());
}

pub fn prepared_to_js(p: &PreparedImage) -> Result<JsValue, JsValue> {
    let obj = Object::new();
    set(&obj, "dataUrl", p.data_url());
    set(&obj, "width", p.width);
    set(&obj, "height", p.height);
    set(&obj, "sentWidth", p.sent_width);
    set(&obj, "sentHeight", p.sent_height);
    set(&obj, "mime", p.mime);
    set(&obj, "bytes", Uint8Array::from(&p.bytes[..]));
    set(&obj, "quality", p.quality.map_or(JsValue::NULL, |q| JsValue::from(f64::from(q))));
    set(&obj, "encodes", p.encodes);
    Ok(obj.into())
}

pub fn overlay_to_js(overlay: Option<&Overlay>) -> JsValue {
    overlay.map_or(JsValue::NULL, |o| {
        let obj = Object::new();
        set(&obj, "name", o.name.as_str());
        set(&obj, "mime", o.mime);
        set(&obj, "bytes", Uint8Array::from(&o.bytes[..]));
        obj.into()
    })
}

pub fn parsed_to_js(parsed: &ParsedResponse) -> Result<JsValue, JsValue> {
    let obj = Object::new();
    set(&obj, "result", to_js(&parsed.result)?);
    set(&obj, "overlay", overlay_to_js(parsed.overlay.as_ref()));
    Ok(obj.into())
}
