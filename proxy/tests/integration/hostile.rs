//! Hostile requests and hostile upstream answers: nothing reaches anything but the configured
//! upstream, and every refusal is a typed error.

use florence2::Task;
use nvcf_emulator::Fault;

use crate::support::{self, Canary, TempDir, body, data_url, error_of, png, raw};

const JSON_BODY: &str = r#"{"messages":[{"role":"user","content":"<CAPTION><img src=\"data:image/png;base64,AA==\" />"}]}"#;

#[tokio::test]
async fn absolute_form_targets_are_refused_and_go_nowhere() {
    let stack = support::start(&[], &[], Some("nvapi-hostile")).await;
    let canary = Canary::start().await;
    for method in ["POST", "GET"] {
        let request = format!(
            "{method} http://{}/v1/vlm/microsoft/florence-2 HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{JSON_BODY}",
            canary.addr,
            canary.addr,
            JSON_BODY.len()
        );
        let (status, body) = raw(stack.proxy_addr, &request).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body.contains("BAD_OPTION") && body.contains("absolute-form"),
            "{body}"
        );
    }
    let (status, _) = raw(
        stack.proxy_addr,
        &format!(
            "CONNECT {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            canary.addr, canary.addr
        ),
    )
    .await;
    assert!(status == 405 || status == 400, "CONNECT answered {status}");
    assert_eq!(canary.hits(), 0);
    assert!(stack.emulator.journal().is_empty());
}

#[tokio::test]
async fn traversal_paths_are_refused() {
    // root/secret.txt beside root/static/, which is served.
    let root = TempDir::new("traversal");
    let dir = root.0.join("static");
    std::fs::create_dir_all(&dir).expect("static dir");
    std::fs::write(dir.join("index.html"), "<h1>demo</h1>").expect("write");
    std::fs::write(root.0.join("secret.txt"), "TOP-SECRET-CONTENT").expect("write");
    let stack = support::start(
        &[],
        &["--static", dir.to_str().expect("utf-8 path")],
        Some("nvapi-dots"),
    )
    .await;
    let secret = "secret.txt";
    for path in [
        format!("/../{secret}"),
        format!("/%2e%2e/{secret}"),
        format!("/%2E%2E%2F{secret}"),
        format!("/x/..%2f..%2f{secret}"),
        format!("/%252e%252e/{secret}"),
        format!("/..\\{secret}"),
        "/v1/../healthz".to_owned(),
    ] {
        let (status, body) = raw(
            stack.proxy_addr,
            &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(status == 400, "{path}: {status} {body}");
        assert!(!body.contains("TOP-SECRET-CONTENT"), "{path}: {body}");
    }
}

#[tokio::test]
async fn oversized_bodies_are_image_too_large() {
    let stack = support::start(&[], &["--rate-limit", "0"], Some("nvapi-big")).await;
    let url = format!("{}/v1/vlm/microsoft/florence-2", stack.proxy_url);
    let big_json = format!(
        r#"{{"messages":[{{"role":"user","content":"{}"}}]}}"#,
        "a".repeat(5 * 1024 * 1024)
    );
    let response = stack
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body(big_json.clone())
        .send()
        .await
        .expect("answer");
    let (status, error) = error_of(response).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (413, Some("IMAGE_TOO_LARGE"))
    );
    // Without Content-Length (chunked), the limit holds while reading.
    let (status, body) = chunked_post(
        stack.proxy_addr,
        "/v1/vlm/microsoft/florence-2",
        big_json.as_bytes(),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("IMAGE_TOO_LARGE"), "{body}");
    let response = stack
        .client
        .post(format!("{}/v1/assets", stack.proxy_url))
        .header("content-type", "image/png")
        .body(vec![0u8; 25 * 1024 * 1024 + 1])
        .send()
        .await
        .expect("answer");
    let (status, error) = error_of(response).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (413, Some("IMAGE_TOO_LARGE"))
    );
    assert!(stack.emulator.journal().is_empty());
}

/// POSTs `body` with chunked transfer encoding, reading the answer while writing (the server
/// may answer before it has read everything).
async fn chunked_post(addr: std::net::SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut framed = head.into_bytes();
    for chunk in body.chunks(256 * 1024) {
        framed.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        framed.extend_from_slice(chunk);
        framed.extend_from_slice(b"\r\n");
    }
    framed.extend_from_slice(b"0\r\n\r\n");
    let write = tokio::spawn(async move {
        let _ = writer.write_all(&framed).await;
        writer
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        reader.read_to_end(&mut answer),
    )
    .await;
    drop(write.await);
    let text = String::from_utf8_lossy(&answer).into_owned();
    (
        text.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        text,
    )
}

#[tokio::test]
async fn wrong_content_types_are_refused() {
    let stack = support::start(&[], &["--rate-limit", "0"], Some("nvapi-ct")).await;
    let post = |path: &str, ct: Option<&str>, body: Vec<u8>| {
        let mut request = stack
            .client
            .post(format!("{}{path}", stack.proxy_url))
            .body(body);
        if let Some(ct) = ct {
            request = request.header("content-type", ct);
        }
        request.send()
    };
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let (status, error) = error_of(
            post("/v1/vlm/microsoft/florence-2", ct, JSON_BODY.into())
                .await
                .expect("answer"),
        )
        .await;
        assert_eq!(
            (status, error["code"].as_str()),
            (415, Some("BAD_OPTION")),
            "{ct:?}"
        );
    }
    for ct in [
        Some("application/json"),
        Some("image/png\r"),
        Some("image/"),
        Some("text/html"),
        None,
    ] {
        let response = post("/v1/assets", ct, png(8, 8, 0)).await;
        let Ok(response) = response else { continue }; // a header value the client itself refuses
        let (status, error) = error_of(response).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (415, Some("BAD_OPTION")),
            "{ct:?}"
        );
    }
    let (status, error) = error_of(
        post("/v1/assets", Some("image/png"), Vec::new())
            .await
            .expect("answer"),
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("IMAGE_DECODE"))
    );
    assert!(stack.emulator.journal().is_empty());
}

#[tokio::test]
async fn a_host_header_pointing_elsewhere_goes_nowhere_else() {
    let stack = support::start(&[], &[], Some("nvapi-host")).await;
    let canary = Canary::start().await;
    let json = body(Task::Caption, &data_url(&png(16, 16, 1))).to_string();
    let request = |host: &str| {
        format!(
            "POST /v1/vlm/microsoft/florence-2 HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
            json.len()
        )
    };
    // Another loopback port: still this machine; served, and only to the upstream.
    let (status, _) = raw(stack.proxy_addr, &request(&canary.addr.to_string())).await;
    assert_eq!(status, 200);
    let invokes = stack.seen("/v1/vlm");
    assert_eq!(invokes.len(), 1);
    assert_eq!(
        invokes[0].host.as_deref(),
        Some(stack.emulator_url.trim_start_matches("http://")),
        "the upstream got its own Host"
    );
    // A foreign name (DNS rebinding): refused on a loopback proxy.
    for host in ["evil.example", "evil.example:80", "localhost.evil.example"] {
        let (status, body) = raw(stack.proxy_addr, &request(host)).await;
        assert_eq!(status, 421, "{host}: {body}");
        assert!(
            body.contains("BAD_OPTION") && body.contains("--allow-host"),
            "{body}"
        );
    }
    assert_eq!(stack.seen("/v1/vlm").len(), 1);
    assert_eq!(canary.hits(), 0);
    // Told otherwise, it answers to that name.
    let stack = support::start(&[], &["--allow-host", "demo.example"], Some("nvapi-host")).await;
    assert_eq!(
        raw(stack.proxy_addr, &request("demo.example:8080")).await.0,
        200
    );
    assert_eq!(raw(stack.proxy_addr, &request("127.0.0.1")).await.0, 421);
}

#[tokio::test]
async fn forged_locations_and_upload_urls_are_not_followed() {
    let canary = Canary::start().await;
    let forged = [
        format!("location=http://{}/steal", canary.addr),
        format!("location=https://{}/steal", canary.addr),
        format!("location=http://localhost:{}/steal", canary.addr.port()),
        "location=file:///etc/passwd".to_owned(),
        format!("chain=2; location=http://{}/steal", canary.addr),
    ];
    let stack = support::start(&[], &["--rate-limit", "0"], Some("nvapi-forged")).await;
    stack
        .emulator
        .push_faults(forged.iter().map(|f| Fault::parse(f).expect("fault")));
    for f in &forged {
        let (status, error) = error_of(
            stack
                .invoke(&body(Task::ObjectDetection, &data_url(&png(16, 16, 1))))
                .await,
        )
        .await;
        assert_eq!(
            (status, error["code"].as_str()),
            (502, Some("UPSTREAM")),
            "{f}: {error}"
        );
        assert!(
            error["message"]
                .as_str()
                .expect("message")
                .contains("refusing to follow"),
            "{f}: {error}"
        );
    }
    let upload_url = format!("upload-url=http://{}/put", canary.addr);
    let stack = support::start(&[], &[], Some("nvapi-forged")).await;
    stack
        .emulator
        .push_faults([Fault::parse(&upload_url).expect("fault")]);
    let response = stack
        .client
        .post(format!("{}/v1/assets", stack.proxy_url))
        .header("content-type", "image/png")
        .body(png(8, 8, 1))
        .send()
        .await
        .expect("answer");
    let (status, error) = error_of(response).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (502, Some("UPSTREAM")),
        "{error}"
    );
    assert_eq!(canary.hits(), 0, "nothing reached the forged host");
}

#[tokio::test]
async fn a_hostile_request_id_is_not_polled() {
    let stack = support::start(&[], &[], Some("nvapi-reqid")).await;
    stack.emulator.push_faults(
        [
            "chain=1; req-id=../../v2/nvcf/assets",
            "chain=1; req-id=a b",
        ]
        .map(|f| Fault::parse(f).expect("fault")),
    );
    for _ in 0..2 {
        let (status, error) = error_of(
            stack
                .invoke(&body(Task::Caption, &data_url(&png(16, 16, 1))))
                .await,
        )
        .await;
        assert_eq!(
            (status, error["code"].as_str()),
            (502, Some("UPSTREAM")),
            "{error}"
        );
    }
    assert_eq!(
        stack.emulator.journal().len(),
        2,
        "only the two invokes reached the upstream"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_typed_errors() {
    let stack = support::start(&[], &[], Some("nvapi-routes")).await;
    for (method, path, expect) in [
        (reqwest::Method::GET, "/v1/unknown", 404),
        (reqwest::Method::POST, "/v2/nvcf/pexec/status/x", 404),
        (reqwest::Method::GET, "/v2/nvcf/assets", 405),
        (reqwest::Method::GET, "/v1/vlm/microsoft/florence-2", 405),
        (reqwest::Method::DELETE, "/v1/assets", 405),
        (reqwest::Method::POST, "/healthz", 405),
    ] {
        let response = stack
            .client
            .request(method.clone(), format!("{}{path}", stack.proxy_url))
            .send()
            .await
            .expect("answer");
        let (status, error) = error_of(response).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (expect, Some("BAD_OPTION")),
            "{method} {path}"
        );
    }
    assert!(stack.emulator.journal().is_empty());
}
