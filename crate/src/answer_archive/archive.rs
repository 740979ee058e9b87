//! NVCF's result archive: `<id>.response` and, for tasks that draw, `<id>.png`, deflated in
//! one ZIP.

use std::io::{Cursor, Write};

use serde_json::Value;
use zip::CompressionMethod;
use zip::write::{SimpleFileOptions, ZipWriter};

/// Zips the response and the optional overlay. Entry times are the ZIP epoch, so equal answers
/// give equal bytes.
pub fn zip(
    id: &str,
    response: &Value,
    overlay_png: Option<&[u8]>,
) -> zip::result::ZipResult<Vec<u8>> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    zip.start_file(format!("{id}.response"), options)?;
    zip.write_all(response.to_string().as_bytes())?;
    if let Some(png) = overlay_png {
        zip.start_file(format!("{id}.png"), options)?;
        zip.write_all(png)?;
    }
    Ok(zip.finish()?.into_inner())
}
