//! Every failure the proxy answers, with an HTTP status that fits, as one JSON body that both
//! kinds of client read: NVIDIA's RFC 7807 problem details (`type`, `title`, `status`, `detail`:
//! what NIM clients read) and florence2's typed [`Error`] under `error` (`code`, `message`,
//! `status`?, `retryAfterSecs`?: what our client reads first, see `florence2::http_error`).
//! One body for everyone means no client has to announce itself.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use florence2::{Error, ErrorCode};
use serde::Serialize;

/// The prefix of every problem `type` the proxy answers; the rest is a stable kebab-case kind.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:florence2-proxy:problem-details:";

/// A typed error and the HTTP status it is answered with.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: Error,
    /// A finer kind than the code, for the problem's `type` (kebab-case, stable); `None`: the
    /// code's (`TEXT_REQUIRED` → `text-required`).
    pub kind: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: Error::new(code, message),
            kind: None,
        }
    }

    /// The same error, with `kind` ending the problem's `type`
    /// (`urn:florence2-proxy:problem-details:upload-url-expired`).
    pub fn with_kind(mut self, kind: &'static str) -> ApiError {
        self.kind = Some(kind);
        self
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
            kind: None,
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
        // The in-browser model's own failures: no route gives them, but a failure of this
        // server's model would be its own fault.
        ErrorCode::ModelFetch
        | ErrorCode::ModelInvalid
        | ErrorCode::WebgpuUnavailable
        | ErrorCode::WasmSimdUnavailable
        | ErrorCode::OutOfMemory => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The answer's body: NVIDIA's problem details with ours beside them.
#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: &'a str,
    error: &'a Error,
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
        let kind = self.kind.map_or_else(
            || {
                self.error
                    .code
                    .as_str()
                    .to_ascii_lowercase()
                    .replace('_', "-")
            },
            str::to_owned,
        );
        let body = serde_json::to_string(&ProblemBody {
            kind: format!("{PROBLEM_TYPE_PREFIX}{kind}"),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.error.message,
            error: &self.error,
        })
        // Serialising a struct of strings and numbers cannot fail; keep a valid body anyway.
        .unwrap_or_else(|_| {
            r#"{"title":"Bad Gateway","status":502,"detail":"error body could not be written","error":{"code":"UPSTREAM","message":"error body could not be written"}}"#
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

    async fn body_of(response: Response) -> Vec<u8> {
        use http_body_util::BodyExt;
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec()
    }

    #[tokio::test]
    async fn one_body_reads_as_nvidia_problem_details_and_as_our_typed_error() {
        let e = ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::TextRequired,
            "<OPEN_VOCABULARY_DETECTION> needs text",
        );
        let body = body_of(e.into_response()).await;
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json["type"],
            "urn:florence2-proxy:problem-details:text-required"
        );
        assert_eq!(json["title"], "Bad Request");
        assert_eq!(json["status"], 400);
        assert_eq!(json["detail"], "<OPEN_VOCABULARY_DETECTION> needs text");
        // What our own client (florence2's parser) makes of the same bytes: the stable code.
        let ours =
            florence2::http_error::error_from_http(400, None, &body, std::time::SystemTime::now());
        assert_eq!(ours.code, ErrorCode::TextRequired);
        assert_eq!(ours.message, "<OPEN_VOCABULARY_DETECTION> needs text");

        let expired = ApiError::new(StatusCode::FORBIDDEN, ErrorCode::BadOption, "late");
        let json: serde_json::Value = serde_json::from_slice(
            &body_of(expired.with_kind("upload-url-expired").into_response()).await,
        )
        .unwrap();
        assert_eq!(
            (json["type"].as_str(), json["status"].as_u64()),
            (
                Some("urn:florence2-proxy:problem-details:upload-url-expired"),
                Some(403)
            )
        );
    }
}
