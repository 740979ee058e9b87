//! The demo's static files (`--static`), or, without them, a page that says how to get them.

use std::path::Path;

use axum::Router;
use axum::handler::HandlerWithoutStateExt;
use axum::response::Html;
use axum::routing::get;
use tower_http::services::ServeDir;

use super::not_found::not_found;

const NO_DEMO: &str = "<!doctype html><meta charset=utf-8><title>florence2-proxy</title>
<h1>florence2-proxy is running</h1>
<p>There is no demo to serve: the proxy was started without <code>--static DIR</code>, or the directory does not exist.</p>
<p>Run <code>cargo xtask demo</code> to build the demo and serve it through the proxy, or build it and pass
<code>--static web/dist</code>. The API works either way: <code>POST /v1/vlm/microsoft/florence-2</code>,
<code>POST /v1/assets</code>, <code>GET /healthz</code>.</p>";

/// Adds the static files (or the explanation) to `router` as its fallback; unknown paths get
/// the JSON 404.
pub fn attach<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    dir: Option<&Path>,
) -> Router<S> {
    match dir.filter(|d| d.is_dir()) {
        // ServeDir resolves paths inside `dir` only and serves index.html for directories;
        // MIME types by extension (.wasm is application/wasm).
        Some(dir) => router.fallback_service(
            ServeDir::new(dir)
                .call_fallback_on_method_not_allowed(true)
                .fallback(not_found.into_service()),
        ),
        None => router
            .route("/", get(|| async { Html(NO_DEMO) }))
            .fallback(not_found),
    }
}
