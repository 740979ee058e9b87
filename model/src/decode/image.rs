//! Image preprocessing as Florence-2's processor does it (CLIPImageProcessor without crop):
//! RGB, bicubic resize to the configured size with Pillow's exact algorithm, rescale by
//! 1/255, normalise with the ImageNet mean and std, HWC → CHW.
//!
//! Pillow resizes 8-bit images in two separable passes (horizontal, then vertical), each
//! with a cubic kernel (a = -0.5) widened by the downscale factor (antialiasing),
//! coefficients normalised and rounded to 22-bit fixed point, and every pass rounding back
//! to 8 bits. Doing the same here gives the same bytes, not just close ones.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::load::config::ImageProcessorConfig;

/// An 8-bit RGB image, rows top to bottom, pixels `[r, g, b]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// Images with more pixels than this are refused before decoding allocates them.
pub const MAX_PIXELS: u64 = 100_000_000;

impl RgbImage {
    pub fn new(width: u32, height: u32, pixels: Vec<u8>) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::Image(format!(
                "{width}x{height} image has no pixels"
            )));
        }
        if pixels.len() as u64 != width as u64 * height as u64 * 3 {
            return Err(Error::Image(format!(
                "{} bytes for a {width}x{height} RGB image",
                pixels.len()
            )));
        }
        Ok(RgbImage {
            width,
            height,
            pixels,
        })
    }

    /// Decodes PNG or JPEG bytes to RGB (alpha dropped, grey expanded, as PIL's `convert("RGB")`).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::Image(format!("cannot read the image: {e}")))?;
        let (w, h) = reader
            .into_dimensions()
            .map_err(|e| Error::Image(format!("cannot decode the image: {e}")))?;
        if w as u64 * h as u64 > MAX_PIXELS {
            return Err(Error::Image(format!(
                "{w}x{h} image is larger than {MAX_PIXELS} pixels"
            )));
        }
        let reader = image::ImageReader::new(std::io::Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| Error::Image(format!("cannot read the image: {e}")))?;
        let img = reader
            .decode()
            .map_err(|e| Error::Image(format!("cannot decode the image: {e}")))?;
        let rgb = img.to_rgb8();
        RgbImage::new(rgb.width(), rgb.height(), rgb.into_raw())
    }

    /// Pillow's `Image.resize((width, height), Image.BICUBIC)`.
    pub fn resize_bicubic(&self, width: u32, height: u32) -> Result<RgbImage> {
        if width == 0 || height == 0 {
            return Err(Error::Image(format!("cannot resize to {width}x{height}")));
        }
        let (w0, h0) = (self.width as usize, self.height as usize);
        let (w1, h1) = (width as usize, height as usize);
        let mut pixels = self.pixels.clone();
        let mut cur_w = w0;
        let mut rows = h0;
        let vertical = Coefficients::new(h0, h1);
        // Pillow's horizontal pass only computes the rows the vertical pass will read.
        let (first_row, last_row) = if h1 != h0 {
            (
                vertical.bounds[0].0,
                vertical.bounds[h1 - 1].0 + vertical.bounds[h1 - 1].1,
            )
        } else {
            (0, h0)
        };
        if w1 != w0 {
            let horizontal = Coefficients::new(w0, w1);
            let mut out = vec![0u8; (last_row - first_row) * w1 * 3];
            for y in first_row..last_row {
                let src = &pixels[y * w0 * 3..][..w0 * 3];
                let dst = &mut out[(y - first_row) * w1 * 3..][..w1 * 3];
                for (x, &(start, len)) in horizontal.bounds.iter().enumerate() {
                    let k = &horizontal.weights[x * horizontal.stride..][..len];
                    for c in 0..3 {
                        let mut acc: i32 = 1 << (PRECISION_BITS - 1);
                        for (i, &weight) in k.iter().enumerate() {
                            acc += src[(start + i) * 3 + c] as i32 * weight;
                        }
                        dst[x * 3 + c] = clip8(acc);
                    }
                }
            }
            pixels = out;
            cur_w = w1;
            rows = last_row - first_row;
        }
        if h1 != h0 {
            let offset = if w1 != w0 { first_row } else { 0 };
            let mut out = vec![0u8; h1 * cur_w * 3];
            for (y, &(start, len)) in vertical.bounds.iter().enumerate() {
                let k = &vertical.weights[y * vertical.stride..][..len];
                let start = start - offset;
                for x in 0..cur_w * 3 {
                    let mut acc: i32 = 1 << (PRECISION_BITS - 1);
                    for (i, &weight) in k.iter().enumerate() {
                        acc += pixels[(start + i) * cur_w * 3 + x] as i32 * weight;
                    }
                    out[y * cur_w * 3 + x] = clip8(acc);
                }
            }
            pixels = out;
            rows = h1;
        }
        debug_assert_eq!(rows, h1);
        RgbImage::new(width, height, pixels)
    }

    /// Resized (when configured), rescaled and normalised pixel values `[3, H, W]`, row-major.
    pub fn pixel_values(&self, c: &ImageProcessorConfig) -> Result<Vec<f32>> {
        let resized;
        let img = if c.do_resize && (self.width, self.height) != (c.width, c.height) {
            resized = self.resize_bicubic(c.width, c.height)?;
            &resized
        } else {
            self
        };
        let (w, h) = (img.width as usize, img.height as usize);
        let mut out = vec![0.0f32; 3 * h * w];
        for ch in 0..3 {
            let (mean, std) = (c.image_mean[ch], c.image_std[ch]);
            for (i, o) in out[ch * h * w..][..h * w].iter_mut().enumerate() {
                *o = (img.pixels[i * 3 + ch] as f32 * c.rescale_factor - mean) / std;
            }
        }
        Ok(out)
    }

    /// [`RgbImage::pixel_values`] as a `[1, 3, H, W]` tensor.
    pub fn to_tensor(&self, c: &ImageProcessorConfig, device: &Device) -> Result<Tensor<4>> {
        let (h, w) = if c.do_resize {
            (c.height, c.width)
        } else {
            (self.height, self.width)
        };
        let values = self.pixel_values(c)?;
        Ok(Tensor::from_data(
            TensorData::new(values, [1, 3, h as usize, w as usize]),
            device,
        ))
    }
}

/// Fixed-point precision of Pillow's 8-bit resampling.
const PRECISION_BITS: u32 = 32 - 8 - 2;

fn clip8(acc: i32) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for one axis.
struct Coefficients {
    /// Per output pixel: first input pixel and number of taps.
    bounds: Vec<(usize, usize)>,
    /// `stride` fixed-point weights per output pixel.
    weights: Vec<i32>,
    stride: usize,
}

impl Coefficients {
    fn new(in_size: usize, out_size: usize) -> Self {
        const SUPPORT: f64 = 2.0;
        let scale = in_size as f32 as f64 / out_size as f64;
        let filter_scale = scale.max(1.0);
        let support = SUPPORT * filter_scale;
        let stride = support.ceil() as usize * 2 + 1;
        let mut bounds = Vec::with_capacity(out_size);
        let mut weights = vec![0i32; out_size * stride];
        let mut k = vec![0.0f64; stride];
        for xx in 0..out_size {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filter_scale;
            // C's (int) cast truncates toward zero.
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let taps = xmax.saturating_sub(xmin);
            let mut total = 0.0;
            for (x, kx) in k.iter_mut().enumerate().take(taps) {
                *kx = bicubic((x as f64 + xmin as f64 - center + 0.5) * ss);
                total += *kx;
            }
            for (x, kx) in k.iter().enumerate().take(taps) {
                let w = if total != 0.0 { kx / total } else { *kx };
                let fixed = w * (1u32 << PRECISION_BITS) as f64;
                weights[xx * stride + x] = if w < 0.0 {
                    (fixed - 0.5) as i32
                } else {
                    (fixed + 0.5) as i32
                };
            }
            bounds.push((xmin, taps));
        }
        Coefficients {
            bounds,
            weights,
            stride,
        }
    }
}

/// Pillow's cubic convolution kernel with a = -0.5.
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_to_same_size_is_identity_and_constant_stays_constant() {
        let img = RgbImage::new(5, 3, (0..45).map(|v| v as u8 * 5).collect()).unwrap();
        assert_eq!(img.resize_bicubic(5, 3).unwrap(), img);
        let flat = RgbImage::new(7, 4, vec![77; 7 * 4 * 3]).unwrap();
        let up = flat.resize_bicubic(13, 9).unwrap();
        assert!(up.pixels.iter().all(|&p| p == 77));
        let down = flat.resize_bicubic(3, 2).unwrap();
        assert!(down.pixels.iter().all(|&p| p == 77));
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(RgbImage::new(0, 3, vec![]).is_err());
        assert!(RgbImage::new(2, 2, vec![0; 11]).is_err());
        assert!(RgbImage::decode(b"not an image").is_err());
    }
}
