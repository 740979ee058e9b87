//! CORS: which other origins' pages may call the proxy. Same-origin pages (the demo served by
//! the proxy) need nothing; others must match an `--allow-origin` pattern.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header, request::Parts};
use florence2::request::{
    HEADER_ASSET_DESCRIPTION, HEADER_FUNCTION_ASSET_IDS, HEADER_INPUT_ASSET_REFERENCES,
};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::OriginPattern;
use crate::wire::{BACKEND_HEADER, REQUEST_ID_HEADER};

pub fn layer(patterns: Vec<OriginPattern>) -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(
            move |origin: &HeaderValue, request: &Parts| {
                let Ok(origin) = origin.to_str() else {
                    return false;
                };
                same_origin(origin, request) || patterns.iter().any(|p| p.matches(origin))
            },
        ))
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::PUT])
        // Authorization: client tokens; the NVCF headers: NVIDIA's asset flow from a page.
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static(HEADER_ASSET_DESCRIPTION),
            HeaderName::from_static(HEADER_INPUT_ASSET_REFERENCES),
            HeaderName::from_static(HEADER_FUNCTION_ASSET_IDS),
        ])
        // ETag: Florence2Local revalidates a cached model folder against it.
        .expose_headers([
            header::ETAG,
            header::RETRY_AFTER,
            HeaderName::from_static(REQUEST_ID_HEADER),
            HeaderName::from_static(BACKEND_HEADER),
            HeaderName::from_static("server-timing"),
        ])
        .max_age(Duration::from_secs(600))
}

/// Whether `origin` is this server as the browser reached it (its `Host`).
fn same_origin(origin: &str, request: &Parts) -> bool {
    let Some(host) = request
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    ["http://", "https://"].iter().any(|scheme| {
        origin
            .strip_prefix(scheme)
            .is_some_and(|rest| rest.eq_ignore_ascii_case(host))
    })
}
