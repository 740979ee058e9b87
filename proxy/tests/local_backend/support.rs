//! Shared by the local backend tests: the reference model folder, an in-process proxy on
//! `--backend local`, request bodies and answer parsing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use clap::Parser;
use florence2::response::{ParsedResponse, ResponseContext, ZipLimits, parse_zip};
use florence2::{ImageSize, Task};
use florence2_proxy::Config;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The reference data's tiny end-to-end model folder. Missing, it is a failure: the tests that
/// call this are `#[ignore]`d at build time when the folder is absent and `CI` is unset (see
/// build.rs), so reaching here without it means CI lacks its data.
pub fn tiny_e2e() -> PathBuf {
    florence2_reference::dir(env!("CARGO_MANIFEST_DIR"), "florence2-tiny-e2e")
}

/// A proxy on `--backend local --model <tiny e2e>` with `args` added, per-client rate limits
/// off (the tests are one client sending many requests); stopped when dropped.
pub struct LocalProxy {
    pub url: String,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub model_dir: PathBuf,
    _stop: oneshot::Sender<()>,
}

impl LocalProxy {
    pub async fn start(args: &[&str]) -> LocalProxy {
        florence2_proxy::tls::install_crypto_provider();
        let model_dir = tiny_e2e();
        let mut argv = vec![
            "florence2-proxy".to_owned(),
            "--backend".into(),
            "local".into(),
            "--model".into(),
            model_dir.display().to_string(),
            "--rate-limit".into(),
            "0".into(),
        ];
        argv.extend(args.iter().map(|s| s.to_string()));
        let config = Config::try_parse_from(argv).expect("test flags parse");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = oneshot::channel::<()>();
        let backend = florence2_proxy::build_backend(&config)
            .await
            .expect("the tiny model loads");
        tokio::spawn(async move {
            let _ = florence2_proxy::serve_backend(&config, backend, listener, async move {
                let _ = stopped.await;
            })
            .await;
        });
        LocalProxy {
            url: format!("http://{addr}"),
            addr,
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            model_dir,
            _stop: stop,
        }
    }

    pub async fn invoke(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/vlm/microsoft/florence-2", self.url))
            .json(body)
            .send()
            .await
            .expect("the proxy answers")
    }

    /// `/healthz?detail` (open to loopback callers without client tokens).
    pub async fn health(&self) -> Value {
        self.client
            .get(format!("{}/healthz?detail", self.url))
            .send()
            .await
            .expect("healthz answers")
            .json()
            .await
            .expect("healthz is JSON")
    }

    /// Polls `/healthz` until `ready` holds for its `queue`, for at most `within`.
    pub async fn wait_for_queue(&self, within: Duration, ready: impl Fn(&Value) -> bool) -> Value {
        let started = std::time::Instant::now();
        loop {
            let queue = self.health().await["queue"].clone();
            if ready(&queue) {
                return queue;
            }
            assert!(
                started.elapsed() < within,
                "the queue never got there: {queue}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn test_image(&self) -> Vec<u8> {
        std::fs::read(self.model_dir.join("test_image.png")).expect("test_image.png")
    }
}

pub fn data_url(bytes: &[u8], mime: &str) -> String {
    format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// The endpoint's body for `task`, `text` on the image `src`, capped at `max_tokens`.
pub fn body(task: &str, text: Option<&str>, src: &str, max_tokens: Option<u32>) -> Value {
    let content = florence2::build_content(task, text, src).expect("valid content");
    let mut body = json!({ "messages": [{ "role": "user", "content": content }] });
    if let Some(n) = max_tokens {
        body["max_tokens"] = json!(n);
    }
    body
}

/// A 200 answer's ZIP, parsed as every client parses it.
pub async fn parsed(
    response: reqwest::Response,
    task: Task,
    size: ImageSize,
) -> (ParsedResponse<'static>, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("body");
    assert_eq!(
        status,
        200,
        "answer: {}",
        String::from_utf8_lossy(&bytes[..bytes.len().min(500)])
    );
    let ctx = ResponseContext {
        task: Some(task),
        ..ResponseContext::same_size(size)
    };
    let parsed = parse_zip(&bytes, ctx, ZipLimits::default()).expect("the endpoint's ZIP");
    let owned = ParsedResponse {
        result: parsed.result,
        overlay: parsed.overlay.map(|o| florence2::response::Overlay {
            name: o.name,
            mime: o.mime,
            bytes: o.bytes.into_owned().into(),
        }),
    };
    (owned, response_document(&bytes))
}

/// The `.response` document of an answer archive, as JSON.
pub fn response_document(zip_bytes: &[u8]) -> Value {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).expect("a ZIP archive");
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        if entry.name().is_ok_and(|n| n.ends_with(".response")) {
            let mut text = String::new();
            entry.read_to_string(&mut text).expect("inflate");
            return serde_json::from_str(&text).expect(".response is JSON");
        }
    }
    panic!("no .response entry");
}

/// The `dur` of `name` in a `Server-Timing` header, in milliseconds.
pub fn server_timing(response: &reqwest::Response, name: &str) -> f64 {
    let header = response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Server-Timing header: {:?}", response.headers()));
    header
        .split(',')
        .map(str::trim)
        .find_map(|part| {
            let (metric, dur) = part.split_once(";dur=")?;
            (metric == name).then(|| dur.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {name} in Server-Timing {header:?}"))
}

pub const ALICE: &str = "alice-token-0123456789abcdef";
pub const BOB: &str = "bob-token-0123456789abcdef01";

/// A `--client-tokens` file with both tokens, unique to `name`.
pub fn tokens_file(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "florence2-local-{name}-{}.tokens",
        std::process::id()
    ));
    std::fs::write(&path, format!("{ALICE}\n{BOB}\n")).expect("write the tokens");
    path
}
