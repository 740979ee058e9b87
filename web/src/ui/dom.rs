//! Small browser helpers the components share: object URLs that free themselves, downloads,
//! localStorage, the clock, and decoding pictures with their EXIF orientation applied.

use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, BlobPropertyBag, HtmlAnchorElement, HtmlCanvasElement, ImageBitmap, ImageBitmapOptions,
    ImageOrientation, ResizeQuality, Url,
};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_name = createImageBitmap, catch)]
    fn create_image_bitmap(image: &Blob, options: &ImageBitmapOptions) -> Result<Promise, JsValue>;
}

/// An object URL (`blob:…`) revoked when the last owner lets go of it.
#[derive(Debug)]
pub struct ObjectUrl(String);

impl ObjectUrl {
    pub fn new(blob: &Blob) -> Result<ObjectUrl, JsValue> {
        Url::create_object_url_with_blob(blob).map(ObjectUrl)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Drop for ObjectUrl {
    fn drop(&mut self) {
        let _ = Url::revoke_object_url(&self.0);
    }
}

pub fn blob_of(bytes: &[u8], mime: &str) -> Result<Blob, JsValue> {
    let props = BlobPropertyBag::new();
    props.set_type(mime);
    Blob::new_with_u8_array_sequence_and_options(&Array::of1(&Uint8Array::from(bytes)), &props)
}

pub async fn blob_bytes(blob: &Blob) -> Result<Vec<u8>, JsValue> {
    Ok(Uint8Array::new(&JsFuture::from(blob.array_buffer()).await?).to_vec())
}

/// Decodes a picture as it is meant to be seen (EXIF orientation applied), optionally resized
/// to exactly `resize` (width, height) when given.
pub async fn decode(blob: &Blob, resize: Option<(u32, u32)>) -> Result<ImageBitmap, JsValue> {
    let options = ImageBitmapOptions::new();
    options.set_image_orientation(ImageOrientation::FromImage);
    if let Some((w, h)) = resize {
        options.set_resize_width(w);
        options.set_resize_height(h);
        options.set_resize_quality(ResizeQuality::Medium);
    }
    JsFuture::from(create_image_bitmap(blob, &options)?)
        .await?
        .dyn_into::<ImageBitmap>()
}

/// Offers `blob` to the person as a download named `name`.
pub fn download(blob: &Blob, name: &str) -> Result<(), JsValue> {
    let url = ObjectUrl::new(blob)?;
    let a: HtmlAnchorElement = document()?.create_element("a")?.unchecked_into();
    a.set_href(url.as_str());
    a.set_download(name);
    a.click();
    // The browser has taken its own reference by now; a minute later the URL is surely unused.
    leptos::prelude::set_timeout(move || drop(url), std::time::Duration::from_secs(60));
    Ok(())
}

/// A canvas's content, encoded as `mime` (`image/png`, `image/jpeg`).
pub async fn canvas_blob(canvas: &HtmlCanvasElement, mime: &str) -> Result<Blob, JsValue> {
    let promise = Promise::new(&mut |resolve, reject| {
        let refuse = reject.clone();
        let done = Closure::once_into_js(move |blob: JsValue| {
            let _ = if blob.is_null() {
                refuse.call1(
                    &JsValue::NULL,
                    &JsValue::from_str("the picture is too large to encode"),
                )
            } else {
                resolve.call1(&JsValue::NULL, &blob)
            };
        });
        if let Err(e) = canvas.to_blob_with_type(done.unchecked_ref(), mime) {
            let _ = reject.call1(&JsValue::NULL, &e);
        }
    });
    Ok(JsFuture::from(promise).await?.unchecked_into())
}

pub fn document() -> Result<web_sys::Document, JsValue> {
    web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| JsValue::from_str("no document"))
}

pub fn new_canvas(width: u32, height: u32) -> Result<HtmlCanvasElement, JsValue> {
    let canvas: HtmlCanvasElement = document()?.create_element("canvas")?.unchecked_into();
    canvas.set_width(width);
    canvas.set_height(height);
    Ok(canvas)
}

pub fn context_2d(
    canvas: &HtmlCanvasElement,
) -> Result<web_sys::CanvasRenderingContext2d, JsValue> {
    canvas
        .get_context("2d")?
        .ok_or_else(|| JsValue::from_str("no 2D canvas"))?
        .dyn_into()
        .map_err(JsValue::from)
}

pub fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The time of day, `14:03:27`.
pub fn clock_time() -> String {
    let now = js_sys::Date::new_0();
    format!(
        "{:02}:{:02}:{:02}",
        now.get_hours(),
        now.get_minutes(),
        now.get_seconds()
    )
}

pub fn device_pixel_ratio() -> f64 {
    web_sys::window().map_or(1.0, |w| w.device_pixel_ratio())
}

/// Resolves after `ms` milliseconds (at once where there is no window to wait on).
pub async fn sleep(ms: f64) {
    let promise = Promise::new(&mut |resolve, _| {
        let waiting = web_sys::window().map(|w| {
            w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms.max(0.0) as i32)
        });
        if !matches!(waiting, Some(Ok(_))) {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = JsFuture::from(promise).await;
}
