//! How much latency the proxy adds: the same requests sent straight to the emulator and through
//! the proxy (which forwards them to that emulator), sequentially and 32 and 200 at a time;
//! p50/p90/p99 of each and the difference. Client, proxy and emulator share this machine's
//! cores, so the concurrent series also measure the proxy's CPU cost competing with the rest.
//! A measurement, not a test: it asserts nothing.
//!
//! cargo bench -p florence2-proxy --bench latency --profile release-native
//! (`LATENCY_ROUNDS=N` changes the number of requests per series, default 1000.)

use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Parser;
use florence2_proxy::{ApiKey, Config};
use nvcf_emulator::Emulator;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

const KEY: &str = "nvapi-bench";

fn main() {
    let rounds: usize = std::env::var("LATENCY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(rounds));
}

async fn run(rounds: usize) {
    florence2_proxy::tls::install_crypto_provider();
    let emulator_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let emulator_url = format!("http://{}", emulator_listener.local_addr().expect("addr"));
    tokio::spawn(
        Emulator::new(nvcf_emulator::Config::loopback())
            .serve_until(emulator_listener, std::future::pending()),
    );
    let mut config = Config::try_parse_from([
        "florence2-proxy",
        "--upstream",
        &emulator_url,
        "--assets-upstream",
        &emulator_url,
        "--rate-limit",
        "0",
        "--max-concurrent",
        "1000",
    ])
    .expect("flags");
    config.api_key = Some(ApiKey::parse(KEY, "bench").expect("key"));
    let proxy_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let proxy_url = format!("http://{}", proxy_listener.local_addr().expect("addr"));
    tokio::spawn(florence2_proxy::serve_until(
        config,
        proxy_listener,
        std::future::pending(),
    ));

    let body = Arc::new(request_body());
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    let direct = Target {
        url: format!("{emulator_url}/v1/vlm/microsoft/florence-2"),
        bearer: true,
    };
    let proxied = Target {
        url: format!("{proxy_url}/v1/vlm/microsoft/florence-2"),
        bearer: false,
    };

    // Warm both paths (connections, caches).
    for _ in 0..50 {
        direct.send(&client, &body).await;
        proxied.send(&client, &body).await;
    }

    println!(
        "florence2-proxy latency: <OD> on a 64x48 PNG ({} bytes of JSON), {rounds} requests per series",
        body.len()
    );
    // Sequential, interleaved so both paths see the same machine state.
    let (mut d, mut p) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for _ in 0..rounds {
        d.push(direct.send(&client, &body).await);
        p.push(proxied.send(&client, &body).await);
    }
    report("sequential", d, p);
    // Concurrent, in alternating batches so that a change in the machine's load hits both.
    for concurrency in [32, 200] {
        let (mut d, mut p) = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
        let batch = (rounds / 10).max(concurrency);
        while d.len() < rounds {
            d.extend(concurrent(&direct, &client, &body, batch, concurrency).await);
            p.extend(concurrent(&proxied, &client, &body, batch, concurrency).await);
        }
        report(&format!("{concurrency} at a time"), d, p);
    }
}

struct Target {
    url: String,
    bearer: bool,
}

impl Target {
    async fn send(&self, client: &reqwest::Client, body: &Arc<String>) -> Duration {
        let started = Instant::now();
        let mut request = client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body.as_str().to_owned());
        if self.bearer {
            request = request.bearer_auth(KEY);
        }
        let response = request.send().await.expect("answer");
        assert_eq!(response.status(), 200, "{}", self.url);
        response.bytes().await.expect("body");
        started.elapsed()
    }
}

async fn concurrent(
    target: &Target,
    client: &reqwest::Client,
    body: &Arc<String>,
    rounds: usize,
    concurrency: usize,
) -> Vec<Duration> {
    let slots = Arc::new(Semaphore::new(concurrency));
    let target = Arc::new(Target {
        url: target.url.clone(),
        bearer: target.bearer,
    });
    let mut running = tokio::task::JoinSet::new();
    for _ in 0..rounds {
        let permit = slots.clone().acquire_owned().await.expect("semaphore");
        let (target, client, body) = (target.clone(), client.clone(), body.clone());
        running.spawn(async move {
            let took = target.send(&client, &body).await;
            drop(permit);
            took
        });
    }
    running.join_all().await
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

fn report(series: &str, mut direct: Vec<Duration>, mut proxied: Vec<Duration>) {
    direct.sort();
    proxied.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("\n{series}:");
    println!(
        "  {:<10} {:>9} {:>9} {:>9}",
        "", "p50 ms", "p90 ms", "p99 ms"
    );
    for (name, v) in [("direct", &direct), ("proxied", &proxied)] {
        println!(
            "  {name:<10} {:>9.3} {:>9.3} {:>9.3}",
            ms(percentile(v, 0.5)),
            ms(percentile(v, 0.9)),
            ms(percentile(v, 0.99))
        );
    }
    let added = |p| ms(percentile(&proxied, p)) - ms(percentile(&direct, p));
    println!(
        "  {:<10} {:>9.3} {:>9.3} {:>9.3}",
        "added",
        added(0.5),
        added(0.9),
        added(0.99)
    );
}

fn request_body() -> String {
    let img = image::RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, 128])
    });
    let mut png = Vec::new();
    img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("png");
    let src = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    );
    let content = florence2::build_content("<OD>", None, &src).expect("content");
    florence2::request::InvokeRequest::new(content).to_json()
}
