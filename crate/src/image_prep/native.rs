//! The native codec: the `image` crate decodes (applying EXIF orientation), downsizes and
//! encodes JPEG. Used by native tools and tests; the browser uses its own codecs instead.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage, imageops};

use crate::error::{Error, ErrorCode, Result};
use crate::image_prep::{PrepareOptions, PreparedImage, Search, Step, sniff};

/// Decodes `bytes` and applies its EXIF orientation.
pub fn decode(bytes: &[u8], options: &PrepareOptions) -> Result<DynamicImage> {
    let info = sniff(bytes, options)?;
    let failed = |e: image::ImageError| {
        Error::new(
            ErrorCode::ImageDecode,
            format!("the {} cannot be decoded: {e}", info.format.mime()),
        )
    };
    let mut decoder = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| Error::new(ErrorCode::ImageDecode, e.to_string()))?
        .into_decoder()
        .map_err(failed)?;
    let orientation = decoder.orientation().map_err(failed)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(failed)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Prepares `bytes` for the endpoint (see [`PrepareOptions`]).
pub fn prepare(bytes: &[u8], options: &PrepareOptions) -> Result<PreparedImage> {
    let info = sniff(bytes, options)?;
    let image = decode(bytes, options)?;
    let (width, height) = (image.width(), image.height());
    let mut search = Search::new(width, height, options);
    let mut attempt = match search.start(&info, bytes) {
        Step::Finished(original) => return Ok(original),
        Step::Encode(attempt) => attempt,
    };
    let rgb = flatten_on_white(image);
    let mut resized: Option<((u32, u32), RgbImage)> = None;
    loop {
        let size = (attempt.width, attempt.height);
        if resized.as_ref().is_none_or(|(s, _)| *s != size) {
            let pixels = if size == (width, height) {
                rgb.clone()
            } else {
                downscale(&rgb, size.0, size.1)
            };
            resized = Some((size, pixels));
        }
        let Some((_, pixels)) = &resized else {
            unreachable!("set just above")
        };
        match search.record(attempt, encode_jpeg(pixels, attempt.quality)?)? {
            Step::Encode(next) => attempt = next,
            Step::Finished(prepared) => return Ok(prepared),
        }
    }
}

/// JPEG has no alpha: transparent pixels become white, as a page would show them.
fn flatten_on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
        let a = u16::from(src[3]);
        for c in 0..3 {
            dst[c] = ((u16::from(src[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
        }
    }
    rgb
}

/// Area-averaging downscale: fast and free of aliasing for the large factors photos need.
fn downscale(rgb: &RgbImage, w: u32, h: u32) -> RgbImage {
    if w <= rgb.width() && h <= rgb.height() {
        imageops::thumbnail(rgb, w, h)
    } else {
        imageops::resize(rgb, w, h, imageops::FilterType::CatmullRom)
    }
}

fn encode_jpeg(rgb: &RgbImage, quality: f32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let q = (quality * 100.0).round().clamp(1.0, 100.0) as u8;
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, q)
        .encode_image(rgb)
        .map_err(|e| Error::new(ErrorCode::ImageDecode, format!("JPEG encoding failed: {e}")))?;
    Ok(out)
}
