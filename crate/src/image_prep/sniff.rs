//! What an image file is, before decoding it: its format, its size from the header, whether
//! it is complete and whether it carries EXIF metadata. Cheap checks that let us refuse bad
//! input with a precise error before any decoder allocates for it.

use crate::error::{Error, ErrorCode, Result};
use crate::image_prep::PrepareOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Jpeg,
    Png,
    Webp,
    Gif,
    Bmp,
}

impl ImageFormat {
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Bmp => "image/bmp",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: ImageFormat,
    /// Size as stored, before EXIF orientation.
    pub stored_width: u32,
    pub stored_height: u32,
    /// The file has an EXIF block (orientation, but also camera data and GPS position: a reason
    /// to re-encode rather than send the file as it is).
    pub has_exif: bool,
    /// A JPEG's EXIF orientation (1-8; 1, upright, when absent or unreadable). Read only to
    /// choose a decoder: the decoders themselves apply it.
    pub jpeg_orientation: u16,
}

/// Identifies the image and checks the limits of `options`.
pub fn sniff(bytes: &[u8], options: &PrepareOptions) -> Result<ImageInfo> {
    let decode = |why: String| Error::new(ErrorCode::ImageDecode, why);
    if bytes.is_empty() {
        return Err(decode("the file is empty".into()));
    }
    if bytes.len() > options.max_input_bytes {
        return Err(Error::new(
            ErrorCode::ImageTooLarge,
            format!(
                "the file is {} bytes; at most {} are accepted",
                bytes.len(),
                options.max_input_bytes
            ),
        ));
    }
    let format = format_of(bytes).ok_or_else(|| {
        decode(format!(
            "this is not an image we can read ({}); use JPEG, PNG, WebP, GIF or BMP",
            describe(bytes)
        ))
    })?;
    let size = imagesize::blob_size(bytes)
        .map_err(|e| decode(format!("the {} header cannot be read: {e}", format.mime())))?;
    let (w, h) = (
        u32::try_from(size.width).unwrap_or(u32::MAX),
        u32::try_from(size.height).unwrap_or(u32::MAX),
    );
    if !is_complete(format, bytes) {
        return Err(decode(format!("the {} file is truncated", format.mime())));
    }
    let pixels = u64::from(w) * u64::from(h);
    if pixels > options.max_pixels {
        return Err(Error::new(
            ErrorCode::ImageTooLarge,
            format!(
                "the image is {w}x{h} ({:.1} megapixels); at most {:.1} megapixels are accepted",
                pixels as f64 / 1e6,
                options.max_pixels as f64 / 1e6
            ),
        ));
    }
    // Any picture is a picture: the model resizes every one to its input size, so a 1x1 PNG
    // or a 1000x5 strip of text is fine. Only a header without pixels is not an image.
    if w == 0 || h == 0 {
        return Err(decode(format!(
            "the {} header says the image is {w}x{h}: it has no pixels",
            format.mime()
        )));
    }
    let jpeg_orientation = if format == ImageFormat::Jpeg {
        jpeg_orientation(bytes)
    } else {
        1
    };
    Ok(ImageInfo {
        format,
        stored_width: w,
        stored_height: h,
        has_exif: has_exif(format, bytes),
        jpeg_orientation,
    })
}

fn format_of(bytes: &[u8]) -> Option<ImageFormat> {
    Some(match bytes {
        [0xFF, 0xD8, 0xFF, ..] => ImageFormat::Jpeg,
        [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => ImageFormat::Png,
        [
            b'R',
            b'I',
            b'F',
            b'F',
            _,
            _,
            _,
            _,
            b'W',
            b'E',
            b'B',
            b'P',
            ..,
        ] => ImageFormat::Webp,
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => ImageFormat::Gif,
        [b'B', b'M', ..] => ImageFormat::Bmp,
        _ => return None,
    })
}

fn describe(bytes: &[u8]) -> &'static str {
    match bytes {
        [b'%', b'P', b'D', b'F', ..] => "a PDF document",
        [b'P', b'K', 3, 4, ..] => "a ZIP archive",
        [b'<', ..] => "text or HTML",
        [b'{', ..] => "JSON",
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => {
            "HEIC/AVIF or a video; convert it to JPEG first"
        }
        _ => "unknown format",
    }
}

/// Whether the file ends as its format says a whole file does. Browsers show truncated JPEGs
/// with a grey bottom instead of failing; we would rather say so.
fn is_complete(format: ImageFormat, bytes: &[u8]) -> bool {
    match format {
        // An end-of-image marker after the first start-of-scan (some cameras append data after
        // it). Searched from the end, where it normally is: this runs on 10 MB files in wasm.
        ImageFormat::Jpeg => {
            let Some(sos) = bytes.windows(2).position(|w| w == [0xFF, 0xDA]) else {
                return false;
            };
            bytes
                .windows(2)
                .rposition(|w| w == [0xFF, 0xD9])
                .is_some_and(|eoi| eoi > sos)
        }
        ImageFormat::Png => bytes.windows(4).rev().take(64).any(|w| w == b"IEND"),
        // The trailer byte, allowing a little padding after it.
        ImageFormat::Gif => bytes.iter().rev().take(16).any(|&b| b == 0x3B),
        ImageFormat::Webp => {
            let declared = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
            bytes.len() >= declared.saturating_add(8)
        }
        ImageFormat::Bmp => {
            bytes.len() >= 6
                && bytes.len()
                    >= u32::from_le_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]) as usize
        }
    }
}

fn has_exif(format: ImageFormat, bytes: &[u8]) -> bool {
    match format {
        ImageFormat::Jpeg => {
            jpeg_segments(bytes).any(|(marker, data)| marker == 0xE1 && data.starts_with(b"Exif\0"))
        }
        ImageFormat::Png => bytes.windows(4).any(|w| w == b"eXIf"),
        ImageFormat::Webp => bytes.windows(4).any(|w| w == b"EXIF"),
        ImageFormat::Gif | ImageFormat::Bmp => false,
    }
}

/// The Orientation tag (0x0112) of IFD0 in a JPEG's EXIF block; 1 when there is none.
fn jpeg_orientation(bytes: &[u8]) -> u16 {
    jpeg_segments(bytes)
        .find_map(|(marker, data)| {
            (marker == 0xE1)
                .then(|| data.strip_prefix(b"Exif\0\0"))
                .flatten()
        })
        .and_then(tiff_orientation)
        .filter(|o| (1..=8).contains(o))
        .unwrap_or(1)
}

/// The Orientation entry of the first IFD of a TIFF structure (EXIF's layout).
fn tiff_orientation(tiff: &[u8]) -> Option<u16> {
    let big_endian = match tiff.get(..4)? {
        [b'M', b'M', 0, 42] => true,
        [b'I', b'I', 42, 0] => false,
        _ => return None,
    };
    let u16_at = |at: usize| {
        tiff.get(at..at + 2).map(|b| {
            if big_endian {
                u16::from_be_bytes([b[0], b[1]])
            } else {
                u16::from_le_bytes([b[0], b[1]])
            }
        })
    };
    let u32_at = |at: usize| {
        tiff.get(at..at + 4).map(|b| {
            if big_endian {
                u32::from_be_bytes([b[0], b[1], b[2], b[3]])
            } else {
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            }
        })
    };
    let ifd = usize::try_from(u32_at(4)?).ok()?;
    let entries = u16_at(ifd)?;
    (0..usize::from(entries)).find_map(|i| {
        let entry = ifd.checked_add(2 + 12 * i)?;
        // Tag 0x0112, type SHORT (3): the value sits in the first two bytes of the value field.
        (u16_at(entry)? == 0x0112 && u16_at(entry + 2)? == 3)
            .then(|| u16_at(entry + 8))
            .flatten()
    })
}

/// The marker segments of a JPEG up to the start of scan: `(marker, payload)`.
fn jpeg_segments(bytes: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut at = 2;
    std::iter::from_fn(move || {
        while bytes.get(at) == Some(&0xFF) && bytes.get(at + 1) == Some(&0xFF) {
            at += 1; // fill bytes
        }
        let (&0xFF, &marker) = (bytes.get(at)?, bytes.get(at + 1)?) else {
            return None;
        };
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([
            *bytes.get(at + 2)?,
            *bytes.get(at + 3)?,
        ]));
        let data = bytes.get(at + 4..(at + 2 + len).max(at + 4))?;
        at += 2 + len;
        Some((marker, data))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A JPEG's start: SOI, then an APP1 segment holding `exif`.
    fn with_app1(exif: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE1];
        bytes.extend_from_slice(&u16::try_from(exif.len() + 2).unwrap().to_be_bytes());
        bytes.extend_from_slice(exif);
        bytes.extend_from_slice(&[0xFF, 0xDA]);
        bytes
    }

    #[test]
    fn jpeg_orientation_is_read_in_both_byte_orders() {
        let big = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
        assert_eq!(jpeg_orientation(&with_app1(big)), 6);
        let little = b"Exif\0\0II\x2a\0\x08\0\0\0\x02\0\x0f\x01\x02\0\x01\0\0\0\0\0\0\0\x12\x01\x03\0\x01\0\0\0\x03\0\0\0";
        assert_eq!(jpeg_orientation(&with_app1(little)), 3);
    }

    #[test]
    fn jpeg_orientation_is_upright_when_absent_or_broken() {
        assert_eq!(
            jpeg_orientation(&with_app1(b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x00")),
            1
        );
        assert_eq!(
            jpeg_orientation(&with_app1(b"Exif\0\0MM\0\x2a\xff\xff\xff\xff")),
            1
        );
        assert_eq!(
            jpeg_orientation(&with_app1(b"Exif\0\0MM\0\x2a\0\0\0\x08\xff\xff")),
            1
        );
        assert_eq!(
            jpeg_orientation(&with_app1(
                b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x09\0\0"
            )),
            1
        );
        assert_eq!(jpeg_orientation(&with_app1(b"JFIF\0")), 1);
        assert_eq!(jpeg_orientation(&[0xFF, 0xD8]), 1);
    }
}
