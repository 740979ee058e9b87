//! The proxy under abuse (issue 12 §1), in process: every client hostile. Redaction before
//! any cut, hand-off names, DNS rebinding on a public address, panics, response headers,
//! dotfiles and symlinks, per-client keys (IPv6 /64, trusted proxies), connection caps, and a
//! request's malformed key beside the proxy's own.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use clap::Parser;
use florence2::Task;
use florence2::request::Invocation;
use florence2_proxy::backend::{AssetUpload, BoxFuture, CallContext, Health};
use florence2_proxy::{ApiKey, Backend, Config};
use nvcf_emulator::Fault;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::support::{self, Canary, TempDir, body, data_url, error_of, png, raw};

fn config(args: &[&str], key: Option<&str>) -> Config {
    let mut config =
        Config::try_parse_from(std::iter::once("florence2-proxy").chain(args.iter().copied()))
            .expect("flags parse");
    config.api_key = key.map(|k| ApiKey::parse(k, "test key").expect("valid key"));
    config
}

/// Serves `config` with `backend` on `bind`; answers the address (stopped with the runtime).
async fn serve_on(bind: &str, config: Config, backend: Option<Arc<dyn Backend>>) -> SocketAddr {
    support::capture_logs();
    florence2_proxy::tls::install_crypto_provider();
    let listener = TcpListener::bind(bind).await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let never = std::future::pending::<()>();
        let result = match backend {
            Some(backend) => {
                florence2_proxy::serve_backend(&config, backend, listener, never).await
            }
            None => florence2_proxy::serve_until(config, listener, never).await,
        };
        if let Err(e) = result {
            eprintln!("proxy stopped: {e}");
        }
    });
    addr
}

/// A client whose connections come from `source` (any of 127.0.0.0/8 on loopback).
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(source.parse::<IpAddr>().expect("address"))
        .build()
        .expect("client")
}

#[tokio::test]
async fn a_malformed_request_key_is_ignored_when_the_proxy_holds_one() {
    let stack = support::start(&[], &["--rate-limit", "0"], Some("nvapi-OWN-KEY-1")).await;
    for bad in ["nvapi-BAD KEY-31", "", &"k".repeat(600)] {
        let response = stack
            .client
            .post(format!("{}/v1/vlm/microsoft/florence-2", stack.proxy_url))
            .header("x-api-key", bad)
            .json(&body(Task::Caption, &data_url(&png(8, 8, 0))))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 200, "X-Api-Key {bad:?}");
    }
    for seen in stack.seen("/v1/vlm") {
        assert_eq!(
            seen.authorization.as_deref(),
            Some("Bearer nvapi-OWN-KEY-1")
        );
    }
}

/// An upstream that answers every request 500, `text/plain`, with the bearer key it got
/// echoed after as many `x` as requests it has answered before.
async fn echoing_upstream() -> String {
    let answered = Arc::new(AtomicUsize::new(0));
    let app = Router::new().fallback(move |headers: HeaderMap| {
        let offset = answered.fetch_add(1, Ordering::SeqCst);
        async move {
            let key = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .trim_start_matches("Bearer ")
                .to_owned();
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain")],
                format!("{}{key}{}", "x".repeat(offset), "y".repeat(300)),
            )
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn the_key_is_redacted_before_an_error_body_is_cut_at_every_offset() {
    const KEY: &str = "KQZ-S3CR3T-ST4DDL-K3Y-9W";
    let upstream = echoing_upstream().await;
    let stack = support::start(
        &[],
        &[
            "--upstream",
            &upstream,
            "--rate-limit",
            "0",
            "--max-retries",
            "0",
        ],
        Some(KEY),
    )
    .await;
    let request = body(Task::Caption, &data_url(&png(8, 8, 0)));
    // florence2 quotes 200 bytes of a non-JSON body: offsets 0..=230 put the key before,
    // across and after that cut.
    for offset in 0..=230 {
        let (status, error) = error_of(stack.invoke(&request).await).await;
        assert_eq!(status, 502, "offset {offset}");
        let message = error["message"].as_str().expect("message");
        assert!(
            message.contains("xx") || offset < 2,
            "offset {offset}: {message}"
        );
        for len in 4..=KEY.len() {
            for start in 0..=KEY.len() - len {
                let piece = &KEY[start..start + len];
                assert!(
                    !message.contains(piece),
                    "offset {offset}: {piece:?} of the key is in {message:?}"
                );
            }
        }
    }
}

#[tokio::test]
async fn trailing_dot_and_local_handoff_names_are_refused_and_never_contacted() {
    let canary = Canary::start().await;
    let port = canary.addr.port();
    let forged = [
        format!("location=https://localhost.:{port}/steal"),
        format!("location=https://LocalHost.:{port}/steal"),
        format!("location=https://x.localhost.:{port}/steal"),
        format!("chain=1; location=https://localhost.:{port}/steal"),
    ];
    let stack = support::start(&[], &["--rate-limit", "0"], Some("nvapi-dots")).await;
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
    stack
        .emulator
        .push_faults([
            Fault::parse(&format!("upload-url=https://localhost.:{port}/put")).expect("fault"),
        ]);
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
async fn a_handoff_hosts_error_body_is_never_quoted() {
    let stack = support::start(&[], &["--rate-limit", "0"], Some("nvapi-quote")).await;
    // A result location on the upstream's own origin (allowed) that answers a 404 problem.
    stack.emulator.push_faults([Fault::parse(&format!(
        "location={}/s3/results/forged-token",
        stack.emulator_url
    ))
    .expect("fault")]);
    let (status, error) = error_of(
        stack
            .invoke(&body(Task::ObjectDetection, &data_url(&png(16, 16, 1))))
            .await,
    )
    .await;
    let message = error["message"].as_str().expect("message");
    assert_eq!(
        (status, error["code"].as_str()),
        (502, Some("UPSTREAM")),
        "{error}"
    );
    assert!(message.contains("404"), "{message}");
    assert!(
        !message.contains("no such result"),
        "the host's body is quoted: {message}"
    );
}

#[tokio::test]
async fn a_public_listener_holding_a_key_refuses_dns_names_by_default() {
    let addr = serve_on(
        "0.0.0.0:0",
        config(
            &[
                "--upstream",
                "http://127.0.0.1:9",
                "--assets-upstream",
                "http://127.0.0.1:9",
            ],
            Some("nvapi-rebind"),
        ),
        None,
    )
    .await;
    let local = SocketAddr::from(([127, 0, 0, 1], addr.port()));
    let get =
        |host: &str| format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    for host in [
        "evil.example",
        "evil.example:80",
        "rebound.example.",
        "localhost.evil.example",
    ] {
        let (status, body) = raw(local, &get(host)).await;
        assert_eq!(status, 421, "{host}: {body}");
        assert!(body.contains("--allow-host"), "{body}");
    }
    for host in [
        format!("127.0.0.1:{}", addr.port()),
        "localhost".into(),
        "192.0.2.7".into(),
    ] {
        assert_eq!(raw(local, &get(&host)).await.0, 200, "{host}");
    }
    assert!(
        support::logs().contains("answering Host names"),
        "the start says so"
    );
    // Told a name, it answers to it.
    let named = serve_on(
        "0.0.0.0:0",
        config(
            &[
                "--upstream",
                "http://127.0.0.1:9",
                "--assets-upstream",
                "http://127.0.0.1:9",
                "--allow-host",
                "demo.example",
            ],
            Some("nvapi-rebind"),
        ),
        None,
    )
    .await;
    let named = SocketAddr::from(([127, 0, 0, 1], named.port()));
    assert_eq!(raw(named, &get("demo.example")).await.0, 200);
    assert_eq!(raw(named, &get("evil.example")).await.0, 421);
}

/// A backend whose every inference panics (a bug in a model, say).
struct Panicking;

impl Backend for Panicking {
    fn invoke(&self, _: Invocation, _: CallContext) -> BoxFuture<'_, florence2::Result<Bytes>> {
        Box::pin(async { panic!("a bug in the backend") })
    }

    fn upload_asset(
        &self,
        _: AssetUpload,
        _: CallContext,
    ) -> BoxFuture<'_, florence2::Result<String>> {
        Box::pin(async { Ok("never".to_owned()) })
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(async {
            Health {
                backend: "panicking",
                key_configured: true,
                request_keys_accepted: false,
                upstream: None,
                model: None,
                queue: None,
            }
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_that_requests_500_and_the_server_serves_on() {
    let addr = serve_on(
        "127.0.0.1:0",
        config(&["--rate-limit", "0"], Some("nvapi-panic")),
        Some(Arc::new(Panicking)),
    )
    .await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let request = body(Task::Caption, &data_url(&png(8, 8, 0)));
    for _ in 0..3 {
        let response = client
            .post(format!("http://{addr}/v1/vlm/microsoft/florence-2"))
            .json(&request)
            .send()
            .await
            .expect("an answer, not a dropped connection");
        assert!(response.headers().contains_key("x-request-id"));
        let (status, error) = error_of(response).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (500, Some("UPSTREAM")),
            "{error}"
        );
        assert!(
            error["message"]
                .as_str()
                .expect("message")
                .contains("internal error")
        );
        let health = client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .expect("answer");
        assert_eq!(health.status(), 200, "the server still serves");
    }
    assert!(support::logs().contains("a request handler panicked"));
}

#[tokio::test]
async fn answers_carry_security_headers_and_the_demo_may_run_its_boot_script() {
    let dir = TempDir::new("headers");
    let boot = "\n    import init from \"./demo.js\";\n    init();\n  ";
    std::fs::write(
        dir.0.join("index.html"),
        format!(
            "<!doctype html><script type=\"module\">{boot}</script><script src=\"./x.js\"></script>"
        ),
    )
    .expect("write");
    let stack = support::start(&[], &["--static", dir.0.to_str().expect("utf-8")], None).await;
    let page = stack
        .client
        .get(format!("{}/", stack.proxy_url))
        .send()
        .await
        .expect("answer");
    assert_eq!(page.status(), 200);
    let h = page.headers();
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    // Cross-origin isolated, so that the local runtime may run threads (issue 32).
    assert_eq!(h["cross-origin-opener-policy"], "same-origin");
    assert_eq!(h["cross-origin-embedder-policy"], "require-corp");
    let csp = h["content-security-policy"]
        .to_str()
        .expect("text")
        .to_owned();
    use base64::Engine;
    let hash = base64::engine::general_purpose::STANDARD
        .encode(ring::digest::digest(&ring::digest::SHA256, boot.as_bytes()).as_ref());
    for needed in [
        "default-src 'none'",
        "'wasm-unsafe-eval'",
        &format!("'sha256-{hash}'"),
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(needed), "{needed} missing from {csp}");
    }
    assert!(!csp.contains("'unsafe-eval'"), "{csp}");
    let script_src = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .expect("script-src");
    assert!(!script_src.contains("'unsafe-inline'"), "{script_src}");
    // API answers and errors too.
    for path in ["/healthz", "/v1/nope"] {
        let answer = stack
            .client
            .get(format!("{}{path}", stack.proxy_url))
            .send()
            .await
            .expect("answer");
        assert_eq!(
            answer.headers()["x-content-type-options"],
            "nosniff",
            "{path}"
        );
        assert!(
            answer.headers()["content-security-policy"]
                .to_str()
                .expect("text")
                .contains("frame-ancestors 'none'"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn dotfiles_and_symlinks_out_of_the_static_root_are_not_served() {
    let root = TempDir::new("dotfiles");
    let dir = root.0.join("static");
    let outside = root.0.join("outside");
    std::fs::create_dir_all(dir.join(".git")).expect("dir");
    std::fs::create_dir_all(dir.join("sub")).expect("dir");
    std::fs::create_dir_all(&outside).expect("dir");
    std::fs::write(dir.join("index.html"), "<h1>demo</h1>").expect("write");
    std::fs::write(dir.join("sub/ok.txt"), "fine").expect("write");
    std::fs::write(dir.join(".env"), "SECRET-DOTENV").expect("write");
    std::fs::write(dir.join(".git/config"), "SECRET-GIT").expect("write");
    std::fs::write(outside.join("secret.txt"), "SECRET-OUTSIDE").expect("write");
    std::fs::write(outside.join("index.html"), "SECRET-OUTSIDE-INDEX").expect("write");
    std::os::unix::fs::symlink(outside.join("secret.txt"), dir.join("leak.txt")).expect("link");
    std::os::unix::fs::symlink(&outside, dir.join("elsewhere")).expect("link");
    std::fs::create_dir_all(dir.join("inner")).expect("dir");
    std::os::unix::fs::symlink(outside.join("index.html"), dir.join("inner/index.html"))
        .expect("link");
    std::os::unix::fs::symlink(dir.join("sub/ok.txt"), dir.join("alias.txt")).expect("link");
    let stack = support::start(&[], &["--static", dir.to_str().expect("utf-8")], None).await;
    for path in [
        "/.env",
        "/%2eenv",
        "/.git/config",
        "/leak.txt",
        "/elsewhere/secret.txt",
        "/elsewhere/",
        "/inner/",
    ] {
        let answer = stack
            .client
            .get(format!("{}{path}", stack.proxy_url))
            .send()
            .await
            .expect("answer");
        let status = answer.status().as_u16();
        let text = answer.text().await.expect("text");
        assert_eq!(status, 404, "{path}: {text}");
        assert!(!text.contains("SECRET"), "{path}: {text}");
    }
    for (path, expect) in [
        ("/sub/ok.txt", "fine"),
        ("/alias.txt", "fine"),
        ("/", "demo"),
    ] {
        let answer = stack
            .client
            .get(format!("{}{path}", stack.proxy_url))
            .send()
            .await
            .expect("answer");
        assert_eq!(answer.status(), 200, "{path}");
        assert!(
            answer.text().await.expect("text").contains(expect),
            "{path}"
        );
    }
}

#[tokio::test]
async fn ipv6_clients_share_a_bucket_per_64_and_forwarded_addresses_count_only_from_trusted_proxies()
 {
    let stack = support::start(
        &[],
        &[
            "--trusted-proxy",
            "127.0.0.1/32",
            "--rate-limit",
            "60",
            "--rate-burst",
            "1",
        ],
        Some("nvapi-v6"),
    )
    .await;
    let request = body(Task::Caption, &data_url(&png(8, 8, 0)));
    let invoke = |forwarded: &'static str, client: reqwest::Client, url: String| {
        let request = request.clone();
        async move {
            client
                .post(format!("{url}/v1/vlm/microsoft/florence-2"))
                .header("x-forwarded-for", forwarded)
                .json(&request)
                .send()
                .await
                .expect("answer")
                .status()
                .as_u16()
        }
    };
    let c = || stack.client.clone();
    let url = stack.proxy_url.clone();
    assert_eq!(invoke("2001:db8:0:1::1", c(), url.clone()).await, 200);
    assert_eq!(
        invoke("2001:db8:0:1:ffff::2", c(), url.clone()).await,
        429,
        "same /64"
    );
    assert_eq!(
        invoke("2001:db8:0:2::1", c(), url.clone()).await,
        200,
        "another /64"
    );
    // The client's own entries (left of the proxy's) prove nothing.
    assert_eq!(
        invoke("203.0.113.1, 2001:db8:0:2::9", c(), url.clone()).await,
        429
    );
    assert_eq!(invoke("203.0.113.2", c(), url.clone()).await, 200);
    // From an address that is not a trusted proxy, X-Forwarded-For is ignored.
    let other = client_from("127.0.0.2");
    assert_eq!(
        invoke("198.51.100.1", other.clone(), url.clone()).await,
        200
    );
    assert_eq!(
        invoke("198.51.100.2", other, url).await,
        429,
        "one bucket: 127.0.0.2's"
    );
}

/// Opens an idle connection from `source` to `addr`.
async fn connect_from(source: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::new(source.parse().expect("address"), 0))
        .expect("bind");
    socket.connect(addr).await.expect("connect")
}

/// Whether the server closed `stream` (EOF or reset) within `within`.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(within, stream.read(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

/// One request on a fresh connection from `source`; `None` when unanswered within `within`.
async fn healthz_from(source: &str, addr: SocketAddr, within: Duration) -> Option<u16> {
    let mut stream = connect_from(source, addr).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut answer))
        .await
        .ok()?
        .ok()?;
    String::from_utf8_lossy(&answer)
        .split(' ')
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::test]
async fn one_client_cannot_take_every_connection_and_the_total_is_capped() {
    // 8 connections, at most 2 per client address.
    let stack = support::start(&[], &["--max-connections", "8"], Some("nvapi-conns")).await;
    let addr = stack.proxy_addr;
    let settle = || tokio::time::sleep(Duration::from_millis(200));
    let mut a = Vec::new();
    for _ in 0..2 {
        a.push(connect_from("127.0.0.1", addr).await);
    }
    settle().await;
    let mut third = connect_from("127.0.0.1", addr).await;
    assert!(
        closed_by_server(&mut third, Duration::from_secs(2)).await,
        "a's third is closed"
    );
    for held in &mut a {
        assert!(
            !closed_by_server(held, Duration::from_millis(100)).await,
            "a keeps two"
        );
    }
    // Others are served meanwhile.
    assert_eq!(
        healthz_from("127.0.0.2", addr, Duration::from_secs(5)).await,
        Some(200)
    );
    // Fill the cap: a holds 2, three more clients 2 each.
    let mut others = Vec::new();
    for source in ["127.0.0.3", "127.0.0.4", "127.0.0.5"] {
        for _ in 0..2 {
            others.push(connect_from(source, addr).await);
        }
    }
    settle().await;
    let waiting = tokio::spawn(healthz_from("127.0.0.6", addr, Duration::from_secs(10)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "past the cap, a new connection waits"
    );
    drop(a.pop());
    assert_eq!(
        waiting.await.expect("task"),
        Some(200),
        "served once one closes"
    );
}

/// A backend whose every inference answers 40 MB.
struct BigAnswer;

const BIG: usize = 40 * 1024 * 1024;

impl Backend for BigAnswer {
    fn invoke(&self, _: Invocation, _: CallContext) -> BoxFuture<'_, florence2::Result<Bytes>> {
        Box::pin(async { Ok(Bytes::from(vec![0x50u8; BIG])) })
    }

    fn upload_asset(
        &self,
        _: AssetUpload,
        _: CallContext,
    ) -> BoxFuture<'_, florence2::Result<String>> {
        Box::pin(async { Ok("never".to_owned()) })
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Panicking.health()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_a_client_does_not_drain_stays_in_the_memory_budget() {
    let addr = serve_on(
        "127.0.0.1:0",
        config(
            &[
                "--memory-budget",
                "32",
                "--rate-limit",
                "0",
                "--timeout",
                "3",
            ],
            Some("nvapi-drain"),
        ),
        Some(Arc::new(BigAnswer)),
    )
    .await;
    let request = body(Task::Caption, &data_url(&png(8, 8, 0))).to_string();
    // 127.0.0.1 asks for a 40 MB answer and does not read it.
    let mut slow = connect_from("127.0.0.1", addr).await;
    slow.write_all(
        format!(
            "POST /v1/vlm/microsoft/florence-2 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{request}",
            request.len()
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    // Once its answer has begun, the answer is counted: read just the head, no further.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            slow.read(&mut byte).await.expect("read"),
            1,
            "the answer's head"
        );
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    // Its answer holds more than the 32 MB budget: another client waits (here until its
    // --timeout), rather than adding 40 MB more.
    let other = client_from("127.0.0.2");
    let url = format!("http://{addr}/v1/vlm/microsoft/florence-2");
    let post = || {
        other
            .post(&url)
            .header("content-type", "application/json")
            .body(request.clone())
            .send()
    };
    let (status, error) = error_of(post().await.expect("answer")).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (504, Some("TIMEOUT")),
        "{error}"
    );
    // Once drained, the budget is free again.
    let mut drained = 0;
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = vec![0u8; 1024 * 1024];
        while drained < BIG {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => drained += n,
            }
        }
    })
    .await
    .expect("drained in time");
    assert_eq!(drained, BIG, "the whole answer");
    let answer = post().await.expect("answer");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.bytes().await.expect("body").len(), BIG);
}

#[tokio::test]
async fn an_upstream_named_on_loopback_is_still_reached_through_the_public_only_resolver() {
    // The resolver drops loopback addresses for every name but the configured upstreams':
    // the emulator, reached as `localhost`, must still answer.
    let stack = support::start(&[], &[], Some("nvapi-named")).await;
    let port = stack.emulator_url.rsplit(':').next().expect("port");
    let upstream = format!("http://localhost:{port}");
    let addr = serve_on(
        "127.0.0.1:0",
        config(
            &["--upstream", &upstream, "--assets-upstream", &upstream],
            Some("nvapi-named"),
        ),
        None,
    )
    .await;
    let answer = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("http://{addr}/v1/vlm/microsoft/florence-2"))
        .json(&body(Task::Caption, &data_url(&png(8, 8, 0))))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), 200);
    assert_eq!(
        stack.seen("/v1/vlm")[0].host.as_deref(),
        Some(format!("localhost:{port}").as_str())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_send_no_head_in_time_give_their_place_back() {
    let stack = support::start(&[], &["--head-timeout", "1"], Some("nvapi-slowloris")).await;
    let addr = stack.proxy_addr;
    // Silent from the start.
    let mut silent = connect_from("127.0.0.1", addr).await;
    assert!(!closed_by_server(&mut silent, Duration::from_millis(300)).await);
    assert!(
        closed_by_server(&mut silent, Duration::from_secs(3)).await,
        "silent"
    );
    // A header line every 300 ms, never the end of the head.
    let started = std::time::Instant::now();
    let (mut reader, mut writer) = connect_from("127.0.0.1", addr).await.into_split();
    let drip = tokio::spawn(async move {
        let _ = writer
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")
            .await;
        for i in 0..30 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if writer
                .write_all(format!("x-drip-{i}: 1\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let mut buf = [0u8; 512];
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match reader.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                // hyper may say 408 first; what counts is that the connection ends.
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "a dripping head keeps its connection");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    drip.abort();
    // Idle after an answer (keep-alive): closed too.
    let mut kept = connect_from("127.0.0.1", addr).await;
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut answer = [0u8; 4096];
    let n = kept.read(&mut answer).await.expect("answer");
    assert!(
        answer[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..n])
    );
    assert!(
        closed_by_server(&mut kept, Duration::from_secs(4)).await,
        "idle keep-alive"
    );
}
