//! This session's runs as thumbnails (the answer drawn on the picture), newest first; any of
//! them reopens with its picture, task, text and answer.

use leptos::prelude::*;

use crate::ui::state::AppState;

#[component]
pub fn HistoryStrip(state: AppState) -> impl IntoView {
    let entries = move || {
        state.history.with(|h| {
            h.entries()
                .iter()
                .map(|e| {
                    (
                        e.id,
                        e.item.thumbnail.clone(),
                        e.item.answer.task.label(),
                        e.item.answer.at.clone(),
                    )
                })
                .collect::<Vec<_>>()
        })
    };
    let is_current = move |id: u32| {
        state.history.with(|h| {
            let Some(visit) = h.get(id) else { return false };
            state
                .answer
                .with(|a| a.as_ref().is_some_and(|a| a.same(&visit.answer)))
        })
    };
    let reopen = move |id: u32| {
        if let Some(answer) = state
            .history
            .with_untracked(|h| h.get(id).map(|v| v.answer.clone()))
        {
            state.reopen(answer);
        }
    };
    view! {
        <Show when=move || state.history.with(|h| !h.entries().is_empty())>
            <section class="history" aria-labelledby="history-title">
                <h2 id="history-title">"This session"</h2>
                <ol class="history-list">
                    <For each=entries key=|(id, ..)| *id let:entry>
                        {
                            let (id, thumbnail, label, at) = entry;
                            view! {
                                <li>
                                    <button type="button" class="visit" data-testid="history-entry"
                                        aria-current=move || is_current(id).then_some("true")
                                        aria-label=format!("Reopen {label} from {at}")
                                        on:click=move |_| reopen(id)>
                                        {(!thumbnail.is_empty()).then(|| view! { <img src=thumbnail alt=""/> })}
                                        <span class="visit-task">{label}</span>
                                        <time>{at.clone()}</time>
                                    </button>
                                </li>
                            }
                        }
                    </For>
                </ol>
            </section>
        </Show>
    }
}
