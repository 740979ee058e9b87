//! One run: florence2's client prepares the picture, sends it (inline or as an asset), waits,
//! and reads the ZIP answer; its stages drive the status, its typed errors become words.

use std::rc::Rc;

use florence2::browser::client::{Client, ClientConfig, RunRequest, Stage};
use florence2::{Error, ErrorCode, TextKind};
use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::AbortController;

use crate::messages::Problem;
use crate::ui::run::keep::keep_answer;
use crate::ui::state::{AppState, Phase};

pub fn start_run(state: AppState) {
    if state.running() {
        return;
    }
    let Some(picture) = state.picture.get_untracked() else {
        state.fail(Problem::no_image());
        return;
    };
    let task = state.task.get_untracked();
    let text = (task.text_kind() != TextKind::None).then(|| state.text.get_untracked());
    let settings = state.settings.get_untracked();
    let key = state.api_key.get_untracked();
    let config = ClientConfig {
        base_url: settings.proxy_url,
        api_key: (!key.is_empty()).then_some(key),
        max_base64_chars: settings.max_base64_chars,
        ..ClientConfig::default()
    };
    let client = match Client::new(config) {
        Ok(client) => client,
        Err(e) => return state.fail(state.problem_of(&e)),
    };
    let Ok(controller) = AbortController::new() else {
        return state.fail(state.problem_of(&Error::new(
            ErrorCode::BadOption,
            "this browser cannot cancel requests (no AbortController)",
        )));
    };
    let number = state.run_number.get_value() + 1;
    state.run_number.set_value(number);
    state.controller.set_value(Some(controller.clone()));
    state.problem.set(None);
    state.uploaded.set(false);
    state.phase.set(Phase::Running(Stage::Preparing));
    let current = move || state.run_number.get_value() == number;
    let on_progress = Rc::new(move |stage: Stage| {
        // Done is shown once the answer is on the picture, not when the ZIP is read.
        if current() && stage != Stage::Done {
            state.uploaded.update(|u| *u |= stage == Stage::Uploading);
            state.phase.set(Phase::Running(stage));
        }
    });
    let started = js_sys::Date::now();
    spawn_local(async move {
        let request = RunRequest {
            image: picture.bytes.to_vec(),
            task,
            text: text.clone(),
            signal: Some(controller.signal()),
            on_progress: Some(on_progress),
            max_tokens: None,
        };
        let outcome = client.run(request).await;
        if !current() {
            return; // superseded by a newer run or picture
        }
        state.controller.set_value(None);
        match outcome {
            Ok(output) => keep_answer(
                state,
                picture,
                task,
                text.unwrap_or_default(),
                output,
                js_sys::Date::now() - started,
            ),
            Err(e) if e.code == ErrorCode::Aborted => state.phase.set(Phase::Cancelled),
            Err(e) => {
                state.phase.set(Phase::Failed);
                state.fail(state.problem_of(&e));
            }
        }
    });
}

/// Ctrl+Enter (⌘+Enter) runs from anywhere on the page.
pub fn listen_for_shortcut(state: AppState) {
    let _ = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
            ev.prevent_default();
            start_run(state);
        }
    });
}
