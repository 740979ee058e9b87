//! Headers on every answer, static files and API alike: no MIME sniffing (a JSON error or an
//! uploaded-looking body is never run as a script or page), no referrer to other sites, no
//! framing (clickjacking), and a Content-Security-Policy that lets the demo run and nothing
//! else (see `static_files::content_security_policy`). The demo's pages are cross-origin
//! isolated (COOP `same-origin`, COEP `require-corp`): the local runtime's threads share wasm
//! memory, which browsers give only to isolated pages.

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

pub async fn add(State(csp): State<HeaderValue>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = [
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (header::CONTENT_SECURITY_POLICY, csp),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
        (
            HeaderName::from_static("cross-origin-embedder-policy"),
            HeaderValue::from_static("require-corp"),
        ),
    ];
    for (name, value) in set {
        headers.entry(name).or_insert(value);
    }
    response
}
