//! Records every request in the journal before it is handled.

use std::sync::Arc;

use axum::extract::{Request, State as Extract};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use crate::state::{Seen, State};

pub async fn record(Extract(state): Extract<Arc<State>>, request: Request, next: Next) -> Response {
    let seen = {
        let text = |name| {
            request
                .headers()
                .get(name)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        };
        Seen {
            method: request.method().to_string(),
            path: request.uri().path().to_owned(),
            host: text(header::HOST),
            authorization: text(header::AUTHORIZATION),
        }
    };
    state.record(seen);
    next.run(request).await
}
