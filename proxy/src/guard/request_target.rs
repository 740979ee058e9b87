//! Requests this server never serves: absolute-form targets (`POST http://elsewhere/… HTTP/1.1`,
//! the shape of forward-proxy requests), CONNECT and TRACE, and paths that climb out with
//! `..` or smuggle separators, even percent-encoded (once or twice).

use axum::extract::Request;
use axum::http::{Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode;

use crate::error::ApiError;

pub async fn check(request: Request, next: Next) -> Response {
    match inspect(request.method(), request.uri()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

fn inspect(method: &Method, uri: &Uri) -> Result<(), ApiError> {
    if method == Method::CONNECT || method == Method::TRACE {
        return Err(ApiError::refused(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not served; this is not a forward proxy"),
        ));
    }
    if uri.scheme().is_some() || uri.authority().is_some() {
        return Err(ApiError::refused(
            StatusCode::BAD_REQUEST,
            "absolute-form request targets are not served; this is not a forward proxy",
        ));
    }
    let path = uri.path();
    if !path.starts_with('/') {
        return Err(ApiError::refused(
            StatusCode::BAD_REQUEST,
            "the request target must be a path starting with /",
        ));
    }
    let once: Vec<u8> = percent_decode(path.as_bytes()).collect();
    let twice: Vec<u8> = percent_decode(&once).collect();
    for decoded in [path.as_bytes(), &once[..], &twice[..]] {
        if decoded.iter().any(|&b| b == b'\\' || b.is_ascii_control()) {
            return Err(ApiError::refused(
                StatusCode::BAD_REQUEST,
                "the path holds a backslash or a control character",
            ));
        }
        if decoded
            .split(|&b| b == b'/')
            .any(|segment| segment == b".." || segment == b".")
        {
            return Err(ApiError::refused(
                StatusCode::BAD_REQUEST,
                "the path holds . or .. segments",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn plain_paths_pass() {
        for ok in [
            "/",
            "/index.html",
            "/v1/vlm/microsoft/florence-2",
            "/assets/app-1.2.wasm",
            "/a..b/c",
        ] {
            assert!(inspect(&Method::GET, &uri(ok)).is_ok(), "{ok}");
        }
    }

    #[test]
    fn forward_proxy_shapes_and_traversal_are_refused() {
        for bad in [
            "http://evil.example/v1/assets",
            "/../etc/passwd",
            "/static/%2e%2e/secret",
            "/x/%252e%252e/y",
            "/a/./b",
            "/a%5cb",
            "/a%00b",
            "/..",
        ] {
            let refusal = inspect(&Method::GET, &uri(bad)).unwrap_err();
            assert_eq!(refusal.error.code, florence2::ErrorCode::BadOption, "{bad}");
        }
        assert_eq!(
            inspect(&Method::CONNECT, &uri("/")).unwrap_err().status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
