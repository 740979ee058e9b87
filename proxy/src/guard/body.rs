//! Reading request bodies within a size limit; beyond it, IMAGE_TOO_LARGE (413).

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use florence2::ErrorCode;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::pace::TooSlow;
use crate::error::ApiError;

/// Largest JSON body (NVCF's own limit).
pub const MAX_JSON_BYTES: usize = 5 * 1024 * 1024;
/// Largest image upload.
pub const MAX_IMAGE_BYTES: usize = 25 * 1024 * 1024;

pub async fn read(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    what: &str,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::ImageTooLarge,
            format!("{what} is larger than {} MB", limit / (1024 * 1024)),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large()),
        Err(e) if came_too_slowly(&*e) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            ErrorCode::Timeout,
            format!(
                "{what} arrived too slowly: nothing for --stall-timeout, or slower than --min-rate"
            ),
        )
        .with_kind("body-too-slow")),
        Err(_) => Err(ApiError::refused(
            StatusCode::BAD_REQUEST,
            format!("{what} could not be read (the connection broke off)"),
        )),
    }
}

/// Whether the body stopped on [`TooSlow`] (wrapped by axum, then by `Limited`).
fn came_too_slowly(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<TooSlow>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// The media type of a request without parameters, lower case (`application/json`).
pub fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Refuses a body whose media type is not the expected one (415).
pub fn require_media_type(
    headers: &HeaderMap,
    accepts: impl Fn(&str) -> bool,
    expected: &str,
) -> Result<String, ApiError> {
    match media_type(headers) {
        Some(media) if accepts(&media) => Ok(media),
        Some(media) => Err(ApiError::refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {media} is not accepted here; send {expected}"),
        )),
        None => Err(ApiError::refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("no Content-Type; send {expected}"),
        )),
    }
}
