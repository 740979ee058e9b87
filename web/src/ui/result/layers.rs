//! Switches for each layer the answer has, the labels, and the endpoint's own drawing.

use std::sync::Arc;

use leptos::prelude::*;

use crate::scene::{Layer, Scene};
use crate::ui::state::AppState;

#[component]
fn Switch(
    name: &'static str,
    id: &'static str,
    checked: Signal<bool>,
    set: impl Fn(bool) + 'static,
) -> impl IntoView {
    view! {
        <label class="switch" for=id>
            <input type="checkbox" id=id data-layer=id prop:checked=move || checked.get() on:change=move |ev| set(event_target_checked(&ev))/>
            <span>{name}</span>
        </label>
    }
}

#[component]
pub fn LayerSwitches(state: AppState, scene: Arc<Scene>, has_overlay: bool) -> impl IntoView {
    let layers = scene.layers();
    let any = !layers.is_empty();
    let id = |layer: Layer| match layer {
        Layer::Boxes => "layer-boxes",
        Layer::Masks => "layer-masks",
        Layer::Text => "layer-text",
    };
    (any || has_overlay).then(|| {
        view! {
            <fieldset class="layers">
                <legend>"Show"</legend>
                {layers
                    .into_iter()
                    .map(|layer| {
                        let checked = Signal::derive(move || state.layers.with(|l| l.shows(layer)));
                        view! { <Switch name=layer.name() id=id(layer) checked set=move |on| state.layers.update(|l| l.set(layer, on))/> }
                    })
                    .collect_view()}
                {any.then(|| {
                    let checked = Signal::derive(move || state.layers.with(|l| l.labels));
                    view! { <Switch name="Labels" id="layer-labels" checked set=move |on| state.layers.update(|l| l.labels = on)/> }
                })}
                {has_overlay.then(|| {
                    let checked = Signal::derive(move || state.layers.with(|l| l.endpoint));
                    view! { <Switch name="NVIDIA's drawing" id="layer-endpoint" checked set=move |on| state.layers.update(|l| l.endpoint = on)/> }
                })}
            </fieldset>
        }
    })
}
