//! One invocation on a runner thread: decode the image, run the model (stopping when asked),
//! and write the endpoint's answer — `.response` in its exact shape and, for tasks that draw,
//! the overlay — as the ZIP NVIDIA would send.

use bytes::Bytes;
use florence2::answer_archive::{draw_on, draws_overlay, response_json, zip};
use florence2::{Error, ErrorCode, Result, Task};
use florence2_burn::{Florence2, RgbImage, RunOptions};
use serde_json::json;

use super::failure::from_model;
use super::pictures::PictureCache;
use super::plan::{decode_rgb, max_new_tokens};
use crate::guard::memory::Reservation;
use crate::wire::Tenant;

/// What a runner needs for one request (owned: it crosses to the runner thread).
pub struct Job {
    pub image: Bytes,
    pub task: Task,
    /// The task's text as the model reads it (free text or `<loc_…>` tokens).
    pub text: Option<String>,
    /// The body's `max_tokens`: caps the new tokens below the model's own limit.
    pub max_tokens: Option<u32>,
    /// Who asked: pictures are remembered for them only.
    pub tenant: Tenant,
    /// The picture's decoding in `--memory-budget`, held until the run is over.
    pub held: Option<Reservation>,
}

/// The answer archive and what it cost.
pub struct Answered {
    pub zip: Bytes,
    /// New tokens generated (the decoder start token not counted).
    pub tokens: usize,
}

pub fn run(
    model: &Florence2,
    pictures: &PictureCache,
    job: Job,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Answered> {
    let _held = job.held;
    // The same limits as the JS client's preparation: typed IMAGE_DECODE / IMAGE_TOO_LARGE /
    // IMAGE_TOO_SMALL before any large allocation. One RGB copy, the model's input, and then
    // the overlay's canvas.
    let rgb = decode_rgb(&job.image)?;
    let (width, height) = rgb.dimensions();
    let input = RgbImage::new(width, height, rgb.into_raw()).map_err(from_model)?;
    let positions = model.model.config().text_config.max_position_embeddings;
    let max_new_tokens =
        max_new_tokens(job.max_tokens, model.generation.max_new_tokens, positions)?;
    let generation = model.generation_config(RunOptions {
        num_beams: None,
        max_new_tokens: Some(max_new_tokens),
    });
    // The prompt first: a task or text the model refuses costs no vision pass.
    model
        .prompt_ids(job.task, job.text.as_deref())
        .map_err(from_model)?;
    let features = pictures
        .get_or_make(job.tenant, &job.image, || model.image_features(&input))
        .map_err(from_model)?;
    let out = model
        .run_from(&features, job.task, job.text.as_deref(), generation, stop)
        .map_err(from_model)?;
    let completion = out.generated_ids.len().saturating_sub(1);
    let prompt = out.image_tokens + out.prompt_ids.len();
    let usage = json!({
        "completion_tokens": completion,
        "prompt_tokens": prompt,
        "total_tokens": completion + prompt,
    });
    let id = uuid::Uuid::new_v4().to_string();
    let content = format!("{}{}", job.task.token(), out.answer.text);
    let document = response_json(&id, &content, &out.answer.entities, usage);
    let overlay = if draws_overlay(job.task) {
        let canvas = image::RgbImage::from_raw(width, height, input.pixels).ok_or_else(|| {
            Error::new(
                ErrorCode::Upstream,
                "the overlay's canvas has the wrong size",
            )
        })?;
        Some(draw_on(canvas, &out.answer.entities).map_err(|e| {
            Error::new(
                ErrorCode::Upstream,
                format!("the overlay could not be drawn: {e}"),
            )
        })?)
    } else {
        None
    };
    let archive = zip(&id, &document, overlay.as_deref()).map_err(|e| {
        Error::new(
            ErrorCode::Upstream,
            format!("the answer could not be zipped: {e}"),
        )
    })?;
    Ok(Answered {
        zip: Bytes::from(archive),
        tokens: completion,
    })
}
