//! Choosing the task: those the current backend runs (the endpoint's 14; 15 with a model),
//! grouped, each explained in a line; a text field only for tasks that take text; for region
//! tasks the field shows the `<loc_…>` tokens the drag on the picture wrote (they may also be
//! typed).

use florence2::{Task, TaskGroup, TextKind};
use leptos::prelude::*;

use crate::ui::state::AppState;

const GROUPS: [(TaskGroup, &str); 6] = [
    (TaskGroup::Captions, "Captions"),
    (TaskGroup::Detection, "Detection"),
    (TaskGroup::Grounding, "Grounding"),
    (TaskGroup::Segmentation, "Segmentation"),
    (TaskGroup::Regions, "Regions"),
    (TaskGroup::Ocr, "Text (OCR)"),
];

fn placeholder(task: Task) -> &'static str {
    match task {
        Task::CaptionToPhraseGrounding => "e.g. A woman walks her dog past a red car.",
        Task::ReferringExpressionSegmentation => "e.g. the dog on the left",
        Task::OpenVocabularyDetection => "e.g. bicycle",
        _ => "<loc_…><loc_…><loc_…><loc_…>",
    }
}

#[component]
pub fn TaskPicker(state: AppState, tasks: Signal<&'static [Task]>) -> impl IntoView {
    let choose = move |ev: leptos::ev::Event| {
        let Ok(task) = Task::from_token(&event_target_value(&ev)) else {
            return;
        };
        let before = state.task.get_untracked();
        if before.text_kind() != task.text_kind() {
            // Text of one kind means nothing to another (a caption is not a region).
            state.text.set(String::new());
        }
        state.task.set(task);
        state.settings.update(|s| s.task = task.token().to_owned());
    };
    let kind = move || state.task.get().text_kind();
    view! {
        <section class="panel task" aria-labelledby="task-title">
            <h2 id="task-title" class="step-title"><span class="step-number">"1"</span>"Task"</h2>
            <label for="task" class="visually-hidden">"Task"</label>
            <select id="task" data-testid="task-select" aria-describedby="task-description" on:change=choose>
                {GROUPS
                    .iter()
                    .map(|&(group, name)| {
                        view! {
                            <optgroup label=name>
                                {move || tasks.get()
                                    .iter()
                                    .filter(|t| t.group() == group)
                                    .map(|&t| view! { <option value=t.token() prop:selected=move || state.task.get() == t>{t.label()}</option> })
                                    .collect_view()}
                            </optgroup>
                        }
                    })
                    .collect_view()}
            </select>
            <p id="task-description" class="description">{move || state.task.get().description()}</p>
            <Show when=move || kind() != TextKind::None>
                <div class="field">
                    <label for="task-text">{move || if kind() == TextKind::Region { "Region" } else { "Text" }}</label>
                    <input id="task-text" type="text" data-testid="text-input" spellcheck="false" autocomplete="off"
                        class:tokens=move || kind() == TextKind::Region
                        placeholder=move || placeholder(state.task.get())
                        aria-describedby="task-text-help"
                        prop:value=move || state.text.get()
                        on:input=move |ev| state.text.set(event_target_value(&ev))/>
                    <p id="task-text-help" class="help">
                        {move || if kind() == TextKind::Region {
                            "Drag a rectangle on the picture: its tokens appear here (the endpoint's rule, ×999)."
                        } else {
                            "What to look for, in plain words."
                        }}
                    </p>
                </div>
            </Show>
        </section>
    }
}
