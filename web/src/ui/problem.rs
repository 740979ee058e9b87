//! The `error` element: what went wrong, in words, with what to do next; shown only when
//! something did, carrying the stable code as `data-code`.

use leptos::html::Div;
use leptos::prelude::*;
use web_sys::{ScrollIntoViewOptions, ScrollLogicalPosition};

use crate::ui::state::AppState;

#[component]
pub fn ProblemView(state: AppState) -> impl IntoView {
    let element = NodeRef::<Div>::new();
    // On a phone the message may be below the fold: bring it into view when it appears.
    Effect::new(move |_| {
        if state.problem.with(Option::is_some)
            && let Some(el) = element.get()
        {
            let options = ScrollIntoViewOptions::new();
            options.set_block(ScrollLogicalPosition::Nearest);
            el.scroll_into_view_with_scroll_into_view_options(&options);
        }
    });
    move || {
        state.problem.get().map(|p| {
            view! {
                <div node_ref=element class="problem" data-testid="error" data-code=p.code.clone() role="alert">
                    <svg viewBox="0 0 24 24" class="icon" aria-hidden="true"><circle cx="12" cy="12" r="9"/><path d="M12 7.5v5.5m0 3v.5"/></svg>
                    <div class="problem-body">
                        <p class="problem-title">{p.title.clone()}</p>
                        <p class="problem-next">{p.next.clone()}</p>
                        <p class="problem-detail"><code>{p.code.clone()}</code>" "{p.detail.clone()}</p>
                    </div>
                    <button type="button" class="button ghost small" aria-label="Dismiss this message" on:click=move |_| state.problem.set(None)>"×"</button>
                </div>
            }
        })
    }
}
