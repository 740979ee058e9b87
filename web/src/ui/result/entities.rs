//! The objects of the answer as a list, linked with the drawing both ways: hovering or focusing
//! an entry highlights its shape; hovering a shape highlights (and scrolls to) its entry. The
//! list is one tab stop; the arrow keys move through it.

use std::sync::Arc;

use leptos::html::Ol;
use leptos::prelude::*;
use web_sys::{ScrollIntoViewOptions, ScrollLogicalPosition};

use crate::scene::{Geometry, Layer, Scene};
use crate::ui::state::AppState;
use crate::ui::workbench::describe_shape;

fn kind(layer: Layer) -> &'static str {
    match layer {
        Layer::Boxes => "box",
        Layer::Masks => "mask",
        Layer::Text => "text",
    }
}

#[component]
pub fn EntityList(state: AppState, scene: Arc<Scene>) -> impl IntoView {
    let list = NodeRef::<Ol>::new();
    let count = scene.shapes.len();
    // Follow the highlight from the picture into the list.
    Effect::new(move |_| {
        let (Some(i), Some(list)) = (state.hovered.get(), list.get()) else {
            return;
        };
        if let Ok(Some(item)) = list.query_selector(&format!("#entity-{i}")) {
            let options = ScrollIntoViewOptions::new();
            options.set_block(ScrollLogicalPosition::Nearest);
            item.scroll_into_view_with_scroll_into_view_options(&options);
        }
    });
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let current = state.hovered.get_untracked();
        let next = match ev.key().as_str() {
            "ArrowDown" => current.map_or(0, |i| (i + 1).min(count - 1)),
            "ArrowUp" => current.map_or(0, |i| i.saturating_sub(1)),
            "Home" => 0,
            "End" => count - 1,
            _ => return,
        };
        ev.prevent_default();
        state.hovered.set(Some(next));
    };
    let legend = scene.legend.len();
    let summary = format!(
        "{count} {}{}",
        if count == 1 { "object" } else { "objects" },
        if legend > 1 {
            format!(", {legend} labels")
        } else {
            String::new()
        }
    );
    let items = scene
        .shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let b = s.bounds;
            let detail = match &s.geometry {
                Geometry::Box(_) => format!("{:.0} × {:.0}", b.x2 - b.x1, b.y2 - b.y1),
                _ => format!(
                    "{} · {:.0} × {:.0}",
                    kind(s.layer),
                    b.x2 - b.x1,
                    b.y2 - b.y1
                ),
            };
            view! {
                <li id=format!("entity-{i}") role="option" data-index=i data-colour=s.colour.hex()
                    aria-selected=move || (state.hovered.get() == Some(i)).to_string()
                    on:mouseenter=move |_| state.hovered.set(Some(i))
                    on:mouseleave=move |_| state.hovered.set(None)
                    on:click=move |_| { describe_shape(state, i); }>
                    <span class="swatch" style=format!("background:{}", s.colour.hex())></span>
                    <span class="entity-name">{s.name.clone()}</span>
                    <span class="entity-detail">{detail}</span>
                </li>
            }
        })
        .collect_view();
    view! {
        <div class="entities">
            <p class="entities-summary" id="entities-summary">{summary}</p>
            <ol node_ref=list class="entity-list" role="listbox" tabindex="0" aria-labelledby="entities-summary"
                aria-activedescendant=move || state.hovered.get().map(|i| format!("entity-{i}"))
                on:keydown=on_key
                on:focus=move |_| if state.hovered.get_untracked().is_none() { state.hovered.set(Some(0)) }
                on:blur=move |_| state.hovered.set(None)>
                {items}
            </ol>
        </div>
    }
}
