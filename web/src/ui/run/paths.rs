//! One picture through each path, with no page state touched: florence2's client through the
//! proxy, or the model loaded in this browser. The single run, the batch and the side-by-side
//! comparison all go through these.

use std::rc::Rc;

use florence2::browser::client::{Client, ClientConfig, RunRequest, Stage};
use florence2::{Error, Task};
use leptos::prelude::*;
use web_sys::AbortSignal;

use crate::messages::units::duration;
use crate::session::local_model::RunOptions;
use crate::ui::local::{LocalModel, OnToken};
use crate::ui::run::keep::{Answered, RunTimings, remote_answer};
use crate::ui::state::AppState;

/// The client of the proxy the settings name (with the person's own key, if any).
pub fn client_of(state: AppState) -> Result<Client, Error> {
    let settings = state.settings.get_untracked();
    let key = state.api_key.get_untracked();
    Client::new(ClientConfig {
        base_url: settings.proxy_url,
        api_key: (!key.is_empty()).then_some(key),
        max_base64_chars: settings.max_base64_chars,
        ..ClientConfig::default()
    })
}

/// Through the proxy.
pub async fn remote(
    client: &Client,
    image: Vec<u8>,
    task: Task,
    text: Option<String>,
    signal: AbortSignal,
    on_progress: Option<Rc<dyn Fn(Stage)>>,
) -> Result<Answered, Error> {
    let request = RunRequest {
        image,
        task,
        text,
        signal: Some(signal),
        on_progress,
        max_tokens: None,
    };
    client.run(request).await.map(remote_answer)
}

/// In this browser (its worker decodes the picture itself).
pub async fn local(
    model: &LocalModel,
    image: &[u8],
    task: Task,
    text: Option<&str>,
    options: RunOptions,
    signal: &AbortSignal,
    on_token: Option<OnToken>,
) -> Result<Answered, Error> {
    let started = js_sys::Date::now();
    let answer = model
        .run(image, task.token(), text, options, signal, on_token)
        .await?;
    let ms = js_sys::Date::now() - started;
    Ok(Answered {
        summary: format!(
            "Ran in this browser on {} ({}, {}) in {}{}: nothing was sent anywhere.",
            model.info.backend,
            model.info.adapter.as_deref().unwrap_or("WebAssembly"),
            model.info.dtype,
            duration(ms),
            if answer.image_reused {
                ", on the picture features of the last run"
            } else {
                ""
            },
        ),
        in_browser: Some(model.info.backend.clone()),
        overlay: None,
        result: answer.result,
        timings: RunTimings::Local {
            timings: answer.timings,
            reused: answer.image_reused,
        },
    })
}
