//! What the local backend takes besides the golden cases: `<REGION_TO_OCR>`, assets, keys it
//! ignores, `/healthz`, and bad input answered with the typed 4xx errors of the NVIDIA path.

use std::io::Cursor;

use florence2::{ImageSize, Task};
use serde_json::Value;

use crate::support::{LocalProxy, body, data_url, parsed};

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error body");
    (status, body["error"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
async fn region_to_ocr_assets_and_keys_work_locally() {
    let proxy = LocalProxy::start(&[]).await;
    let image = proxy.test_image();
    let size = ImageSize::new(640, 480);

    // The task NVIDIA's endpoint lacks, with a key header that must be ignored (even a
    // malformed one: the local backend spends no key).
    let response = proxy
        .client
        .post(format!("{}/v1/vlm/microsoft/florence-2", proxy.url))
        .header("x-api-key", "not a key at all")
        .json(&body(
            "<REGION_TO_OCR>",
            Some("<loc_100><loc_100><loc_600><loc_500>"),
            &data_url(&image, "image/png"),
            Some(5),
        ))
        .send()
        .await
        .expect("answers");
    let (inline, document) = parsed(response, Task::RegionToOcr, size).await;
    assert_eq!(inline.result.task, "<REGION_TO_OCR>");
    assert!(inline.overlay.is_none(), "text tasks draw nothing");
    assert!(
        document["usage"]["completion_tokens"]
            .as_u64()
            .is_some_and(|n| n <= 5)
    );

    // The same through an uploaded asset: the same answer.
    let uploaded = proxy
        .client
        .post(format!("{}/v1/assets", proxy.url))
        .header("content-type", "image/png")
        .body(image.clone())
        .send()
        .await
        .expect("answers");
    assert_eq!(uploaded.status(), 200);
    let asset: Value = uploaded.json().await.expect("JSON");
    let id = asset["assetId"].as_str().expect("assetId");
    let src = format!("data:image/png;asset_id,{id}");
    let response = proxy
        .invoke(&body(
            "<REGION_TO_OCR>",
            Some("<loc_100><loc_100><loc_600><loc_500>"),
            &src,
            Some(5),
        ))
        .await;
    let (by_asset, _) = parsed(response, Task::RegionToOcr, size).await;
    assert_eq!(by_asset.result, inline.result);

    let health = proxy.health().await;
    assert_eq!(health["backend"], "local", "{health}");
    assert_eq!(health["ok"], true);
    let model = &health["model"];
    assert_eq!(model["name"], "florence2-tiny-e2e", "{health}");
    assert!(
        model["parameters"].as_u64().is_some_and(|n| n > 1_000_000),
        "{health}"
    );
    assert_eq!(model["layout"], "native");
    assert_eq!(health["queue"]["capacity"], 32, "the default --queue");
    assert_eq!(health["queue"]["threads"], 1, "the default --model-threads");
    assert!(health["queue"]["lastRunMs"].as_f64().is_some(), "{health}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
async fn bad_input_is_a_typed_4xx() {
    let proxy = LocalProxy::start(&[]).await;

    // Not an image.
    let text = data_url(b"this is not an image, just text", "image/png");
    let (status, error) = error_of(proxy.invoke(&body("<OD>", None, &text, None)).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("IMAGE_DECODE")),
        "{error}"
    );

    // A truncated PNG.
    let image = proxy.test_image();
    let cut = data_url(&image[..image.len() / 2], "image/png");
    let (status, error) = error_of(proxy.invoke(&body("<OD>", None, &cut, None)).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("IMAGE_DECODE")),
        "{error}"
    );

    // Huge in pixels (a small file: the check comes before the decoder allocates).
    let mut huge = Vec::new();
    image::RgbImage::new(10_000, 6_000)
        .write_to(&mut Cursor::new(&mut huge), image::ImageFormat::Png)
        .expect("encode");
    let huge = data_url(&huge, "image/png");
    let (status, error) = error_of(proxy.invoke(&body("<OD>", None, &huge, None)).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (413, Some("IMAGE_TOO_LARGE")),
        "{error}"
    );

    // Bad prompts, refused before the queue.
    let src = data_url(&image, "image/png");
    let raw =
        |content: &str| serde_json::json!({"messages": [{"role": "user", "content": content}]});
    for (content, code) in [
        (
            format!("<OD>a cat<img src=\"{src}\" />"),
            "TEXT_NOT_ALLOWED",
        ),
        (
            format!("<CAPTION_TO_PHRASE_GROUNDING><img src=\"{src}\" />"),
            "TEXT_REQUIRED",
        ),
        (
            format!("<REGION_TO_OCR>somewhere<img src=\"{src}\" />"),
            "BAD_REGION",
        ),
        (format!("<NOT_A_TASK><img src=\"{src}\" />"), "UNKNOWN_TASK"),
    ] {
        let (status, error) = error_of(proxy.invoke(&raw(&content)).await).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (400, Some(code)),
            "{error}"
        );
    }
    let (status, error) = error_of(
        proxy
            .invoke(&body(
                "<CAPTION>",
                None,
                "data:image/png;asset_id,no-such-asset",
                None,
            ))
            .await,
    )
    .await;
    // An asset this proxy never handed out is NVCF's 404, as for the NVIDIA backend.
    assert_eq!(
        (status, error["code"].as_str()),
        (404, Some("BAD_OPTION")),
        "{error}"
    );
    let (status, error) =
        error_of(proxy.invoke(&body("<CAPTION>", None, &src, Some(0))).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("BAD_OPTION")),
        "{error}"
    );

    // None of it reached the model, and the server still answers.
    let queue = proxy.health().await["queue"].clone();
    assert_eq!(queue["served"], 0, "{queue}");
    let response = proxy.invoke(&body("<CAPTION>", None, &src, Some(2))).await;
    assert_eq!(response.status(), 200);
}
