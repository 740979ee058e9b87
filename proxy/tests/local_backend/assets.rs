//! Assets on `--backend local` live in the proxy's one store: its owners, `--max-assets`,
//! `--asset-store-mb` and `--asset-ttl` apply, and one caller cannot push out another's.

use serde_json::Value;

use crate::support::{ALICE, BOB, LocalProxy, body, tokens_file};

async fn upload(proxy: &LocalProxy, token: Option<&str>, bytes: &[u8]) -> (u16, Value) {
    let mut request = proxy
        .client
        .post(format!("{}/v1/assets", proxy.url))
        .header("content-type", "image/png")
        .body(bytes.to_vec());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
async fn one_caller_cannot_push_out_anothers_assets() {
    let file = tokens_file("evict");
    let proxy = LocalProxy::start(&["--client-tokens", file.to_str().expect("path")]).await;
    let image = proxy.test_image();
    let (status, alice) = upload(&proxy, Some(ALICE), &image).await;
    assert_eq!(status, 200, "{alice}");
    let id = alice["assetId"].as_str().expect("assetId").to_owned();
    // Before, the local backend kept its own 256 assets, the oldest dropped first, whoever
    // they belonged to: Bob's 256 small uploads pushed Alice's out.
    let tiny = {
        let mut png = Vec::new();
        image::RgbImage::new(16, 16)
            .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .expect("encode");
        png
    };
    for _ in 0..256 {
        let (status, answer) = upload(&proxy, Some(BOB), &tiny).await;
        assert_eq!(status, 200, "{answer}");
    }
    let src = format!("data:image/png;asset_id,{id}");
    let response = proxy
        .client
        .post(format!("{}/v1/vlm/microsoft/florence-2", proxy.url))
        .bearer_auth(ALICE)
        .json(&body("<CAPTION>", None, &src, Some(2)))
        .send()
        .await
        .expect("answers");
    let status = response.status();
    assert_eq!(
        status,
        200,
        "Alice's asset is still hers: {}",
        response.text().await.unwrap_or_default()
    );
    // And only hers.
    let response = proxy
        .client
        .post(format!("{}/v1/vlm/microsoft/florence-2", proxy.url))
        .bearer_auth(BOB)
        .json(&body("<CAPTION>", None, &src, Some(2)))
        .send()
        .await
        .expect("answers");
    assert_eq!(response.status(), 404);
    let _ = std::fs::remove_file(file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
async fn the_asset_store_flags_bound_local_assets() {
    let proxy = LocalProxy::start(&["--asset-store-mb", "1"]).await;
    let image = proxy.test_image();
    // 1 MB holds 17 copies of the 61 KB test picture at most (fewer when one caller may
    // hold only a share of it); before, the local backend's own store took 512 MB whatever
    // the flag said.
    let fits = (1 << 20) / image.len();
    let mut stored = 0;
    let (status, answer) = loop {
        let (status, answer) = upload(&proxy, None, &image).await;
        if status != 200 || stored > fits {
            break (status, answer);
        }
        stored += 1;
    };
    assert!(stored <= fits, "{stored} pictures stored in 1 MB");
    assert_eq!(status, 507, "{answer}");
    assert_eq!(answer["error"]["code"], "RATE_LIMITED", "{answer}");
    assert!(
        answer["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("asset-store-full")),
        "{answer}"
    );
}
