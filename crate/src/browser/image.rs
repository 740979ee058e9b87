//! The browser codec: the browser's own decoders (`createImageBitmap`, which also applies EXIF
//! orientation; for JPEGs that will be downscaled, WebCodecs' DCT-scaled decode first), its
//! resampler and its JPEG encoder (`OffscreenCanvas.convertToBlob`). Fast, and no codec bytes in
//! the wasm. The decisions come from the shared planner.

use js_sys::{Array, Promise, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, BlobPropertyBag, ImageBitmap, ImageBitmapOptions, ImageEncodeOptions, ImageOrientation,
    OffscreenCanvas, OffscreenCanvasRenderingContext2d, ResizeQuality,
};

use crate::browser::describe;
use crate::browser::scaled_jpeg::{self, ScaledJpeg};
use crate::error::{Error, ErrorCode, Result};
use crate::image_prep::{
    ImageFormat, ImageInfo, Planner, PrepareOptions, PreparedImage, Search, Step, sniff,
};

#[wasm_bindgen]
extern "C" {
    // The global function, so this works in windows and workers alike.
    #[wasm_bindgen(js_name = createImageBitmap, catch)]
    fn create_image_bitmap_from_blob(
        image: &Blob,
        options: &ImageBitmapOptions,
    ) -> std::result::Result<Promise, JsValue>;
    #[wasm_bindgen(js_name = createImageBitmap, catch)]
    fn create_image_bitmap_from_bitmap(
        image: &ImageBitmap,
        options: &ImageBitmapOptions,
    ) -> std::result::Result<Promise, JsValue>;
    /// From a `VideoFrame` (typed loosely: web-sys gates WebCodecs behind an unstable cfg).
    #[wasm_bindgen(js_name = createImageBitmap, catch)]
    fn create_image_bitmap_from_frame(
        image: &JsValue,
        options: &ImageBitmapOptions,
    ) -> std::result::Result<Promise, JsValue>;
}

/// Closes an ImageBitmap when dropped, so its pixels are freed even on an early return.
struct Bitmap(ImageBitmap);

impl Drop for Bitmap {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The decoded picture that the encodes are drawn from.
enum Source {
    /// The whole picture, upright (EXIF orientation applied by the browser).
    Full(Bitmap),
    /// An upright JPEG decoded at a reduced size; `width`×`height` is the original's size.
    Scaled {
        jpeg: ScaledJpeg,
        width: u32,
        height: u32,
    },
}

impl Source {
    fn size(&self) -> (u32, u32) {
        match self {
            Source::Full(bitmap) => (bitmap.0.width(), bitmap.0.height()),
            Source::Scaled { width, height, .. } => (*width, *height),
        }
    }
}

pub async fn prepare(bytes: &[u8], options: &PrepareOptions) -> Result<PreparedImage> {
    let info = sniff(bytes, options)?;
    let source = match decode_scaled(bytes, &info, options).await {
        Some(scaled) => scaled,
        None => Source::Full(decode_full(bytes, &info).await?),
    };
    let (width, height) = source.size();
    let mut search = Search::new(width, height, options);
    let mut attempt = match search.start(&info, bytes) {
        Step::Finished(unchanged) => return Ok(unchanged),
        Step::Encode(attempt) => attempt,
    };
    let mut canvas: Option<((u32, u32), OffscreenCanvas)> = None;
    loop {
        let size = (attempt.width, attempt.height);
        if canvas.as_ref().is_none_or(|(s, _)| *s != size) {
            canvas = Some((size, draw(&source, size).await?));
        }
        let Some((_, surface)) = &canvas else {
            unreachable!("set just above")
        };
        match search.record(attempt, encode_jpeg(surface, attempt.quality).await?)? {
            Step::Encode(next) => attempt = next,
            Step::Finished(prepared) => return Ok(prepared),
        }
    }
}

async fn decode_full(bytes: &[u8], info: &ImageInfo) -> Result<Bitmap> {
    let decode_failed = |e: JsValue| {
        Error::new(
            ErrorCode::ImageDecode,
            format!(
                "the browser cannot decode this {}: {}",
                info.format.mime(),
                describe(&e)
            ),
        )
    };
    let blob = blob_of(bytes, info.format.mime()).map_err(decode_failed)?;
    let decode_options = ImageBitmapOptions::new();
    decode_options.set_image_orientation(ImageOrientation::FromImage);
    Ok(Bitmap(
        await_bitmap(create_image_bitmap_from_blob(&blob, &decode_options))
            .await
            .map_err(decode_failed)?,
    ))
}

/// A JPEG that will be downscaled anyway, decoded at no less than the largest size the planner
/// can ask for; `None` when the shortcut does not apply.
async fn decode_scaled(bytes: &[u8], info: &ImageInfo, options: &PrepareOptions) -> Option<Source> {
    let stored = (info.stored_width, info.stored_height);
    let largest = Planner::new(stored.0, stored.1, options).full_size();
    // Oriented JPEGs go the full way (see `scaled_jpeg`): known here, before any decode.
    if info.format != ImageFormat::Jpeg || info.jpeg_orientation != 1 || largest == stored {
        return None;
    }
    let decode_size = Planner::power_of_two_decode_size(stored, largest);
    if decode_size == stored {
        return None;
    }
    let jpeg = scaled_jpeg::decode(bytes, decode_size).await?;
    Some(Source::Scaled {
        jpeg,
        width: stored.0,
        height: stored.1,
    })
}

fn blob_of(bytes: &[u8], mime: &str) -> std::result::Result<Blob, JsValue> {
    let parts = Array::of1(&Uint8Array::from(bytes));
    let props = BlobPropertyBag::new();
    props.set_type(mime);
    Blob::new_with_u8_array_sequence_and_options(&parts, &props)
}

async fn await_bitmap(
    promise: std::result::Result<Promise, JsValue>,
) -> std::result::Result<ImageBitmap, JsValue> {
    JsFuture::from(promise?).await?.dyn_into::<ImageBitmap>()
}

/// The picture resized to `size` on a white background (JPEG has no alpha).
async fn draw(source: &Source, (w, h): (u32, u32)) -> Result<OffscreenCanvas> {
    let failed = |e: JsValue| {
        Error::new(
            ErrorCode::ImageDecode,
            format!("the browser cannot resize the image: {}", describe(&e)),
        )
    };
    let options = ImageBitmapOptions::new();
    options.set_resize_quality(ResizeQuality::High);
    let resized; // the resized bitmap, kept (and closed) until drawn
    let image = match source {
        Source::Full(original) if (w, h) == (original.0.width(), original.0.height()) => {
            &original.0
        }
        Source::Full(original) => {
            options.set_resize_width(w);
            options.set_resize_height(h);
            resized = Bitmap(
                await_bitmap(create_image_bitmap_from_bitmap(&original.0, &options))
                    .await
                    .map_err(failed)?,
            );
            &resized.0
        }
        Source::Scaled { jpeg, .. } => {
            options.set_resize_width(w);
            options.set_resize_height(h);
            resized = Bitmap(
                await_bitmap(create_image_bitmap_from_frame(jpeg.frame(), &options))
                    .await
                    .map_err(failed)?,
            );
            &resized.0
        }
    };
    let canvas = OffscreenCanvas::new(w, h).map_err(failed)?;
    let context = canvas
        .get_context("2d")
        .map_err(failed)?
        .and_then(|c| c.dyn_into::<OffscreenCanvasRenderingContext2d>().ok())
        .ok_or_else(|| Error::new(ErrorCode::ImageDecode, "this browser offers no 2D canvas"))?;
    context.set_fill_style_str("#ffffff");
    context.fill_rect(0.0, 0.0, f64::from(w), f64::from(h));
    context
        .draw_image_with_image_bitmap(image, 0.0, 0.0)
        .map_err(failed)?;
    Ok(canvas)
}

async fn encode_jpeg(canvas: &OffscreenCanvas, quality: f32) -> Result<Vec<u8>> {
    let failed = |e: JsValue| {
        Error::new(
            ErrorCode::ImageDecode,
            format!("the browser cannot encode JPEG: {}", describe(&e)),
        )
    };
    let options = ImageEncodeOptions::new();
    options.set_type("image/jpeg");
    options.set_quality(f64::from(quality));
    let blob: Blob = JsFuture::from(
        canvas
            .convert_to_blob_with_options(&options)
            .map_err(failed)?,
    )
    .await
    .map_err(failed)?
    .unchecked_into();
    let buffer = JsFuture::from(blob.array_buffer()).await.map_err(failed)?;
    Ok(Uint8Array::new(&buffer).to_vec())
}
