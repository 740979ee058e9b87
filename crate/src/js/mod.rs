//! The JS API (wasm-bindgen): a thin layer that converts between JS values and the plain-Rust
//! core. Every export returns a typed error (`Error` with a stable `code`) instead of
//! panicking; the TypeScript types of every object are in `types.d.ts`.

mod client;
pub use client::Florence2Client;
mod convert;

use js_sys::Uint8Array;
use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::image_prep::{DEFAULT_MAX_BASE64_CHARS, PrepareOptions};
use crate::region::{ImageSize, Region};
use crate::response::{ResponseContext, ZipLimits, parse_zip};
use crate::task::Task;
use crate::{Error, ErrorCode, prompt};

use convert::{from_js, js_error, to_js};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &str = include_str!("types.d.ts");

/// The endpoint's 14 tasks: `{ token, text, label, group, description }`.
#[wasm_bindgen(unchecked_return_type = "TaskInfo[]")]
pub fn tasks() -> Result<JsValue, JsValue> {
    to_js(&crate::task::endpoint_task_infos())
}

/// The endpoint's `content` for a task, its text and an image source; throws a typed error
/// when the text does not suit the task.
#[wasm_bindgen(js_name = buildContent)]
pub fn build_content(task: &str, text: Option<String>, image_src: &str) -> Result<String, JsValue> {
    prompt::build_content(task, text.as_deref(), image_src).map_err(js_error)
}

/// `<loc_x1><loc_y1><loc_x2><loc_y2>` for a region of an image, by the endpoint's x999 rule.
#[wasm_bindgen(js_name = regionToLoc)]
pub fn region_to_loc(
    #[wasm_bindgen(unchecked_param_type = "Region")] region: JsValue,
    #[wasm_bindgen(unchecked_param_type = "ImageSize")] size: JsValue,
) -> Result<String, JsValue> {
    let region: Region = from_js(region, ErrorCode::BadRegion, "region")?;
    let size: ImageSize = from_js(size, ErrorCode::BadRegion, "image size")?;
    region.to_endpoint_loc(size).map_err(js_error)
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct PrepareImageOptions {
    max_base64_chars: Option<f64>,
    max_pixels: Option<f64>,
}

/// Prepares an image (bytes, ArrayBuffer or Blob) as a JPEG data URL within the budget.
#[wasm_bindgen(js_name = prepareImage, unchecked_return_type = "Promise<PreparedImage>")]
pub async fn prepare_image(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer | Blob")] image: JsValue,
    #[wasm_bindgen(unchecked_param_type = "PrepareImageOptions | undefined")] options: JsValue,
) -> Result<JsValue, JsValue> {
    let opts: PrepareImageOptions = if options.is_undefined() || options.is_null() {
        PrepareImageOptions::default()
    } else {
        from_js(options, ErrorCode::BadOption, "options")?
    };
    let options = prepare_options(opts.max_base64_chars, opts.max_pixels).map_err(js_error)?;
    let bytes = convert::bytes_of(&image).await?;
    let prepared = crate::browser::image::prepare(&bytes, &options)
        .await
        .map_err(js_error)?;
    convert::prepared_to_js(&prepared)
}

fn prepare_options(
    max_base64_chars: Option<f64>,
    max_pixels: Option<f64>,
) -> crate::Result<PrepareOptions> {
    let mut options = PrepareOptions::default();
    let count = |v: f64, what: &str| {
        if (1.0..=9.0e15).contains(&v) {
            Ok(v as u64)
        } else {
            Err(Error::new(
                ErrorCode::BadOption,
                format!("{what} must be a positive number, not {v}"),
            ))
        }
    };
    options.max_base64_chars = Some(crate::image_prep::max_base64_chars(
        max_base64_chars.unwrap_or(DEFAULT_MAX_BASE64_CHARS as f64),
    )?);
    if let Some(p) = max_pixels {
        options.max_pixels = count(p, "maxPixels")?;
    }
    Ok(options)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ParseContext {
    width: u32,
    height: u32,
    sent_width: Option<u32>,
    sent_height: Option<u32>,
    task: Option<String>,
}

/// Reads the endpoint's ZIP: `{ result, overlay }`, coordinates in pixels of `width`×`height`
/// (scaled from `sentWidth`×`sentHeight` when a smaller copy was sent).
#[wasm_bindgen(js_name = parseResponse, unchecked_return_type = "ParsedResponse")]
pub fn parse_response(
    #[wasm_bindgen(unchecked_param_type = "Uint8Array | ArrayBuffer")] zip: JsValue,
    #[wasm_bindgen(unchecked_param_type = "ResponseImage")] image: JsValue,
) -> Result<JsValue, JsValue> {
    let zip_js = if zip.is_instance_of::<js_sys::ArrayBuffer>() {
        Uint8Array::new(&zip)
    } else {
        zip.clone().unchecked_into()
    };
    let bytes = convert::sync_bytes_of(&zip)?;
    let ctx: ParseContext = from_js(image, ErrorCode::BadOption, "image size")?;
    let task = ctx
        .task
        .as_deref()
        .map(Task::from_token)
        .transpose()
        .map_err(js_error)?;
    let original = ImageSize::new(ctx.width, ctx.height);
    let sent = ImageSize::new(
        ctx.sent_width.unwrap_or(ctx.width),
        ctx.sent_height.unwrap_or(ctx.height),
    );
    let parsed = parse_zip(
        &bytes,
        ResponseContext {
            original,
            sent,
            task,
        },
        ZipLimits::default(),
    )
    .map_err(js_error)?;
    convert::parsed_to_js(
        &parsed,
        zip_js
            .is_instance_of::<Uint8Array>()
            .then_some((&zip_js, &bytes[..])),
    )
}
