//! Unknown routes and wrong methods, as typed JSON errors.

use axum::http::{Method, StatusCode, Uri};

use crate::error::ApiError;

const ROUTES: &str = "POST /v1/vlm/microsoft/florence-2, POST /v1/assets, POST /v2/nvcf/assets (then PUT to its uploadUrl), GET /healthz and the demo at /";

pub async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::refused(
        StatusCode::NOT_FOUND,
        format!(
            "no route {method} {}; this proxy serves {ROUTES}",
            uri.path()
        ),
    )
}

pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::refused(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "{} does not take {method}; this proxy serves {ROUTES}",
            uri.path()
        ),
    )
}
