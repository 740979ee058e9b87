//! `cargo xtask demo`: builds the package and serves the page that exercises it.

use std::path::{Path, PathBuf};

use crate::build;
use crate::util::{Result, root};

pub fn run(args: &[String]) -> Result {
    let listen = match args {
        [] => "127.0.0.1:8080".to_owned(),
        [flag, addr] if flag == "--listen" => addr.clone(),
        _ => return Err("usage: cargo xtask demo [--listen ADDR]".into()),
    };
    let report = build::package()?;
    eprintln!("{report}");
    let server = tiny_http::Server::http(&listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    println!("demo: http://{listen}/ (Ctrl-C to stop)");
    let site = root();
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or("/").to_owned();
        let response = match resolve(&site, &path) {
            Some(file) => match std::fs::read(&file) {
                Ok(bytes) => tiny_http::Response::from_data(bytes).with_header(content_type(&file)),
                Err(_) => not_found(),
            },
            None => not_found(),
        };
        let _ = request.respond(response);
    }
    Ok(())
}

/// `/` is the package page; `/pkg/…` the package. Nothing else of the repository is served.
fn resolve(site: &Path, path: &str) -> Option<PathBuf> {
    if path.split('/').any(|segment| segment == ".." || segment.starts_with('.')) {
        return None;
    }
    match path {
        "/" | "/index.html" => Some(site.join("tests/e2e/package.html")),
        p if p.starts_with("/pkg/") => Some(site.join(&p[1..])),
        _ => None,
    }
}

fn content_type(file: &Path) -> tiny_http::Header {
    let mime = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("css") => "text/css",
        _ => "application/octet-stream",
    };
    tiny_http::Header::from_bytes("Content-Type", mime).expect("static header")
}

fn not_found() -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    tiny_http::Response::from_string("not found").with_status_code(404)
}
