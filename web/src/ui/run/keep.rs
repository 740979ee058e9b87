//! What becomes of a run's output (remote or in this browser): the answer shown at once (drawn
//! by the viewer), then a thumbnail of it in the history.

use std::sync::Arc;

use florence2::browser::client::RunOutput;
use florence2::{Florence2Result, Task, TextKind};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsValue;

use crate::messages::units::{bytes, duration};
use crate::scene::{Scene, View};
use crate::selection::from_tokens;
use crate::ui::dom::{blob_of, context_2d, decode, new_canvas};
use crate::ui::state::{Answer, AppState, EndpointDrawing, Layers, Phase, Picture, Visit};
use crate::ui::viewer::{DrawOptions, paint};
use crate::workbench::timings::{LocalTimings, RemoteTimings, local_line, remote_line};

/// The history's thumbnails fit this box (CSS pixels; drawn at twice that for HiDPI).
pub const THUMBNAIL: (f64, f64) = (84.0, 60.0);

/// A run's answer, whichever path made it.
pub struct Answered {
    pub result: Florence2Result,
    pub overlay: Option<Arc<EndpointDrawing>>,
    /// What was sent and how long each step took, in a line.
    pub summary: String,
    /// The backend when the model in this browser answered.
    pub in_browser: Option<String>,
    pub timings: RunTimings,
}

/// Where a run's time went, as each path can measure it.
#[derive(Debug, Clone, Copy)]
pub enum RunTimings {
    Remote(RemoteTimings),
    Local { timings: LocalTimings, reused: bool },
}

impl RunTimings {
    pub fn line(&self, total_ms: f64) -> String {
        match self {
            RunTimings::Remote(t) => remote_line(t, total_ms),
            RunTimings::Local { timings, reused } => local_line(timings, *reused, total_ms),
        }
    }

    pub fn image_reused(&self) -> bool {
        matches!(self, RunTimings::Local { reused: true, .. })
    }
}

/// The remote client's output: the answer, and what was sent how.
pub fn remote_answer(output: RunOutput) -> Answered {
    let RunOutput {
        result,
        overlay,
        sent,
        timings,
    } = output;
    let overlay = overlay.map(|o| Arc::new(EndpointDrawing::new(o.bytes.into_owned(), o.mime)));
    let how = match (sent.inline, sent.quality) {
        (true, None) => "the original file, inline".to_owned(),
        (true, Some(q)) => format!("a JPEG at quality {:.0}, inline", q * 100.0),
        (false, None) => "the original file, uploaded".to_owned(),
        (false, Some(q)) => format!("a JPEG at quality {:.0}, uploaded", q * 100.0),
    };
    let summary = format!(
        "Sent {} × {} px ({}, {}). Preparing {}, uploading {}, waiting {}, reading {}.",
        sent.width,
        sent.height,
        bytes(sent.bytes),
        how,
        duration(timings.prepare_ms),
        if sent.inline {
            "—".to_owned()
        } else {
            duration(timings.upload_ms)
        },
        duration(timings.wait_ms),
        duration(timings.parse_ms),
    );
    let timings = RunTimings::Remote(RemoteTimings {
        prepare_ms: timings.prepare_ms,
        upload_ms: (!sent.inline).then_some(timings.upload_ms),
        wait_ms: timings.wait_ms,
        read_ms: timings.parse_ms,
    });
    Answered {
        result,
        overlay,
        summary,
        in_browser: None,
        timings,
    }
}

/// The answer as shown and kept: its scene (what is drawn), its JSON, its timings in words.
pub fn answer_of(
    picture: Picture,
    task: Task,
    text: String,
    answered: Answered,
    elapsed_ms: f64,
) -> Answer {
    let Answered {
        result,
        overlay,
        summary,
        in_browser,
        timings,
    } = answered;
    let query = (task.text_kind() == TextKind::Required).then_some(text.as_str());
    let scene = Scene::from_entities(&result.entities, query);
    // Serialising the result type to JSON cannot fail (plain numbers and strings).
    let json = serde_json::to_string_pretty(&result).unwrap_or_default();
    Answer {
        picture,
        task,
        text,
        result: Arc::new(result),
        scene: Arc::new(scene),
        json: json.into(),
        overlay,
        summary,
        in_browser,
        timings: timings.line(elapsed_ms),
        image_reused: timings.image_reused(),
        elapsed: duration(elapsed_ms),
        at: crate::ui::dom::clock_time(),
    }
}

pub fn keep_answer(
    state: AppState,
    picture: Picture,
    task: Task,
    text: String,
    answered: Answered,
    elapsed_ms: f64,
) {
    let answer = answer_of(picture, task, text, answered, elapsed_ms);
    state.hovered.set(None);
    state.answer.set(Some(answer.clone()));
    state.phase.set(Phase::Done);
    spawn_local(async move {
        // Without a thumbnail the entry still reopens; the strip shows the task instead.
        let thumbnail = thumbnail(&answer, THUMBNAIL).await.unwrap_or_default();
        state.history.update(|h| {
            h.push(Visit { answer, thumbnail });
        });
    });
}

/// The region a region task was run with, as drawn.
pub fn selection_of(answer: &Answer) -> Option<florence2::Region> {
    (answer.task.text_kind() == TextKind::Region)
        .then(|| from_tokens(&answer.text, answer.picture.size))
        .flatten()
}

/// A small JPEG of the picture with its answer drawn on it (a data URL), fitting `fit` (CSS
/// pixels; drawn at twice that for HiDPI).
pub async fn thumbnail(answer: &Answer, fit: (f64, f64)) -> Result<String, JsValue> {
    let size = answer.picture.size;
    let scale = (fit.0 * 2.0 / f64::from(size.width)).min(fit.1 * 2.0 / f64::from(size.height));
    let (w, h) = (
        ((f64::from(size.width) * scale).round() as u32).max(1),
        ((f64::from(size.height) * scale).round() as u32).max(1),
    );
    let bitmap = decode(&blob_of(&answer.picture.bytes, "")?, Some((w, h))).await?;
    let canvas = new_canvas(w, h)?;
    let ctx = context_2d(&canvas)?;
    ctx.draw_image_with_image_bitmap(&bitmap, 0.0, 0.0)?;
    bitmap.close();
    let view = View {
        image: size,
        width: w,
        height: h,
        unit: 1.0,
    };
    let layers = Layers {
        labels: false,
        ..Layers::default()
    };
    paint(
        &ctx,
        &view,
        Some(&answer.scene),
        &DrawOptions {
            layers,
            hovered: None,
            selection: selection_of(answer),
        },
    );
    canvas.to_data_url_with_type("image/jpeg")
}
