//! A picture's decoding is in `--memory-budget` (the local backend): reserved from its header
//! before a pixel is decoded, refused with a typed 413 when one request may never hold it, and
//! a typed 429 when the budget has no room for it now.

use std::io::Cursor;
use std::time::Duration;

use image::{DynamicImage, ImageBuffer, ImageFormat, Rgb, Rgba};
use serde_json::Value;

use crate::queue::{LONG, start_raw};
use crate::support::{LocalProxy, body, data_url};

fn png(image: DynamicImage) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .expect("encode");
    bytes
}

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
async fn a_picture_that_cannot_be_decoded_within_the_budget_is_a_413() {
    // 32 MB: one request may hold 25 MB.
    let proxy = LocalProxy::start(&["--memory-budget", "32"]).await;
    // 9 megapixels, under the 50 MP limit, in a small file: 16-bit RGBA decodes to 72 MB
    // (plus its RGB8 copy, 27 MB). Before, it was decoded and run (200).
    let deep = png(DynamicImage::ImageRgba16(ImageBuffer::<Rgba<u16>, _>::new(
        3000, 3000,
    )));
    assert!(deep.len() < 1 << 20, "{} bytes", deep.len());
    let (status, error) = error_of(
        proxy
            .invoke(&body(
                "<CAPTION>",
                None,
                &data_url(&deep, "image/png"),
                Some(2),
            ))
            .await,
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (413, Some("IMAGE_TOO_LARGE")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("--memory-budget")),
        "{error}"
    );
    // Nothing was decoded or run, and an ordinary picture still is.
    assert_eq!(proxy.health().await["queue"]["served"], 0);
    let src = data_url(&proxy.test_image(), "image/png");
    let response = proxy.invoke(&body("<CAPTION>", None, &src, Some(2))).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
async fn a_second_large_picture_from_one_client_waits_for_no_room_it_cannot_get() {
    let proxy = LocalProxy::start(&["--memory-budget", "32", "--queue", "4"]).await;
    // RGB8, 2600 x 2600: 20.3 MB decoded, within one request's 25 MB; two are not.
    let large = png(DynamicImage::ImageRgb8(ImageBuffer::from_pixel(
        2600,
        2600,
        Rgb([90u8, 120, 200]),
    )));
    let src = data_url(&large, "image/png");
    let running = start_raw(&proxy, &body("<CAPTION>", None, &src, Some(LONG))).await;
    proxy
        .wait_for_queue(Duration::from_secs(60), |q| q["running"] == 1)
        .await;
    // Before, the second waited in the line and was decoded beside the first.
    let (status, error) =
        error_of(proxy.invoke(&body("<CAPTION>", None, &src, Some(2))).await).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (429, Some("RATE_LIMITED")),
        "{error}"
    );
    assert!(error["retryAfterSecs"].as_f64().is_some(), "{error}");
    drop(running);
}
