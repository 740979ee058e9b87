//! Sending a finished answer: the ZIP itself, a 302 to where it waits, or 202s first.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use florence2::request::{HEADER_PERCENT_COMPLETE, HEADER_REQUEST_ID, HEADER_STATUS};

use crate::fault::Fault;
use crate::problem::Problem;
use crate::state::{Delivery, Job, State, lock};

/// Turns the archive into what the fault asks for: the ZIP (maybe cut in half), or a body of
/// another content type; parked behind a 302 when asked.
pub fn prepare(state: &State, zip: Vec<u8>, fault: &Fault) -> Delivery {
    let (content_type, body) = match &fault.content_type {
        Some(ct) => (ct.clone(), Bytes::from(not_a_zip(ct))),
        None => {
            let mut body = Bytes::from(zip);
            if fault.truncate {
                body.truncate(body.len() / 2);
            }
            ("application/zip".to_owned(), body)
        }
    };
    let mut delivery = Delivery {
        content_type,
        body,
        location: None,
    };
    if let Some(location) = &fault.location {
        delivery.location = Some(location.clone());
    } else if fault.redirect {
        let token = uuid::Uuid::new_v4().simple().to_string();
        lock(&state.results).insert(token.clone(), delivery.clone());
        delivery.location = Some(format!(
            "{}/s3/results/{token}?X-Amz-Signature=emulated",
            state.base_url()
        ));
    }
    delivery
}

/// What a gateway might send instead of the ZIP, for the `content-type` fault.
fn not_a_zip(content_type: &str) -> &'static str {
    if content_type.contains("html") {
        "<html><body><h1>502 Bad Gateway</h1></body></html>"
    } else if content_type.contains("json") {
        r#"{"detail":"this is not a ZIP"}"#
    } else {
        "this is not a ZIP"
    }
}

/// Answers now, or parks the delivery behind `chain` 202 answers.
pub fn answer_or_park(state: &Arc<State>, delivery: Delivery, fault: &Fault) -> Response {
    if fault.chain == 0 {
        return send(delivery);
    }
    let req_id = fault
        .req_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let Ok(header_value) = HeaderValue::from_str(&req_id) else {
        return Problem::scripted(500, "the scripted req-id is not a valid header value")
            .into_response();
    };
    lock(&state.jobs).insert(
        req_id,
        Job {
            remaining: fault.chain - 1,
            delivery,
            polls: 0,
        },
    );
    pending(header_value, 0)
}

/// `202 Accepted` with the request id to poll.
pub fn pending(req_id: HeaderValue, percent: u32) -> Response {
    let mut response = StatusCode::ACCEPTED.into_response();
    let headers = response.headers_mut();
    headers.insert(HEADER_REQUEST_ID, req_id);
    headers.insert(
        HEADER_STATUS,
        HeaderValue::from_static("pending-evaluation"),
    );
    headers.insert(HEADER_PERCENT_COMPLETE, HeaderValue::from(percent));
    response
}

/// The result itself (200) or a 302 to it.
pub fn send(delivery: Delivery) -> Response {
    if let Some(location) = delivery.location {
        let Ok(value) = HeaderValue::from_str(&location) else {
            return Problem::scripted(500, "the scripted location is not a valid header value")
                .into_response();
        };
        let mut response = StatusCode::FOUND.into_response();
        response.headers_mut().insert(header::LOCATION, value);
        return response;
    }
    let content_type = HeaderValue::from_str(&delivery.content_type)
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut response = (StatusCode::OK, delivery.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(HEADER_STATUS, HeaderValue::from_static("fulfilled"));
    response
}
