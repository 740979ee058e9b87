//! Every endpoint task through the proxy to the emulator, with the image inline and as an
//! uploaded asset.

use florence2::Task;
use florence2::task::AnswerKind;
use serde_json::Value;

use crate::support::{self, body, data_url, png, unzip};

/// Every coordinate pair of the entities lies inside `w`×`h`.
fn assert_inside(entities: &Value, w: f64, h: f64, task: Task) {
    let mut coords = Vec::new();
    for kind in ["bboxes", "quad_boxes"] {
        for shape in entities[kind].as_array().into_iter().flatten() {
            coords.extend(shape.as_array().expect("shape").iter().map(|v| v.as_f64().expect("number")));
        }
    }
    for instance in entities["polygons"].as_array().into_iter().flatten() {
        for ring in instance.as_array().expect("instance") {
            coords.extend(ring.as_array().expect("ring").iter().map(|v| v.as_f64().expect("number")));
        }
    }
    for pair in coords.chunks(2) {
        assert!((0.0..=w).contains(&pair[0]) && (0.0..=h).contains(&pair[1]), "{task}: {pair:?} outside {w}x{h}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_fourteen_tasks_inline_and_as_assets() {
    let stack = support::start(&[], &["--rate-limit", "0"], Some("nvapi-e2e")).await;
    let (w, h) = (120, 80);
    let image = png(w, h, 1);
    let asset_id = stack.upload(&image).await;
    for task in Task::ENDPOINT {
        let mut messages = Vec::new();
        for src in [data_url(&image), format!("data:image/png;asset_id,{asset_id}")] {
            let response = stack.invoke(&body(task, &src)).await;
            assert_eq!(response.status(), 200, "{task} via {}", &src[..20]);
            assert_eq!(response.headers()["content-type"], "application/zip");
            let (answer, overlay) = unzip(&response.bytes().await.expect("body"));
            let message = answer["choices"][0]["message"].clone();
            let content = message["content"].as_str().expect("content");
            assert!(content.starts_with(task.token()), "{task}: {content}");
            assert_inside(&message["entities"], f64::from(w), f64::from(h), task);
            let draws = task.answer_kind() != AnswerKind::PureText;
            assert_eq!(overlay.is_some(), draws, "{task}: overlay");
            if let Some(png) = overlay {
                let decoded = image::load_from_memory(&png).expect("overlay decodes");
                assert_eq!((decoded.width(), decoded.height()), (w, h), "{task}: overlay size");
            }
            messages.push(message);
        }
        assert_eq!(messages[0], messages[1], "{task}: inline and asset answers differ");
    }
    let invokes = stack.seen("/v1/vlm/microsoft/florence-2");
    assert_eq!(invokes.len(), 28);
    assert_eq!(stack.seen("/s3/assets/").len(), 1, "one upload");
}
