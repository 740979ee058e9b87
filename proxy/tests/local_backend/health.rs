//! `/healthz` says to anyone only what a load balancer needs; the model, its queue and how
//! often pictures were reused are behind a client token; and a remembered picture is the
//! tenant's own, so one tenant cannot learn what another just sent.

use serde_json::Value;

use crate::support::{ALICE, BOB, LocalProxy, body, data_url, tokens_file};

async fn health(proxy: &LocalProxy, query: &str, token: Option<&str>) -> (u16, String) {
    let mut request = proxy.client.get(format!("{}/healthz{query}", proxy.url));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

async fn reused(proxy: &LocalProxy) -> u64 {
    let (status, text) = health(proxy, "?detail", Some(ALICE)).await;
    assert_eq!(status, 200, "{text}");
    let detail: Value = serde_json::from_str(&text).expect("JSON");
    detail["queue"]["picturesReused"]
        .as_u64()
        .unwrap_or_else(|| panic!("picturesReused: {detail}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
async fn open_health_says_little_and_pictures_stay_with_their_tenant() {
    let file = tokens_file("health");
    let proxy = LocalProxy::start(&["--client-tokens", file.to_str().expect("path")]).await;

    // Open: up, which backend, no key needed; nothing about the model or its activity.
    let (status, text) = health(&proxy, "", None).await;
    assert_eq!(status, 200, "{text}");
    let open: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(open["ok"], true);
    assert_eq!(open["backend"], "local");
    assert_eq!(open["clientTokensRequired"], true);
    assert_eq!(open["keyConfigured"], false);
    assert!(open.get("model").is_none(), "{open}");
    assert!(open.get("queue").is_none(), "{open}");
    let folder = proxy.model_dir.display().to_string();
    assert!(!text.contains(&folder), "the model's path: {text}");
    assert!(!text.contains("picturesReused"), "{text}");

    // The detail needs a token; a wrong one is refused like on the API routes.
    for token in [None, Some("not-a-token-of-this-proxy")] {
        let (status, text) = health(&proxy, "?detail", token).await;
        assert_eq!(status, 401, "{text}");
        let refusal: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(refusal["error"]["code"], "UNAUTHORIZED", "{refusal}");
    }
    let (status, text) = health(&proxy, "?detail", Some(BOB)).await;
    assert_eq!(status, 200, "{text}");
    let detail: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(detail["model"]["name"], "florence2-tiny-e2e", "{detail}");
    assert_eq!(detail["queue"]["capacity"], 32, "{detail}");

    // Alice's picture is remembered for Alice: Bob sending the same bytes runs the vision
    // tower again (before, his run reused hers, which showed in picturesReused and in how
    // fast his answer came).
    let src = data_url(&proxy.test_image(), "image/png");
    let run = |token: &'static str| {
        let request = proxy
            .client
            .post(format!("{}/v1/vlm/microsoft/florence-2", proxy.url))
            .bearer_auth(token)
            .json(&body("<CAPTION>", None, &src, Some(2)));
        async move {
            let response = request.send().await.expect("answers");
            assert_eq!(response.status(), 200);
        }
    };
    run(ALICE).await;
    assert_eq!(reused(&proxy).await, 0);
    run(BOB).await;
    assert_eq!(
        reused(&proxy).await,
        0,
        "Bob's run did not reuse Alice's picture"
    );
    run(ALICE).await;
    assert_eq!(reused(&proxy).await, 1, "Alice's own picture is reused");
    let _ = std::fs::remove_file(file);
}
