//! Reading what a request brings: its body (bounded) and its scripted fault.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;

use crate::fault::{FAULT_HEADER, Fault};
use crate::problem::Problem;
use crate::state::State;

/// The body, at most `limit` bytes (NVCF answers 413 beyond its limits).
pub async fn body(body: Body, limit: usize) -> Result<Bytes, Problem> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds {limit} bytes or was cut off"),
        )
    })
}

/// The request's own `X-Emulator-Fault`, else the next queued or flagged one.
pub fn fault(state: &State, headers: &HeaderMap) -> Result<Fault, Problem> {
    match headers.get(FAULT_HEADER) {
        Some(value) => {
            let spec = value
                .to_str()
                .map_err(|_| Problem::bad_request(format!("{FAULT_HEADER} is not text")))?;
            Fault::parse(spec).map_err(|e| Problem::bad_request(format!("{FAULT_HEADER}: {e}")))
        }
        None => Ok(state.next_fault()),
    }
}

/// Plays the part of a fault that comes before any work: the delay, a hostile echo of the
/// key, a scripted error status.
pub async fn misbehave(fault: &Fault, headers: &HeaderMap) -> Result<(), Problem> {
    if fault.delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(fault.delay_ms)).await;
    }
    if fault.echo_key {
        let received = headers
            .get(axum::http::header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        return Err(Problem::scripted(
            500,
            format!(
                "internal error; request had Authorization: {}",
                received.unwrap_or_default()
            ),
        ));
    }
    if let Some(status) = fault.status {
        let mut problem =
            Problem::scripted(status, format!("scripted failure with status {status}"));
        if status == 429 {
            problem.detail = "Too many requests".to_owned();
            problem.retry_after = match fault.retry_after.as_deref() {
                Some("none") => None,
                Some(value) => Some(value.to_owned()),
                None => Some("1".to_owned()),
            };
        }
        return Err(problem);
    }
    Ok(())
}
