//! NVCF's protocol as the proxy must resolve it: 202 chains, 302 results, 429 retries and
//! their exhaustion, upstream errors, broken archives, slow and absent upstreams.

use std::time::{Duration, Instant};

use florence2::Task;
use nvcf_emulator::Fault;
use serde_json::Value;

use crate::support::{self, Stack, body, data_url, error_of, png, unzip};

async fn od(stack: &Stack) -> reqwest::Response {
    stack
        .invoke(&body(Task::ObjectDetection, &data_url(&png(64, 48, 2))))
        .await
}

async fn assert_zip(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    let (answer, _) = unzip(&response.bytes().await.expect("body"));
    assert!(
        answer["choices"][0]["message"]["content"]
            .as_str()
            .expect("content")
            .starts_with("<OD>")
    );
    answer
}

fn fault(spec: &str) -> Fault {
    Fault::parse(spec).expect("fault spec")
}

#[tokio::test]
async fn a_202_chain_is_polled_to_the_result() {
    let stack = support::start(&[], &[], Some("nvapi-chain")).await;
    stack.emulator.push_faults([fault("chain=3")]);
    assert_zip(od(&stack).await).await;
    let polls = stack.seen("/v2/nvcf/pexec/status/");
    assert_eq!(
        polls.len(),
        3,
        "three 202s: the invoke's and two polls', then the result"
    );
    assert!(
        polls
            .iter()
            .all(|p| p.authorization.as_deref() == Some("Bearer nvapi-chain"))
    );
}

#[tokio::test]
async fn a_302_result_is_downloaded_without_the_key() {
    let stack = support::start(&[], &[], Some("nvapi-redirect")).await;
    stack
        .emulator
        .push_faults([fault("redirect"), fault("chain=2; redirect")]);
    assert_zip(od(&stack).await).await;
    assert_zip(od(&stack).await).await;
    let downloads = stack.seen("/s3/results/");
    assert_eq!(downloads.len(), 2);
    assert!(
        downloads.iter().all(|d| d.authorization.is_none()),
        "presigned downloads carry no key"
    );
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_then_succeeds() {
    let stack = support::start(&[], &[], Some("nvapi-429")).await;
    stack.emulator.push_faults([
        fault("status=429; retry-after=1"),
        fault("status=429; retry-after=none"),
    ]);
    let started = Instant::now();
    assert_zip(od(&stack).await).await;
    // Retry-After: 1, then no header: the 1 s back-off.
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(stack.seen("/v1/vlm").len(), 3);
}

#[tokio::test]
async fn exhausted_429s_become_rate_limited_with_the_wait() {
    let stack = support::start(&[], &["--max-retries", "1"], Some("nvapi-429x")).await;
    stack.emulator.push_faults([
        fault("status=429; retry-after=0"),
        fault("status=429; retry-after=7"),
    ]);
    let response = od(&stack).await;
    assert_eq!(response.headers()["retry-after"], "7");
    let (status, error) = error_of(response).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (429, Some("RATE_LIMITED"))
    );
    assert_eq!(error["retryAfterSecs"], 7.0);
    assert_eq!(stack.seen("/v1/vlm").len(), 2);
}

#[tokio::test]
async fn a_429_wait_beyond_the_timeout_is_not_waited() {
    let stack = support::start(&[], &["--timeout", "5"], Some("nvapi-429t")).await;
    stack
        .emulator
        .push_faults([fault("status=429; retry-after=60")]);
    let started = Instant::now();
    let (status, error) = error_of(od(&stack).await).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(
        (
            status,
            error["code"].as_str(),
            error["retryAfterSecs"].as_f64()
        ),
        (429, Some("RATE_LIMITED"), Some(60.0))
    );
}

#[tokio::test]
async fn upstream_errors_are_typed() {
    let stack = support::start(&["--api-key", "nvapi-right"], &[], Some("nvapi-wrong")).await;
    let (status, error) = error_of(od(&stack).await).await;
    assert_eq!(
        (status, error["code"].as_str(), error["status"].as_u64()),
        (401, Some("UNAUTHORIZED"), Some(401))
    );

    let stack = support::start(&[], &[], Some("nvapi-500")).await;
    stack.emulator.push_faults([
        fault("status=500"),
        fault("status=422"),
        fault("status=403"),
    ]);
    let (status, error) = error_of(od(&stack).await).await;
    assert_eq!(
        (status, error["code"].as_str(), error["status"].as_u64()),
        (502, Some("UPSTREAM"), Some(500))
    );
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("scripted failure"),
        "the problem's detail is passed on: {error}"
    );
    let (status, error) = error_of(od(&stack).await).await;
    assert_eq!((status, error["code"].as_str()), (422, Some("UPSTREAM")));
    let (status, error) = error_of(od(&stack).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (403, Some("UNAUTHORIZED"))
    );
}

#[tokio::test]
async fn broken_archives_are_zip_invalid() {
    let stack = support::start(&[], &[], Some("nvapi-zip")).await;
    stack.emulator.push_faults([
        fault("truncate"),
        fault("content-type=text/html"),
        fault("redirect; truncate"),
    ]);
    for expect in ["application/zip", "text/html", "application/zip"] {
        let (status, error) = error_of(od(&stack).await).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (502, Some("ZIP_INVALID")),
            "{error}"
        );
        assert!(
            error["message"].as_str().expect("message").contains(expect),
            "{error}"
        );
    }
}

#[tokio::test]
async fn a_slow_upstream_times_out() {
    let stack = support::start(&[], &["--timeout", "1"], Some("nvapi-slow")).await;
    stack.emulator.push_faults([fault("delay-ms=5000")]);
    let started = Instant::now();
    let (status, error) = error_of(od(&stack).await).await;
    assert_eq!((status, error["code"].as_str()), (504, Some("TIMEOUT")));
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "answered after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_endless_202_chain_times_out() {
    let stack = support::start(&[], &["--timeout", "2"], Some("nvapi-endless")).await;
    stack.emulator.push_faults([fault("chain=1000")]);
    let started = Instant::now();
    let (status, error) = error_of(od(&stack).await).await;
    assert_eq!((status, error["code"].as_str()), (504, Some("TIMEOUT")));
    assert!(started.elapsed() < Duration::from_millis(3500));
    let polls = stack.seen("/v2/nvcf/pexec/status/").len();
    assert!((2..=12).contains(&polls), "polls are paced: {polls} in 2 s");
}

#[tokio::test]
async fn an_absent_upstream_is_a_network_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let upstream = format!("http://127.0.0.1:{port}");
    let stack = support::start(&[], &["--upstream", &upstream], Some("nvapi-down")).await;
    let (status, error) = error_of(od(&stack).await).await;
    assert_eq!((status, error["code"].as_str()), (502, Some("NETWORK")));
}

#[tokio::test]
async fn invalid_bodies_are_typed_errors_and_go_nowhere() {
    let stack = support::start(&[], &["--rate-limit", "0"], Some("nvapi-body")).await;
    let img = data_url(&png(16, 16, 3));
    let content = |c: String| serde_json::json!({ "messages": [{ "role": "user", "content": c }] });
    let cases = [
        (serde_json::json!("not an invocation"), "BAD_OPTION"),
        (serde_json::json!({ "messages": [] }), "BAD_OPTION"),
        (
            content(format!("<NOPE><img src=\"{img}\" />")),
            "UNKNOWN_TASK",
        ),
        (
            content(format!(
                "<REGION_TO_OCR><loc_1><loc_1><loc_9><loc_9><img src=\"{img}\" />"
            )),
            "UNKNOWN_TASK",
        ),
        (
            content(format!("<OPEN_VOCABULARY_DETECTION><img src=\"{img}\" />")),
            "TEXT_REQUIRED",
        ),
        (
            content(format!("<OD>cat<img src=\"{img}\" />")),
            "TEXT_NOT_ALLOWED",
        ),
        (
            content(format!("<REGION_TO_CATEGORY>the dog<img src=\"{img}\" />")),
            "BAD_REGION",
        ),
        (
            content("<OD><img src=\"http://127.0.0.1:1/x.png\" />".to_owned()),
            "BAD_OPTION",
        ),
    ];
    for (request, code) in cases {
        let (status, error) = error_of(stack.invoke(&request).await).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (400, Some(code)),
            "{request}"
        );
    }
    assert!(stack.emulator.journal().is_empty());
}
