//! Test controls: queue faults, read or clear the journal.

use std::sync::Arc;

use axum::Json;
use axum::extract::State as Extract;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::fault::Fault;
use crate::state::{Seen, State};

pub async fn push_faults(
    Extract(state): Extract<Arc<State>>,
    Json(faults): Json<Vec<Fault>>,
) -> Json<Value> {
    let queued = state.push_faults(faults);
    Json(json!({ "queued": queued }))
}

pub async fn clear_faults(Extract(state): Extract<Arc<State>>) -> StatusCode {
    state.clear_faults();
    StatusCode::NO_CONTENT
}

pub async fn journal(Extract(state): Extract<Arc<State>>) -> Json<Vec<Seen>> {
    Json(state.journal())
}

pub async fn clear_journal(Extract(state): Extract<Arc<State>>) -> StatusCode {
    state.clear_journal();
    StatusCode::NO_CONTENT
}
