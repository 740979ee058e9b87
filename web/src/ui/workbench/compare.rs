//! Side by side: the current picture and task through the endpoint and in this browser at
//! once, both drawn, each with its time, and what differs (text, shape count, the IoU of
//! matched boxes). Either answer opens in the viewer with a click.

use florence2::browser::describe;
use florence2::{Error, TextKind};
use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::AbortController;

use crate::answer_text::readable_text;
use crate::messages::Problem;
use crate::ui::local::LocalState;
use crate::ui::run::paths::{self, client_of};
use crate::ui::run::{answer_of, thumbnail};
use crate::ui::state::{Answer, AppState};
use crate::workbench::compare::compare;

/// The drawings fit this box (CSS pixels).
const DRAWING: (f64, f64) = (260.0, 195.0);

/// One side's outcome.
#[derive(Clone)]
enum Side {
    Running,
    Done {
        answer: Box<Answer>,
        drawing: String,
    },
    Failed(String),
}

#[component]
pub fn ComparePanel(state: AppState, local: LocalState) -> impl IntoView {
    let on = RwSignal::new(false);
    let remote = RwSignal::new(None::<Side>);
    let in_browser = RwSignal::new(None::<Side>);
    let problem = RwSignal::new(None::<String>);
    let run_number = StoredValue::new(0_u32);
    let run = move || {
        problem.set(None);
        match start_compare(state, local, remote, in_browser, run_number) {
            Ok(()) => {}
            Err(why) => problem.set(Some(why)),
        }
    };
    let toggle = move |_| {
        let now = !on.get_untracked();
        on.set(now);
        if now {
            run();
        }
    };
    let diff = move || {
        let (Some(Side::Done { answer: a, .. }), Some(Side::Done { answer: b, .. })) =
            (remote.get(), in_browser.get())
        else {
            return None;
        };
        Some(compare(&a.result, &b.result).line())
    };
    view! {
        <section class="panel compare" aria-labelledby="compare-title">
            <h2 id="compare-title">"Side by side"</h2>
            <div class="row">
                <label class="toggle">
                    <input type="checkbox" data-testid="compare-toggle" prop:checked=move || on.get() on:change=toggle/>
                    "Run the task on both paths: the endpoint and this browser"
                </label>
                <Show when=move || on.get()>
                    <button type="button" class="button small" data-testid="compare-again"
                        disabled=move || matches!(remote.get(), Some(Side::Running)) || matches!(in_browser.get(), Some(Side::Running))
                        on:click=move |_| run()>
                        "Run both again"
                    </button>
                </Show>
            </div>
            {move || problem.get().map(|p| view! { <p class="mistake" role="alert">{p}</p> })}
            <Show when=move || on.get() && (remote.with(Option::is_some) || in_browser.with(Option::is_some))>
                <div class="compare-sides">
                    <SidePanel state side=remote testid="compare-remote" title="Endpoint (through the proxy)"/>
                    <SidePanel state side=in_browser testid="compare-local" title="This browser"/>
                </div>
                {move || diff().map(|d| view! { <p class="compare-diff" data-testid="compare-diff">{d}</p> })}
            </Show>
        </section>
    }
}

#[component]
fn SidePanel(
    state: AppState,
    side: RwSignal<Option<Side>>,
    testid: &'static str,
    title: &'static str,
) -> impl IntoView {
    let state_name = move || match side.get() {
        Some(Side::Running) => "running",
        Some(Side::Done { .. }) => "done",
        Some(Side::Failed(_)) => "failed",
        None => "idle",
    };
    view! {
        <div class="compare-side" data-testid=testid data-state=state_name>
            <h3>{title}</h3>
            {move || match side.get() {
                None => view! { <p class="placeholder">"—"</p> }.into_any(),
                Some(Side::Running) => view! { <p class="placeholder">"Running…"</p> }.into_any(),
                Some(Side::Failed(why)) => view! { <p class="mistake">{why}</p> }.into_any(),
                Some(Side::Done { answer, drawing }) => {
                    let words = readable_text(&answer.result);
                    let shapes = answer.scene.shapes.len();
                    let time = format!("{} — {}", answer.elapsed, answer.timings);
                    let answer = *answer;
                    view! {
                        <button type="button" class="compare-drawing" aria-label="Open this answer in the viewer"
                            on:click=move |_| state.reopen(answer.clone())>
                            {(!drawing.is_empty()).then(|| view! { <img src=drawing alt=""/> })}
                        </button>
                        <p class="compare-time" data-testid="compare-time">{time}</p>
                        <p class="compare-count">{format!("{shapes} {}", if shapes == 1 { "shape" } else { "shapes" })}</p>
                        {words.map(|w| view! { <p class="compare-text">{w}</p> })}
                    }.into_any()
                }
            }}
        </div>
    }
}

/// Runs the current picture and task on both paths at once.
fn start_compare(
    state: AppState,
    local: LocalState,
    remote: RwSignal<Option<Side>>,
    in_browser: RwSignal<Option<Side>>,
    run_number: StoredValue<u32>,
) -> Result<(), String> {
    let picture = state
        .picture
        .get_untracked()
        .ok_or_else(|| Problem::no_image().title)?;
    let model = local
        .model()
        .ok_or("Load the model in Local mode first: this compares it with the endpoint.")?;
    let options = local.run_options()?;
    let task = state.task.get_untracked();
    let text = (task.text_kind() != TextKind::None)
        .then(|| state.text.get_untracked().trim().to_owned())
        .filter(|t| !t.is_empty());
    let client = client_of(state).map_err(|e| e.message)?;
    let controller = AbortController::new().map_err(|e| describe(&e))?;
    let number = run_number.get_value() + 1;
    run_number.set_value(number);
    let current = move || run_number.get_value() == number;
    remote.set(Some(Side::Running));
    in_browser.set(Some(Side::Running));
    let settle = move |side: RwSignal<Option<Side>>, outcome: Result<Answer, Error>| async move {
        let value = match outcome {
            Ok(answer) => {
                let drawing = thumbnail(&answer, DRAWING).await.unwrap_or_default();
                Side::Done {
                    answer: Box::new(answer),
                    drawing,
                }
            }
            Err(e) => Side::Failed(format!("{}: {}", e.code, e.message)),
        };
        if current() {
            side.set(Some(value));
        }
    };
    let (p, t, s) = (picture.clone(), text.clone(), controller.signal());
    spawn_local(async move {
        let started = js_sys::Date::now();
        let outcome = paths::remote(&client, p.bytes.to_vec(), task, t.clone(), s, None)
            .await
            .map(|a| {
                answer_of(
                    p,
                    task,
                    t.unwrap_or_default(),
                    a,
                    js_sys::Date::now() - started,
                )
            });
        settle(remote, outcome).await;
    });
    spawn_local(async move {
        let started = js_sys::Date::now();
        let outcome = paths::local(
            &model,
            &picture.bytes,
            task,
            text.as_deref(),
            options,
            &controller.signal(),
            None,
        )
        .await
        .map(|a| {
            answer_of(
                picture,
                task,
                text.unwrap_or_default(),
                a,
                js_sys::Date::now() - started,
            )
        });
        settle(in_browser, outcome).await;
    });
    Ok(())
}
