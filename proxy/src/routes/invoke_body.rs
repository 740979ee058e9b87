//! The endpoint's JSON body, validated: one user message whose `content` is a known task, its
//! text, and one image (inline or an asset).

use florence2::{Error, ErrorCode, Prompt, Result};
use serde::Deserialize;

use crate::backend::{ImageSource, InvokeRequest};

/// The most `max_tokens` a caller may ask for (the model has 1024 positions).
const MAX_TOKENS: u32 = 4096;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    messages: Vec<WireMessage>,
    #[serde(default)]
    max_tokens: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireMessage {
    role: String,
    content: String,
}

pub fn parse(body: &[u8]) -> Result<InvokeRequest> {
    let bad = |m: String| Error::new(ErrorCode::BadOption, m);
    let wire: Wire = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the body is not the endpoint's JSON {{\"messages\":[{{\"role\":\"user\",\"content\":\"<TASK>…<img src=\\\"…\\\" />\"}}]}}: {e}")))?;
    let [message] = &wire.messages[..] else {
        return Err(bad(format!("expected exactly one message, got {}", wire.messages.len())));
    };
    if message.role != "user" {
        return Err(bad(format!("the message's role must be \"user\", not {:?}", message.role)));
    }
    if let Some(n) = wire.max_tokens.filter(|n| !(1..=MAX_TOKENS).contains(n)) {
        return Err(bad(format!("max_tokens {n} is outside 1..={MAX_TOKENS}")));
    }
    let (prompt, image) = split_content(&message.content)?;
    if !prompt.task.on_endpoint() {
        return Err(Error::new(ErrorCode::UnknownTask, format!("{} is not offered by NVIDIA's endpoint (only the local model runs it)", prompt.task)));
    }
    // Checks the image source the way the content will be rebuilt upstream.
    prompt.endpoint_content(&image.src())?;
    Ok(InvokeRequest { prompt, image, max_tokens: wire.max_tokens })
}

/// `<TASK>text<img src="SRC" />` → the validated prompt and the image source: the inverse of
/// `Prompt::endpoint_content`.
// TODO(lead): move into florence2::request beside the body builder; kept here until it exists.
fn split_content(content: &str) -> Result<(Prompt, ImageSource)> {
    let bad = |m: &str| Error::new(ErrorCode::BadOption, format!("content: {m}; expected <TASK>text<img src=\"data:image/…\" />"));
    let rest = content.trim_end().strip_suffix("/>").ok_or_else(|| bad("it does not end with the image tag"))?;
    let rest = rest.trim_end().strip_suffix('"').ok_or_else(|| bad("the image tag's src is not quoted"))?;
    let tag = rest.rfind("<img src=\"").ok_or_else(|| bad("there is no <img src=\"…\" /> tag"))?;
    let src = &rest[tag + "<img src=\"".len()..];
    let prompt = Prompt::parse(&rest[..tag])?;
    Ok((prompt, ImageSource::parse(src)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use florence2::{PromptInput, Task};
    use serde_json::json;

    fn body(content: &str) -> Vec<u8> {
        json!({"messages": [{"role": "user", "content": content}]}).to_string().into_bytes()
    }

    #[test]
    fn content_built_by_florence2_parses_back() {
        for task in Task::ENDPOINT {
            let text = match task.text_kind() {
                florence2::TextKind::None => None,
                florence2::TextKind::Required => Some("a red car"),
                florence2::TextKind::Region => Some("<loc_1><loc_2><loc_300><loc_400>"),
            };
            for src in ["data:image/jpeg;base64,/9j/4AAQ", "data:image/png;asset_id,3fa85f64-5717"] {
                let content = florence2::build_content(task.token(), text, src).unwrap();
                let request = parse(&body(&content)).unwrap();
                assert_eq!(request.prompt.task, task);
                assert_eq!(request.image.src(), src);
                assert_eq!(request.prompt.endpoint_content(&request.image.src()).unwrap(), content);
            }
        }
        let request = parse(&body("<OPEN_VOCABULARY_DETECTION>a cat<img src=\"data:image/png;base64,AA==\"/>")).unwrap();
        assert_eq!(request.prompt.input, PromptInput::Text("a cat".into()));
    }

    #[test]
    fn bad_bodies_are_typed_errors() {
        let code = |b: &[u8]| parse(b).unwrap_err().code;
        let img = "<img src=\"data:image/png;base64,AA==\" />";
        assert_eq!(code(b"not json"), ErrorCode::BadOption);
        assert_eq!(code(br#"{"messages":[]}"#), ErrorCode::BadOption);
        assert_eq!(code(br#"{"messages":[{"role":"user","content":"<OD>"}],"stream":true}"#), ErrorCode::BadOption);
        assert_eq!(code(json!({"messages":[{"role":"system","content":format!("<OD>{img}")}]}).to_string().as_bytes()), ErrorCode::BadOption);
        assert_eq!(code(json!({"messages":[{"role":"user","content":format!("<OD>{img}")}],"max_tokens":0}).to_string().as_bytes()), ErrorCode::BadOption);
        assert_eq!(code(&body(&format!("<NOPE>{img}"))), ErrorCode::UnknownTask);
        assert_eq!(code(&body(&format!("<REGION_TO_OCR><loc_1><loc_1><loc_2><loc_2>{img}"))), ErrorCode::UnknownTask);
        assert_eq!(code(&body(&format!("<OPEN_VOCABULARY_DETECTION>{img}"))), ErrorCode::TextRequired);
        assert_eq!(code(&body(&format!("<OD>cat{img}"))), ErrorCode::TextNotAllowed);
        assert_eq!(code(&body(&format!("<REGION_TO_CATEGORY>the dog{img}"))), ErrorCode::BadRegion);
        assert_eq!(code(&body(&format!("<CAPTION_TO_PHRASE_GROUNDING><img src=\"x\">{img}"))), ErrorCode::TextInvalid);
        assert_eq!(code(&body("<OD>")), ErrorCode::BadOption);
        assert_eq!(code(&body("<OD><img src=\"http://evil.example/x.jpg\" />")), ErrorCode::BadOption);
        assert_eq!(code(&body("<OD><img src=\"data:image/png;base64,AA\" onerror=\"x\" />")), ErrorCode::BadOption);
    }
}
