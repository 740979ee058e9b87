//! `POST /v1/vlm/microsoft/florence-2`: reads the chat body like NVCF, finds the image (inline
//! or an uploaded asset), answers the task.

use std::io::Cursor;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use florence2::Prompt;
use serde::Deserialize;

use super::{MAX_JSON_BYTES, auth, deliver, request};
use crate::problem::Problem;
use crate::state::{State, lock};
use crate::{answer, archive, overlay};

/// Largest image side the emulator decodes (a bound on memory for hostile inputs).
const MAX_SIDE: u32 = 8192;

#[derive(Deserialize)]
struct ChatBody {
    messages: Vec<Message>,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    content: String,
}

pub async fn invoke(Extract(state): Extract<Arc<State>>, headers: HeaderMap, body: Body) -> Response {
    match run(&state, &headers, body).await {
        Ok(response) => response,
        Err(problem) => problem.into_response(),
    }
}

async fn run(state: &Arc<State>, headers: &HeaderMap, body: Body) -> Result<Response, Problem> {
    auth::check(state, headers)?;
    let fault = request::fault(state, headers)?;
    request::misbehave(&fault, headers).await?;
    let body = request::body(body, MAX_JSON_BYTES).await?;
    let body: ChatBody = serde_json::from_slice(&body).map_err(|e| Problem::unprocessable(format!("invalid request body: {e}")))?;
    let [Message { role, content }] = &body.messages[..] else {
        return Err(Problem::unprocessable("expected exactly one message"));
    };
    if role != "user" {
        return Err(Problem::unprocessable(format!("unsupported role {role:?}")));
    }
    let (prompt, source) = split_content(content)?;
    let image = image_bytes(state, headers, source)?;
    let content = content.clone();
    let zip = tokio::task::spawn_blocking(move || answer_zip(&prompt, &image, &content))
        .await
        .map_err(|_| Problem::scripted(500, "the answering task failed"))??;
    let delivery = deliver::prepare(state, zip, &fault);
    Ok(deliver::answer_or_park(state, delivery, &fault))
}

/// The image of a request: inline base64, or the bytes of an uploaded asset.
enum Source<'a> {
    Inline(&'a str),
    Asset(&'a str),
}

/// NVCF's reading of `content`: the prompt, then `<img src="…" />`.
fn split_content(content: &str) -> Result<(Prompt, Source<'_>), Problem> {
    let start = content.find("<img src=\"").ok_or_else(|| Problem::unprocessable("content has no <img src=\"…\" /> tag"))?;
    let src_start = start + "<img src=\"".len();
    let src_len = content[src_start..].find('"').ok_or_else(|| Problem::unprocessable("unterminated <img src=\"…\""))?;
    let src = &content[src_start..src_start + src_len];
    if content[src_start + src_len + 1..].trim() != "/>" {
        return Err(Problem::unprocessable("content must end with the <img … /> tag"));
    }
    let prompt = Prompt::parse(&content[..start]).map_err(|e| Problem::unprocessable(e.message))?;
    if !prompt.task.on_endpoint() {
        return Err(Problem::unprocessable(format!("unsupported task {}", prompt.task)));
    }
    let (media, data) = src.split_once(',').ok_or_else(|| Problem::unprocessable("image source must be a data URL"))?;
    let source = match media.strip_prefix("data:image/") {
        Some(m) if m.ends_with(";base64") => Source::Inline(data),
        Some(m) if m.ends_with(";asset_id") => Source::Asset(data),
        _ => return Err(Problem::unprocessable("image source must be data:image/…;base64,… or data:image/…;asset_id,…")),
    };
    Ok((prompt, source))
}

fn image_bytes(state: &State, headers: &HeaderMap, source: Source<'_>) -> Result<Bytes, Problem> {
    match source {
        Source::Inline(b64) => {
            let max = state.config.max_inline_chars;
            if b64.len() >= max {
                return Err(Problem::unprocessable(format!(
                    "inline image is {} base64 characters; the limit is {max}: upload larger images with the assets API",
                    b64.len()
                )));
            }
            let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| Problem::unprocessable(format!("invalid base64 image: {e}")))?;
            Ok(Bytes::from(bytes))
        }
        Source::Asset(id) => {
            for name in ["nvcf-input-asset-references", "nvcf-function-asset-ids"] {
                let listed = headers.get(name).and_then(|v| v.to_str().ok()).is_some_and(|v| v.split(',').any(|x| x.trim() == id));
                if !listed {
                    return Err(Problem::bad_request(format!("asset {id} is not listed in the {name} header")));
                }
            }
            let assets = lock(&state.assets);
            let asset = assets.get(id).ok_or_else(|| Problem::not_found(format!("asset {id} does not exist")))?;
            asset.bytes.clone().ok_or_else(|| Problem::unprocessable(format!("asset {id} was created but never uploaded")))
        }
    }
}

/// Decodes the image, answers, draws the overlay, zips. CPU work: runs on the blocking pool.
fn answer_zip(prompt: &Prompt, image: &[u8], content: &str) -> Result<Vec<u8>, Problem> {
    let undecodable = |e: &dyn std::fmt::Display| Problem::unprocessable(format!("could not decode the image: {e}"));
    let mut reader = image::ImageReader::new(Cursor::new(image)).with_guessed_format().map_err(|e| undecodable(&e))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| undecodable(&e))?.to_rgb8();
    if decoded.width() == 0 || decoded.height() == 0 {
        return Err(Problem::unprocessable("the image has no pixels"));
    }
    let answer = answer::answer(prompt, &decoded).map_err(Problem::unprocessable)?;
    let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, content.as_bytes()).to_string();
    let response = archive::response_json(&id, &answer);
    let overlay = if answer.draws {
        Some(overlay::draw(&decoded, &answer.entities).map_err(|e| Problem::scripted(500, format!("overlay failed: {e}")))?)
    } else {
        None
    };
    archive::zip(&id, &response, overlay.as_deref()).map_err(|e| Problem::new(StatusCode::INTERNAL_SERVER_ERROR, format!("zip failed: {e}")))
}
