//! Every endpoint task through the proxy to the emulator, with the image inline and as an
//! uploaded asset; each answer read by florence2's own response parser (what the JS client
//! runs), so the emulator is held to the shape real clients accept.

use florence2::response::{ResponseContext, ZipLimits, parse_zip};
use florence2::task::AnswerKind;
use florence2::{Entities, ImageSize, Task};

use crate::support::{self, body, data_url, png};

/// Every coordinate pair lies inside `size`.
fn assert_inside(entities: &Entities, size: ImageSize, task: Task) {
    let (w, h) = (f64::from(size.width), f64::from(size.height));
    let boxes = entities.bboxes.iter().flatten().map(|b| &b[..]);
    let quads = entities.quad_boxes.iter().flatten().map(|q| &q[..]);
    let rings = entities.polygons.iter().flatten().flatten().map(|r| &r[..]);
    for coords in boxes.chain(quads).chain(rings) {
        for pair in coords.chunks(2) {
            assert!(
                (0.0..=w).contains(&pair[0]) && (0.0..=h).contains(&pair[1]),
                "{task}: {pair:?} outside {w}x{h}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_fourteen_tasks_inline_and_as_assets() {
    let stack = support::start(&[], &["--rate-limit", "0"], Some("nvapi-e2e")).await;
    let size = ImageSize::new(120, 80);
    let image = png(size.width, size.height, 1);
    let asset_id = stack.upload(&image).await;
    for &task in Task::ENDPOINT {
        let mut results = Vec::new();
        for src in [
            data_url(&image),
            format!("data:image/png;asset_id,{asset_id}"),
        ] {
            let response = stack.invoke(&body(task, &src)).await;
            assert_eq!(response.status(), 200, "{task} via {}", &src[..20]);
            assert_eq!(response.headers()["content-type"], "application/zip");
            let bytes = response.bytes().await.expect("body");
            let parsed = parse_zip(
                &bytes,
                ResponseContext {
                    original: size,
                    sent: size,
                    task: Some(task),
                },
                ZipLimits::default(),
            )
            .unwrap_or_else(|e| panic!("{task}: the client's parser refuses the answer: {e}"));
            assert_eq!(parsed.result.task, task.token());
            let draws = task.answer_kind() != AnswerKind::PureText;
            assert_eq!(
                !parsed.result.entities.is_empty(),
                draws,
                "{task}: entities"
            );
            if draws {
                assert_inside(&parsed.result.entities, size, task);
            } else {
                assert!(!parsed.result.text.is_empty(), "{task}: a text answer");
            }
            let overlay = parsed
                .overlay
                .as_ref()
                .map(|o| image::load_from_memory(&o.bytes).expect("overlay decodes"));
            assert_eq!(
                overlay.as_ref().map(|o| (o.width(), o.height())),
                draws.then_some((size.width, size.height)),
                "{task}: overlay"
            );
            results.push(parsed.result);
        }
        assert_eq!(
            results[0], results[1],
            "{task}: inline and asset answers differ"
        );
    }
    assert_eq!(stack.seen("/v1/vlm/microsoft/florence-2").len(), 28);
    assert_eq!(stack.seen("/s3/assets/").len(), 1, "one upload");
}
