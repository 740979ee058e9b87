//! Pointer and keyboard on the picture: hovering picks the shape under the pointer; in a region
//! task, dragging (or Enter and the arrow keys) selects the region, written as `<loc_…>`
//! tokens into the text field.

use florence2::Region;
use leptos::html::Canvas;
use leptos::prelude::*;
use web_sys::{KeyboardEvent, PointerEvent};

use crate::scene::pointer_to_image;
use crate::selection::{Nudge, centred, from_drag, nudge};
use crate::ui::state::AppState;

/// A drag in progress: where it started (image pixels) and the rectangle so far.
#[derive(Clone, Copy)]
pub struct Drag {
    start: RwSignal<Option<(f64, f64)>>,
    pub region: RwSignal<Option<Region>>,
}

impl Drag {
    pub fn new() -> Drag {
        Drag {
            start: RwSignal::new(None),
            region: RwSignal::new(None),
        }
    }

    pub fn cancel(&self) {
        self.start.set(None);
        self.region.set(None);
    }
}

/// The pointer's position in image pixels.
fn position(state: AppState, canvas: NodeRef<Canvas>, ev: &PointerEvent) -> Option<(f64, f64)> {
    let canvas = canvas.get_untracked()?;
    let size = state
        .picture
        .with_untracked(|p| p.as_ref().map(|p| p.size))?;
    let rect = canvas.get_bounding_client_rect();
    Some(pointer_to_image(
        size,
        (rect.width(), rect.height()),
        (
            f64::from(ev.client_x()) - rect.left(),
            f64::from(ev.client_y()) - rect.top(),
        ),
    ))
}

fn select(state: AppState, region: Region) {
    let Some(size) = state.picture.with_untracked(|p| p.as_ref().map(|p| p.size)) else {
        return;
    };
    // Regions made here are inside the picture and not empty; a refusal would only mean
    // there is nothing sensible to write.
    if let Ok(tokens) = region.to_endpoint_loc(size) {
        state.text.set(tokens);
    }
}

pub fn on_pointer_down(
    state: AppState,
    canvas: NodeRef<Canvas>,
    drag: Drag,
    region_mode: bool,
    ev: &PointerEvent,
) {
    if !region_mode || ev.button() != 0 {
        return;
    }
    let Some(at) = position(state, canvas, ev) else {
        return;
    };
    ev.prevent_default();
    if let Some(c) = canvas.get_untracked() {
        let _ = c.set_pointer_capture(ev.pointer_id());
        let _ = c.focus();
    }
    state.hovered.set(None);
    drag.start.set(Some(at));
}

pub fn on_pointer_move(state: AppState, canvas: NodeRef<Canvas>, drag: Drag, ev: &PointerEvent) {
    let Some((x, y)) = position(state, canvas, ev) else {
        return;
    };
    if let Some(start) = drag.start.get_untracked() {
        let size = state.picture.with_untracked(|p| p.as_ref().map(|p| p.size));
        drag.region
            .set(size.and_then(|s| from_drag(start, (x, y), s)));
        return;
    }
    let layers = state.layers.get_untracked();
    let hit = state.answer.with_untracked(|a| {
        a.as_ref()
            .and_then(|a| a.scene.hit(x, y, |l| layers.shows(l)))
    });
    if state.hovered.get_untracked() != hit {
        state.hovered.set(hit);
    }
}

pub fn on_pointer_up(state: AppState, canvas: NodeRef<Canvas>, drag: Drag, ev: &PointerEvent) {
    if drag.start.get_untracked().is_none() {
        return;
    }
    on_pointer_move(state, canvas, drag, ev);
    if let Some(region) = drag.region.get_untracked() {
        select(state, region);
    }
    drag.cancel();
}

pub fn on_pointer_leave(state: AppState, drag: Drag) {
    if drag.start.get_untracked().is_none() {
        state.hovered.set(None);
    }
}

pub fn on_key(state: AppState, region_mode: bool, selection: Option<Region>, ev: &KeyboardEvent) {
    let key = ev.key();
    let Some(size) = state.picture.with_untracked(|p| p.as_ref().map(|p| p.size)) else {
        return;
    };
    if region_mode {
        let handled = match (key.as_str(), Nudge::from_key(&key, ev.shift_key())) {
            (_, Some(n)) => {
                select(
                    state,
                    nudge(selection.unwrap_or_else(|| centred(size)), n, size),
                );
                true
            }
            ("Enter" | " ", _) if selection.is_none() => {
                select(state, centred(size));
                true
            }
            ("Escape", _) => {
                state.text.set(String::new());
                true
            }
            _ => false,
        };
        if handled {
            ev.prevent_default();
        }
        return;
    }
    let count = state
        .answer
        .with_untracked(|a| a.as_ref().map_or(0, |a| a.scene.shapes.len()));
    if count == 0 {
        return;
    }
    let current = state.hovered.get_untracked();
    let next = match key.as_str() {
        "ArrowRight" | "ArrowDown" => Some(current.map_or(0, |i| (i + 1) % count)),
        "ArrowLeft" | "ArrowUp" => Some(current.map_or(count - 1, |i| (i + count - 1) % count)),
        "Escape" => None,
        _ => return,
    };
    ev.prevent_default();
    state.hovered.set(next);
}
