//! Prompts: validating a task's text, the endpoint's `content` string and the model's own
//! natural-language prompt.

use crate::error::{Error, ErrorCode, Result, excerpt};
use crate::region::{LocBox, loc_tokens, parse_loc_box};
use crate::task::{Task, TextKind};

/// Longest free text we accept. The model has 1024 positions of which 577 hold the image, so
/// anything longer than a few hundred words could not be read by it anyway.
pub const MAX_TEXT_CHARS: usize = 2000;

/// A task with its validated text.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub task: Task,
    pub input: PromptInput,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PromptInput {
    None,
    Text(String),
    Region(LocBox),
}

impl Prompt {
    /// Validates `text` for `task`: none allowed, required free text, or a `<loc_…>` region.
    /// Whitespace-only text counts as no text.
    pub fn new(task: Task, text: Option<&str>) -> Result<Prompt> {
        let text = text.map(str::trim).filter(|t| !t.is_empty());
        let input = match (task.text_kind(), text) {
            (TextKind::None, None) => PromptInput::None,
            (TextKind::None, Some(t)) => {
                return Err(Error::new(
                    ErrorCode::TextNotAllowed,
                    format!("{task} takes no text, but {:?} was given", excerpt(t)),
                ));
            }
            (TextKind::Required, None) => {
                return Err(Error::new(
                    ErrorCode::TextRequired,
                    format!("{task} needs text: {}", task.description()),
                ));
            }
            (TextKind::Region, None) => {
                return Err(Error::new(
                    ErrorCode::TextRequired,
                    format!(
                        "{task} needs a region: <loc_x1><loc_y1><loc_x2><loc_y2> (see regionToLoc)"
                    ),
                ));
            }
            (TextKind::Required, Some(t)) => {
                PromptInput::Text(check_free_text(task, t)?.to_owned())
            }
            (TextKind::Region, Some(t)) => PromptInput::Region(parse_loc_box(t)?),
        };
        Ok(Prompt { task, input })
    }

    /// Parses a whole prompt such as `<OPEN_VOCABULARY_DETECTION>a red car`.
    pub fn parse(prompt: &str) -> Result<Prompt> {
        let (task, rest) = Task::split_prompt(prompt)?;
        Prompt::new(task, Some(rest))
    }

    /// The text after the task token as the endpoint expects it.
    pub fn input_text(&self) -> String {
        match &self.input {
            PromptInput::None => String::new(),
            PromptInput::Text(t) => t.clone(),
            PromptInput::Region(b) => loc_tokens(b),
        }
    }

    /// `<TASK>text` — the prompt without the image.
    pub fn task_prompt(&self) -> String {
        format!("{}{}", self.task.token(), self.input_text())
    }

    /// The endpoint's `content`: `<TASK>text<img src="…" />`.
    pub fn endpoint_content(&self, image_src: &str) -> Result<String> {
        check_image_src(image_src)?;
        Ok(format!("{}<img src=\"{image_src}\" />", self.task_prompt()))
    }

    /// The natural-language prompt the model is trained on, as transformers' Florence-2
    /// processor expands the task token (the input is stripped, then substituted).
    pub fn model_prompt(&self) -> String {
        self.task
            .prompt_template()
            .replace("{input}", self.input_text().trim())
    }
}

/// Builds the endpoint's `content` for a task token, optional text and image source.
pub fn build_content(task: &str, text: Option<&str>, image_src: &str) -> Result<String> {
    Prompt::new(Task::from_token(task)?, text)?.endpoint_content(image_src)
}

/// The model's prompt for a task token and optional text.
pub fn model_prompt(task: Task, text: Option<&str>) -> Result<String> {
    Ok(Prompt::new(task, text)?.model_prompt())
}

fn check_free_text(task: Task, text: &str) -> Result<&str> {
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(Error::new(
            ErrorCode::TextInvalid,
            format!("{task} text is {chars} characters long; at most {MAX_TEXT_CHARS} are allowed"),
        ));
    }
    // The endpoint finds the image by its <img> tag inside the same string: a second tag in the
    // text would smuggle in another image (or break the one we send).
    if text.to_ascii_lowercase().contains("<img") {
        return Err(Error::new(
            ErrorCode::TextInvalid,
            "the text may not contain an <img> tag",
        ));
    }
    if text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return Err(Error::new(
            ErrorCode::TextInvalid,
            "the text contains control characters",
        ));
    }
    Ok(text)
}

/// An image source is a data URL with base64 data or an asset reference; nothing in it may end
/// the attribute it is written into.
fn check_image_src(src: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::new(
            ErrorCode::BadOption,
            format!("image source {:?}: {why}", excerpt(src)),
        ))
    };
    let Some(rest) = src.strip_prefix("data:image/") else {
        return bad("expected a data:image/…;base64,… URL or data:image/…;asset_id,… reference");
    };
    let Some((mime, data)) = rest.split_once(',') else {
        return bad("missing ',' between the media type and the data");
    };
    if !(mime.ends_with(";base64") || mime.ends_with(";asset_id")) {
        return bad("the media type must end in ;base64 or ;asset_id");
    }
    if data.is_empty() {
        return bad("no data after ','");
    }
    if !data
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
    {
        return bad("the data holds characters that are neither base64 nor an asset id");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const IMG: &str = "data:image/jpeg;base64,/9j/4AAQ";

    #[test]
    fn content_matches_the_endpoint_format() {
        assert_eq!(
            build_content("<CAPTION>", None, IMG).unwrap(),
            "<CAPTION><img src=\"data:image/jpeg;base64,/9j/4AAQ\" />"
        );
        assert_eq!(
            build_content("<OPEN_VOCABULARY_DETECTION>", Some("  a red car "), IMG).unwrap(),
            "<OPEN_VOCABULARY_DETECTION>a red car<img src=\"data:image/jpeg;base64,/9j/4AAQ\" />"
        );
        assert_eq!(
            build_content(
                "<REGION_TO_CATEGORY>",
                Some("<loc_1> <loc_2><loc_3><loc_4>"),
                "data:image/jpeg;asset_id,3fa85f64-5717"
            )
            .unwrap(),
            "<REGION_TO_CATEGORY><loc_1><loc_2><loc_3><loc_4><img src=\"data:image/jpeg;asset_id,3fa85f64-5717\" />"
        );
    }

    #[test]
    fn text_rules_give_typed_errors() {
        let code =
            |task: &str, text: Option<&str>| build_content(task, text, IMG).unwrap_err().code;
        assert_eq!(code("<OD>", Some("cat")), ErrorCode::TextNotAllowed);
        assert_eq!(
            code("<OPEN_VOCABULARY_DETECTION>", None),
            ErrorCode::TextRequired
        );
        assert_eq!(
            code("<OPEN_VOCABULARY_DETECTION>", Some("   ")),
            ErrorCode::TextRequired
        );
        assert_eq!(code("<REGION_TO_CATEGORY>", None), ErrorCode::TextRequired);
        assert_eq!(
            code("<REGION_TO_CATEGORY>", Some("the dog")),
            ErrorCode::BadRegion
        );
        assert_eq!(
            code("<CAPTION_TO_PHRASE_GROUNDING>", Some("a <img src=x>")),
            ErrorCode::TextInvalid
        );
        assert_eq!(
            code(
                "<CAPTION_TO_PHRASE_GROUNDING>",
                Some(&"a".repeat(MAX_TEXT_CHARS + 1))
            ),
            ErrorCode::TextInvalid
        );
        assert_eq!(code("<FOO>", None), ErrorCode::UnknownTask);
        assert!(build_content("<OD>", Some("  "), IMG).is_ok());
    }

    #[test]
    fn image_sources_cannot_break_out() {
        for bad in [
            "",
            "http://x/y.jpg",
            "data:image/jpeg;base64,",
            "data:image/jpeg;base64,ab\" onerror=\"x",
            "data:text/html;base64,AA",
            "data:image/jpeg,AA",
        ] {
            assert_eq!(
                build_content("<OD>", None, bad).unwrap_err().code,
                ErrorCode::BadOption,
                "{bad}"
            );
        }
    }

    #[test]
    fn model_prompts_match_transformers() {
        let p = |t: &str| Prompt::parse(t).unwrap().model_prompt();
        assert_eq!(
            p("<OD>"),
            "Locate the objects with category name in the image."
        );
        assert_eq!(p("<CAPTION>"), "What does the image describe?");
        assert_eq!(
            p("<CAPTION_TO_PHRASE_GROUNDING>A green car"),
            "Locate the phrases in the caption: A green car"
        );
        assert_eq!(
            p("<REGION_TO_DESCRIPTION><loc_52><loc_332><loc_932><loc_774>"),
            "What does the region <loc_52><loc_332><loc_932><loc_774> describe?"
        );
        assert_eq!(
            p("<REFERRING_EXPRESSION_SEGMENTATION> the dog "),
            "Locate the dog in the image with mask"
        );
    }
}
