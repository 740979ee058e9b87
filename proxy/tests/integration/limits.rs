//! Protection of a shared key: per-client token buckets and the global concurrency cap.

use std::time::{Duration, Instant};

use florence2::Task;
use nvcf_emulator::Fault;

use crate::support::{self, body, data_url, error_of, png};

#[tokio::test]
async fn a_client_over_its_rate_is_told_when_to_return() {
    let stack = support::start(
        &[],
        &["--rate-limit", "30", "--rate-burst", "2"],
        Some("nvapi-rate"),
    )
    .await;
    let request = body(Task::Caption, &data_url(&png(16, 16, 1)));
    assert_eq!(stack.invoke(&request).await.status(), 200);
    assert_eq!(stack.invoke(&request).await.status(), 200);
    let response = stack.invoke(&request).await;
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    let (status, error) = error_of(response).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (429, Some("RATE_LIMITED"))
    );
    let wait = error["retryAfterSecs"].as_f64().expect("retryAfterSecs");
    assert!(wait > 0.0 && wait <= 2.0, "one token every 2 s: {wait}");
    assert_eq!(retry_after, wait.ceil() as u64);
    assert_eq!(
        stack.seen("/v1/vlm").len(),
        2,
        "the refused request never reached the upstream"
    );
    // Uploads spend from the same bucket.
    let upload = stack
        .client
        .post(format!("{}/v1/assets", stack.proxy_url))
        .header("content-type", "image/png")
        .body(png(8, 8, 0))
        .send()
        .await
        .expect("answer");
    assert_eq!(upload.status(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_concurrency_cap_wait_their_turn() {
    let stack = support::start(
        &[],
        &["--max-concurrent", "1", "--rate-limit", "0"],
        Some("nvapi-cap"),
    )
    .await;
    stack.emulator.push_faults([
        Fault::parse("delay-ms=800").expect("fault"),
        Fault::parse("delay-ms=800").expect("fault"),
    ]);
    let request = body(Task::Caption, &data_url(&png(16, 16, 1)));
    let started = Instant::now();
    let (a, b) = tokio::join!(stack.invoke(&request), stack.invoke(&request));
    assert_eq!((a.status().as_u16(), b.status().as_u16()), (200, 200));
    assert!(
        started.elapsed() >= Duration::from_millis(1600),
        "one at a time: {:?}",
        started.elapsed()
    );
}
