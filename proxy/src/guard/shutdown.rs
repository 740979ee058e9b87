//! Stopping within `--shutdown-grace`: after the signal, open requests may finish until the
//! grace runs out; then each still open is answered 503 at once (its work dropped), and so is
//! any request arriving later on a connection still open.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use florence2::ErrorCode;
use tokio::sync::watch;

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Serving,
    /// Signalled: no new connections; open requests may finish.
    Draining,
    /// The grace is over: open requests are answered 503.
    Expired,
}

pub async fn enforce(
    State(phase): State<watch::Receiver<Phase>>,
    request: Request,
    next: Next,
) -> Response {
    let mut phase = phase;
    let expired = async move {
        // A dropped sender means the server is gone along with this request: never expire.
        if phase.wait_for(|p| *p == Phase::Expired).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        response = next.run(request) => response,
        () = expired => {
            let mut refusal = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::RateLimited,
                "the proxy is shutting down and its --shutdown-grace is over; try again shortly",
            );
            refusal.error = refusal.error.with_retry_after(Some(1.0));
            refusal.into_response()
        }
    }
}
