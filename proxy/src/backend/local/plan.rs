//! A request's picture before the model sees it: its bytes out of the data URL, what decoding
//! it will hold (read from its header, before a pixel is decoded), and the decoding itself, to
//! one RGB copy. No model and no proxy state: the fuzz target `local_request` includes this
//! file as it is (`fuzz/fuzz_targets/local_request.rs`), so it uses only `florence2`, `image`
//! and `base64`.

use std::io::Cursor;

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use florence2::image_prep::native::decode;
use florence2::image_prep::{PrepareOptions, sniff};
use florence2::request::ImageRef;
use florence2::{Error, ErrorCode, Result};
use image::{ColorType, ImageDecoder, ImageReader, RgbImage};

/// Base64 as data URLs carry it, padded or not.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The image's bytes, decoded from the data URL. An asset never gets here (the proxy keeps
/// assets and hands them over inline): `BAD_OPTION`.
pub fn image_bytes(image: &ImageRef) -> Result<Vec<u8>> {
    match image {
        ImageRef::Inline { base64, .. } => BASE64
            .decode(base64)
            .or_else(|_| general_purpose::URL_SAFE.decode(base64))
            .map_err(|e| {
                Error::new(
                    ErrorCode::ImageDecode,
                    format!("the data URL's base64 cannot be decoded: {e}"),
                )
            }),
        ImageRef::Asset { asset_id, .. } => Err(Error::new(
            ErrorCode::BadOption,
            format!("no asset {asset_id}: upload the image to /v1/assets first"),
        )),
    }
}

/// What a picture will cost, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Picture {
    /// As stored (before an EXIF rotation).
    pub width: u32,
    pub height: u32,
    /// The decoder's own buffer (width × height × channels × bytes per channel).
    pub decoded_bytes: u64,
    /// The most the decoding holds at once, the file's bytes included: the decoder's buffer,
    /// a rotated copy when the file may carry an orientation, and the RGB8 copy when the
    /// picture is not RGB8 already. The model's input and the overlay are made from that one
    /// RGB8 copy.
    pub peak_bytes: u64,
}

/// Reads `bytes`' header: the typed limits of the JS client's preparation
/// (`IMAGE_DECODE`, `IMAGE_TOO_LARGE`) and the memory its decoding will take.
pub fn measure(bytes: &[u8]) -> Result<Picture> {
    let info = sniff(bytes, &PrepareOptions::default())?;
    let unreadable = |e: &dyn std::fmt::Display| {
        Error::new(
            ErrorCode::ImageDecode,
            format!("the {} header cannot be read: {e}", info.format.mime()),
        )
    };
    let decoder = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| unreadable(&e))?
        .into_decoder()
        .map_err(|e| unreadable(&e))?;
    let (width, height) = decoder.dimensions();
    let decoded_bytes = decoder.total_bytes();
    let rgb = u64::from(width) * u64::from(height) * 3;
    let rotated = if info.has_exif || info.jpeg_orientation != 1 {
        decoded_bytes
    } else {
        0
    };
    let converted = if decoder.color_type() == ColorType::Rgb8 {
        0
    } else {
        rgb
    };
    let file = bytes.len() as u64;
    Ok(Picture {
        width,
        height,
        decoded_bytes,
        peak_bytes: file
            .saturating_add(decoded_bytes)
            .saturating_add(rotated)
            .saturating_add(converted),
    })
}

/// Decodes `bytes` (EXIF orientation applied) to its one RGB8 copy: the decoder's buffer is
/// reused when it is RGB8 already, and dropped as soon as it is converted.
pub fn decode_rgb(bytes: &[u8]) -> Result<RgbImage> {
    Ok(decode(bytes, &PrepareOptions::default())?.into_rgb8())
}

/// The new tokens a run may generate: the body's `max_tokens` (at least 1) under the model's
/// own limit and its position table.
pub fn max_new_tokens(
    max_tokens: Option<u32>,
    model_limit: usize,
    positions: usize,
) -> Result<usize> {
    if max_tokens == Some(0) {
        return Err(Error::new(
            ErrorCode::BadOption,
            "max_tokens must be at least 1",
        ));
    }
    Ok(max_tokens
        .map_or(model_limit, |n| model_limit.min(n as usize))
        .min(positions))
}
