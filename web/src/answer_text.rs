//! The words of an answer as people read them: captions and region answers without their
//! `<loc_…>` tokens, OCR with regions as its lines. (The result JSON keeps the raw text.)

use florence2::Florence2Result;
use florence2::task::{AnswerKind, Task};

/// The text to show beside the picture, if the task answers in words.
pub fn readable_text(result: &Florence2Result) -> Option<String> {
    let task = Task::from_token(&result.task).ok()?;
    let text = match task.answer_kind() {
        AnswerKind::PureText => without_locations(&result.text),
        AnswerKind::Ocr => result.entities.labels.as_ref().map(|lines| {
            lines
                .iter()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join("\n")
        })?,
        _ => return None,
    };
    Some(text)
}

/// The text with every `<loc_N>` token taken out and the spaces tidied.
fn without_locations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<loc_") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 5..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with('>') {
            out.push(' ');
            rest = &after[digits + 1..];
        } else {
            out.push_str("<loc_");
            rest = after;
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use florence2::{Entities, ImageSize, Source};

    use super::*;

    fn result(task: &str, text: &str, labels: Option<Vec<&str>>) -> Florence2Result {
        Florence2Result {
            task: task.into(),
            text: text.into(),
            entities: Entities {
                labels: labels.map(|l| l.into_iter().map(String::from).collect()),
                ..Default::default()
            },
            image: ImageSize::new(10, 10),
            source: Source::Endpoint,
            usage: None,
        }
    }

    #[test]
    fn captions_and_region_answers_read_cleanly() {
        assert_eq!(
            readable_text(&result("<CAPTION>", " A dog in a field. ", None)).as_deref(),
            Some("A dog in a field.")
        );
        assert_eq!(
            readable_text(&result(
                "<REGION_TO_CATEGORY>",
                "car<loc_52><loc_332><loc_932><loc_774>",
                None
            ))
            .as_deref(),
            Some("car")
        );
        assert_eq!(
            readable_text(&result("<OCR>", "EXIT <loc_x> 5", None)).as_deref(),
            Some("EXIT <loc_x> 5"),
            "not a token, kept"
        );
    }

    #[test]
    fn ocr_with_regions_reads_as_lines_and_drawing_tasks_have_no_text() {
        assert_eq!(
            readable_text(&result(
                "<OCR_WITH_REGION>",
                "",
                Some(vec!["EXIT", " ", "Gate 5"])
            ))
            .as_deref(),
            Some("EXIT\nGate 5")
        );
        assert_eq!(
            readable_text(&result("<OD>", "car<loc_1>", Some(vec!["car"]))),
            None
        );
        assert_eq!(readable_text(&result("<NOPE>", "x", None)), None);
    }
}
