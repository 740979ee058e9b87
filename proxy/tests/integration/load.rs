//! 200 concurrent requests through the proxy, each with its own image: none lost, none mixed
//! up (each answer is exactly what the emulator answers for that request directly).

use std::collections::HashSet;
use std::time::Duration;

use florence2::Task;
use serde_json::Value;

use crate::support::{self, body, data_url, png, unzip};

const REQUESTS: u32 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_requests_none_lost_none_mixed() {
    let stack = support::start(
        &[],
        &["--rate-limit", "0", "--max-concurrent", "256"],
        Some("nvapi-load"),
    )
    .await;
    let tasks = [
        Task::ObjectDetection,
        Task::MoreDetailedCaption,
        Task::OcrWithRegion,
        Task::DenseRegionCaption,
    ];
    let bodies: Vec<Value> = (0..REQUESTS)
        .map(|i| {
            body(
                tasks[i as usize % tasks.len()],
                &data_url(&png(24 + i % 97, 16 + i / 97 * 5 + i % 7, i)),
            )
        })
        .collect();

    // What the emulator answers each request directly (it is deterministic).
    let mut expected = Vec::new();
    for b in &bodies {
        let response = stack
            .client
            .post(format!(
                "{}/v1/vlm/microsoft/florence-2",
                stack.emulator_url
            ))
            .bearer_auth("nvapi-load")
            .json(b)
            .send()
            .await
            .expect("emulator answers");
        assert_eq!(response.status(), 200);
        expected.push(unzip(&response.bytes().await.expect("body")).0);
    }
    let distinct: HashSet<String> = expected.iter().map(|e| e["choices"].to_string()).collect();
    assert_eq!(
        distinct.len(),
        REQUESTS as usize,
        "every request has its own answer, so a mix-up would show"
    );

    let mut running = tokio::task::JoinSet::new();
    for (i, b) in bodies.into_iter().enumerate() {
        let client = stack.client.clone();
        let url = format!("{}/v1/vlm/microsoft/florence-2", stack.proxy_url);
        running.spawn(async move {
            let response = client
                .post(url)
                .json(&b)
                .send()
                .await
                .expect("proxy answers");
            assert_eq!(response.status(), 200, "request {i}");
            (i, unzip(&response.bytes().await.expect("body")).0)
        });
    }
    let mut answered = 0;
    let all = async {
        while let Some(joined) = running.join_next().await {
            let (i, answer) = joined.expect("request task");
            assert_eq!(
                answer, expected[i],
                "request {i} got another request's answer"
            );
            answered += 1;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all)
        .await
        .expect("all answered in time");
    assert_eq!(answered, REQUESTS);
}
