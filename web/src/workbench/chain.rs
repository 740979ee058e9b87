//! What one answer leads to: a caption's phrases grounded on the same picture, a detected box
//! described as a region.

use florence2::{Florence2Result, ImageSize, Region, Task};

/// The tasks whose answer is a caption (grounding its phrases makes sense).
pub const CAPTIONS: [Task; 3] = [
    Task::Caption,
    Task::DetailedCaption,
    Task::MoreDetailedCaption,
];

/// The caption to ground, for a caption answer with words in it.
pub fn grounding_text(task: Task, result: &Florence2Result) -> Option<String> {
    let text = result.text.trim();
    (CAPTIONS.contains(&task) && !text.is_empty()).then(|| text.to_owned())
}

/// Whether the answer's boxes can each be asked about as a region (`<OD>`,
/// `<DENSE_REGION_CAPTION>`).
pub fn boxes_lead_to_regions(task: Task) -> bool {
    matches!(task, Task::ObjectDetection | Task::DenseRegionCaption)
}

/// A box of an answer as a region to ask about: clipped to the picture, and at least a pixel
/// wide and high (a model may give a box with no area, which no region task takes).
pub fn region_of_box(b: Region, size: ImageSize) -> Option<Region> {
    let (w, h) = (f64::from(size.width), f64::from(size.height));
    if w < 1.0 || h < 1.0 || ![b.x1, b.y1, b.x2, b.y2].iter().all(|v| v.is_finite()) {
        return None;
    }
    let span = |a: f64, b: f64, side: f64| {
        let (lo, hi) = (a.min(b).clamp(0.0, side), a.max(b).clamp(0.0, side));
        if hi - lo >= 1.0 {
            (lo, hi)
        } else {
            let lo = lo.min(side - 1.0);
            (lo, lo + 1.0)
        }
    };
    let (x1, x2) = span(b.x1, b.x2, w);
    let (y1, y2) = span(b.y1, b.y2, h);
    Some(Region { x1, y1, x2, y2 })
}

#[cfg(test)]
mod tests {
    use florence2::{Entities, Source};

    use super::*;

    fn answer(task: &str, text: &str) -> Florence2Result {
        Florence2Result {
            task: task.into(),
            text: text.into(),
            entities: Entities::default(),
            image: ImageSize::new(64, 48),
            source: Source::Local,
            usage: None,
        }
    }

    #[test]
    fn only_a_caption_with_words_is_grounded() {
        let r = answer("<CAPTION>", "  A red car.  ");
        assert_eq!(
            grounding_text(Task::Caption, &r).as_deref(),
            Some("A red car.")
        );
        assert_eq!(
            grounding_text(Task::MoreDetailedCaption, &r).as_deref(),
            Some("A red car.")
        );
        assert_eq!(
            grounding_text(Task::Caption, &answer("<CAPTION>", " ")),
            None
        );
        assert_eq!(grounding_text(Task::Ocr, &r), None);
        assert!(boxes_lead_to_regions(Task::DenseRegionCaption));
        assert!(!boxes_lead_to_regions(Task::RegionProposal));
    }

    #[test]
    fn a_box_becomes_a_region_the_endpoint_takes() {
        let size = ImageSize::new(640, 480);
        let r = |x1, y1, x2, y2| Region { x1, y1, x2, y2 };
        let ok = |b: Region| {
            let region = region_of_box(b, size).unwrap();
            assert!(region.to_endpoint_loc(size).is_ok(), "{b:?} -> {region:?}");
            region
        };
        assert_eq!(ok(r(10.0, 20.0, 30.0, 40.0)), r(10.0, 20.0, 30.0, 40.0));
        assert_eq!(ok(r(-5.0, 20.0, 700.0, 500.0)), r(0.0, 20.0, 640.0, 480.0));
        assert_eq!(ok(r(50.0, 50.0, 50.0, 50.0)), r(50.0, 50.0, 51.0, 51.0));
        assert_eq!(
            ok(r(640.0, 480.0, 640.0, 480.0)),
            r(639.0, 479.0, 640.0, 480.0)
        );
        assert_eq!(region_of_box(r(f64::NAN, 0.0, 1.0, 1.0), size), None);
    }
}
