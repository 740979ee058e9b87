//! `POST /v1/vlm/microsoft/florence-2`: reads the chat body (with florence2's parser, as the
//! endpoint would refuse what it refuses), finds the image (inline or an uploaded asset),
//! answers the task.

use std::io::Cursor;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State as Extract;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use florence2::Prompt;
use florence2::answer_archive;
use florence2::request::{
    HEADER_FUNCTION_ASSET_IDS, HEADER_INPUT_ASSET_REFERENCES, ImageRef, Invocation,
    parse_invoke_body,
};

use super::{MAX_JSON_BYTES, auth, deliver, request};
use crate::answer;
use crate::problem::Problem;
use crate::state::{State, lock};

/// Largest image side the emulator decodes (a bound on memory for hostile inputs).
const MAX_SIDE: u32 = 8192;

pub async fn invoke(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
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
    let Invocation { prompt, image, .. } =
        parse_invoke_body(&body).map_err(|e| Problem::unprocessable(e.message))?;
    if !prompt.task.on_endpoint() {
        return Err(Problem::unprocessable(format!(
            "unsupported task {}",
            prompt.task
        )));
    }
    // The answer's id follows the request's content, so equal requests get equal archives.
    let id_seed = prompt
        .endpoint_content(&image.src())
        .map_err(|e| Problem::unprocessable(e.message))?;
    let image = image_bytes(state, headers, &image)?;
    let zip = tokio::task::spawn_blocking(move || answer_zip(&prompt, &image, &id_seed))
        .await
        .map_err(|_| Problem::scripted(500, "the answering task failed"))??;
    let delivery = deliver::prepare(state, zip, &fault);
    Ok(deliver::answer_or_park(state, delivery, &fault))
}

fn image_bytes(state: &State, headers: &HeaderMap, image: &ImageRef) -> Result<Bytes, Problem> {
    match image {
        ImageRef::Inline { base64: b64, .. } => {
            let max = state.config.max_inline_chars;
            if b64.len() >= max {
                return Err(Problem::unprocessable(format!(
                    "inline image is {} base64 characters; the limit is {max}: upload larger images with the assets API",
                    b64.len()
                )));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|e| Problem::unprocessable(format!("invalid base64 image: {e}")))?;
            Ok(Bytes::from(bytes))
        }
        ImageRef::Asset { asset_id: id, .. } => {
            for name in [HEADER_INPUT_ASSET_REFERENCES, HEADER_FUNCTION_ASSET_IDS] {
                let listed = headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.split(',').any(|x| x.trim() == id));
                if !listed {
                    return Err(Problem::bad_request(format!(
                        "asset {id} is not listed in the {name} header"
                    )));
                }
            }
            let assets = lock(&state.assets);
            let asset = assets
                .get(id.as_str())
                .ok_or_else(|| Problem::not_found(format!("asset {id} does not exist")))?;
            asset.bytes.clone().ok_or_else(|| {
                Problem::unprocessable(format!("asset {id} was created but never uploaded"))
            })
        }
    }
}

/// Decodes the image, answers, draws the overlay, zips. CPU work: runs on the blocking pool.
fn answer_zip(prompt: &Prompt, image: &[u8], id_seed: &str) -> Result<Vec<u8>, Problem> {
    let undecodable = |e: &dyn std::fmt::Display| {
        Problem::unprocessable(format!("could not decode the image: {e}"))
    };
    let mut reader = image::ImageReader::new(Cursor::new(image))
        .with_guessed_format()
        .map_err(|e| undecodable(&e))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| undecodable(&e))?.to_rgb8();
    if decoded.width() == 0 || decoded.height() == 0 {
        return Err(Problem::unprocessable("the image has no pixels"));
    }
    let answer = answer::answer(prompt, &decoded).map_err(Problem::unprocessable)?;
    let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, id_seed.as_bytes()).to_string();
    let usage = serde_json::to_value(answer.usage).unwrap_or_default();
    let response = answer_archive::response_json(&id, &answer.content, &answer.entities, usage);
    let overlay = if answer.draws {
        Some(
            answer_archive::draw(&decoded, &answer.entities)
                .map_err(|e| Problem::scripted(500, format!("overlay failed: {e}")))?,
        )
    } else {
        None
    };
    answer_archive::zip(&id, &response, overlay.as_deref()).map_err(|e| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("zip failed: {e}"),
        )
    })
}
