//! What the proxy serves itself: /healthz, the demo's static files (or the page saying how
//! to get them), and CORS for other local origins.

use florence2::Task;
use serde_json::Value;

use crate::support::{self, TempDir, body, data_url, png};

async fn healthz(stack: &support::Stack) -> Value {
    let response = stack
        .client
        .get(format!("{}/healthz", stack.proxy_url))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    response.json().await.expect("JSON")
}

#[tokio::test]
async fn healthz_reports_key_and_upstream_without_the_key() {
    let stack = support::start(&[], &[], Some("nvapi-health-key")).await;
    let health = healthz(&stack).await;
    assert_eq!(health["ok"], true);
    assert_eq!(health["keyConfigured"], true);
    assert_eq!(health["requestKeysAccepted"], false);
    assert_eq!(health["upstream"]["reachable"], true, "{health}");
    assert!(!health.to_string().contains("nvapi-health-key"));
    let probes = stack.emulator.journal().len();
    healthz(&stack).await;
    assert_eq!(
        stack.emulator.journal().len(),
        probes,
        "the finding is cached"
    );
    assert!(
        stack
            .emulator
            .journal()
            .iter()
            .all(|s| s.authorization.is_none()),
        "probes carry no key"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let upstream = format!(
        "http://127.0.0.1:{}",
        closed.local_addr().expect("addr").port()
    );
    drop(closed);
    let stack = support::start(&[], &["--upstream", &upstream], None).await;
    let health = healthz(&stack).await;
    assert_eq!(health["keyConfigured"], false);
    assert_eq!(health["requestKeysAccepted"], true);
    assert_eq!(health["upstream"]["reachable"], false);
    assert!(health["upstream"]["detail"].is_string());
}

#[tokio::test]
async fn the_demo_is_served_with_the_right_types() {
    let root = TempDir::new("static");
    let dir = &root.0;
    std::fs::write(dir.join("index.html"), "<h1>florence2 demo</h1>").expect("write");
    std::fs::write(dir.join("florence2_bg.wasm"), b"\0asm\x01\0\0\0").expect("write");
    std::fs::write(dir.join("app.js"), "export {}").expect("write");
    let stack = support::start(
        &[],
        &["--static", dir.to_str().expect("utf-8 path")],
        Some("nvapi-static"),
    )
    .await;
    let get = |path: &str| {
        stack
            .client
            .get(format!("{}{path}", stack.proxy_url))
            .send()
    };
    let index = get("/").await.expect("answer");
    assert_eq!(index.status(), 200);
    assert!(
        index.headers()["content-type"]
            .to_str()
            .expect("text")
            .starts_with("text/html")
    );
    assert!(index.text().await.expect("text").contains("florence2 demo"));
    let wasm = get("/florence2_bg.wasm").await.expect("answer");
    assert_eq!(wasm.headers()["content-type"], "application/wasm");
    let js = get("/app.js").await.expect("answer");
    assert!(
        js.headers()["content-type"]
            .to_str()
            .expect("text")
            .contains("javascript")
    );
    let missing = get("/nope.js").await.expect("answer");
    let (status, error) = support::error_of(missing).await;
    assert_eq!((status, error["code"].as_str()), (404, Some("BAD_OPTION")));
    // The API still answers beside the static files.
    assert_eq!(
        stack
            .invoke(&body(Task::Caption, &data_url(&png(16, 16, 1))))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn model_folders_are_served_with_ranges_and_revalidated() {
    let root = TempDir::new("models");
    let models = root.0.join("models");
    let folder = models.join("tiny");
    std::fs::create_dir_all(&folder).expect("mkdir");
    let weights: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
    std::fs::write(folder.join("model.safetensors"), &weights).expect("write");
    std::fs::write(folder.join("config.json"), "{}").expect("write");
    std::fs::write(folder.join(".env"), "SECRET=1").expect("write");
    std::fs::write(root.0.join("outside.txt"), "not a model").expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc/hostname", folder.join("escape.json")).expect("symlink");
    let stack = support::start(
        &[],
        &["--models", models.to_str().expect("utf-8 path")],
        Some("nvapi-models"),
    )
    .await;
    let get = |path: &str| {
        stack
            .client
            .get(format!("{}{path}", stack.proxy_url))
            .send()
    };
    let whole = get("/models/tiny/model.safetensors").await.expect("answer");
    assert_eq!(whole.status(), 200);
    // Issue 33, item 16: revalidated (a folder may be replaced), never kept a year unasked.
    assert_eq!(whole.headers()["cache-control"], "no-cache");
    // Loadable by other origins' cross-origin isolated pages (issue 32); CORS still decides.
    assert_eq!(
        whole.headers()["cross-origin-resource-policy"],
        "cross-origin"
    );
    let etag = whole.headers()["etag"].clone();
    assert_eq!(whole.bytes().await.expect("body").as_ref(), &weights[..]);
    let again = stack
        .client
        .get(format!("{}/models/tiny/model.safetensors", stack.proxy_url))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .expect("answer");
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag);
    assert_eq!(again.headers()["cache-control"], "no-cache");
    // Replaced in place: a new tag, the new bytes.
    let newer: Vec<u8> = (0..=255u8).rev().cycle().take(10_001).collect();
    std::fs::write(folder.join("model.safetensors"), &newer).expect("write");
    let replaced = stack
        .client
        .get(format!("{}/models/tiny/model.safetensors", stack.proxy_url))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .expect("answer");
    assert_eq!(replaced.status(), 200);
    assert_ne!(replaced.headers()["etag"], etag);
    assert_eq!(replaced.bytes().await.expect("body").as_ref(), &newer[..]);
    // Florence2Local revalidates its cached folder with HEAD from the page's origin: the tag
    // must be readable there.
    let head = stack
        .client
        .head(format!("{}/models/tiny/model.safetensors", stack.proxy_url))
        .header("origin", "http://localhost:5173")
        .send()
        .await
        .expect("answer");
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "10001");
    assert!(head.headers().contains_key("etag"));
    let exposed = head.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    assert!(exposed.split(',').any(|h| h.trim() == "etag"), "{exposed}");
    std::fs::write(folder.join("model.safetensors"), &weights).expect("write");
    let part = stack
        .client
        .get(format!("{}/models/tiny/model.safetensors", stack.proxy_url))
        .header("range", "bytes=100-199")
        .send()
        .await
        .expect("answer");
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 100-199/10000");
    assert_eq!(
        part.bytes().await.expect("body").as_ref(),
        &weights[100..200]
    );
    for refused in [
        "/models/tiny/.env",
        "/models/tiny/escape.json",
        "/models/tiny/%2e%2e/%2e%2e/outside.txt",
        "/models/tiny/..%2f..%2foutside.txt",
        "/models/tiny/",
        "/models/nope/config.json",
    ] {
        let answer = get(refused).await.expect("answer");
        // 404 as if absent; an encoded slash is refused before routing (400).
        let status = answer.status().as_u16();
        assert!(status == 404 || status == 400, "{refused}: {status}");
        let text = answer.text().await.expect("body");
        assert!(
            !text.contains("not a model") && !text.contains("SECRET"),
            "{refused}: {text}"
        );
    }
}

#[tokio::test]
async fn without_a_demo_the_root_says_what_to_do() {
    for args in [vec![], vec!["--static", "/nonexistent/florence2/dist"]] {
        let stack = support::start(&[], &args, None).await;
        let page = stack
            .client
            .get(format!("{}/", stack.proxy_url))
            .send()
            .await
            .expect("answer");
        assert_eq!(page.status(), 200);
        let text = page.text().await.expect("text");
        assert!(
            text.contains("cargo xtask demo") && text.contains("--static"),
            "{text}"
        );
    }
}

async fn preflight(stack: &support::Stack, origin: &str) -> Option<String> {
    let response = stack
        .client
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/vlm/microsoft/florence-2", stack.proxy_url),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, x-api-key")
        .send()
        .await
        .expect("answer");
    let allowed = response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().expect("text").to_owned());
    if allowed.is_some() {
        let headers = response.headers()["access-control-allow-headers"]
            .to_str()
            .expect("text")
            .to_ascii_lowercase();
        assert!(
            headers.contains("x-api-key") && headers.contains("content-type"),
            "{headers}"
        );
    }
    allowed
}

#[tokio::test]
async fn cors_allows_local_and_configured_origins_only() {
    let stack = support::start(&[], &[], None).await;
    for origin in [
        "http://localhost:5173",
        "http://127.0.0.1:8000",
        "http://[::1]:3000",
    ] {
        assert_eq!(preflight(&stack, origin).await.as_deref(), Some(origin));
    }
    let same = format!("http://{}", stack.proxy_addr);
    assert_eq!(
        preflight(&stack, &same).await,
        Some(same.clone()),
        "same origin"
    );
    for origin in [
        "http://evil.example",
        "https://localhost.evil.example",
        "null",
    ] {
        assert_eq!(preflight(&stack, origin).await, None, "{origin}");
    }
    let stack = support::start(
        &[],
        &[
            "--allow-origin",
            "https://demo.example.org",
            "--allow-origin",
            "http://lab.example:*",
        ],
        None,
    )
    .await;
    assert_eq!(
        preflight(&stack, "https://demo.example.org")
            .await
            .as_deref(),
        Some("https://demo.example.org")
    );
    assert_eq!(
        preflight(&stack, "http://lab.example:9999")
            .await
            .as_deref(),
        Some("http://lab.example:9999")
    );
    assert_eq!(
        preflight(&stack, "http://localhost:5173").await,
        None,
        "flags replace the defaults"
    );
    // A real request from an allowed origin gets the header too, errors included.
    let response = stack
        .client
        .get(format!("{}/v1/nope", stack.proxy_url))
        .header("origin", "https://demo.example.org")
        .send()
        .await
        .expect("answer");
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://demo.example.org"
    );
}
