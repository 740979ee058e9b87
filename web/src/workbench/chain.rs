//! What one answer leads to: a caption's phrases grounded on the same picture, a detected box
//! described as a region.

use florence2::{Florence2Result, Task};

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

#[cfg(test)]
mod tests {
    use florence2::{Entities, ImageSize, Source};

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
}
