//! Turning what went wrong upstream into typed errors: transport failures here, error answers
//! by florence2's mapping (`http_error`), with the key redacted from anything quoted.

use std::time::SystemTime;

use florence2::http_error::error_from_http;
use florence2::{Error, ErrorCode};
use reqwest::Response;
use reqwest::header::RETRY_AFTER;

use crate::api_key::ApiKey;

/// How much of an error body is read, and how much of its text is passed on.
const MAX_ERROR_BODY: usize = 64 * 1024;
const MAX_MESSAGE_CHARS: usize = 400;

/// A request that got no HTTP answer. `what` names it ("the inference request").
pub fn transport(error: reqwest::Error, what: &str, host: &str) -> Error {
    if error.is_timeout() {
        return Error::new(ErrorCode::Timeout, format!("{what} to {host} timed out"));
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

/// An HTTP error answer. Its text is cut short, made one line, and has the key redacted: an
/// upstream echoing the Authorization header must not hand the key to the caller.
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
