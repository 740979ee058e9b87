//! The stage: the picture, the endpoint's own drawing (when switched on) and the canvas our
//! drawing goes on, sized to the picture as laid out.

use std::sync::Arc;

use florence2::TextKind;
use leptos::html::{Canvas, Img};
use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use web_sys::ResizeObserver;

use crate::scene::View;
use crate::selection::from_tokens;
use crate::ui::dom::{context_2d, device_pixel_ratio};
use crate::ui::source::{open_data_transfer, open_sample};
use crate::ui::state::AppState;
use crate::ui::viewer::draw::{DrawOptions, draw};
use crate::ui::viewer::interact::{
    Drag, on_key, on_pointer_down, on_pointer_leave, on_pointer_move, on_pointer_up,
};

#[component]
pub fn Viewer(state: AppState) -> impl IntoView {
    let canvas = NodeRef::<Canvas>::new();
    let picture_el = NodeRef::<Img>::new();
    // The picture's laid-out size in CSS pixels (0 until it has loaded).
    let layout = RwSignal::new((0.0_f64, 0.0_f64));
    let drag = Drag::new();
    let dropping = RwSignal::new(false);

    watch_layout(picture_el, layout);
    accept_drops(state, dropping);

    let region_mode = Memo::new(move |_| state.task.get().text_kind() == TextKind::Region);
    let selection = Memo::new(move |_| {
        if !region_mode.get() {
            return None;
        }
        let size = state.picture.with(|p| p.as_ref().map(|p| p.size))?;
        drag.region
            .get()
            .or_else(|| state.text.with(|t| from_tokens(t, size)))
    });

    // The drawing follows everything it shows. The first drawing of each answer is marked for
    // the e2e suite's timing (ZIP bytes received → overlay drawn).
    let last_marked = StoredValue::new(0_usize);
    Effect::new(move |_| {
        let (w, h) = layout.get();
        let (Some(canvas), Some(picture)) = (canvas.get(), state.picture.get()) else {
            return;
        };
        if w <= 0.0 || h <= 0.0 {
            return;
        }
        let view = View::screen(picture.size, w, h, device_pixel_ratio());
        if canvas.width() != view.width || canvas.height() != view.height {
            canvas.set_width(view.width);
            canvas.set_height(view.height);
        }
        let answer = state.answer.get().filter(|a| a.picture.same(&picture));
        let options = DrawOptions {
            layers: state.layers.get(),
            hovered: state.hovered.get(),
            selection: selection.get(),
        };
        let Ok(ctx) = context_2d(&canvas) else { return };
        draw(
            &ctx,
            &view,
            answer.as_ref().map(|a| a.scene.as_ref()),
            &options,
        );
        if let Some(a) = &answer {
            let id = Arc::as_ptr(&a.result) as usize;
            if last_marked.get_value() != id {
                last_marked.set_value(id);
                if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
                    let _ = p.mark("florence2:overlay-drawn");
                }
            }
        }
    });

    let has_picture = move || state.picture.with(Option::is_some);
    let overlay = move || {
        let on = state.layers.with(|l| l.endpoint);
        let picture = state.picture.get()?;
        state.answer.with(|a| {
            a.as_ref()
                .filter(|a| on && a.picture.same(&picture))
                .and_then(|a| a.overlay.as_ref()?.url())
        })
    };
    // The picture fills the stage (up to twice its own size), keeping its shape: the frame's
    // width follows the stage, the height limit and the aspect ratio; everything inside fills it.
    let frame_style = move || {
        state.picture.with(|p| {
            p.as_ref().map(|p| {
                let (w, h) = (p.size.width, p.size.height);
                format!("aspect-ratio: {w} / {h}; width: min(100%, calc(var(--picture-max-height) * {w} / {h}), {}px)", 2 * w)
            })
        })
    };
    let canvas_label = move || {
        if region_mode.get() {
            "The picture. Drag a rectangle to select a region; or press Enter, then move it with the arrow keys and resize it with Shift and the arrow keys."
        } else {
            "The picture with the answer drawn on it. The arrow keys step through the objects."
        }
    };

    view! {
        <div class="stage" class:dropping=move || dropping.get() class:empty=move || !has_picture() class:running=move || state.running()>
            <div class="frame" hidden=move || !has_picture() style=frame_style>
                <img node_ref=picture_el class="picture" draggable="false"
                    src=move || state.picture.with(|p| p.as_ref().map(|p| p.url.as_str().to_owned()))
                    alt=move || state.picture.with(|p| p.as_ref().map(|p| format!("Your picture, {}", p.name)))/>
                {move || overlay().map(|src| view! { <img class="endpoint-overlay" src=src alt="NVIDIA's own drawing of the answer"/> })}
                <canvas node_ref=canvas data-testid="result-canvas" tabindex="0"
                    class:selecting=move || region_mode.get()
                    aria-label=canvas_label
                    on:pointerdown=move |ev| on_pointer_down(state, canvas, drag, region_mode.get_untracked(), &ev)
                    on:pointermove=move |ev| on_pointer_move(state, canvas, drag, &ev)
                    on:pointerup=move |ev| on_pointer_up(state, canvas, drag, &ev)
                    on:pointercancel=move |_| drag.cancel()
                    on:pointerleave=move |_| on_pointer_leave(state, drag)
                    on:click=move |_| {
                        if let (false, Some(i)) = (region_mode.get_untracked(), state.hovered.get_untracked()) {
                            crate::ui::workbench::describe_shape(state, i);
                        }
                    }
                    on:keydown=move |ev| on_key(state, region_mode.get_untracked(), selection.get_untracked(), &ev)
                    on:blur=move |_| state.hovered.set(None)></canvas>
            </div>
            <Show when=move || !has_picture()>
                <div class="empty-stage">
                    <svg viewBox="0 0 64 64" class="empty-art" aria-hidden="true">
                        <rect x="6" y="12" width="52" height="40" rx="6"/>
                        <circle cx="22" cy="26" r="5"/>
                        <path d="m10 48 14-14 9 9 8-7 13 12"/>
                        <rect x="30" y="18" width="20" height="16" rx="2" class="empty-art-box"/>
                    </svg>
                    <p class="empty-title">"Drop a picture here"</p>
                    <p class="empty-text">"…or paste one (Ctrl+V), choose a file, take one with the camera, or load it from a URL."</p>
                    <div class="row center">
                        <label for="image-input" class="button primary">"Choose a picture"</label>
                        <button type="button" class="button" data-testid="sample-button" on:click=move |_| open_sample(state)>"Try the sample"</button>
                    </div>
                </div>
            </Show>
        </div>
        {move || state.picture.get().map(|p| view! {
            <p class="picture-info">
                <span class="picture-name">{p.name.clone()}</span>
                <span>{format!("{} × {} px", p.size.width, p.size.height)}</span>
                <Show when=move || region_mode.get()>
                    <span class="hint">"Drag on the picture to select a region (keyboard: focus it, Enter, arrows, Shift+arrows)"</span>
                </Show>
            </p>
        })}
    }
}

/// Keeps `layout` equal to the picture's laid-out size (it changes on load, resize and zoom).
fn watch_layout(picture_el: NodeRef<Img>, layout: RwSignal<(f64, f64)>) {
    let watching = StoredValue::new(false);
    Effect::new(move |_| {
        let Some(img) = picture_el.get() else { return };
        if watching.get_value() {
            return;
        }
        watching.set_value(true);
        let observed = img.clone();
        let on_resize = Closure::<dyn Fn()>::new(move || {
            let rect = observed.get_bounding_client_rect();
            layout.set((rect.width(), rect.height()));
        });
        if let Ok(observer) = ResizeObserver::new(on_resize.as_ref().unchecked_ref()) {
            observer.observe(&img);
        }
        // The viewer lives as long as the page, and so does its observer's callback.
        on_resize.forget();
    });
}

/// Pictures may be dropped anywhere on the page (a file dropped beside the stage would
/// otherwise make the browser leave the page to show it).
fn accept_drops(state: AppState, dropping: RwSignal<bool>) {
    let _ = window_event_listener(leptos::ev::dragover, move |ev| {
        ev.prevent_default();
        dropping.set(true);
    });
    let _ = window_event_listener(leptos::ev::dragleave, move |ev| {
        if ev.related_target().is_none() {
            dropping.set(false);
        }
    });
    let _ = window_event_listener(leptos::ev::drop, move |ev| {
        ev.prevent_default();
        dropping.set(false);
        if let Some(data) = ev.data_transfer() {
            open_data_transfer(state, &data);
        }
    });
}
