//! `GET /healthz`: the proxy is up; whether it holds a key (never the key) and whether the
//! upstream answers (cached). Open to anyone: a load balancer needs no token, so it says only
//! that. `GET /healthz?detail` adds the local model and its queue (what it is, how busy it is,
//! how often a picture was reused), and needs a client token when the proxy has
//! `--client-tokens`, else a loopback caller: it tells who can read it how busy the others are.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;

use florence2::ErrorCode;

use crate::backend::Health;
use crate::config::cidr::canonical;
use crate::error::ApiError;
use crate::guard::client_tokens::refusal_response;
use crate::state::App;
use crate::wire::ClientAddr;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Healthz {
    ok: bool,
    version: &'static str,
    /// Whether API routes require `Authorization: Bearer <client token>` (`--client-tokens`).
    client_tokens_required: bool,
    #[serde(flatten)]
    health: Health,
}

pub async fn healthz(
    State(app): State<Arc<App>>,
    Extension(client): Extension<ClientAddr>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let detail = uri.query().is_some_and(|q| {
        q.split('&')
            .any(|p| p == "detail" || p.starts_with("detail="))
    });
    if detail {
        let allowed = if app.client_tokens_required {
            app.access
                .identify(headers.get(header::AUTHORIZATION), client.0)
                .map(|_| ())
        } else if canonical(client.0).is_loopback() {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Unauthorized,
                "/healthz?detail answers loopback callers only when the proxy has no --client-tokens; plain /healthz is open",
            )
            .with_kind("health-detail-refused"))
        };
        if let Err(refusal) = allowed {
            return refusal_response(refusal);
        }
    }
    let mut health = app.backend.health().await;
    if !detail {
        health.model = None;
        health.queue = None;
    }
    Json(Healthz {
        ok: true,
        version: env!("CARGO_PKG_VERSION"),
        client_tokens_required: app.client_tokens_required,
        health,
    })
    .into_response()
}
