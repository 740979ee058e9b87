//! Which request headers may appear in logs: none that carry credentials, none that are
//! hop-by-hop (RFC 9110 §7.6.1, plus those a `Connection` header names).

use axum::http::HeaderMap;
use axum::http::header::{self, HeaderName};

/// Headers that carry secrets: never logged.
const SENSITIVE: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::PROXY_AUTHORIZATION,
    header::COOKIE,
    header::SET_COOKIE,
];
const SENSITIVE_CUSTOM: [&str; 1] = ["x-api-key"];
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::PROXY_AUTHENTICATE,
];
const HOP_BY_HOP_CUSTOM: [&str; 2] = ["keep-alive", "proxy-connection"];

/// `name: value` pairs safe to log.
pub fn loggable(headers: &HeaderMap) -> Vec<String> {
    let named_by_connection: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    headers
        .iter()
        .filter(|(name, value)| {
            let n = name.as_str();
            !value.is_sensitive()
                && !SENSITIVE.contains(name)
                && !SENSITIVE_CUSTOM.contains(&n)
                && !HOP_BY_HOP.contains(name)
                && !HOP_BY_HOP_CUSTOM.contains(&n)
                && !named_by_connection.iter().any(|c| c == n)
        })
        .map(|(name, value)| format!("{name}: {}", String::from_utf8_lossy(value.as_bytes())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn secrets_and_hop_by_hop_headers_are_left_out() {
        let mut h = HeaderMap::new();
        h.insert("x-api-key", HeaderValue::from_static("nvapi-secret"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer nvapi-secret"),
        );
        h.insert(header::COOKIE, HeaderValue::from_static("s=nvapi-secret"));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("nvapi-secret"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let logged = loggable(&h).join("\n");
        assert_eq!(logged, "content-type: application/json");
    }
}
