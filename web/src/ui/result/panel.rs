//! The answer panel, present once there is an answer for the picture shown.

use florence2::Source;
use leptos::prelude::*;

use crate::answer_text::readable_text;
use crate::ui::result::entities::EntityList;
use crate::ui::result::exports::Exports;
use crate::ui::result::layers::LayerSwitches;
use crate::ui::result::words::Words;
use crate::ui::state::AppState;
use crate::ui::workbench::ChainGrounding;
use crate::workbench::chain::{boxes_lead_to_regions, grounding_text};

#[component]
pub fn ResultPanel(state: AppState) -> impl IntoView {
    let answer = move || {
        let picture = state.picture.get()?;
        state.answer.get().filter(|a| a.picture.same(&picture))
    };
    view! {
        <section class="panel result" aria-labelledby="result-title">
            <h2 id="result-title" class="step-title"><span class="step-number">"3"</span>"Answer"</h2>
            {move || match answer() {
                None => view! { <p class="placeholder">"The answer appears here and on the picture."</p> }.into_any(),
                Some(a) => {
                    let words = readable_text(&a.result);
                    let shapes = !a.scene.shapes.is_empty();
                    let nothing = words.is_none() && !shapes;
                    let caption = grounding_text(a.task, &a.result);
                    let running = Signal::derive(move || state.running());
                    let regions = shapes && boxes_lead_to_regions(a.task);
                    view! {
                        <p class="answer-meta">
                            <span class="chip">{a.task.label()}</span>
                            <span class="chip source" data-testid="result-source" data-source=source_name(a.result.source)>
                                {source_name(a.result.source)}
                            </span>
                            <span>{format!("at {}", a.at)}</span>
                            {a.image_reused.then(|| view! {
                                <span class="chip reused" data-testid="image-reused">"picture reused, vision skipped"</span>
                            })}
                        </p>
                        <p class="answered-by" data-testid="answered-by">{answered_by(a.result.source, a.in_browser.as_deref())}</p>
                        {words.map(|w| view! { <Words text=w/> })}
                        {caption.map(|caption| view! { <ChainGrounding caption follow_up=state.follow_up running/> })}
                        {regions.then(|| view! {
                            <p class="help">"Click a box (here or on the picture) to describe that region."</p>
                        })}
                        {nothing.then(|| view! { <p class="placeholder">"Florence-2 found nothing to show for this task."</p> })}
                        {shapes.then(|| view! { <EntityList state scene=a.scene.clone()/> })}
                        <LayerSwitches state scene=a.scene.clone() has_overlay=a.overlay.is_some()/>
                        <Exports state answer=a.clone()/>
                        <details class="json">
                            <summary>"Result JSON"</summary>
                            <pre data-testid="result-json">{a.json.to_string()}</pre>
                        </details>
                        <p class="timings" data-testid="answer-timings">{a.timings.clone()}</p>
                        <p class="summary">{a.summary.clone()}</p>
                    }
                    .into_any()
                }
            }}
        </section>
    }
}

/// The result's `source`, as its JSON says it.
fn source_name(source: Source) -> &'static str {
    match source {
        Source::Local => "local",
        Source::Endpoint => "endpoint",
    }
}

/// Which backend made the answer: the model in this browser, the proxy's local model or
/// NVIDIA's endpoint (the proxy says so in `x-florence2-backend`; the client sets the result's
/// `source` from it).
fn answered_by(source: Source, in_browser: Option<&str>) -> String {
    match (source, in_browser) {
        (_, Some(backend)) => format!("Answered by Florence-2 in this browser ({backend})"),
        (Source::Local, None) => "Answered by the proxy's local Florence-2 model".into(),
        (Source::Endpoint, None) => "Answered by NVIDIA's hosted endpoint".into(),
    }
}
