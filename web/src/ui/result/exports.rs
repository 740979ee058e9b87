//! Taking the answer away: the result JSON, COCO annotations, and the picture with the answer
//! drawn on it as a PNG at the picture's own size (the layers as switched on).

use florence2::browser::describe;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsValue;
use web_sys::Blob;

use crate::export::{coco, download_name};
use crate::scene::View;
use crate::ui::dom::{blob_of, canvas_blob, context_2d, decode, download, new_canvas};
use crate::ui::run::selection_of;
use crate::ui::state::{Answer, AppState, Layers};
use crate::ui::viewer::{DrawOptions, paint};

/// Larger pictures are exported at this size on their longer side (a canvas has limits).
const MAX_EXPORT_SIDE: u32 = 8192;

async fn annotated_png(answer: &Answer, layers: Layers) -> Result<Blob, JsValue> {
    let size = answer.picture.size;
    let view = View::export(size, MAX_EXPORT_SIDE);
    let resize = (view.width != size.width || view.height != size.height)
        .then_some((view.width, view.height));
    let bitmap = decode(&blob_of(&answer.picture.bytes, "")?, resize).await?;
    let canvas = new_canvas(view.width, view.height)?;
    let ctx = context_2d(&canvas)?;
    ctx.draw_image_with_image_bitmap(&bitmap, 0.0, 0.0)?;
    bitmap.close();
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
    canvas_blob(&canvas, "image/png").await
}

fn save_text(text: &str, name: &str) -> Result<(), JsValue> {
    download(&blob_of(text.as_bytes(), "application/json")?, name)
}

#[component]
pub fn Exports(state: AppState, answer: Answer) -> impl IntoView {
    let (busy, set_busy) = signal(false);
    let (failure, set_failure) = signal(None::<String>);
    let name = |suffix: &str, ext: &str| {
        download_name(&answer.picture.name, &answer.result.task, suffix, ext)
    };
    let (json_name, coco_name, png_name) =
        (name("", "json"), name("-coco", "json"), name("", "png"));
    let json = answer.json.clone();
    let report = move |r: Result<(), JsValue>| {
        set_failure.set(
            r.err()
                .map(|e| format!("The file could not be made: {}", describe(&e))),
        )
    };
    let export_json = move |_| report(save_text(&json, &json_name));
    let for_coco = answer.clone();
    let export_coco = move |_| {
        let doc = coco(&for_coco.result, &for_coco.picture.name);
        // A serde_json::Value always serialises.
        report(save_text(
            &serde_json::to_string_pretty(&doc).unwrap_or_default(),
            &coco_name,
        ));
    };
    let export_png = move |_| {
        let answer = answer.clone();
        let name = png_name.clone();
        let layers = state.layers.get_untracked();
        set_busy.set(true);
        spawn_local(async move {
            let made = annotated_png(&answer, layers)
                .await
                .and_then(|blob| download(&blob, &name));
            set_busy.set(false);
            report(made);
        });
    };
    view! {
        <div class="exports" role="group" aria-label="Export">
            <span class="exports-label">"Export"</span>
            <button type="button" class="button small" data-testid="export-json" on:click=export_json>"JSON"</button>
            <button type="button" class="button small" data-testid="export-coco" on:click=export_coco>"COCO"</button>
            <button type="button" class="button small" data-testid="export-png" disabled=move || busy.get() on:click=export_png>
                {move || if busy.get() { "PNG…" } else { "PNG" }}
            </button>
        </div>
        {move || failure.get().map(|f| view! { <p class="mistake" role="alert">{f}</p> })}
    }
}
