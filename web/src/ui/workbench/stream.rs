//! The answer as it is written: the local model's text so far, token by token (`onToken`);
//! the boxes are drawn once the answer is complete.

use leptos::prelude::*;

#[component]
pub fn StreamText(stream: RwSignal<Option<String>>, running: Signal<bool>) -> impl IntoView {
    view! {
        <Show when=move || stream.with(Option::is_some)>
            <div class="stream" class:finished=move || !running.get()>
                <p class="stream-label">
                    {move || if running.get() { "Florence-2 is writing…" } else { "As it was written, token by token" }}
                </p>
                <p class="stream-text" data-testid="stream-text">{move || stream.get().unwrap_or_default()}</p>
            </div>
        </Show>
    }
}
