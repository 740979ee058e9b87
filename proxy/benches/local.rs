//! The local backend under load: `<CAPTION>` with `max_tokens` 20 (beam search as the model's
//! generation config says) on a model folder, through real HTTP on loopback — one request
//! alone, then 8 at once for each `--model-threads` value asked; latency p50/p95 and
//! throughput, plus the queue wait and model time the proxy reports (`Server-Timing`).
//! A measurement, not a test: it asserts nothing but that every answer is a 200.
//!
//! cargo bench -p florence2-proxy --bench local --profile release-native -- MODEL_DIR [THREADS…]
//! (MODEL_DIR: a Florence-2 folder, e.g. one made by benches/random_base_model.py; THREADS
//! default 1 2. The picture is MODEL_DIR/test_image.png.)

use std::time::{Duration, Instant};

use base64::Engine;
use clap::Parser;
use florence2_proxy::Config;
use serde_json::json;
use tokio::net::TcpListener;

const CONCURRENT: usize = 8;
const NEW_TOKENS: u32 = 20;

fn main() {
    // `cargo bench` passes `--bench`; the rest are ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(model) = args.first().cloned() else {
        eprintln!(
            "usage: cargo bench -p florence2-proxy --bench local --profile release-native -- MODEL_DIR [THREADS…]"
        );
        return;
    };
    let threads: Vec<u32> = match args[1..].iter().map(|t| t.parse()).collect() {
        Ok(t) if !args[1..].is_empty() => t,
        _ => vec![1, 2],
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(&model, &threads));
}

async fn run(model: &str, threads: &[u32]) {
    let image = std::fs::read(format!("{model}/test_image.png")).expect("MODEL_DIR/test_image.png");
    let content = florence2::build_content(
        "<CAPTION>",
        None,
        &format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&image)
        ),
    )
    .expect("content");
    let body =
        json!({"messages": [{"role": "user", "content": content}], "max_tokens": NEW_TOKENS});
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    println!(
        "model {model}; <CAPTION>, max_tokens {NEW_TOKENS}; {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for &n in threads {
        let config = Config::try_parse_from([
            "florence2-proxy",
            "--backend",
            "local",
            "--model",
            model,
            "--model-threads",
            &n.to_string(),
            "--rate-limit",
            "0",
            "--timeout",
            "3600",
        ])
        .expect("flags");
        let loading = Instant::now();
        let backend = florence2_proxy::build_backend(&config)
            .await
            .expect("the model loads");
        let load_s = loading.elapsed().as_secs_f64();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "http://{}/v1/vlm/microsoft/florence-2",
            listener.local_addr().expect("addr")
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let _ = florence2_proxy::serve_backend(&config, backend, listener, async move {
                let _ = stopped.await;
            })
            .await;
        });
        println!("\n--model-threads {n} (loaded in {load_s:.1} s)");
        let one = |client: reqwest::Client, url: String, body: serde_json::Value| async move {
            let started = Instant::now();
            let response = client.post(&url).json(&body).send().await.expect("answer");
            assert_eq!(response.status(), 200, "{:?}", response.text().await);
            let timing = response
                .headers()
                .get("server-timing")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let zip = response.bytes().await.expect("body");
            (started.elapsed(), timing, zip.len())
        };
        let (alone, timing, bytes) = one(client.clone(), url.clone(), body.clone()).await;
        println!(
            "  alone:        {:>7.2} s  ({timing}; {bytes} B answer)",
            alone.as_secs_f64()
        );
        let started = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..CONCURRENT {
            set.spawn(one(client.clone(), url.clone(), body.clone()));
        }
        let mut latencies: Vec<Duration> = set
            .join_all()
            .await
            .into_iter()
            .map(|(d, _, _)| d)
            .collect();
        let wall = started.elapsed().as_secs_f64();
        latencies.sort();
        let pct = |p: f64| {
            latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
                .as_secs_f64()
        };
        println!(
            "  {CONCURRENT} at once:    {wall:>7.2} s wall, {:.3} requests/s, latency p50 {:.2} s, p95 {:.2} s, max {:.2} s",
            CONCURRENT as f64 / wall,
            pct(0.50),
            pct(0.95),
            pct(1.0)
        );
        let _ = stop.send(());
        let _ = server.await;
    }
}
