//! Pasting a picture (or an image URL) anywhere on the page, except into a text field.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::ui::source::load::open_data_transfer;
use crate::ui::state::AppState;

pub fn listen_for_paste(state: AppState) {
    // The listener lives as long as the page.
    let _ = window_event_listener(leptos::ev::paste, move |ev| {
        let into_field = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|el| {
                matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA")
                    || el.closest("[contenteditable]").ok().flatten().is_some()
            });
        if into_field {
            return;
        }
        if let Some(data) = ev.clipboard_data()
            && open_data_transfer(state, &data)
        {
            ev.prevent_default();
        }
    });
}
