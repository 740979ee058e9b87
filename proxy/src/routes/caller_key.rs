//! The key a request may bring in `X-Api-Key` (used only when the proxy holds none, and
//! ignored altogether by a backend that needs no key).

use axum::http::HeaderMap;

use crate::api_key::ApiKey;
use crate::backend::Profile;
use crate::error::ApiError;

pub fn from_headers(headers: &HeaderMap, profile: Profile) -> Result<Option<ApiKey>, ApiError> {
    let Some(value) = headers.get("x-api-key").filter(|_| profile.takes_keys) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("\u{fffd}");
    Ok(Some(ApiKey::parse(text, "the X-Api-Key header")?))
}
