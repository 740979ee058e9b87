//! A panic while answering one request is that request's 500, not the server's end: it is
//! caught (this needs an unwinding build, which the `release-native` profile is), logged with
//! the request's id, and answered in the usual error shape. florence2 has no code for "the
//! proxy itself failed"; UPSTREAM (the service behind the caller failed) with HTTP 500 is
//! the nearest, and the message says it was the proxy.

use std::any::Any;

use axum::body::Body;
use axum::http::{Response, StatusCode};
use axum::response::IntoResponse;
use florence2::ErrorCode;
use tower_http::catch_panic::{CatchPanicLayer, ResponseForPanic};

use crate::api_key::ApiKey;
use crate::error::ApiError;

#[derive(Clone)]
pub struct PanicAnswer {
    /// Redacted from the logged panic message, should any code ever format it in.
    key: Option<ApiKey>,
}

pub fn layer(key: Option<ApiKey>) -> CatchPanicLayer<PanicAnswer> {
    CatchPanicLayer::custom(PanicAnswer { key })
}

impl ResponseForPanic for PanicAnswer {
    type ResponseBody = Body;

    fn response_for_panic(&mut self, panic: Box<dyn Any + Send + 'static>) -> Response<Body> {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(not text)".to_owned());
        let message = self
            .key
            .as_ref()
            .map_or(message.clone(), |k| k.redact(&message));
        tracing::error!(panic = %message, "a request handler panicked; answered 500");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Upstream,
            "the proxy failed while answering this request (an internal error, logged under this answer's x-request-id); other requests are unaffected",
        )
        .into_response()
    }
}
