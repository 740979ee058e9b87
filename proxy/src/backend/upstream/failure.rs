//! Turning what went wrong upstream into typed errors: transport failures here, error answers
//! by florence2's mapping (`http_error`), with the key redacted from anything quoted.

use std::time::SystemTime;

use florence2::http_error::error_from_http;
use florence2::{Error, ErrorCode};
use reqwest::Response;
use reqwest::header::RETRY_AFTER;

use super::resolve::NonPublicName;
use crate::api_key::ApiKey;

/// How much of an error body is read, and how much of its text is passed on.
const MAX_ERROR_BODY: usize = 64 * 1024;
const MAX_MESSAGE_CHARS: usize = 400;

/// A request that got no HTTP answer. `what` names it ("the inference request").
pub fn transport(error: reqwest::Error, what: &str, host: &str) -> Error {
    if error.is_timeout() {
        return Error::new(ErrorCode::Timeout, format!("{what} to {host} timed out"));
    }
    if let Some(refused) = find_source::<NonPublicName>(&error) {
        return Error::new(
            ErrorCode::Upstream,
            format!("refusing to follow {what}: {refused}"),
        );
    }
    if error.is_connect() {
        return Error::new(
            ErrorCode::Network,
            format!("cannot connect to {host} for {what}"),
        );
    }
    // Without the URL: presigned URLs carry signatures in their query.
    let error = error.without_url();
    let mut cause = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        cause = format!("{cause}: {s}");
        source = s.source();
    }
    Error::new(
        ErrorCode::Network,
        format!("{what} to {host} failed: {cause}"),
    )
}

/// The first error of type `E` in `error`'s source chain.
fn find_source<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// A failed answer from a host NVCF handed the proxy to (a presigned upload URL, a result
/// location): only its status is passed on. Such a host is not one the operator chose, and
/// its body (an S3 error page, or whatever a forged URL leads to) is not for the caller.
pub fn from_handoff(response: &Response, what: &str) -> Error {
    let status = response.status().as_u16();
    Error::new(
        ErrorCode::Upstream,
        format!("{what} answered HTTP {status}"),
    )
    .with_status(if response.status().is_client_error() {
        // The caller's request was fine; a hand-off host refusing it is a bad gateway.
        502
    } else {
        status
    })
}

/// An HTTP error answer. Its text has the key redacted, then is cut short and made one line:
/// an upstream echoing the Authorization header must not hand the key to the caller, not even
/// the part of it before a cut (so the redaction comes first, on the whole body).
pub async fn from_response(mut response: Response, what: &str, key: Option<&ApiKey>) -> Error {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    // florence2 quotes the first 200 bytes of a body that is not JSON: redacted before.
    let body = match key {
        Some(k) => k.redact(&String::from_utf8_lossy(&body)).into_bytes(),
        None => body,
    };
    let mut error = error_from_http(status, retry_after.as_deref(), &body, SystemTime::now());
    let message = format!("{what}: {}", error.message);
    let message = key.map_or(message.clone(), |k| k.redact(&message));
    let one_line = message
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    error.message = if one_line.chars().count() > MAX_MESSAGE_CHARS {
        format!(
            "{}…",
            one_line.chars().take(MAX_MESSAGE_CHARS).collect::<String>()
        )
    } else {
        one_line
    };
    error
}
