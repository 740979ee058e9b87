//! Every failure the proxy answers: florence2's typed [`Error`] as the JSON body
//! `{"error":{"code","message","status"?,"retryAfterSecs"?}}`, with an HTTP status that fits.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use florence2::error::ErrorBody;
use florence2::{Error, ErrorCode};

/// A typed error and the HTTP status it is answered with.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: Error,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: Error::new(code, message),
        }
    }

    /// A request the proxy does not serve (unknown route, wrong method, absolute target):
    /// florence2 has no NOT_FOUND code, so these are BAD_OPTION with the fitting HTTP status.
    pub fn refused(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError::new(status, ErrorCode::BadOption, message)
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> ApiError {
        ApiError {
            status: status_for(&error),
            error,
        }
    }
}

/// The HTTP status for an error that did not come with one.
fn status_for(error: &Error) -> StatusCode {
    let upstream = error.status.and_then(|s| StatusCode::from_u16(s).ok());
    match error.code {
        // A request body over our limits; an upstream's oversized answer is a bad gateway below.
        ErrorCode::ImageTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Unauthorized => match upstream {
            Some(StatusCode::FORBIDDEN) => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        },
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        // An upstream 4xx is about the request (a bad image, no credits): pass its status on;
        // an upstream 5xx or a broken answer is a bad gateway.
        ErrorCode::Upstream => match upstream {
            Some(s) if s.is_client_error() => s,
            _ => StatusCode::BAD_GATEWAY,
        },
        ErrorCode::Network
        | ErrorCode::ZipInvalid
        | ErrorCode::ZipTooLarge
        | ErrorCode::ResponseInvalid => StatusCode::BAD_GATEWAY,
        ErrorCode::UnknownTask
        | ErrorCode::TextRequired
        | ErrorCode::TextNotAllowed
        | ErrorCode::TextInvalid
        | ErrorCode::BadRegion
        | ErrorCode::ImageDecode
        | ErrorCode::ImageBudget
        | ErrorCode::PostProcess
        | ErrorCode::BadOption
        | ErrorCode::Aborted => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // Messages never hold the key: upstream text is redacted before it becomes one.
        if self.status.is_server_error() {
            tracing::warn!(code = %self.error.code, message = %self.error.message, "failed");
        } else {
            tracing::info!(code = %self.error.code, message = %self.error.message, "refused");
        }
        let retry_after = self.error.retry_after_secs;
        let body = serde_json::to_string(&ErrorBody { error: self.error })
            // Serialising a struct of strings and numbers cannot fail; keep a valid body anyway.
            .unwrap_or_else(|_| {
                r#"{"error":{"code":"UPSTREAM","message":"error body could not be written"}}"#
                    .to_owned()
            });
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = retry_after.filter(|s| s.is_finite() && *s >= 0.0) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.ceil() as u64));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_codes_and_upstream_statuses() {
        let status = |e: Error| ApiError::from(e).status;
        assert_eq!(
            status(Error::new(ErrorCode::TextRequired, "x")),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(Error::new(ErrorCode::ImageTooLarge, "x")),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            status(Error::new(ErrorCode::ZipTooLarge, "x")),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            status(Error::new(ErrorCode::Upstream, "x").with_status(422)),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(
            status(Error::new(ErrorCode::Upstream, "x").with_status(500)),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            status(Error::new(ErrorCode::Unauthorized, "x").with_status(403)),
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            status(Error::new(ErrorCode::Timeout, "x")),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            status(Error::new(ErrorCode::RateLimited, "x")),
            StatusCode::TOO_MANY_REQUESTS
        );
    }

    #[test]
    fn rate_limits_carry_retry_after() {
        let e = ApiError::from(
            Error::new(ErrorCode::RateLimited, "slow down").with_retry_after(Some(1.2)),
        );
        let response = e.into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
    }
}
