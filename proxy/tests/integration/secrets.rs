//! The API key goes upstream as `Authorization: Bearer …` on NVCF's API routes and nowhere
//! else: not in any answer's headers or body, not to presigned URLs, not in any log line
//! (logs are captured at TRACE level for the whole test binary).

use florence2::Task;
use nvcf_emulator::Fault;

use crate::support::{self, Stack, body, data_url, error_of, png};

/// Every header and the body of `response`, as text, checked for `key`.
async fn assert_clean(response: reqwest::Response, key: &str) -> (u16, String) {
    let status = response.status().as_u16();
    for (name, value) in response.headers() {
        assert!(
            !String::from_utf8_lossy(value.as_bytes()).contains(key),
            "header {name} holds the key"
        );
    }
    let body = response.bytes().await.expect("body");
    assert!(
        !String::from_utf8_lossy(&body).contains(key),
        "the body holds the key"
    );
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Runs every kind of request the proxy handles; answers checked for `key`.
async fn exercise(stack: &Stack, key: &str, headers: &[(&str, &str)]) {
    let image = png(40, 30, 4);
    let send = |path: &str, ct: &str, body: Vec<u8>| {
        let mut request = stack
            .client
            .post(format!("{}{path}", stack.proxy_url))
            .header("content-type", ct)
            .body(body);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        request.send()
    };
    let (status, text) = assert_clean(
        send("/v1/assets", "image/png", image.clone())
            .await
            .expect("answer"),
        key,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let asset: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let asset_src = format!(
        "data:image/png;asset_id,{}",
        asset["assetId"].as_str().expect("assetId")
    );
    stack.emulator.push_faults(
        [
            "",
            "chain=2",
            "redirect",
            "status=429; retry-after=0",
            "",
            "status=500",
            "echo-key",
        ]
        .map(|f| Fault::parse(f).expect("fault")),
    );
    for src in [
        data_url(&image),
        asset_src.clone(),
        data_url(&image),
        data_url(&image),
        data_url(&image),
        data_url(&image),
    ] {
        let json = body(Task::ObjectDetection, &src).to_string().into_bytes();
        assert_clean(
            send("/v1/vlm/microsoft/florence-2", "application/json", json)
                .await
                .expect("answer"),
            key,
        )
        .await;
    }
    let bad = body(Task::OpenVocabularyDetection, &data_url(&image))
        .to_string()
        .replace(
            "<OPEN_VOCABULARY_DETECTION>",
            "<OPEN_VOCABULARY_DETECTION>x<img",
        );
    assert_clean(
        send(
            "/v1/vlm/microsoft/florence-2",
            "application/json",
            bad.into_bytes(),
        )
        .await
        .expect("answer"),
        key,
    )
    .await;
    let health = stack
        .client
        .get(format!("{}/healthz", stack.proxy_url))
        .send()
        .await
        .expect("answer");
    assert_clean(health, key).await;
}

/// Which journal paths carried `Bearer key`, and that presigned ones carried nothing.
fn assert_key_only_on_api_routes(stack: &Stack, key: &str) {
    let journal = stack.emulator.journal();
    assert!(!journal.is_empty());
    for seen in journal {
        let api = seen.path.starts_with("/v1/vlm/") || seen.path.starts_with("/v2/nvcf/");
        if seen.path == "/" {
            assert!(
                seen.authorization.is_none(),
                "the health probe carries no key"
            );
        } else if api {
            assert_eq!(
                seen.authorization.as_deref(),
                Some(format!("Bearer {key}").as_str()),
                "{} {}",
                seen.method,
                seen.path
            );
        } else {
            assert!(
                seen.authorization.is_none(),
                "{} {} got an Authorization header",
                seen.method,
                seen.path
            );
        }
    }
}

fn assert_not_logged(key: &str) {
    let logs = support::logs();
    assert!(logs.contains("answered"), "logs are being captured");
    assert!(!logs.contains(key), "the key {key} appears in the logs");
}

#[tokio::test]
async fn a_configured_key_reaches_only_the_api_and_never_comes_back() {
    let key = "nvapi-CONFIGURED-9f3a1c";
    let stack = support::start(&[], &["--max-retries", "1"], Some(key)).await;
    exercise(&stack, key, &[]).await;
    // A hostile upstream quoting the key: the caller sees it redacted.
    stack
        .emulator
        .push_faults([Fault::parse("echo-key").expect("fault")]);
    let (status, error) = error_of(
        stack
            .invoke(&body(Task::Caption, &data_url(&png(8, 8, 0))))
            .await,
    )
    .await;
    assert_eq!(status, 502);
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("<redacted>"),
        "{error}"
    );
    // With a key configured, a request's own key is ignored.
    let other = "nvapi-IGNORED-77aa";
    exercise(&stack, other, &[("x-api-key", other)]).await;
    assert_key_only_on_api_routes(&stack, key);
    assert_not_logged(key);
    assert_not_logged(other);
}

#[tokio::test]
async fn a_request_key_is_used_for_that_request_only_and_never_logged() {
    let key = "nvapi-CALLER-5d2e8b";
    let stack = support::start(&[], &["--max-retries", "1"], None).await;
    exercise(&stack, key, &[("x-api-key", key)]).await;
    assert_key_only_on_api_routes(&stack, key);
    // Without a key anywhere: a typed UNAUTHORIZED that says how to set one; nothing sent.
    let before = stack.emulator.journal().len();
    let (status, error) = error_of(
        stack
            .invoke(&body(Task::Caption, &data_url(&png(8, 8, 0))))
            .await,
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("UNAUTHORIZED"))
    );
    let message = error["message"].as_str().expect("message");
    assert!(
        message.contains("NVIDIA_API_KEY") && message.contains("X-Api-Key"),
        "{message}"
    );
    assert_eq!(stack.emulator.journal().len(), before);
    // A malformed request key is refused without being quoted.
    let response = stack
        .client
        .post(format!("{}/v1/vlm/microsoft/florence-2", stack.proxy_url))
        .header("x-api-key", "nvapi-BAD KEY-31")
        .json(&body(Task::Caption, &data_url(&png(8, 8, 0))))
        .send()
        .await
        .expect("answer");
    let (status, text) = assert_clean(response, "BAD KEY").await;
    assert_eq!(status, 401, "{text}");
    assert_not_logged(key);
    assert_not_logged("nvapi-BAD KEY-31");
}
