//! Shared by the integration tests: an in-process emulator and proxy on loopback, test images,
//! request bodies, answer archives, raw HTTP, a canary listener, captured logs.

use std::io::{Cursor, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use clap::Parser;
use florence2_proxy::{ApiKey, Config};
use image::{ImageFormat, Rgb, RgbImage};
use nvcf_emulator::Emulator;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// An emulator and a proxy pointed at it, both stopped when this is dropped.
pub struct Stack {
    pub emulator: Emulator,
    pub emulator_url: String,
    pub proxy_url: String,
    pub proxy_addr: SocketAddr,
    pub client: reqwest::Client,
    _stop: Vec<oneshot::Sender<()>>,
}

/// Starts an emulator (with `emulator_args`) and a proxy (with `proxy_args`, the upstreams
/// pointing at the emulator unless given) holding `key`.
pub async fn start(emulator_args: &[&str], proxy_args: &[&str], key: Option<&str>) -> Stack {
    capture_logs();
    florence2_proxy::tls::install_crypto_provider();
    let emulator = Emulator::new(parse_emulator(emulator_args));
    let (emulator_addr, stop_emulator) = spawn_emulator(emulator.clone()).await;
    let emulator_url = format!("http://{emulator_addr}");
    let mut args = vec!["florence2-proxy".to_owned()];
    if !proxy_args.contains(&"--upstream") {
        args.extend(["--upstream".to_owned(), emulator_url.clone()]);
    }
    if !proxy_args.contains(&"--assets-upstream") {
        args.extend(["--assets-upstream".to_owned(), emulator_url.clone()]);
    }
    args.extend(proxy_args.iter().map(|s| s.to_string()));
    let mut config = Config::try_parse_from(args).expect("test proxy flags parse");
    config.api_key = key.map(|k| ApiKey::parse(k, "test key").expect("test key is valid"));
    let (proxy_addr, stop_proxy) = spawn_proxy(config).await;
    Stack {
        emulator,
        emulator_url,
        proxy_url: format!("http://{proxy_addr}"),
        proxy_addr,
        client: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("test client"),
        _stop: vec![stop_emulator, stop_proxy],
    }
}

fn parse_emulator(args: &[&str]) -> nvcf_emulator::Config {
    nvcf_emulator::Config::try_parse_from(
        std::iter::once("nvcf-emulator").chain(args.iter().copied()),
    )
    .expect("test emulator flags parse")
}

async fn spawn_emulator(emulator: Emulator) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind emulator");
    let addr = listener.local_addr().expect("emulator address");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(emulator.serve_until(listener, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

pub async fn spawn_proxy(config: Config) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
    let addr = listener.local_addr().expect("proxy address");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let result = florence2_proxy::serve_until(config, listener, async move {
            let _ = stopped.await;
        })
        .await;
        if let Err(e) = result {
            eprintln!("proxy stopped: {e}");
        }
    });
    (addr, stop)
}

impl Stack {
    pub async fn invoke(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/vlm/microsoft/florence-2", self.proxy_url))
            .json(body)
            .send()
            .await
            .expect("proxy answers")
    }

    pub async fn upload(&self, png: &[u8]) -> String {
        let response = self
            .client
            .post(format!("{}/v1/assets", self.proxy_url))
            .header("content-type", "image/png")
            .body(png.to_vec())
            .send()
            .await
            .expect("proxy answers");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("JSON");
        body["assetId"].as_str().expect("assetId").to_owned()
    }

    /// Journal entries whose path starts with `prefix`.
    pub fn seen(&self, prefix: &str) -> Vec<nvcf_emulator::Seen> {
        self.emulator
            .journal()
            .into_iter()
            .filter(|s| s.path.starts_with(prefix))
            .collect()
    }
}

/// A PNG of `w`×`h` split into colour blocks chosen by `seed`.
pub fn png(w: u32, h: u32, seed: u32) -> Vec<u8> {
    const COLOURS: [[u8; 3]; 6] = [
        [20, 40, 220],
        [30, 200, 40],
        [230, 20, 20],
        [240, 230, 30],
        [250, 250, 250],
        [20, 20, 20],
    ];
    let img = RgbImage::from_fn(w, h, |x, y| {
        let block = (x * 3 / w) + 3 * (y * 2 / h) + seed;
        Rgb(COLOURS[(block as usize * 7 + seed as usize) % COLOURS.len()])
    });
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
        .expect("encode PNG");
    out
}

pub fn data_url(png: &[u8]) -> String {
    use base64::Engine;
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// Text a task accepts: none, free text, or a region.
pub fn text_for(task: florence2::Task) -> Option<&'static str> {
    match task.text_kind() {
        florence2::TextKind::None => None,
        florence2::TextKind::Required => Some("a blue sky and a green tree"),
        florence2::TextKind::Region => Some("<loc_100><loc_100><loc_700><loc_800>"),
    }
}

/// The endpoint body for `task` on image source `src`.
pub fn body(task: florence2::Task, src: &str) -> Value {
    let content =
        florence2::build_content(task.token(), text_for(task), src).expect("valid content");
    json!({ "messages": [{ "role": "user", "content": content }] })
}

/// An answer archive: the `.response` JSON and the overlay PNG, if any.
pub fn unzip(bytes: &[u8]) -> (Value, Option<Vec<u8>>) {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("a ZIP");
    let mut response = None;
    let mut overlay = None;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("inflate");
        let name = entry.name().expect("entry name").into_owned();
        if name.ends_with(".response") {
            response = Some(serde_json::from_slice(&data).expect(".response is JSON"));
        } else if name.ends_with(".png") {
            overlay = Some(data);
        }
    }
    (response.expect("a .response entry"), overlay)
}

/// The `{"error": …}` body of a failed answer, checked to be the typed shape.
pub async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let ct = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned())
        .unwrap_or_default();
    let text = response.text().await.expect("body");
    assert!(
        ct.starts_with("application/json"),
        "error content-type {ct}: {text}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is JSON: {text}"));
    assert!(
        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
        "typed error body: {body}"
    );
    (status, body["error"].clone())
}

/// Sends `request` as is over a fresh TCP connection; answers status and body.
pub async fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await;
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A listener that only counts connections: where nothing may ever arrive.
pub struct Canary {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

impl Canary {
    pub async fn start() -> Canary {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind canary");
        let addr = listener.local_addr().expect("canary address");
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = hits.clone();
        tokio::spawn(async move {
            while let Ok((_stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        });
        Canary { addr, hits }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Everything logged by any test of this binary, at TRACE level (proxy, emulator, HTTP stacks).
pub fn logs() -> String {
    String::from_utf8_lossy(
        &LOGS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner()),
    )
    .into_owned()
}

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub fn capture_logs() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let buffer = LOGS.get_or_init(Default::default).clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Capture(buffer.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// A fresh directory under the system temp dir, removed when dropped (also when a test fails).
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "florence2-proxy-test-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
