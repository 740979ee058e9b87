//! The picture sources above the viewer: choose a file, the camera (where there is one), or
//! an image URL.

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlInputElement;

use crate::ui::source::camera::CameraButton;
use crate::ui::source::load::{open_file, open_url};
use crate::ui::state::AppState;

#[component]
pub fn Sources(state: AppState) -> impl IntoView {
    let url = RwSignal::new(String::new());
    let on_file = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
        else {
            return;
        };
        if let Some(file) = input.files().and_then(|f| f.get(0)) {
            open_file(state, file);
        }
        // Choosing the same file again must fire `change` again.
        input.set_value("");
    };
    let on_url = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = url.get_untracked().trim().to_owned();
        if !text.is_empty() {
            open_url(state, text);
        }
    };
    view! {
        <div class="sources">
            <input id="image-input" class="visually-hidden" type="file" accept="image/*" data-testid="image-input" on:change=on_file/>
            <label for="image-input" class="button primary-soft">
                <svg viewBox="0 0 24 24" class="icon" aria-hidden="true"><path d="M4 16.5V19a1 1 0 0 0 1 1h14a1 1 0 0 0 1-1v-2.5M12 4v11m0-11-4 4m4-4 4 4"/></svg>
                "Choose a picture"
            </label>
            <CameraButton state/>
            <form class="url-form" on:submit=on_url>
                <label for="image-url" class="visually-hidden">"Image URL"</label>
                <input id="image-url" type="url" inputmode="url" spellcheck="false" placeholder="…or an image URL"
                    prop:value=move || url.get()
                    on:input=move |ev| url.set(event_target_value(&ev))/>
                <button type="submit" class="button">"Load"</button>
            </form>
        </div>
    }
}
