//! Image preparation: turn whatever a user brings (JPEG, PNG, WebP, GIF, BMP; any size; EXIF
//! orientation) into a JPEG whose base64 fits the endpoint's inline limit, remembering the
//! original size so coordinates map back.
//!
//! The decisions (format checks, sizes, qualities) are plain Rust here; the pixels are handled
//! by one of two codecs: natively the `image` crate (`native`), in the browser the browser's
//! own decoders and encoders (`crate::browser::image`), so no codec is compiled to wasm.

mod plan;
mod search;
mod sniff;

#[cfg(all(not(target_arch = "wasm32"), feature = "native-image"))]
pub mod native;

pub use plan::{Attempt, Next, Planner, Verdict};
pub use search::{Search, Step};
pub use sniff::{ImageFormat, ImageInfo, sniff};

use base64::Engine;

/// NVIDIA's samples require the inline base64 string to stay under 180,000 characters.
pub const DEFAULT_MAX_BASE64_CHARS: usize = 180_000;

/// The one check of a `maxBase64Chars` option, wherever it is given (JS numbers are f64): a
/// positive count of characters, fractions dropped.
pub fn max_base64_chars(value: f64) -> crate::Result<usize> {
    // 2^53: every whole number up to here is exact in f64.
    if (1.0..=9.0e15).contains(&value) {
        Ok(value as usize)
    } else {
        Err(crate::Error::new(
            crate::ErrorCode::BadOption,
            format!("maxBase64Chars must be a positive number of characters, not {value}"),
        ))
    }
}

/// What to make of an image.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareOptions {
    /// Budget for the base64 of the JPEG; `None` prepares without a budget (for an asset upload).
    pub max_base64_chars: Option<usize>,
    /// Largest decoded image accepted, in pixels (before any downscaling).
    pub max_pixels: u64,
    /// Largest file accepted, in bytes.
    pub max_input_bytes: usize,
    /// Smallest side the budget search may shrink a picture to, in pixels (a smaller original
    /// is sent as it is: the model resizes every picture to its input size anyway).
    pub min_side: u32,
    /// The model looks at 768×768: a shorter side above this only costs bytes.
    pub max_short_side: u32,
    /// Bound on the longer side for extreme panoramas.
    pub max_long_side: u32,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        PrepareOptions {
            max_base64_chars: Some(DEFAULT_MAX_BASE64_CHARS),
            max_pixels: 50_000_000,
            max_input_bytes: 64 << 20,
            min_side: 8,
            max_short_side: 768,
            max_long_side: 2048,
        }
    }
}

/// A prepared image: the bytes to send and both sizes.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedImage {
    pub bytes: Vec<u8>,
    pub mime: &'static str,
    /// The original image, after EXIF orientation: the frame of the result's coordinates.
    pub width: u32,
    pub height: u32,
    /// The image that is sent: the frame of the endpoint's coordinates.
    pub sent_width: u32,
    pub sent_height: u32,
    /// JPEG quality used, `None` when the original was sent unchanged.
    pub quality: Option<f32>,
    /// How many encodes it took (0 when the original was sent unchanged).
    pub encodes: u32,
}

impl PreparedImage {
    pub fn base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.bytes)
    }

    pub fn data_url(&self) -> String {
        format!("data:{};base64,{}", self.mime, self.base64())
    }
}

/// Length of the base64 encoding (with padding) of `n` bytes.
pub fn base64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}
