//! Where Florence-2 runs: Remote (through the proxy) or Local (in this browser), and for Local
//! the model folder, the backend, loading it with its progress, and the run options.

use leptos::prelude::*;

use crate::messages::Problem;
use crate::session::local_model::{
    BackendChoice, LoadStatus, MAX_BEAMS, MAX_NEW_TOKENS, Mode, PRESETS, preset_of,
};
use crate::ui::local::LocalState;

#[component]
pub fn ModelPanel(local: LocalState, problem: RwSignal<Option<Problem>>) -> impl IntoView {
    let choose = move |mode: Mode| {
        local.mode.set(mode);
        if mode == Mode::Local {
            local.probe_served_model();
        }
    };
    view! {
        <section class="panel model" aria-labelledby="model-title">
            <h2 id="model-title">"Where Florence-2 runs"</h2>
            <div class="mode-switch" role="radiogroup" aria-label="Where Florence-2 runs">
                <label class="mode-option">
                    <input type="radio" name="mode" value="remote" data-testid="mode-remote"
                        prop:checked=move || local.mode.get() == Mode::Remote
                        on:change=move |_| choose(Mode::Remote)/>
                    "Remote"
                </label>
                <label class="mode-option">
                    <input type="radio" name="mode" value="local" data-testid="mode-local"
                        prop:checked=move || local.mode.get() == Mode::Local
                        on:change=move |_| choose(Mode::Local)/>
                    "Local (in this browser)"
                </label>
            </div>
            <p class="help">
                {move || if local.is_local() {
                    "The model runs in this browser: the picture stays on this device."
                } else {
                    "Through the proxy: NVIDIA's hosted endpoint, or the proxy's own model."
                }}
            </p>
            <Show when=move || local.is_local()>
                <LocalControls local problem/>
            </Show>
        </section>
    }
}

#[component]
fn LocalControls(local: LocalState, problem: RwSignal<Option<Problem>>) -> impl IntoView {
    let loading = move || local.status.with(LoadStatus::loading);
    // The download size follows the URL, whoever changed it.
    Effect::new(move |_| local.probe_size(local.url.get()));
    view! {
        <div class="field">
            <label for="model-preset">"Model"</label>
            <select id="model-preset" data-testid="model-preset"
                on:change=move |ev| {
                    let url = event_target_value(&ev);
                    if !url.is_empty() {
                        local.edit_url(url);
                    }
                }>
                {PRESETS.into_iter().map(|p| view! {
                    <option value=p.url prop:selected=move || local.url.with(|u| preset_of(u) == Some(p))>{p.label}</option>
                }).collect_view()}
                <option value="" prop:selected=move || local.url.with(|u| preset_of(u).is_none())>"Another folder (URL below)"</option>
            </select>
        </div>
        <div class="field">
            <label for="model-url">"Model folder URL"</label>
            <input id="model-url" type="text" inputmode="url" spellcheck="false" autocomplete="off"
                data-testid="model-url" aria-describedby="model-url-help"
                prop:value=move || local.url.get()
                on:input=move |ev| local.edit_url(event_target_value(&ev))/>
            <p id="model-url-help" class="help">
                "A Florence-2 folder: config.json, model.safetensors, tokenizer.json (plain, or quantized by florence2 quantize). Downloaded once, then kept in this browser's cache."
            </p>
            <p class="help" data-testid="download-size" aria-live="polite">
                {move || local.download.with(|d| d.line())}
            </p>
        </div>
        <div class="local-options">
            <div class="field">
                <label for="local-backend">"Backend"</label>
                <select id="local-backend" data-testid="backend-select"
                    on:change=move |ev| {
                        if let Some(b) = BackendChoice::parse(&event_target_value(&ev)) {
                            local.backend.set(b);
                        }
                    }>
                    {BackendChoice::ALL.into_iter().map(|b| view! {
                        <option value=b.as_str() prop:selected=move || local.backend.get() == b>{b.label()}</option>
                    }).collect_view()}
                </select>
            </div>
            <div class="field">
                <label for="local-beams">"Beams"</label>
                <input id="local-beams" type="text" inputmode="numeric" data-testid="beams"
                    placeholder="model's" title=format!("1 to {MAX_BEAMS}; empty: the model's own")
                    prop:value=move || local.beams.get()
                    on:input=move |ev| local.beams.set(event_target_value(&ev))/>
            </div>
            <div class="field">
                <label for="local-max-tokens">"Max new tokens"</label>
                <input id="local-max-tokens" type="text" inputmode="numeric" data-testid="max-new-tokens"
                    placeholder="model's" title=format!("1 to {MAX_NEW_TOKENS}; empty: the model's own")
                    prop:value=move || local.max_new_tokens.get()
                    on:input=move |ev| local.max_new_tokens.set(event_target_value(&ev))/>
            </div>
        </div>
        <div class="row load-row">
            <button type="button" class="button primary-soft" data-testid="load-model"
                disabled=loading
                on:click=move |_| local.load(problem)>
                {move || if local.status.with(|s| matches!(s, LoadStatus::Ready(_))) { "Load again" } else { "Load model" }}
            </button>
            <button type="button" class="button" data-testid="cancel-load"
                disabled=move || !loading()
                on:click=move |_| local.cancel_load()>
                "Cancel"
            </button>
        </div>
        <LoadProgressView local/>
    }
}

#[component]
fn LoadProgressView(local: LocalState) -> impl IntoView {
    let state_name = move || match local.status.get() {
        LoadStatus::Idle => "idle",
        LoadStatus::Loading { .. } => "loading",
        LoadStatus::Ready(_) => "ready",
        LoadStatus::Cancelled => "cancelled",
        LoadStatus::Failed(_) => "failed",
    };
    view! {
        <Show when=move || local.status.with(LoadStatus::loading)>
            {move || match local.status.with(LoadStatus::fraction) {
                Some((value, max)) => view! {
                    <progress class="load-progress" data-testid="model-progress" value=value max=max></progress>
                }.into_any(),
                None => view! { <progress class="load-progress" data-testid="model-progress"></progress> }.into_any(),
            }}
        </Show>
        <p class="model-status" data-testid="model-status" data-state=state_name role="status" aria-live="polite">
            {move || local.status.with(|s| s.line(local.backend.get()))}
        </p>
    }
}
