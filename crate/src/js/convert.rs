//! Conversions across the JS boundary: options in, results and typed errors out.

use js_sys::{ArrayBuffer, Object, Reflect, Uint8Array};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::browser::describe;
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

/// Reads a JS value into a Rust type through JSON (`JSON.stringify`, then serde): plain
/// objects of numbers and strings is all the API takes. A wrong shape is a typed error.
pub fn from_js<T: DeserializeOwned>(
    value: JsValue,
    code: ErrorCode,
    what: &str,
) -> Result<T, JsValue> {
    let json = js_sys::JSON::stringify(&value)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| error(code, format!("{what}: expected a plain object")))?;
    serde_json::from_str(&json).map_err(|e| error(code, format!("{what}: {e}")))
}

/// A Rust value as plain JS objects, through JSON: `JSON.parse` builds them far faster than
/// property-by-property calls across the boundary.
pub fn to_js<T: Serialize + ?Sized>(value: &T) -> Result<JsValue, JsValue> {
    let json = serde_json::to_string(value).map_err(|e| {
        error(
            ErrorCode::ResponseInvalid,
            format!("cannot convert the result for JS: {e}"),
        )
    })?;
    js_sys::JSON::parse(&json).map_err(|e| {
        error(
            ErrorCode::ResponseInvalid,
            format!("cannot convert the result for JS: {}", describe(&e)),
        )
    })
}

/// The bytes of a `Uint8Array`, an `ArrayBuffer` or a `Blob`/`File`.
pub async fn bytes_of(value: &JsValue) -> Result<Vec<u8>, JsValue> {
    if let Some(blob) = value.dyn_ref::<web_sys::Blob>() {
        let buffer = JsFuture::from(blob.array_buffer()).await.map_err(|e| {
            error(
                ErrorCode::ImageDecode,
                format!("the file cannot be read: {}", describe(&e)),
            )
        })?;
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
        return Ok(Uint8Array::new_with_byte_offset_and_length(
            &view.buffer(),
            view.byte_offset() as u32,
            view.byte_length() as u32,
        )
        .to_vec());
    }
    Err(error(
        ErrorCode::BadOption,
        "expected bytes: a Uint8Array, an ArrayBuffer or a Blob",
    ))
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
    set(
        &obj,
        "quality",
        p.quality
            .map_or(JsValue::NULL, |q| JsValue::from(f64::from(q))),
    );
    set(&obj, "encodes", p.encodes);
    Ok(obj.into())
}

/// The overlay as `{ name, mime, bytes }` (or `null`). When the ZIP came from JS as `zip_js`
/// (copied into wasm as `zip`), a stored overlay is sliced out of the JS array directly: one
/// copy inside the JS engine instead of two across the boundary.
pub fn overlay_to_js(overlay: Option<&Overlay<'_>>, zip: Option<(&Uint8Array, &[u8])>) -> JsValue {
    overlay.map_or(JsValue::NULL, |o| {
        let obj = Object::new();
        set(&obj, "name", o.name.as_str());
        set(&obj, "mime", o.mime);
        let in_zip = zip.and_then(|(js, bytes)| {
            let start = (o.bytes.as_ptr() as usize).checked_sub(bytes.as_ptr() as usize)?;
            let end = start + o.bytes.len();
            (end <= bytes.len()).then(|| js.slice(start as u32, end as u32))
        });
        set(
            &obj,
            "bytes",
            in_zip.unwrap_or_else(|| Uint8Array::from(&o.bytes[..])),
        );
        obj.into()
    })
}

pub fn parsed_to_js(
    parsed: &ParsedResponse<'_>,
    zip: Option<(&Uint8Array, &[u8])>,
) -> Result<JsValue, JsValue> {
    let obj = Object::new();
    set(&obj, "result", to_js(&parsed.result)?);
    set(&obj, "overlay", overlay_to_js(parsed.overlay.as_ref(), zip));
    Ok(obj.into())
}
