//! Per request: a fresh id (answered in `x-request-id`), a span carrying it, one log line for
//! the answer. Client-sent ids are not trusted into logs.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tokio::time::Instant;
use tracing::Instrument;

use super::headers::loggable;
use super::model_timing;
use crate::guard::client::TrustedProxies;
use crate::wire::{ClientAddr, REQUEST_ID_HEADER, UPLOAD_PATH_PREFIX};

/// The path as logged: an upload URL's secret is a credential while the URL lives, so it is
/// left out.
fn loggable_path(path: &str) -> &str {
    if path.starts_with(UPLOAD_PATH_PREFIX) {
        UPLOAD_PATH_PREFIX
    } else {
        path
    }
}

pub async fn record(
    State(trusted): State<TrustedProxies>,
    mut request: Request,
    next: Next,
) -> Response {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let client = trusted.client(peer, request.headers());
    request.extensions_mut().insert(ClientAddr(client));
    let path = loggable_path(request.uri().path());
    let span =
        tracing::info_span!("request", id = %id, method = %request.method(), %path, %client, %peer);
    async move {
        tracing::debug!(headers = ?loggable(request.headers()), "received");
        let started = Instant::now();
        let (mut response, model) = model_timing::scope(next.run(request)).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let status = response.status().as_u16();
        // Local model requests also say how long they queued (behind how many) and ran.
        let queued_behind = model.map(|m| m.queued_behind);
        let wait_ms = model.map(|m| m.wait_ms);
        let run_ms = model.map(|m| m.run_ms);
        let tokens = model.map(|m| m.tokens);
        if response.status().is_server_error() {
            tracing::warn!(
                status,
                ms,
                queued_behind,
                wait_ms,
                run_ms,
                tokens,
                "answered"
            );
        } else {
            tracing::info!(
                status,
                ms,
                queued_behind,
                wait_ms,
                run_ms,
                tokens,
                "answered"
            );
        }
        if let Some(value) = model.and_then(|m| m.header()) {
            response.headers_mut().insert("server-timing", value);
        }
        // A simple UUID is 32 hex digits: always a valid header value.
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(REQUEST_ID_HEADER, value);
        }
        response
    }
    .instrument(span)
    .await
}
