//! Turning what went wrong upstream into typed errors: transport failures, and error answers
//! (RFC 7807 problems: `detail`, else `message`, else `error`, else `title`).

use florence2::{Error, ErrorCode};
use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::api_key::ApiKey;

/// How much of an error body is read, and how much of its text is passed on.
const MAX_ERROR_BODY: usize = 64 * 1024;
const MAX_DETAIL_CHARS: usize = 300;

/// A request that got no HTTP answer. `what` names it ("the inference request").
pub fn transport(error: reqwest::Error, what: &str, host: &str) -> Error {
    if error.is_timeout() {
        return Error::new(ErrorCode::Timeout, format!("{what} to {host} timed out"));
    }
    if error.is_connect() {
        return Error::new(ErrorCode::Network, format!("cannot connect to {host} for {what}"));
    }
    // Without the URL: presigned URLs carry signatures in their query.
    let error = error.without_url();
    let mut cause = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        cause = format!("{cause}: {s}");
        source = s.source();
    }
    Error::new(ErrorCode::Network, format!("{what} to {host} failed: {cause}"))
}

/// An HTTP error answer. The text quoted from it is cut short and has the key redacted (an
/// upstream echoing the Authorization header must not hand the key to the caller).
pub async fn from_response(response: Response, what: &str, key: Option<&ApiKey>) -> Error {
    let status = response.status();
    let detail = read_detail(response).await;
    let detail = match key {
        Some(key) => key.redact(&detail),
        None => detail,
    };
    let said = if detail.is_empty() { String::new() } else { format!(": {detail}") };
    let code = status.as_u16();
    let error = match status {
        StatusCode::UNAUTHORIZED => Error::new(ErrorCode::Unauthorized, format!("NVIDIA refused the API key (401){said}")),
        StatusCode::FORBIDDEN => Error::new(ErrorCode::Unauthorized, format!("the API key may not use this function (403){said}")),
        StatusCode::PAYMENT_REQUIRED => Error::new(ErrorCode::Upstream, format!("the NVIDIA account has no credits left (402){said}")),
        StatusCode::TOO_MANY_REQUESTS => Error::new(ErrorCode::RateLimited, format!("NVIDIA rate limit (429){said}")),
        s if s.is_server_error() => Error::new(ErrorCode::Upstream, format!("{what} failed upstream ({code}){said}")),
        _ => Error::new(ErrorCode::Upstream, format!("{what} was refused upstream ({code}){said}")),
    };
    error.with_status(code)
}

async fn read_detail(mut response: Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    let text = match serde_json::from_slice::<Value>(&body) {
        Ok(json) => ["detail", "message", "error", "title"]
            .iter()
            .find_map(|k| match &json[k] {
                Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
                Value::Object(o) => o.get("message").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            })
            .unwrap_or_default(),
        // Not JSON (an HTML error page, S3's XML): the start of the text, if it is text.
        Err(_) => String::from_utf8_lossy(&body).into_owned(),
    };
    let clean: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    if clean.chars().count() > MAX_DETAIL_CHARS { format!("{}…", clean.chars().take(MAX_DETAIL_CHARS).collect::<String>()) } else { clean }
}
