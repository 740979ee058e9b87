//! The local model's queue over real HTTP: many clients at once, a full line, and clients
//! that go away.

use std::time::{Duration, Instant};

use florence2::{ImageSize, Task};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::{LocalProxy, body, data_url, parsed, server_timing};

/// The decoder's position table caps a run: the longest one a request can ask for.
pub const LONG: u32 = 1000;

/// Starts an invocation over a raw connection and leaves it open; dropping the stream is the
/// client going away.
pub async fn start_raw(proxy: &LocalProxy, json: &serde_json::Value) -> TcpStream {
    let body = json.to_string();
    let request = format!(
        "POST /v1/vlm/microsoft/florence-2 HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("send");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
async fn fifty_concurrent_requests_are_all_answered_correctly() {
    let proxy = LocalProxy::start(&["--model-threads", "2", "--queue", "64"]).await;
    let image = proxy.test_image();
    let src = data_url(&image, "image/png");
    let size = ImageSize::new(640, 480);
    // The answers to compare with, one request at a time.
    let tasks = [
        (Task::Caption, None),
        (Task::ObjectDetection, None),
        (
            Task::RegionToOcr,
            Some("<loc_100><loc_100><loc_600><loc_500>"),
        ),
    ];
    let mut expected = Vec::new();
    for (task, text) in tasks {
        let response = proxy.invoke(&body(task.token(), text, &src, Some(6))).await;
        expected.push(parsed(response, task, size).await.0.result);
    }
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..50 {
        let (task, text) = tasks[i % tasks.len()];
        let (client, url) = (proxy.client.clone(), proxy.url.clone());
        let body = body(task.token(), text, &src, Some(6));
        requests.spawn(async move {
            let response = client
                .post(format!("{url}/v1/vlm/microsoft/florence-2"))
                .json(&body)
                .send()
                .await
                .expect("the proxy answers");
            (i, parsed(response, task, size).await.0.result)
        });
    }
    let answers = requests.join_all().await;
    assert_eq!(answers.len(), 50);
    for (i, result) in answers {
        assert_eq!(result, expected[i % tasks.len()], "request {i}");
    }
    let queue = proxy.health().await["queue"].clone();
    assert_eq!(queue["served"], 53, "{queue}");
    assert_eq!(
        (queue["waiting"].as_u64(), queue["running"].as_u64()),
        (Some(0), Some(0))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
async fn a_full_queue_answers_429_with_retry_after() {
    let proxy = LocalProxy::start(&["--model-threads", "1", "--queue", "1"]).await;
    let src = data_url(&proxy.test_image(), "image/png");
    let long = body("<CAPTION>", None, &src, Some(LONG));
    // One running, one waiting: the line is full.
    let running = start_raw(&proxy, &long).await;
    proxy
        .wait_for_queue(Duration::from_secs(30), |q| q["running"] == 1)
        .await;
    let waiting = start_raw(&proxy, &long).await;
    proxy
        .wait_for_queue(Duration::from_secs(30), |q| q["waiting"] == 1)
        .await;
    let refused = proxy.invoke(&body("<CAPTION>", None, &src, Some(4))).await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ASCII")
        .parse()
        .expect("whole seconds");
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    let error: serde_json::Value = refused.json().await.expect("typed error");
    assert_eq!(error["error"]["code"], "RATE_LIMITED", "{error}");
    assert!(
        error["error"]["retryAfterSecs"]
            .as_f64()
            .is_some_and(|s| s >= 1.0)
    );
    let queue = proxy.health().await["queue"].clone();
    assert_eq!(queue["rejected"], 1, "{queue}");
    drop((running, waiting));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
async fn a_client_that_goes_away_frees_its_slot_at_once() {
    let proxy = LocalProxy::start(&["--model-threads", "1", "--queue", "4"]).await;
    let src = data_url(&proxy.test_image(), "image/png");
    let long = body("<CAPTION>", None, &src, Some(LONG));
    let short = body("<CAPTION>", None, &src, Some(4));

    // What a long run costs when nobody leaves.
    let started = Instant::now();
    let full = proxy.invoke(&long).await;
    assert_eq!(full.status(), 200);
    let full_ms = server_timing(&full, "model");
    assert!(
        started.elapsed() >= Duration::from_millis(full_ms as u64),
        "timing is of this request"
    );

    // A long run starts, another waits behind it; both clients hang up.
    let running = start_raw(&proxy, &long).await;
    proxy
        .wait_for_queue(Duration::from_secs(30), |q| q["running"] == 1)
        .await;
    let waiting = start_raw(&proxy, &long).await;
    proxy
        .wait_for_queue(Duration::from_secs(30), |q| q["waiting"] == 1)
        .await;
    drop(waiting);
    drop(running);
    let hung_up = Instant::now();
    // The waiting one leaves the line; the running one stops at its next token.
    let queue = proxy
        .wait_for_queue(Duration::from_secs(60), |q| {
            q["cancelled"] == 2 && q["running"] == 0
        })
        .await;
    let freed_ms = hung_up.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(queue["waiting"], 0, "{queue}");
    assert!(
        freed_ms < full_ms / 4.0,
        "the runner was busy {freed_ms:.0} ms after the clients left; a whole long run takes {full_ms:.0} ms"
    );

    // The next request starts promptly: not after the rest of the long run, let alone two.
    let next = proxy.invoke(&short).await;
    assert_eq!(next.status(), 200);
    let waited_ms = server_timing(&next, "queue");
    assert!(
        waited_ms < full_ms / 4.0,
        "the next request waited {waited_ms:.0} ms; a whole long run takes {full_ms:.0} ms"
    );
}
