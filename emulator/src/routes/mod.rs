//! The emulator's HTTP surface: NVCF's routes on one address, plus test controls.

mod assets;
mod auth;
mod control;
mod deliver;
mod invoke;
mod journal;
mod request;
mod results;
mod status;

use std::sync::Arc;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, put};
use florence2::request::{
    INVOKE_PATH, MAX_INVOKE_BODY_BYTES, NVCF_ASSETS_PATH, NVCF_STATUS_PATH_PREFIX,
};
use tower_http::cors::CorsLayer;

use crate::problem::Problem;
use crate::state::State;

/// Longest JSON body NVCF accepts (its documented 5 MB).
pub const MAX_JSON_BYTES: usize = MAX_INVOKE_BODY_BYTES;
/// Longest asset upload the emulator stores (NVCF allows 5 GB; tests need far less).
pub const MAX_ASSET_BYTES: usize = 64 * 1024 * 1024;

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route(INVOKE_PATH, post(invoke::invoke))
        .route(
            &format!("{NVCF_STATUS_PATH_PREFIX}{{req_id}}"),
            get(status::status),
        )
        .route(NVCF_ASSETS_PATH, post(assets::create))
        .route("/s3/assets/{asset_id}", put(assets::upload))
        .route("/s3/results/{token}", get(results::download))
        .route(
            "/_emulator/faults",
            post(control::push_faults).delete(control::clear_faults),
        )
        .route(
            "/_emulator/requests",
            get(control::journal).delete(control::clear_journal),
        )
        .fallback(|| async { Problem::not_found("no such route on this NVCF emulator") })
        // A loopback test double: browser tests may script faults from any page.
        .layer(CorsLayer::permissive())
        .layer(from_fn_with_state(state.clone(), journal::record))
        .with_state(state)
}
