//! Run and Cancel, and the status: the four steps of a run, the current one highlighted, with
//! the seconds ticking while it waits.

use std::time::Duration;

use florence2::browser::client::Stage;
use leptos::prelude::*;

use crate::ui::local::LocalState;
use crate::ui::run::action::start_run;
use crate::ui::state::{AppState, Phase};

const STEPS: [(Stage, &str); 4] = [
    (Stage::Preparing, "Prepare"),
    (Stage::Uploading, "Upload"),
    (Stage::Waiting, "Wait"),
    (Stage::Done, "Done"),
];

fn rank(stage: Stage) -> usize {
    STEPS.iter().position(|(s, _)| *s == stage).unwrap_or(0)
}

#[component]
pub fn RunControls(state: AppState, local: LocalState) -> impl IntoView {
    // Seconds since the run started (not since its current step), ticking while it runs.
    let seconds = RwSignal::new(0_u32);
    Effect::new(move |was_running: Option<bool>| {
        let running = state.running();
        if running && was_running != Some(true) {
            seconds.set(0);
        }
        running
    });
    // The interval lives as long as the page; it only writes while a run is in flight.
    let _ = set_interval_with_handle(
        move || {
            if matches!(state.phase.get_untracked(), Phase::Running(_)) {
                seconds.update(|s| *s += 1);
            }
        },
        Duration::from_secs(1),
    );
    let stage_name = move || match state.phase.get() {
        Phase::Idle => "idle",
        Phase::Running(s) => s.as_str(),
        Phase::Done => "done",
        Phase::Cancelled => "cancelled",
        Phase::Failed => "failed",
    };
    let text = move || match state.phase.get() {
        Phase::Idle if state.picture.with(Option::is_none) => {
            "Bring a picture, pick a task, then run it.".to_owned()
        }
        Phase::Idle => "Ready. Press Run (or Ctrl+Enter).".to_owned(),
        Phase::Running(Stage::Preparing) => "Preparing the picture…".to_owned(),
        Phase::Running(Stage::Uploading) => format!("Uploading the picture… {} s", seconds.get()),
        Phase::Running(_) if local.is_local() => {
            format!("Florence-2 is running in this browser… {} s", seconds.get())
        }
        Phase::Running(_) => format!("Waiting for Florence-2… {} s", seconds.get()),
        Phase::Done => state.answer.with(|a| {
            a.as_ref()
                .map_or_else(|| "Done.".to_owned(), |a| format!("Done in {}.", a.elapsed))
        }),
        Phase::Cancelled => "Cancelled.".to_owned(),
        Phase::Failed => "The run failed: see why below.".to_owned(),
    };
    let step_class = move |stage: Stage| {
        let phase = state.phase.get();
        let current = match phase {
            Phase::Running(s) => rank(s),
            Phase::Done => STEPS.len(),
            _ => return "step",
        };
        let mine = rank(stage);
        if stage == Stage::Uploading && current > mine && !state.uploaded.get() {
            "step skipped"
        } else if mine < current || phase == Phase::Done {
            "step done"
        } else if mine == current {
            "step current"
        } else {
            "step"
        }
    };
    view! {
        <section class="panel run" aria-labelledby="run-title">
            <h2 id="run-title" class="step-title"><span class="step-number">"2"</span>"Run"</h2>
            <div class="row">
                <button type="button" class="button primary run-button" data-testid="run-button"
                    disabled=move || state.running()
                    on:click=move |_| start_run(state, local)>
                    {move || if state.running() { "Running…" } else { "Run" }}
                </button>
                <button type="button" class="button" data-testid="cancel-button"
                    disabled=move || !state.running()
                    on:click=move |_| state.cancel()>
                    "Cancel"
                </button>
            </div>
            <div class="status" data-testid="status" data-stage=stage_name role="status" aria-live="polite">
                <ol class="steps" aria-hidden="true">
                    {STEPS.iter().map(|&(stage, name)| view! { <li class=move || step_class(stage)>{name}</li> }).collect_view()}
                </ol>
                <p class="status-text">{text}</p>
            </div>
        </section>
    }
}
