//! The end-to-end time limit of a request (`--timeout`): handlers see the deadline, and a
//! request still running at it is answered TIMEOUT (504), its work dropped.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use florence2::ErrorCode;
use tokio::time::Instant;

use crate::error::ApiError;

/// When the current request must be answered.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(pub Instant);

pub async fn enforce(
    State(timeout): State<Duration>,
    mut request: Request,
    next: Next,
) -> Response {
    let deadline = Instant::now() + timeout;
    request.extensions_mut().insert(Deadline(deadline));
    match tokio::time::timeout_at(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Timeout,
            format!("no answer within {} s (--timeout)", timeout.as_secs()),
        )
        .into_response(),
    }
}
