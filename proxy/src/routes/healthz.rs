//! `GET /healthz`: the proxy is up; whether it holds a key (never the key) and whether the
//! upstream answers (cached).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::backend::Health;
use crate::state::App;

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

pub async fn healthz(State(app): State<Arc<App>>) -> Json<Healthz> {
    Json(Healthz {
        ok: true,
        version: env!("CARGO_PKG_VERSION"),
        client_tokens_required: app.client_tokens_required,
        health: app.backend.health().await,
    })
}
