//! NVCF's key check: `Authorization: Bearer <key>` on the API routes (not on presigned URLs).

use axum::http::{HeaderMap, header};

use crate::problem::Problem;
use crate::state::State;

pub fn check(state: &State, headers: &HeaderMap) -> Result<(), Problem> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            Problem::unauthorized("Authorization header with a Bearer key is required")
        })?;
    match &state.config.api_key {
        Some(expected) if expected != key => Err(Problem::unauthorized("Invalid API key")),
        _ => Ok(()),
    }
}
