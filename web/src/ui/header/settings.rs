//! Settings: the proxy's URL (default: this page's origin), an own API key (memory only, sent
//! as `X-Api-Key`) and the inline-size limit. The non-secret part is kept in localStorage.

use florence2::browser::client::{Client, ClientConfig};
use leptos::prelude::*;

use crate::session::Settings;
use crate::session::settings::{STORAGE_KEY, parse_inline_limit};
use crate::ui::dom::local_storage;
use crate::ui::state::AppState;

/// Writes the settings to localStorage whenever they change.
pub fn keep_settings(state: AppState) {
    Effect::new(move |_| {
        let stored = state.settings.with(Settings::to_stored);
        if let Some(storage) = local_storage() {
            // A full or disabled storage only costs the person their settings on reload.
            let _ = storage.set_item(STORAGE_KEY, &stored);
        }
    });
}

#[component]
pub fn SettingsPanel(state: AppState, on_close: impl Fn() + Copy + 'static) -> impl IntoView {
    let current = state.settings.get_untracked();
    let proxy = RwSignal::new(current.proxy_url.clone());
    let key = RwSignal::new(state.api_key.get_untracked());
    let limit = RwSignal::new(current.max_base64_chars.to_string());
    let (mistake, set_mistake) = signal(None::<String>);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let max_base64_chars = match parse_inline_limit(&limit.get_untracked()) {
            Ok(n) => n,
            Err(why) => return set_mistake.set(Some(why)),
        };
        // The client's own validation decides what a usable proxy URL is.
        let config = ClientConfig {
            base_url: proxy.get_untracked(),
            max_base64_chars,
            ..ClientConfig::default()
        };
        let config = match Client::new(config) {
            Ok(client) => client.config().clone(),
            Err(e) => return set_mistake.set(Some(e.message)),
        };
        set_mistake.set(None);
        state.api_key.set(key.get_untracked().trim().to_owned());
        state.settings.update(|s| {
            s.proxy_url = config.base_url;
            s.max_base64_chars = max_base64_chars;
        });
        on_close();
    };
    let reset = move |_| {
        let defaults = Settings::default();
        proxy.set(defaults.proxy_url);
        limit.set(defaults.max_base64_chars.to_string());
        key.set(String::new());
    };
    view! {
        <section id="settings" class="settings" aria-labelledby="settings-title">
            <form on:submit=save>
                <h2 id="settings-title">"Settings"</h2>
                <div class="field">
                    <label for="proxy-url">"Proxy URL"</label>
                    <input id="proxy-url" type="text" inputmode="url" autocomplete="url" spellcheck="false"
                        placeholder="This page's own server"
                        aria-describedby="proxy-url-help"
                        prop:value=move || proxy.get()
                        on:input=move |ev| proxy.set(event_target_value(&ev))/>
                    <p id="proxy-url-help" class="help">"Where florence2-proxy runs. Empty: the server this page came from."</p>
                </div>
                <div class="field">
                    <label for="api-key">"Your NVIDIA API key (optional)"</label>
                    <input id="api-key" type="password" autocomplete="off" spellcheck="false" placeholder="nvapi-…"
                        aria-describedby="api-key-help"
                        prop:value=move || key.get()
                        on:input=move |ev| key.set(event_target_value(&ev))/>
                    <p id="api-key-help" class="help">"Only for a proxy without a key of its own. Kept in this tab's memory, never stored; sent to the proxy as X-Api-Key."</p>
                </div>
                <div class="field">
                    <label for="inline-limit">"Inline-size limit (base64 characters)"</label>
                    <input id="inline-limit" type="text" inputmode="numeric" spellcheck="false"
                        aria-describedby="inline-limit-help"
                        prop:value=move || limit.get()
                        on:input=move |ev| limit.set(event_target_value(&ev))/>
                    <p id="inline-limit-help" class="help">"Pictures that encode longer than this are uploaded as assets instead of sent inline (NVIDIA: 180,000)."</p>
                </div>
                {move || mistake.get().map(|m| view! { <p class="mistake" role="alert">{m}</p> })}
                <div class="row">
                    <button type="submit" class="button primary">"Save"</button>
                    <button type="button" class="button ghost" on:click=reset>"Defaults"</button>
                    <button type="button" class="button ghost" on:click=move |_| on_close()>"Close"</button>
                </div>
            </form>
        </section>
    }
}
