//! Upload URLs from `POST /v2/nvcf/assets` as NVCF's presigned URLs behave: one upload, the
//! declared headers only, a short life, a size cap; every refusal typed in NVIDIA's
//! problem-details shape (with ours beside it). Assets belong to the client token that
//! uploaded them. And a backend that keeps no assets gets the bytes inline.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use florence2::request::{ImageRef, Invocation};
use florence2_proxy::backend::{
    AssetCustody, AssetUpload, Backend, BoxFuture, CallContext, Health,
};
use florence2_proxy::{Config, ServeError};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::nim::{Failure, NimClient, TOKEN_A, TOKEN_B, token_file};
use crate::support::{self, png};

/// The problem's kind (the end of its `type`), checked to carry both shapes.
fn kind(f: &Failure) -> &str {
    let body = &f.body;
    assert_eq!(body["status"].as_u64(), Some(u64::from(f.status)), "{body}");
    assert!(
        body["title"].is_string() && body["detail"].is_string(),
        "{body}"
    );
    assert!(body["error"]["code"].is_string(), "{body}");
    body["type"]
        .as_str()
        .and_then(|t| t.strip_prefix("urn:florence2-proxy:problem-details:"))
        .unwrap_or_else(|| panic!("problem type: {body}"))
}

#[tokio::test]
async fn upload_urls_take_one_upload_of_the_declared_kind() {
    let stack = support::start(&[], &["--rate-limit", "0"], Some("nvapi-uploads")).await;
    let nim = NimClient::new(&stack.proxy_url, "ignored");
    let image = png(32, 32, 2);
    let (url, _id) = nim
        .create_asset("image/png", "a test card")
        .await
        .expect("created");

    let f = nim
        .put(&url, image.clone(), "image/jpeg", "a test card")
        .await
        .unwrap_err();
    assert_eq!((f.status, kind(&f)), (403, "signature-does-not-match"));
    assert!(
        f.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("content-type")
    );
    let f = nim
        .put(&url, image.clone(), "image/png", "another card")
        .await
        .unwrap_err();
    assert_eq!((f.status, kind(&f)), (403, "signature-does-not-match"));
    assert!(
        f.body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("x-amz-meta-nvcf-asset-description")
    );
    let f = nim
        .put(&url, Vec::new(), "image/png", "a test card")
        .await
        .unwrap_err();
    assert_eq!(
        (f.status, kind(&f), f.body["error"]["code"].as_str()),
        (400, "empty-upload", Some("IMAGE_DECODE"))
    );
    assert!(
        stack.seen("/s3/assets/").is_empty(),
        "refused uploads go nowhere"
    );

    // Refusals did not spend the URL; the right upload does.
    nim.put(&url, image.clone(), "image/png", "a test card")
        .await
        .expect("the declared headers pass");
    let f = nim
        .put(&url, image.clone(), "image/png", "a test card")
        .await
        .unwrap_err();
    assert_eq!((f.status, kind(&f)), (409, "upload-url-used"));
    assert_eq!(stack.seen("/s3/assets/").len(), 1);
    let secret = url.rsplit('/').next().expect("secret");
    assert_eq!(secret.len(), 64);
    assert!(
        !support::logs().contains(secret),
        "an upload URL's secret is a credential while it lives: not logged"
    );

    let unknown = format!(
        "{}/v2/nvcf/asset-uploads/{}",
        stack.proxy_url,
        "0".repeat(64)
    );
    let f = nim
        .put(&unknown, image.clone(), "image/png", "a test card")
        .await
        .unwrap_err();
    assert_eq!((f.status, kind(&f)), (404, "upload-url-not-found"));

    let (url, _) = nim.create_asset("image/png", "big").await.expect("created");
    let f = nim
        .put(&url, vec![0u8; 25 * 1024 * 1024 + 1], "image/png", "big")
        .await
        .unwrap_err();
    assert_eq!(
        (f.status, f.body["error"]["code"].as_str()),
        (413, Some("IMAGE_TOO_LARGE"))
    );

    for (content_type, description) in [
        ("text/html", "x"),
        ("image/png", ""),
        ("image/PNG", "x"),
        ("image/png", "line\nbreak"),
    ] {
        let f = nim
            .create_asset(content_type, description)
            .await
            .unwrap_err();
        assert_eq!(f.status, 400, "{content_type} {description:?}: {}", f.body);
    }
}

#[tokio::test]
async fn upload_urls_expire() {
    let stack = support::start(
        &[],
        &["--rate-limit", "0", "--upload-url-ttl", "1"],
        Some("nvapi-expiry"),
    )
    .await;
    let nim = NimClient::new(&stack.proxy_url, "ignored");
    let (url, _) = nim
        .create_asset("image/png", "late")
        .await
        .expect("created");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let f = nim
        .put(&url, png(8, 8, 1), "image/png", "late")
        .await
        .unwrap_err();
    assert_eq!((f.status, kind(&f)), (403, "upload-url-expired"));
    assert!(stack.seen("/s3/assets/").is_empty());
}

#[tokio::test]
async fn assets_expire() {
    let stack = support::start(
        &[],
        // 2 s: room for the first invocation on a loaded machine.
        &["--rate-limit", "0", "--asset-ttl", "2"],
        Some("nvapi-asset-expiry"),
    )
    .await;
    let nim = NimClient::new(&stack.proxy_url, "ignored");
    let id = nim
        .upload_asset(png(16, 16, 1), "image/png")
        .await
        .expect("uploaded");
    let content = format!("<CAPTION><img src=\"data:image/png;asset_id,{id}\" />");
    assert_eq!(nim.invoke_asset(&content, &id).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let f = Failure::of(nim.invoke_asset(&content, &id).await).await;
    assert_eq!((f.status, kind(&f)), (404, "asset-not-found"));
}

#[tokio::test]
async fn an_asset_is_usable_only_with_the_token_that_uploaded_it() {
    let (_dir, tokens) = token_file("scoping", &[TOKEN_A, TOKEN_B]);
    let stack = support::start(
        &[],
        &[
            "--rate-limit",
            "0",
            "--client-tokens",
            tokens.to_str().expect("path"),
        ],
        Some("nvapi-scoping"),
    )
    .await;
    let a = NimClient::new(&stack.proxy_url, TOKEN_A);
    let b = NimClient::new(&stack.proxy_url, TOKEN_B);
    let id = a
        .upload_asset(png(16, 16, 3), "image/png")
        .await
        .expect("uploaded");
    let content = format!("<CAPTION><img src=\"data:image/png;asset_id,{id}\" />");
    let f = Failure::of(b.invoke_asset(&content, &id).await).await;
    assert_eq!(
        (f.status, kind(&f)),
        (404, "asset-not-found"),
        "B cannot use A's asset"
    );
    assert_eq!(a.invoke_asset(&content, &id).await.status(), 200);
    // The same holds for our own route's assets.
    let response = stack
        .client
        .post(format!("{}/v1/assets", stack.proxy_url))
        .header("authorization", format!("Bearer {TOKEN_A}"))
        .header("content-type", "image/png")
        .body(png(16, 16, 4))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), 200);
    let ours: Value = response.json().await.expect("JSON");
    let ours = ours["assetId"].as_str().expect("assetId").to_owned();
    let content = format!("<CAPTION><img src=\"data:image/png;asset_id,{ours}\" />");
    let f = Failure::of(b.invoke_asset(&content, &ours).await).await;
    assert_eq!((f.status, kind(&f)), (404, "asset-not-found"));
    assert_eq!(a.invoke_asset(&content, &ours).await.status(), 200);
    // NVCF's rule: the headers must name the asset the content uses.
    let f = Failure::of(a.invoke_asset(&content, &id).await).await;
    assert_eq!((f.status, kind(&f)), (400, "asset-not-referenced"));
    assert_eq!(stack.seen("/v1/vlm").len(), 2, "refusals never reach NVCF");
}

/// A backend that keeps no assets and answers each invocation with the image bytes it got.
struct Echo {
    seen: Mutex<Vec<Invocation>>,
}

impl Backend for Echo {
    fn invoke(
        &self,
        invocation: Invocation,
        _: CallContext,
    ) -> BoxFuture<'_, florence2::Result<Bytes>> {
        Box::pin(async move {
            use base64::Engine;
            let ImageRef::Inline { base64, .. } = &invocation.image else {
                return Err(florence2::Error::new(
                    florence2::ErrorCode::BadOption,
                    "an asset id reached the backend",
                ));
            };
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(base64)
                .expect("base64");
            self.seen.lock().expect("lock").push(invocation.clone());
            Ok(Bytes::from(bytes))
        })
    }

    fn upload_asset(
        &self,
        _: AssetUpload,
        _: CallContext,
    ) -> BoxFuture<'_, florence2::Result<String>> {
        Box::pin(async { panic!("the proxy keeps the assets of this backend") })
    }

    fn health(&self) -> BoxFuture<'_, Health> {
        Box::pin(async {
            Health {
                backend: "echo",
                key_configured: false,
                request_keys_accepted: false,
                upstream: None,
                model: None,
                queue: None,
            }
        })
    }

    fn asset_custody(&self) -> AssetCustody {
        AssetCustody::Proxy
    }
}

async fn serve_echo(args: &[&str]) -> (String, Arc<Echo>) {
    let config =
        Config::try_parse_from(std::iter::once("florence2-proxy").chain(args.iter().copied()))
            .expect("flags");
    let echo = Arc::new(Echo {
        seen: Mutex::new(Vec::new()),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let backend: Arc<dyn Backend> = echo.clone();
    tokio::spawn(async move {
        let served: Result<(), ServeError> =
            florence2_proxy::serve_backend(&config, backend, listener, std::future::pending())
                .await;
        served.expect("serves");
    });
    (url, echo)
}

#[tokio::test]
async fn a_backend_that_keeps_no_assets_gets_the_bytes_inline_within_the_stores_bounds() {
    let (url, echo) = serve_echo(&[
        "--rate-limit",
        "0",
        "--asset-store-mb",
        "1",
        "--max-assets",
        "24",
    ])
    .await;
    let nim = NimClient::new(&url, "ignored");
    let image = png(50, 40, 6);
    let id = nim
        .upload_asset(image.clone(), "image/png")
        .await
        .expect("uploaded");
    let content = format!("<OD><img src=\"data:image/png;asset_id,{id}\" />");
    let response = nim.invoke_asset(&content, &id).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.bytes().await.expect("body"),
        image,
        "the asset's bytes reached the backend"
    );
    // Our route's uploads are kept too.
    let client = reqwest::Client::new();
    let ours: Value = client
        .post(format!("{url}/v1/assets"))
        .header("content-type", "image/png")
        .body(image.clone())
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let ours = ours["assetId"].as_str().expect("assetId");
    let content = format!("<OD><img src=\"data:image/png;asset_id,{ours}\" />");
    let response = nim.invoke_asset(&content, ours).await;
    assert_eq!(response.bytes().await.expect("body"), image);
    assert_eq!(echo.seen.lock().expect("lock").len(), 2);

    // 1 MB of memory: a 700 KB asset fits once.
    let big = vec![7u8; 700 * 1024];
    nim.upload_asset(big.clone(), "image/png")
        .await
        .expect("fits");
    let f = nim.upload_asset(big, "image/png").await.unwrap_err();
    assert_eq!((f.status, kind(&f)), (507, "asset-store-full"));
    assert!(
        f.body["error"]["retryAfterSecs"]
            .as_f64()
            .is_some_and(|s| s > 0.0)
    );
    // Six records, this address's share (a quarter of --max-assets 24): three assets, two
    // used upload URLs and the one that was refused its bytes. One more upload URL makes
    // room from this caller's own spare URLs (the oldest used one goes); its assets stay.
    nim.create_asset("image/png", "one more")
        .await
        .expect("room from its own spare URLs");
    let content = format!("<OD><img src=\"data:image/png;asset_id,{id}\" />");
    assert_eq!(nim.invoke_asset(&content, &id).await.status(), 200);
}

#[tokio::test]
async fn one_caller_cannot_fill_the_asset_store_with_unused_urls() {
    let (_dir, tokens) = token_file("fair-share", &[TOKEN_A, TOKEN_B]);
    // 8 records: a quarter, 2, for each caller.
    let (url, _echo) = serve_echo(&[
        "--rate-limit",
        "0",
        "--max-assets",
        "8",
        "--client-tokens",
        tokens.to_str().expect("path"),
    ])
    .await;
    let a = NimClient::new(&url, TOKEN_A);
    let b = NimClient::new(&url, TOKEN_B);
    // A hands itself 20 upload URLs and uses none. Before, the ninth got 507, and so did
    // everyone else until the URLs' hour was over.
    let mut urls = Vec::new();
    for i in 0..20 {
        let (upload_url, _) = a
            .create_asset("image/png", "hoarded")
            .await
            .unwrap_or_else(|f| panic!("create {i}: {} {}", f.status, f.body));
        urls.push(upload_url);
    }
    // Its own oldest went first; its newest still works.
    let f = a
        .put(&urls[0], png(8, 8, 1), "image/png", "hoarded")
        .await
        .unwrap_err();
    assert_eq!((f.status, kind(&f)), (404, "upload-url-not-found"));
    a.put(&urls[19], png(8, 8, 1), "image/png", "hoarded")
        .await
        .expect("the newest URL is A's to use");
    // B is served.
    let id = b
        .upload_asset(png(16, 16, 2), "image/png")
        .await
        .expect("B has its share");
    let content = format!("<OD><img src=\"data:image/png;asset_id,{id}\" />");
    assert_eq!(b.invoke_asset(&content, &id).await.status(), 200);
}

#[tokio::test]
async fn upload_urls_start_at_the_public_url_when_one_is_set() {
    let stack = support::start(
        &[],
        &["--public-url", "https://florence.example.org/vision"],
        Some("nvapi-public"),
    )
    .await;
    let nim = NimClient::new(&stack.proxy_url, "ignored");
    let (url, _) = nim
        .create_asset("image/jpeg", "behind TLS")
        .await
        .expect("created");
    let secret = url
        .strip_prefix("https://florence.example.org/vision/v2/nvcf/asset-uploads/")
        .unwrap_or_else(|| panic!("{url}"));
    assert!(
        secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit()),
        "{secret}"
    );
    // The same path on the proxy itself takes the upload.
    let local = format!("{}/v2/nvcf/asset-uploads/{secret}", stack.proxy_url);
    nim.put(&local, png(8, 8, 2), "image/jpeg", "behind TLS")
        .await
        .expect("uploaded");
}

/// Issue 33, item 5: the URL was given back only on the error path, so an upload cut by the
/// deadline (or a hang-up, or shutdown: each drops the request) left the URL answering 409
/// `upload-in-progress` for its whole life. Now it is given back however the upload ends.
#[tokio::test]
async fn an_upload_cut_by_the_deadline_gives_its_url_back() {
    let stack = support::start(
        &[],
        &[
            "--rate-limit",
            "0",
            "--timeout",
            "1",
            "--stall-timeout",
            "60",
        ],
        Some("nvapi-cut-upload"),
    )
    .await;
    let nim = NimClient::new(&stack.proxy_url, "ignored");
    let (url, _) = nim
        .create_asset("image/png", "cut short")
        .await
        .expect("created");
    let path = url
        .strip_prefix(&stack.proxy_url)
        .unwrap_or_else(|| panic!("{url} is on the proxy"));
    // 10 of 1000 bytes, then nothing: the deadline drops the request after 1 s.
    let mut stream = tokio::net::TcpStream::connect(stack.proxy_addr)
        .await
        .expect("connect");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nx-amz-meta-nvcf-asset-description: cut short\r\nContent-Length: 1000\r\n\r\n0123456789"
    );
    tokio::io::AsyncWriteExt::write_all(&mut stream, head.as_bytes())
        .await
        .expect("write");
    let mut answer = vec![0u8; 12];
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncReadExt::read_exact(&mut stream, &mut answer),
    )
    .await
    .expect("answered within the deadline")
    .expect("read");
    assert_eq!(&answer, b"HTTP/1.1 504");
    drop(stream);
    nim.put(&url, png(16, 16, 1), "image/png", "cut short")
        .await
        .expect("the URL is usable again");
}
