//! `GET /v2/nvcf/pexec/status/{reqId}`: 202 while the request "runs", then its result.

use std::sync::Arc;

use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::{auth, deliver};
use crate::problem::Problem;
use crate::state::{State, lock};

pub async fn status(
    Extract(state): Extract<Arc<State>>,
    Path(req_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(problem) = auth::check(&state, &headers) {
        return problem.into_response();
    }
    let mut jobs = lock(&state.jobs);
    let Some(job) = jobs.get_mut(&req_id) else {
        return Problem::not_found(format!("no pending request {req_id}")).into_response();
    };
    job.polls += 1;
    if job.remaining > 0 {
        job.remaining -= 1;
        let done = job.polls * 100 / (job.polls + job.remaining + 1);
        // The id came from this map, so it is a valid header value (it was one when parked).
        let value = HeaderValue::from_str(&req_id).unwrap_or(HeaderValue::from_static("invalid"));
        return deliver::pending(value, done);
    }
    let Some(job) = jobs.remove(&req_id) else {
        return Problem::not_found(format!("no pending request {req_id}")).into_response();
    };
    drop(jobs);
    deliver::send(job.delivery)
}
