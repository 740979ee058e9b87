//! The key a request may bring in `X-Api-Key` (used only when the proxy holds none).

use axum::http::HeaderMap;

use crate::api_key::ApiKey;
use crate::error::ApiError;

pub fn from_headers(headers: &HeaderMap) -> Result<Option<ApiKey>, ApiError> {
    let Some(value) = headers.get("x-api-key") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("\u{fffd}");
    Ok(Some(ApiKey::parse(text, "the X-Api-Key header")?))
}
