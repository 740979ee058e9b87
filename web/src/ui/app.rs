//! The page: header and health, then the picture (sources, viewer) beside where Florence-2
//! runs, the task, the run and the answer, and this session's history (under the picture;
//! last on a phone).

use florence2::Task;
use leptos::prelude::*;

use crate::session::Settings;
use crate::ui::header::{Header, HealthBanner};
use crate::ui::history::HistoryStrip;
use crate::ui::local::{LocalState, ModelPanel};
use crate::ui::problem::ProblemView;
use crate::ui::result::ResultPanel;
use crate::ui::run::RunControls;
use crate::ui::source::{Sources, listen_for_paste};
use crate::ui::state::AppState;
use crate::ui::task::TaskPicker;
use crate::ui::viewer::Viewer;
use crate::ui::workbench::{BatchPanel, ComparePanel, StreamText, listen_for_follow_ups};

#[component]
pub fn App(settings: Settings) -> impl IntoView {
    let state = AppState::new(settings);
    let local = LocalState::new();
    listen_for_paste(state);
    crate::ui::header::keep_settings(state);
    crate::ui::header::watch_health(state);
    crate::ui::run::listen_for_shortcut(state, local);
    listen_for_follow_ups(state, local);
    let running = Signal::derive(move || state.running());
    let tasks = offered_tasks(state, local);
    // For the first-paint measurement (the e2e suite reads it).
    if let Some(p) = web_sys::window().and_then(|w| w.performance()) {
        let _ = p.mark("florence2:app-mounted");
    }
    view! {
        <a class="skip" href="#task">"Skip to the task"</a>
        <Header state/>
        <HealthBanner state/>
        <main class="layout">
            <section class="picture-column" aria-label="Picture">
                <Sources state/>
                <Viewer state/>
                <ComparePanel state local/>
                <BatchPanel state local/>
            </section>
            <section class="control-column" aria-label="Task and answer">
                <ModelPanel local problem=state.problem/>
                <TaskPicker state tasks/>
                <RunControls state local/>
                <StreamText stream=state.stream running/>
                <ProblemView state/>
                <ResultPanel state/>
            </section>
            <HistoryStrip state/>
        </main>
        <footer class="footer">
            "Florence-2 by Microsoft, answered by NVIDIA's hosted endpoint through your florence2-web proxy, or by the model in this browser (Local). "
            "Pictures go only to that proxy, or nowhere; your API key stays in this tab's memory."
        </footer>
    }
}

/// The tasks offered: the model in this browser runs all 15; remotely, what the proxy's
/// backend runs. A task the new list lacks gives way to the caption.
fn offered_tasks(state: AppState, local: LocalState) -> Signal<&'static [Task]> {
    let tasks = Signal::derive(move || {
        if local.is_local() {
            &Task::ALL[..]
        } else {
            state.tasks.get()
        }
    });
    Effect::new(move |_| {
        let offered = tasks.get();
        if !offered.contains(&state.task.get_untracked()) {
            state.task.set(Task::Caption);
            state.text.set(String::new());
        }
    });
    tasks
}
