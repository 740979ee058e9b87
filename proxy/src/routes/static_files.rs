//! The demo's static files (`--static`), or, without them, a page that says how to get them;
//! and the Content-Security-Policy that lets that demo run. Dotfiles (`.env`, `.git/`) and
//! anything a symlink leads to outside the directory are not served.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::{Request, State};
use axum::handler::HandlerWithoutStateExt;
use axum::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use base64::Engine;
use percent_encoding::percent_decode_str;
use tower::Layer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use super::not_found::not_found;

const NO_DEMO: &str = "<!doctype html><meta charset=utf-8><title>florence2-proxy</title>
<h1>florence2-proxy is running</h1>
<p>There is no demo to serve: the proxy was started without <code>--static DIR</code>, or the directory does not exist.</p>
<p>Run <code>cargo xtask demo</code> to build the demo and serve it through the proxy, or build it and pass
<code>--static web/dist</code>. The API works either way: <code>POST /v1/vlm/microsoft/florence-2</code>,
<code>POST /v1/assets</code>, <code>GET /healthz</code>.</p>";

/// Where `--models` folders are served.
pub const MODELS_PATH: &str = "/models";

/// Model files are large but do change under one URL (a folder replaced by a newer
/// checkpoint): caches keep them, but ask first (a `304` when unchanged, by [`ETag`]), so that
/// a browser never runs a config of one checkpoint with the weights of another.
const MODEL_CACHE_CONTROL: &str = "no-cache";

/// Model folders may be loaded by cross-origin isolated pages of other origins (COEP
/// `require-corp`), which take a cross-origin file only when it says so; whether such a page
/// may read it is still CORS's answer.
const MODEL_RESOURCE_POLICY: &str = "cross-origin";

/// Adds the static files (or the explanation) to `router` as its fallback, and the model
/// folders under [`MODELS_PATH`]; unknown paths get the JSON 404.
pub fn attach<S: Clone + Send + Sync + 'static>(
    router: Router<S>,
    dir: Option<&Path>,
    models: Option<&Path>,
) -> Router<S> {
    let router = match models.filter(|d| d.is_dir()) {
        Some(models) => {
            let root = std::fs::canonicalize(models).unwrap_or_else(|_| models.to_owned());
            // No index pages in a model folder: a directory is a 404, files are ranges-capable.
            let files = ServeDir::new(models)
                .append_index_html_on_directories(false)
                .call_fallback_on_method_not_allowed(true)
                .fallback(not_found.into_service());
            let service = tower::ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::if_not_present(
                    CACHE_CONTROL,
                    HeaderValue::from_static(MODEL_CACHE_CONTROL),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    HeaderName::from_static("cross-origin-resource-policy"),
                    HeaderValue::from_static(MODEL_RESOURCE_POLICY),
                ))
                .layer(from_fn_with_state(root.clone(), inside_root))
                .layer(from_fn_with_state(root, entity_tag))
                .service(files);
            router.nest_service(MODELS_PATH, service)
        }
        None => router,
    };
    match dir.filter(|d| d.is_dir()) {
        // ServeDir resolves paths inside `dir` only and serves index.html for directories;
        // MIME types by extension (.wasm is application/wasm).
        Some(dir) => {
            let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
            let files = ServeDir::new(dir)
                .call_fallback_on_method_not_allowed(true)
                .fallback(not_found.into_service());
            router.fallback_service(from_fn_with_state(root, inside_root).layer(files))
        }
        None => router
            .route("/", get(|| async { Html(NO_DEMO) }))
            .fallback(not_found),
    }
}

/// Refuses (404, as if absent) a path with a segment starting with `.`, or one that resolves,
/// through symlinks, outside the canonical `root` — also the `index.html` ServeDir would add
/// for a directory.
async fn inside_root(State(root): State<PathBuf>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let uri = request.uri().clone();
    if hidden_or_outside(&root, &uri).await {
        tracing::info!(
            path = uri.path(),
            "refused: a dotfile, or a symlink out of --static"
        );
        return not_found(method, uri).await.into_response();
    }
    next.run(request).await
}

/// A model file's `ETag`: its size and modification time (as nginx does), so that a file
/// replaced in place gets a new one; `If-None-Match` with it answers `304 Not Modified`.
async fn entity_tag(State(root): State<PathBuf>, request: Request, next: Next) -> Response {
    let decoded = percent_decode_str(request.uri().path()).decode_utf8_lossy();
    let mut path = root;
    path.extend(decoded.split('/').filter(|s| !s.is_empty()));
    let tag = match tokio::fs::metadata(&path).await {
        Ok(meta) if meta.is_file() => {
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            HeaderValue::from_str(&format!("\"{:x}-{modified:x}\"", meta.len())).ok()
        }
        _ => None,
    };
    let Some(tag) = tag else {
        return next.run(request).await;
    };
    let unchanged = request
        .headers()
        .get_all(IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().trim_start_matches("W/"))
        .any(|v| v == "*" || v.as_bytes() == tag.as_bytes());
    let mut response = if unchanged && matches!(*request.method(), Method::GET | Method::HEAD) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        next.run(request).await
    };
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        response.headers_mut().insert(ETAG, tag);
    }
    response
}

async fn hidden_or_outside(root: &Path, uri: &Uri) -> bool {
    let decoded = percent_decode_str(uri.path()).decode_utf8_lossy();
    let segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
    if segments.iter().any(|s| s.starts_with('.')) {
        return true;
    }
    let mut path = root.to_path_buf();
    path.extend(&segments);
    let Ok(real) = tokio::fs::canonicalize(&path).await else {
        // Absent: ServeDir answers 404 itself.
        return false;
    };
    if !real.starts_with(root) {
        return true;
    }
    if tokio::fs::metadata(&real).await.is_ok_and(|m| m.is_dir())
        && let Ok(index) = tokio::fs::canonicalize(real.join("index.html")).await
    {
        return !index.starts_with(root);
    }
    false
}

/// The policy for every answer: the demo's own scripts (and its inline boot script, by hash),
/// its wasm (`'wasm-unsafe-eval'` compiles it; no `eval`), its stylesheet and the `style`
/// attributes Leptos sets, pictures from `blob:`/`data:` URLs, calls to this proxy and, for
/// "open a picture by URL", to https sites that allow it (CORS); no plugins, no framing, no
/// forms, no `<base>`.
pub fn content_security_policy(dir: Option<&Path>) -> HeaderValue {
    let hashes: String = dir
        .and_then(|d| std::fs::read_to_string(d.join("index.html")).ok())
        .map(|html| {
            inline_scripts(&html)
                .map(|script| {
                    let digest = ring::digest::digest(&ring::digest::SHA256, script.as_bytes());
                    format!(
                        " 'sha256-{}'",
                        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let policy = format!(
        "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'{hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' blob: data:; media-src 'self' blob:; font-src 'self'; connect-src 'self' http: https: data: blob:; worker-src 'self' blob:; manifest-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    );
    // The policy is ASCII (base64 hashes and fixed text): always a valid header value.
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"))
}

/// The contents of `<script>` elements without `src`, as the browser hashes them.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    let mut rest = html;
    std::iter::from_fn(move || {
        loop {
            let start = rest.find("<script")?;
            let after_tag = &rest[start..];
            let tag_end = after_tag.find('>')?;
            let tag = &after_tag[..tag_end];
            let body = &after_tag[tag_end + 1..];
            let end = body.find("</script>")?;
            rest = &body[end..];
            if !tag.contains("src=") {
                return Some(&body[..end]);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_found_and_external_ones_skipped() {
        let html =
            "<script src=\"a.js\"></script><script type=\"module\">\n  boot();\n</script><p>";
        assert_eq!(inline_scripts(html).collect::<Vec<_>>(), ["\n  boot();\n"]);
    }

    #[test]
    fn the_demo_page_boot_script_is_allowed_by_hash() {
        let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../web/static");
        let csp = content_security_policy(Some(&web));
        let csp = csp.to_str().unwrap();
        assert_eq!(csp.matches("'sha256-").count(), 1, "{csp}");
        assert!(csp.contains("'wasm-unsafe-eval'") && !csp.contains("'unsafe-eval'"));
        assert!(!csp.contains("script-src 'self' 'unsafe-inline'"));
    }
}
