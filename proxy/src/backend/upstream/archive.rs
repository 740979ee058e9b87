//! Reading the upstream's answer body, which must be a whole ZIP archive: the browser should
//! get a typed ZIP_INVALID now rather than a broken download (a truncated body, an HTML page
//! from a gateway). Parsing the entries is the client's job (`florence2::response`).

use std::io::Cursor;

use bytes::{Bytes, BytesMut};
use florence2::{Error, ErrorCode, Result};
use reqwest::Response;
use reqwest::header::CONTENT_TYPE;

use crate::api_key::ApiKey;

/// Largest result accepted (NVCF sends large results by 302; overlays are a few MB).
pub const MAX_RESULT_BYTES: usize = 100 * 1024 * 1024;

pub async fn read(mut response: Response, what: &str, key: &ApiKey) -> Result<Bytes> {
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_owned();
    let content_type = key.redact(&content_type);
    let too_large = || {
        Error::new(
            ErrorCode::ZipTooLarge,
            format!(
                "{what} is larger than {} MB",
                MAX_RESULT_BYTES / (1024 * 1024)
            ),
        )
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESULT_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        Error::new(
            ErrorCode::Network,
            format!("{what} was cut off: {}", e.without_url()),
        )
    })? {
        if body.len() + chunk.len() > MAX_RESULT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    if let Err(e) = zip::ZipArchive::new(Cursor::new(body.clone())) {
        return Err(Error::new(
            ErrorCode::ZipInvalid,
            format!(
                "{what} ({} bytes, content-type {content_type}) is not a complete ZIP archive: {e}",
                body.len()
            ),
        ));
    }
    Ok(body)
}
