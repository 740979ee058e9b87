//! The app in the browser (Leptos, client-side rendered): small components over one explicit
//! state, the drawing code, and the browser helpers they need.

mod app;
mod dom;
mod header;
mod history;
mod local;
mod problem;
mod result;
mod run;
mod source;
mod state;
mod task;
mod viewer;
mod workbench;

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::session::Settings;
use crate::session::settings::STORAGE_KEY;

/// Mounts the app into `#app` (replacing the page's loading placeholder).
pub fn start() {
    let stored = dom::local_storage().and_then(|s| s.get_item(STORAGE_KEY).ok().flatten());
    let settings = Settings::from_stored(stored.as_deref());
    let Some(root) = dom::document()
        .ok()
        .and_then(|d| d.get_element_by_id("app"))
    else {
        leptos::logging::error!("florence2-demo: the page has no #app element");
        return;
    };
    root.set_inner_html("");
    leptos::mount::mount_to(
        root.unchecked_into(),
        move || view! { <app::App settings/> },
    )
    .forget();
}
