//! The sample picture (`sample.svg`, beside the page), for a first visit without a picture at
//! hand. The endpoint takes raster pictures, so the browser draws it into a PNG first.

use florence2::browser::describe;
use florence2::{Error, ErrorCode};
use leptos::task::spawn_local;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use web_sys::HtmlImageElement;

use crate::ui::dom::{blob_bytes, canvas_blob, context_2d, new_canvas};
use crate::ui::source::load::open_bytes;
use crate::ui::state::AppState;

/// Relative, so the demo works under any sub-path.
const SAMPLE: &str = "./sample.svg";

async fn sample_png() -> Result<Vec<u8>, JsValue> {
    let img = HtmlImageElement::new()?;
    img.set_src(SAMPLE);
    JsFuture::from(img.decode()).await?;
    let canvas = new_canvas(img.natural_width(), img.natural_height())?;
    context_2d(&canvas)?.draw_image_with_html_image_element(&img, 0.0, 0.0)?;
    blob_bytes(&canvas_blob(&canvas, "image/png").await?).await
}

pub fn open_sample(state: AppState) {
    spawn_local(async move {
        match sample_png().await {
            Ok(bytes) => open_bytes(state, bytes, "sample.png".into()).await,
            Err(e) => state.fail(state.problem_of(&Error::new(
                ErrorCode::ImageDecode,
                format!("the sample picture cannot be drawn: {}", describe(&e)),
            ))),
        }
    });
}
