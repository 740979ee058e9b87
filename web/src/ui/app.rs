//! The page: header and health, then the picture (sources, viewer) beside the task, the run
//! and the answer, and this session's history (under the picture; last on a phone).

use leptos::prelude::*;

use crate::session::Settings;
use crate::ui::header::{Header, HealthBanner};
use crate::ui::history::HistoryStrip;
use crate::ui::problem::ProblemView;
use crate::ui::result::ResultPanel;
use crate::ui::run::RunControls;
use crate::ui::source::{Sources, listen_for_paste};
use crate::ui::state::AppState;
use crate::ui::task::TaskPicker;
use crate::ui::viewer::Viewer;

#[component]
pub fn App(settings: Settings) -> impl IntoView {
    let state = AppState::new(settings);
    listen_for_paste(state);
    crate::ui::header::keep_settings(state);
    crate::ui::header::watch_health(state);
    crate::ui::run::listen_for_shortcut(state);
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
            </section>
            <section class="control-column" aria-label="Task and answer">
                <TaskPicker state/>
                <RunControls state/>
                <ProblemView state/>
                <ResultPanel state/>
            </section>
            <HistoryStrip state/>
        </main>
        <footer class="footer">
            "Florence-2 by Microsoft, answered by NVIDIA's hosted endpoint through your florence2-web proxy. "
            "Pictures go only to that proxy; your API key stays in this tab's memory."
        </footer>
    }
}
