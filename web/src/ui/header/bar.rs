//! The title bar, with the settings behind a toggle.

use leptos::prelude::*;

use crate::ui::header::settings::SettingsPanel;
use crate::ui::state::AppState;

#[component]
pub fn Header(state: AppState) -> impl IntoView {
    let (open, set_open) = signal(false);
    view! {
        <header class="header">
            <div class="brand">
                <svg class="logo" viewBox="0 0 32 32" aria-hidden="true">
                    <rect x="3" y="6" width="26" height="20" rx="4" class="logo-frame"/>
                    <rect x="8" y="11" width="10" height="9" rx="1.5" class="logo-box-a"/>
                    <rect x="15" y="14" width="10" height="8" rx="1.5" class="logo-box-b"/>
                </svg>
                <div>
                    <h1>"Florence-2"</h1>
                    <p class="tagline">"Captions, objects, masks and text — drawn on your picture"</p>
                </div>
            </div>
            <button
                class="button ghost"
                aria-expanded=move || open.get().to_string()
                aria-controls="settings"
                on:click=move |_| set_open.update(|o| *o = !*o)
            >
                <svg viewBox="0 0 24 24" class="icon" aria-hidden="true">
                    <path d="M12 15.5a3.5 3.5 0 1 0 0-7 3.5 3.5 0 0 0 0 7Z"/>
                    <path d="M19.4 13a7.8 7.8 0 0 0 0-2l2-1.6-2-3.4-2.4 1a7.6 7.6 0 0 0-1.7-1L15 3.5h-4l-.4 2.5a7.6 7.6 0 0 0-1.7 1l-2.4-1-2 3.4L6.6 11a7.8 7.8 0 0 0 0 2l-2 1.6 2 3.4 2.4-1c.5.4 1.1.8 1.7 1l.4 2.5h4l.4-2.5c.6-.2 1.2-.6 1.7-1l2.4 1 2-3.4Z"/>
                </svg>
                "Settings"
            </button>
        </header>
        <Show when=move || open.get()>
            <SettingsPanel state on_close=move || set_open.set(false)/>
        </Show>
    }
}
