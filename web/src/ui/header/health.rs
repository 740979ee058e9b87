//! Asks the proxy's `GET /healthz` when the page opens and whenever the proxy or key changes,
//! and says plainly what will go wrong before a run does.

use gloo_net::http::Request;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::messages::health::{Health, notices};
use crate::session::Settings;
use crate::ui::state::AppState;

pub fn watch_health(state: AppState) {
    // Only a new proxy URL asks again, not every settings change (the task is one).
    let base = Memo::new(move |_| state.settings.with(|s| s.proxy_url.clone()));
    Effect::new(move |_| {
        let (base, proxy) = (
            base.get(),
            state.settings.with_untracked(Settings::proxy_name),
        );
        let own_key = state.api_key.with(|k| !k.is_empty());
        spawn_local(async move {
            let answer = match Request::get(&format!("{base}/healthz")).send().await {
                Ok(r) if r.ok() => r
                    .binary()
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|body| {
                        serde_json::from_slice::<Health>(&body)
                            .map_err(|e| format!("its health answer is unreadable: {e}"))
                    }),
                Ok(r) => Err(format!("HTTP {}", r.status())),
                Err(e) => Err(e.to_string()),
            };
            let backend = answer.as_ref().ok().and_then(|h| h.backend.as_deref());
            state.tasks.set(florence2::task::tasks_for_backend(backend));
            state.notices.set(notices(
                answer.as_ref().map_err(String::as_str),
                own_key,
                &proxy,
            ));
        });
    });
}

#[component]
pub fn HealthBanner(state: AppState) -> impl IntoView {
    view! {
        <Show when=move || state.notices.with(|n| !n.is_empty())>
            <div class="health" data-testid="health" role="status">
                <svg viewBox="0 0 24 24" class="icon" aria-hidden="true"><path d="M12 3 2 21h20L12 3Zm0 6v6m0 2.5v.5"/></svg>
                <ul>
                    <For each=move || state.notices.get() key=|n| n.code let:notice>
                        <li data-code=notice.code>{notice.text}</li>
                    </For>
                </ul>
            </div>
        </Show>
    }
}
