//! Regions of an image and their `<loc_…>` forms.
//!
//! Two quantisations exist and both are needed: the hosted endpoint documents
//! `int(x / width * 999)` for the region a user sends, while the model itself (transformers'
//! Florence-2 processor) uses 1000 bins, `floor(x / (size / 1000))` one way and
//! `(bin + 0.5) * size / 1000` back.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode, Result};

/// The number of location bins of the model (`<loc_0>` … `<loc_999>`).
pub const LOC_BINS: u32 = 1000;

/// A rectangle in pixels of an image: top-left `(x1, y1)`, bottom-right `(x2, y2)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Region {
    pub x1: f64,
    pub y1: f64,
    pub x2: f64,
    pub y2: f64,
}

/// Width and height of an image in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSize {
    pub width: u32,
    pub height: u32,
}

impl ImageSize {
    pub fn new(width: u32, height: u32) -> Self {
        ImageSize { width, height }
    }

    pub fn check_nonzero(self) -> Result<Self> {
        if self.width == 0 || self.height == 0 {
            return Err(Error::new(
                ErrorCode::BadOption,
                format!("image size {}x{} has a zero side", self.width, self.height),
            ));
        }
        Ok(self)
    }
}

/// Four location bins `[x1, y1, x2, y2]`, each `0..=999`.
pub type LocBox = [u32; 4];

impl Region {
    /// Checks that the region is a finite, non-empty rectangle inside the image.
    pub fn validate(&self, size: ImageSize) -> Result<()> {
        let Region { x1, y1, x2, y2 } = *self;
        let bad = |why: String| Err(Error::new(ErrorCode::BadRegion, why));
        if ![x1, y1, x2, y2].iter().all(|v| v.is_finite()) {
            return bad(format!(
                "region {self:?} has a coordinate that is not a number"
            ));
        }
        size.check_nonzero()
            .map_err(|e| Error::new(ErrorCode::BadRegion, e.message))?;
        if x2 <= x1 || y2 <= y1 {
            return bad(format!(
                "region ({x1}, {y1})–({x2}, {y2}) is empty or inverted: x2 must be greater than x1 and y2 greater than y1"
            ));
        }
        let (w, h) = (f64::from(size.width), f64::from(size.height));
        if x1 < 0.0 || y1 < 0.0 || x2 > w || y2 > h {
            return bad(format!(
                "region ({x1}, {y1})–({x2}, {y2}) lies outside the {}x{} image",
                size.width, size.height
            ));
        }
        Ok(())
    }

    /// The endpoint's rule: `int(coordinate / side * 999)`.
    pub fn to_endpoint_bins(&self, size: ImageSize) -> Result<LocBox> {
        self.validate(size)?;
        let (w, h) = (f64::from(size.width), f64::from(size.height));
        // Truncation as Python's int() does; the values are in 0..=999 after validate().
        let q = |v: f64, side: f64| (v / side * 999.0) as u32;
        Ok([q(self.x1, w), q(self.y1, h), q(self.x2, w), q(self.y2, h)])
    }

    /// `<loc_x1><loc_y1><loc_x2><loc_y2>` by the endpoint's rule.
    pub fn to_endpoint_loc(&self, size: ImageSize) -> Result<String> {
        Ok(loc_tokens(&self.to_endpoint_bins(size)?))
    }

    /// The model's 1000-bin quantisation (transformers' `quantize`).
    pub fn to_model_bins(&self, size: ImageSize) -> Result<LocBox> {
        self.validate(size)?;
        Ok([
            quantize(self.x1, size.width),
            quantize(self.y1, size.height),
            quantize(self.x2, size.width),
            quantize(self.y2, size.height),
        ])
    }
}

/// `floor(v / (size / 1000))`, clamped to `0..=999`.
pub fn quantize(v: f64, size: u32) -> u32 {
    let per_bin = f64::from(size) / f64::from(LOC_BINS);
    let bin = (v / per_bin).floor();
    if bin.is_nan() {
        0
    } else {
        bin.clamp(0.0, f64::from(LOC_BINS - 1)) as u32
    }
}

/// The centre of a bin in pixels: `(bin + 0.5) * size / 1000`.
pub fn dequantize(bin: u64, size: u32) -> f64 {
    (bin as f64 + 0.5) * (f64::from(size) / f64::from(LOC_BINS))
}

pub fn loc_tokens(bins: &[u32]) -> String {
    bins.iter().map(|b| format!("<loc_{b}>")).collect()
}

/// Parses exactly four `<loc_N>` tokens (whitespace around them is allowed) into a box of
/// bins, each `0..=999`, with `x1 <= x2` and `y1 <= y2`.
pub fn parse_loc_box(text: &str) -> Result<LocBox> {
    let bad = |why: &str| {
        Error::new(
            ErrorCode::BadRegion,
            format!("{why}: expected <loc_x1><loc_y1><loc_x2><loc_y2>, got {text:?}"),
        )
    };
    let mut rest = text.trim();
    let mut bins = Vec::with_capacity(4);
    while !rest.is_empty() {
        let body = rest
            .strip_prefix("<loc_")
            .ok_or_else(|| bad("not a location token"))?;
        let end = body
            .find('>')
            .ok_or_else(|| bad("unterminated location token"))?;
        let digits = &body[..end];
        if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("location bins are whole numbers 0 to 999"));
        }
        let bin: u32 = digits
            .parse()
            .map_err(|_| bad("location bins are whole numbers 0 to 999"))?;
        if bin >= LOC_BINS {
            return Err(bad("location bins are whole numbers 0 to 999"));
        }
        bins.push(bin);
        rest = body[end + 1..].trim_start();
    }
    let [x1, y1, x2, y2] = bins[..] else {
        return Err(bad("a region is exactly four location tokens"));
    };
    if x2 < x1 || y2 < y1 {
        return Err(bad("the region is inverted (x2 < x1 or y2 < y1)"));
    }
    Ok([x1, y1, x2, y2])
}

#[cfg(test)]
mod tests {
    use super::*;

    const VGA: ImageSize = ImageSize {
        width: 640,
        height: 480,
    };

    #[test]
    fn endpoint_rule_is_times_999_truncated() {
        let r = Region {
            x1: 33.0,
            y1: 159.0,
            x2: 596.0,
            y2: 371.0,
        };
        // 33/640*999 = 51.51, 159/480*999 = 330.9, 596/640*999 = 930.3, 371/480*999 = 772.1
        assert_eq!(r.to_endpoint_bins(VGA).unwrap(), [51, 330, 930, 772]);
        assert_eq!(
            r.to_endpoint_loc(VGA).unwrap(),
            "<loc_51><loc_330><loc_930><loc_772>"
        );
        let full = Region {
            x1: 0.0,
            y1: 0.0,
            x2: 640.0,
            y2: 480.0,
        };
        assert_eq!(full.to_endpoint_bins(VGA).unwrap(), [0, 0, 999, 999]);
    }

    #[test]
    fn model_bins_round_trip_within_half_a_bin() {
        for v in [0.0, 0.3, 1.0, 100.7, 639.99, 640.0] {
            let bin = quantize(v, 640);
            assert!(bin <= 999);
            let back = dequantize(u64::from(bin), 640);
            assert!(
                (back - v.min(639.68)).abs() <= 0.64,
                "{v} -> {bin} -> {back}"
            );
        }
        assert_eq!(dequantize(52, 640), 33.6);
        assert_eq!(quantize(f64::NAN, 640), 0);
    }

    #[test]
    fn bad_regions_are_typed_errors() {
        let cases = [
            Region {
                x1: 10.0,
                y1: 10.0,
                x2: 5.0,
                y2: 20.0,
            },
            Region {
                x1: 10.0,
                y1: 10.0,
                x2: 20.0,
                y2: 10.0,
            },
            Region {
                x1: -1.0,
                y1: 10.0,
                x2: 20.0,
                y2: 20.0,
            },
            Region {
                x1: 10.0,
                y1: 10.0,
                x2: 641.0,
                y2: 20.0,
            },
            Region {
                x1: f64::NAN,
                y1: 10.0,
                x2: 20.0,
                y2: 20.0,
            },
            Region {
                x1: 0.0,
                y1: 0.0,
                x2: f64::INFINITY,
                y2: 20.0,
            },
        ];
        for r in cases {
            assert_eq!(
                r.to_endpoint_loc(VGA).unwrap_err().code,
                ErrorCode::BadRegion,
                "{r:?}"
            );
        }
        let r = Region {
            x1: 0.0,
            y1: 0.0,
            x2: 1.0,
            y2: 1.0,
        };
        assert_eq!(
            r.to_endpoint_loc(ImageSize::new(0, 10)).unwrap_err().code,
            ErrorCode::BadRegion
        );
    }

    #[test]
    fn loc_boxes_parse_strictly() {
        assert_eq!(
            parse_loc_box("<loc_52><loc_332><loc_932><loc_774>").unwrap(),
            [52, 332, 932, 774]
        );
        assert_eq!(
            parse_loc_box(" <loc_0> <loc_0><loc_999><loc_999> ").unwrap(),
            [0, 0, 999, 999]
        );
        for bad in [
            "",
            "<loc_1><loc_2><loc_3>",
            "<loc_1><loc_2><loc_3><loc_4><loc_5>",
            "<loc_1000><loc_2><loc_3><loc_4>",
            "<loc_-1><loc_2><loc_3><loc_4>",
            "<loc_5><loc_2><loc_3><loc_4>",
            "<loc_1><loc_2><loc_3><loc_4",
            "car",
            "<loc_1><loc_2><loc_3><loc_4>x",
            "<loc_+1><loc_2><loc_3><loc_4>",
            "<loc_99999999999999999999><loc_2><loc_3><loc_4>",
        ] {
            assert_eq!(
                parse_loc_box(bad).unwrap_err().code,
                ErrorCode::BadRegion,
                "{bad:?}"
            );
        }
    }
}
