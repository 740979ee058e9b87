//! Writing the hosted endpoint's answer: the `.response` document and the ZIP that carries it
//! with, for tasks that draw, an overlay PNG. The one home of this for everything that answers
//! as NVIDIA's endpoint does — the proxy's local backend (the product) and the NVCF emulator
//! (the test double) — so that both produce what [`crate::response::parse_zip`] reads.
//!
//! Native only, behind the `answer-writer` feature: the browser only reads answers.

mod archive;
mod document;
mod overlay;

pub use archive::zip;
pub use document::response_json;
pub use overlay::{draw, draw_on};

use crate::task::{AnswerKind, Task};

/// Whether the endpoint's answer for `task` carries an overlay image: every task whose answer
/// has coordinates (boxes, quads, polygons); captions and plain OCR do not draw.
pub fn draws_overlay(task: Task) -> bool {
    task.answer_kind() != AnswerKind::PureText
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::ImageSize;
    use crate::response::{ResponseContext, ZipLimits, parse_zip};
    use crate::result::Entities;

    #[test]
    fn a_written_answer_parses_back_with_its_overlay() {
        let entities = Entities {
            bboxes: Some(vec![[1.5, 2.0, 30.0, 8.0]]),
            labels: Some(vec!["car".into()]),
            ..Default::default()
        };
        let doc = response_json(
            "abc",
            "<OD>car<loc_1><loc_2><loc_3><loc_4>",
            &entities,
            serde_json::json!({"completion_tokens": 5, "prompt_tokens": 590, "total_tokens": 595}),
        );
        let canvas = image::RgbImage::from_pixel(40, 10, image::Rgb([0, 0, 0]));
        let png = draw(&canvas, &entities).unwrap();
        let bytes = zip("abc", &doc, Some(&png)).unwrap();
        let size = ImageSize::new(40, 10);
        let parsed = parse_zip(
            &bytes,
            ResponseContext::same_size(size),
            ZipLimits::default(),
        )
        .unwrap();
        assert_eq!(parsed.result.entities, entities);
        assert_eq!(parsed.result.task, "<OD>");
        assert_eq!(parsed.result.usage.unwrap()["prompt_tokens"], 590);
        let overlay = parsed.overlay.unwrap();
        assert_eq!(
            (overlay.name.as_str(), overlay.mime),
            ("abc.png", "image/png")
        );
        assert_eq!(
            zip("abc", &doc, Some(&png)).unwrap(),
            bytes,
            "deterministic bytes"
        );
    }

    #[test]
    fn only_tasks_with_coordinates_draw() {
        assert!(draws_overlay(Task::ObjectDetection));
        assert!(draws_overlay(Task::OcrWithRegion));
        assert!(!draws_overlay(Task::Caption));
        assert!(!draws_overlay(Task::Ocr));
    }
}
