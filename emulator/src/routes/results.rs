//! `GET /s3/results/{token}`: where a 302 points, like a presigned download URL (no key).

use std::sync::Arc;

use axum::extract::{Path, State as Extract};
use axum::response::{IntoResponse, Response};

use super::deliver;
use crate::problem::Problem;
use crate::state::{State, lock};

pub async fn download(Extract(state): Extract<Arc<State>>, Path(token): Path<String>) -> Response {
    match lock(&state.results).get(&token).cloned() {
        Some(delivery) => deliver::send(delivery),
        None => Problem::not_found("no such result (or it expired)").into_response(),
    }
}
