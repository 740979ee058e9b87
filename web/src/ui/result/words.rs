//! The answer's words (captions, OCR, region answers) with a copy button.

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen_futures::JsFuture;

#[component]
pub fn Words(text: String) -> impl IntoView {
    let (copied, set_copied) = signal(None::<bool>);
    let copy_text = text.clone();
    let copy = move |_| {
        let text = copy_text.clone();
        spawn_local(async move {
            let ok = match web_sys::window().map(|w| w.navigator().clipboard()) {
                Some(clipboard) => JsFuture::from(clipboard.write_text(&text)).await.is_ok(),
                None => false,
            };
            set_copied.set(Some(ok));
            set_timeout(
                move || set_copied.set(None),
                std::time::Duration::from_secs(2),
            );
        });
    };
    view! {
        <div class="words">
            <p class="words-text" data-testid="result-text">{text}</p>
            <button type="button" class="button small" on:click=copy>
                {move || match copied.get() {
                    None => "Copy",
                    Some(true) => "Copied",
                    // Without clipboard permission the text can still be selected by hand.
                    Some(false) => "Select and copy it by hand",
                }}
            </button>
        </div>
    }
}
