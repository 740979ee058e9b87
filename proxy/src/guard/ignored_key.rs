//! With a key of its own, the proxy ignores a request's `X-Api-Key` entirely, malformed or
//! not (as documented): the header is removed before anything reads it.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

pub async fn strip(mut request: Request, next: Next) -> Response {
    request.headers_mut().remove("x-api-key");
    next.run(request).await
}
