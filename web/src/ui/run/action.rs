//! One run. Remote: florence2's client prepares the picture, sends it (inline or as an asset),
//! waits, and reads the ZIP answer; its stages drive the status. Local: the model loaded in
//! this browser answers. Either way typed errors become words and the answer is kept alike.

use std::rc::Rc;

use florence2::browser::client::Stage;
use florence2::{Error, ErrorCode, Task, TextKind};
use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::AbortController;

use crate::messages::Problem;
use crate::ui::local::{LocalState, OnToken};
use crate::ui::run::keep::{Answered, keep_answer};
use crate::ui::run::paths::{self, client_of};
use crate::ui::state::{AppState, Phase, Picture};

pub fn start_run(state: AppState, local: LocalState) {
    if state.running() {
        return;
    }
    let Some(picture) = state.picture.get_untracked() else {
        state.fail(Problem::no_image());
        return;
    };
    if local.is_local_untracked() {
        run_in_browser(state, local, picture);
    } else {
        run_remote(state, picture);
    }
}

fn run_remote(state: AppState, picture: Picture) {
    let task = state.task.get_untracked();
    let text = (task.text_kind() != TextKind::None).then(|| state.text.get_untracked());
    let client = match client_of(state) {
        Ok(client) => client,
        Err(e) => return state.fail(state.problem_of(&e)),
    };
    let Some((controller, number)) = begin(state, Stage::Preparing) else {
        return;
    };
    state.stream.set(None);
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
        let outcome = paths::remote(
            &client,
            picture.bytes.to_vec(),
            task,
            text.clone(),
            controller.signal(),
            Some(on_progress),
        )
        .await;
        finish(state, number, picture, task, text, outcome, started);
    });
}

/// The model loaded in this browser answers, its text streaming in token by token.
fn run_in_browser(state: AppState, local: LocalState, picture: Picture) {
    let Some(model) = local.model() else {
        state.fail(Problem::no_model());
        return;
    };
    let options = match local.run_options() {
        Ok(options) => options,
        Err(why) => return state.fail(Problem::local_option(why)),
    };
    let task = state.task.get_untracked();
    // An empty field is no text: the model then says which tasks need some (TEXT_REQUIRED).
    let text = (task.text_kind() != TextKind::None)
        .then(|| state.text.get_untracked().trim().to_owned())
        .filter(|t| !t.is_empty());
    let Some((controller, number)) = begin(state, Stage::Waiting) else {
        return;
    };
    state.stream.set(Some(String::new()));
    let on_token: OnToken = Rc::new(move |text: String, _tokens: u32| {
        if state.run_number.get_value() == number {
            state.stream.set(Some(text));
        }
    });
    let started = js_sys::Date::now();
    spawn_local(async move {
        let outcome = paths::local(
            &model,
            &picture.bytes,
            task,
            text.as_deref(),
            options,
            &controller.signal(),
            Some(on_token),
        )
        .await;
        drop(model);
        finish(state, number, picture, task, text, outcome, started);
    });
}

/// A run's bookkeeping: a new number (a late answer of an older run is dropped), its cancel,
/// and the status. `None` (with the problem shown) when the browser cannot cancel.
fn begin(state: AppState, stage: Stage) -> Option<(AbortController, u32)> {
    let Ok(controller) = AbortController::new() else {
        state.fail(state.problem_of(&Error::new(
            ErrorCode::BadOption,
            "this browser cannot cancel requests (no AbortController)",
        )));
        return None;
    };
    let number = state.run_number.get_value() + 1;
    state.run_number.set_value(number);
    state.controller.set_value(Some(controller.clone()));
    state.problem.set(None);
    state.uploaded.set(false);
    state.phase.set(Phase::Running(stage));
    Some((controller, number))
}

/// The end of a run: its answer kept, or why not shown (a cancel is no problem).
fn finish(
    state: AppState,
    number: u32,
    picture: Picture,
    task: Task,
    text: Option<String>,
    outcome: Result<Answered, Error>,
    started: f64,
) {
    if state.run_number.get_value() != number {
        return; // superseded by a newer run or picture
    }
    state.controller.set_value(None);
    match outcome {
        Ok(answered) => keep_answer(
            state,
            picture,
            task,
            text.unwrap_or_default(),
            answered,
            js_sys::Date::now() - started,
        ),
        Err(e) if e.code == ErrorCode::Aborted => state.phase.set(Phase::Cancelled),
        Err(e) => {
            state.phase.set(Phase::Failed);
            state.fail(state.problem_of(&e));
        }
    }
}

/// Ctrl+Enter (⌘+Enter) runs from anywhere on the page.
pub fn listen_for_shortcut(state: AppState, local: LocalState) {
    let _ = window_event_listener(leptos::ev::keydown, move |ev| {
        if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
            ev.prevent_default();
            start_run(state, local);
        }
    });
}
