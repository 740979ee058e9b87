//! Error answers over HTTP, from NVIDIA (RFC 7807 problem details, some with only `status` and
//! `title`) or from our proxy (`ErrorBody`), mapped to typed errors.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

use crate::error::{Error, ErrorBody, ErrorCode};

#[derive(Deserialize, Default)]
struct Problem {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

/// The typed error for an HTTP answer with a failing `status`. `retry_after` is the raw
/// `Retry-After` header; `now` resolves its HTTP-date form.
pub fn error_from_http(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Error {
    let retry = retry_after.and_then(|v| parse_retry_after(v, now));
    if let Ok(ErrorBody { error }) = serde_json::from_slice::<ErrorBody>(body) {
        let retry = error.retry_after_secs.or(retry);
        return Error {
            status: error.status.or(Some(status)),
            ..error
        }
        .with_retry_after(retry);
    }
    let problem: Problem = serde_json::from_slice(body).unwrap_or_default();
    let error_text = problem.error.as_ref().and_then(|e| match e {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => {
            o.get("message").and_then(|m| m.as_str()).map(str::to_owned)
        }
        _ => None,
    });
    let said = problem
        .detail
        .or(problem.message)
        .or(error_text)
        .or(problem.title)
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&body[..body.len().min(200)])
                .trim()
                .to_owned()
        });
    let (code, what) = match status {
        401 => (ErrorCode::Unauthorized, "the API key was refused"),
        403 => (
            ErrorCode::Unauthorized,
            "the API key may not call this function",
        ),
        402 => (ErrorCode::Upstream, "the account's credits are used up"),
        408 | 504 => (ErrorCode::Timeout, "the upstream timed out"),
        429 => (ErrorCode::RateLimited, "too many requests"),
        400 | 422 => (ErrorCode::Upstream, "the endpoint rejected the request"),
        500..=599 => (ErrorCode::Upstream, "the endpoint failed"),
        _ => (ErrorCode::Upstream, "unexpected answer"),
    };
    let message = if said.is_empty() {
        format!("{what} (HTTP {status})")
    } else {
        format!("{what} (HTTP {status}): {said}")
    };
    Error::new(code, message)
        .with_status(status)
        .with_retry_after(retry)
}

/// How long to wait before retry number `attempt + 1` of a 429 that gave no `Retry-After`:
/// 1, 2, 4, 8, 8 … seconds. The one rule for the proxy (towards NVIDIA) and the browser
/// client (towards the proxy): the free tier's ~40 requests a minute clear within 8 s.
pub fn backoff(attempt: u32) -> std::time::Duration {
    std::time::Duration::from_secs(1 << attempt.min(3))
}

/// `Retry-After` as seconds: delta-seconds (`120`, also fractional) or an HTTP-date.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<f64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then_some(secs);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    #[test]
    fn problems_map_to_codes_with_their_detail() {
        let body = br#"{"type":"urn:nvcf-worker-service:problem-details:internal-server-error","title":"Internal Server Error","status":500,"detail":"Internal error while making inference request"}"#;
        let e = error_from_http(500, None, body, now());
        assert_eq!(e.code, ErrorCode::Upstream);
        assert_eq!(e.status, Some(500));
        assert!(
            e.message
                .contains("Internal error while making inference request"),
            "{}",
            e.message
        );

        let e = error_from_http(
            401,
            None,
            br#"{"status":401,"title":"Unauthorized"}"#,
            now(),
        );
        assert_eq!(e.code, ErrorCode::Unauthorized);
        assert!(e.message.contains("Unauthorized"));

        let e = error_from_http(429, Some("7"), b"", now());
        assert_eq!(
            (e.code, e.retry_after_secs),
            (ErrorCode::RateLimited, Some(7.0))
        );

        let e = error_from_http(502, None, b"<html>bad gateway</html>", now());
        assert!(e.message.contains("bad gateway"));
    }

    #[test]
    fn our_own_error_bodies_pass_through() {
        let body = br#"{"error":{"code":"RATE_LIMITED","message":"wait","status":429,"retryAfterSecs":3}}"#;
        let e = error_from_http(429, None, body, now());
        assert_eq!(
            (e.code, e.message.as_str(), e.retry_after_secs),
            (ErrorCode::RateLimited, "wait", Some(3.0))
        );
    }

    #[test]
    fn backoff_doubles_then_stays() {
        assert_eq!(
            [0, 1, 2, 3, 9].map(|a| backoff(a).as_secs()),
            [1, 2, 4, 8, 8]
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 12 ", now()), Some(12.0));
        assert_eq!(parse_retry_after("-1", now()), None);
        assert_eq!(parse_retry_after("soon", now()), None);
        let later = httpdate::fmt_http_date(now() + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now()), Some(30.0));
        let earlier = httpdate::fmt_http_date(now() - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now()), Some(0.0));
    }
}
