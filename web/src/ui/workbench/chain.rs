//! One answer leads to the next run on the same picture: a caption's phrases grounded, a
//! detected box described as a region. The answer asks (`AppState::follow_up`); the app runs.

use florence2::Task;
use leptos::prelude::*;

use crate::ui::local::LocalState;
use crate::ui::run::start_run;
use crate::ui::state::{AppState, FollowUp};
use crate::workbench::chain::{boxes_lead_to_regions, region_of_box};

/// Runs what an answer asked for, with the task and text set as if chosen by hand.
pub fn listen_for_follow_ups(state: AppState, local: LocalState) {
    Effect::new(move |_| {
        let Some(follow_up) = state.follow_up.get() else {
            return;
        };
        state.follow_up.set(None);
        if state.running() {
            return;
        }
        state.task.set(follow_up.task);
        state.text.set(follow_up.text);
        start_run(state, local);
    });
}

/// After a caption: its phrases grounded on the same picture.
#[component]
pub fn ChainGrounding(
    caption: String,
    follow_up: RwSignal<Option<FollowUp>>,
    running: Signal<bool>,
) -> impl IntoView {
    view! {
        <div class="chain">
            <button type="button" class="button small" data-testid="chain-grounding"
                disabled=move || running.get()
                title="Run <CAPTION_TO_PHRASE_GROUNDING> with this caption on the same picture"
                on:click=move |_| follow_up.set(Some(FollowUp {
                    task: Task::CaptionToPhraseGrounding,
                    text: caption.clone(),
                }))>
                "Ground these phrases"
            </button>
        </div>
    }
}

/// After `<OD>` or `<DENSE_REGION_CAPTION>`: shape `index` of the answer, described as a region
/// (`<REGION_TO_DESCRIPTION>`). Returns whether it asked.
pub fn describe_shape(state: AppState, index: usize) -> bool {
    let region = state.answer.with_untracked(|a| {
        let a = a.as_ref()?;
        if !boxes_lead_to_regions(a.task) {
            return None;
        }
        let shape = a.scene.shapes.get(index)?;
        region_of_box(shape.bounds, a.picture.size)?
            .to_endpoint_loc(a.picture.size)
            .ok()
    });
    match region {
        Some(text) if !state.running() => {
            state.follow_up.set(Some(FollowUp {
                task: Task::RegionToDescription,
                text,
            }));
            true
        }
        _ => false,
    }
}
