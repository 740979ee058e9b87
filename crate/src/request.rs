//! The hosted endpoint's request: the JSON body of an invocation and the asset-reference form
//! of an image. Built by the browser, parsed back by the proxy (which validates what it
//! forwards) and by the emulator.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode, Result};
use crate::prompt::Prompt;

// NVCF's protocol facts (../shared/nim-api.md), written once: the browser client, the proxy
// and the emulator all read them from here. Header names are lower case (HTTP/2's form, and
// what `HeaderName::from_static` requires).

/// The path of the invocation, on the endpoint and on our proxy alike.
pub const INVOKE_PATH: &str = "/v1/vlm/microsoft/florence-2";
/// Our proxy's asset route: raw image bytes in, `{"assetId"}` out.
pub const ASSETS_PATH: &str = "/v1/assets";
/// NVCF's asset creation: `{"contentType","description"}` in, `{"uploadUrl","assetId"}` out.
pub const NVCF_ASSETS_PATH: &str = "/v2/nvcf/assets";
/// NVCF's polling of a pending (202) invocation: this prefix, then the request id.
pub const NVCF_STATUS_PATH_PREFIX: &str = "/v2/nvcf/pexec/status/";
/// NVCF's header naming the assets an invocation reads.
pub const HEADER_INPUT_ASSET_REFERENCES: &str = "nvcf-input-asset-references";
pub const HEADER_FUNCTION_ASSET_IDS: &str = "nvcf-function-asset-ids";
/// The id of a pending invocation, on a 202.
pub const HEADER_REQUEST_ID: &str = "nvcf-reqid";
/// How long one invoke or status call may block before answering 202 (0-300 s).
pub const HEADER_POLL_SECONDS: &str = "nvcf-poll-seconds";
/// `pending-evaluation`, `fulfilled`, … beside a 202 or 200.
pub const HEADER_STATUS: &str = "nvcf-status";
pub const HEADER_PERCENT_COMPLETE: &str = "nvcf-percent-complete";
/// The asset's description, part of the presigned upload's signature.
pub const HEADER_ASSET_DESCRIPTION: &str = "x-amz-meta-nvcf-asset-description";
/// NVCF accepts JSON bodies up to 5 MB.
pub const MAX_INVOKE_BODY_BYTES: usize = 5 * 1024 * 1024;

/// The path that polls the pending invocation `request_id`.
pub fn nvcf_status_path(request_id: &str) -> String {
    format!("{NVCF_STATUS_PATH_PREFIX}{request_id}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvokeRequest {
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

impl InvokeRequest {
    pub fn new(content: String) -> Self {
        InvokeRequest {
            messages: vec![Message {
                role: "user".into(),
                content,
            }],
            max_tokens: None,
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of strings and integers always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The image an invocation refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageRef {
    /// Base64 data inline, with its media type (`image/jpeg`).
    Inline { mime: String, base64: String },
    /// An asset uploaded beforehand.
    Asset { mime: String, asset_id: String },
}

impl ImageRef {
    /// The value of the `<img src="…">` attribute.
    pub fn src(&self) -> String {
        match self {
            ImageRef::Inline { mime, base64 } => format!("data:{mime};base64,{base64}"),
            ImageRef::Asset { mime, asset_id } => format!("data:{mime};asset_id,{asset_id}"),
        }
    }

    pub fn asset_id(&self) -> Option<&str> {
        match self {
            ImageRef::Asset { asset_id, .. } => Some(asset_id),
            ImageRef::Inline { .. } => None,
        }
    }
}

/// A validated invocation: its prompt, its image and the token limit, if one was asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    pub prompt: Prompt,
    pub image: ImageRef,
    pub max_tokens: Option<u32>,
}

/// Parses and validates an invocation body: JSON, exactly one user message whose content is
/// `<TASK>text<img src="data:…" />` with a known task and valid text.
pub fn parse_invoke_body(body: &[u8]) -> Result<Invocation> {
    let bad = |why: String| Error::new(ErrorCode::BadOption, why);
    if body.len() > MAX_INVOKE_BODY_BYTES {
        return Err(Error::new(
            ErrorCode::ImageTooLarge,
            format!(
                "the request body is {} bytes; at most {MAX_INVOKE_BODY_BYTES} are accepted",
                body.len()
            ),
        ));
    }
    let request: InvokeRequest = serde_json::from_slice(body)
        .map_err(|e| bad(format!("the body is not an invocation: {e}")))?;
    let [message] = &request.messages[..] else {
        return Err(bad(format!(
            "expected exactly one message, got {}",
            request.messages.len()
        )));
    };
    if message.role != "user" {
        return Err(bad(format!(
            "the message's role must be \"user\", not {:?}",
            message.role
        )));
    }
    Ok(Invocation {
        max_tokens: request.max_tokens,
        ..parse_content(&message.content)?
    })
}

/// Splits `<TASK>text<img src="…" />` into a validated prompt and the image reference.
pub fn parse_content(content: &str) -> Result<Invocation> {
    let bad = |why: &str| Error::new(ErrorCode::BadOption, format!("content: {why}"));
    let img_start = content
        .find("<img")
        .ok_or_else(|| bad("no <img src=\"…\" /> tag"))?;
    let (prompt_text, tag) = content.split_at(img_start);
    let after_src = tag
        .strip_prefix("<img src=\"")
        .ok_or_else(|| bad("the image tag must be <img src=\"…\" />"))?;
    let quote = after_src
        .find('"')
        .ok_or_else(|| bad("unterminated src attribute"))?;
    let (src, tail) = after_src.split_at(quote);
    let tail = tail[1..].trim();
    if tail != "/>" && tail != ">" {
        return Err(bad("nothing may follow the image tag"));
    }
    let prompt = Prompt::parse(prompt_text)?;
    Ok(Invocation {
        prompt,
        image: parse_image_src(src)?,
        max_tokens: None,
    })
}

fn parse_image_src(src: &str) -> Result<ImageRef> {
    let bad = |why: &str| Error::new(ErrorCode::BadOption, format!("image source: {why}"));
    let rest = src
        .strip_prefix("data:")
        .ok_or_else(|| bad("expected a data: URL"))?;
    let (meta, data) = rest.split_once(',').ok_or_else(|| bad("missing ','"))?;
    let (mime, kind) = meta
        .split_once(';')
        .ok_or_else(|| bad("missing ';base64' or ';asset_id'"))?;
    if !mime.starts_with("image/") || mime.len() > 40 {
        return Err(bad("the media type must be image/…"));
    }
    if data.is_empty() {
        return Err(bad("no data"));
    }
    match kind {
        "base64"
            if data
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')) =>
        {
            Ok(ImageRef::Inline {
                mime: mime.into(),
                base64: data.into(),
            })
        }
        "asset_id"
            if data.len() <= 128
                && data
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(ImageRef::Asset {
                mime: mime.into(),
                asset_id: data.into(),
            })
        }
        "base64" | "asset_id" => Err(bad("the data holds characters it may not")),
        _ => Err(bad("expected ;base64 or ;asset_id")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::build_content;
    use crate::task::Task;

    #[test]
    fn bodies_round_trip() {
        let content = build_content(
            "<OPEN_VOCABULARY_DETECTION>",
            Some("a cat"),
            "data:image/jpeg;base64,/9j/AA==",
        )
        .unwrap();
        let body = InvokeRequest::new(content).to_json();
        assert_eq!(
            body,
            r#"{"messages":[{"role":"user","content":"<OPEN_VOCABULARY_DETECTION>a cat<img src=\"data:image/jpeg;base64,/9j/AA==\" />"}]}"#
        );
        let inv = parse_invoke_body(body.as_bytes()).unwrap();
        assert_eq!(inv.prompt.task, Task::OpenVocabularyDetection);
        assert_eq!(
            inv.image,
            ImageRef::Inline {
                mime: "image/jpeg".into(),
                base64: "/9j/AA==".into()
            }
        );
        assert_eq!(inv.max_tokens, None);
        let with_limit = r#"{"messages":[{"role":"user","content":"<OD><img src=\"data:image/jpeg;base64,AA\" />"}],"max_tokens":1024}"#;
        assert_eq!(
            parse_invoke_body(with_limit.as_bytes()).unwrap().max_tokens,
            Some(1024)
        );
    }

    #[test]
    fn asset_references_parse() {
        let inv = parse_content("<OD><img src=\"data:image/png;asset_id,3fa85f64-5717-4562\" />")
            .unwrap();
        assert_eq!(inv.image.asset_id(), Some("3fa85f64-5717-4562"));
        assert_eq!(
            inv.image.src(),
            "data:image/png;asset_id,3fa85f64-5717-4562"
        );
    }

    #[test]
    fn bad_bodies_are_typed_errors() {
        let cases: [(&str, ErrorCode); 9] = [
            ("", ErrorCode::BadOption),
            ("{}", ErrorCode::BadOption),
            (r#"{"messages":[]}"#, ErrorCode::BadOption),
            (
                r#"{"messages":[{"role":"system","content":"<OD><img src=\"data:image/jpeg;base64,AA\" />"}]}"#,
                ErrorCode::BadOption,
            ),
            (
                r#"{"messages":[{"role":"user","content":"<OD>"}]}"#,
                ErrorCode::BadOption,
            ),
            (
                r#"{"messages":[{"role":"user","content":"<NOPE><img src=\"data:image/jpeg;base64,AA\" />"}]}"#,
                ErrorCode::UnknownTask,
            ),
            (
                r#"{"messages":[{"role":"user","content":"<OD>cat<img src=\"data:image/jpeg;base64,AA\" />"}]}"#,
                ErrorCode::TextNotAllowed,
            ),
            (
                r#"{"messages":[{"role":"user","content":"<OD><img src=\"http://evil/x.jpg\" />"}]}"#,
                ErrorCode::BadOption,
            ),
            (
                r#"{"messages":[{"role":"user","content":"<OD><img src=\"data:image/jpeg;base64,AA\" /><img src=\"data:image/jpeg;base64,AA\" />"}]}"#,
                ErrorCode::BadOption,
            ),
        ];
        for (body, code) in cases {
            assert_eq!(
                parse_invoke_body(body.as_bytes()).unwrap_err().code,
                code,
                "{body}"
            );
        }
        let huge = vec![b' '; MAX_INVOKE_BODY_BYTES + 1];
        assert_eq!(
            parse_invoke_body(&huge).unwrap_err().code,
            ErrorCode::ImageTooLarge
        );
    }
}
