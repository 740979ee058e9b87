//! A batch: many pictures (a multi-file choice, or files and folders dropped), the current task
//! on the current path, one at a time. A queue with its progress (done/total, rate, time left),
//! Cancel, failures listed and skipped, a rate limit waited out, thumbnails that open each
//! answer drawn, and one COCO file for the whole batch.

use std::rc::Rc;
use std::sync::Arc;

use florence2::browser::client::Client;
use florence2::browser::describe;
use florence2::{Error, ErrorCode, Task, TextKind};
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use web_sys::{AbortController, AbortSignal, Blob, File, HtmlInputElement};

use crate::export::download_name;
use crate::messages::Problem;
use crate::session::local_model::RunOptions;
use crate::ui::dom::{ObjectUrl, blob_bytes, blob_of, download, sleep};
use crate::ui::local::{LocalModel, LocalState};
use crate::ui::run::paths::{self, client_of};
use crate::ui::run::{Answered, THUMBNAIL, answer_of, thumbnail};
use crate::ui::state::{Answer, AppState, Picture};
use crate::ui::workbench::files::dropped_files;
use crate::workbench::batch::{AfterError, Progress, after_error, dataset, is_picture_name};

#[derive(Debug, Clone)]
enum Status {
    Queued,
    Running,
    /// Rate-limited: trying again after a wait.
    Waiting,
    Done {
        answer: Box<Answer>,
        thumbnail: String,
    },
    Failed(String),
    Cancelled,
}

#[derive(Clone)]
struct Item {
    id: usize,
    /// The file's name, or its path in a dropped folder.
    name: String,
    file: File,
    status: RwSignal<Status, LocalStorage>,
}

/// Where a batch runs.
enum Path {
    Remote(Client),
    Local(Rc<LocalModel>, RunOptions),
}

#[derive(Clone, Copy)]
struct Batch {
    items: RwSignal<Vec<Item>, LocalStorage>,
    running: RwSignal<bool>,
    progress: RwSignal<Progress>,
    /// The task and text the batch ran (for its COCO file).
    ran: RwSignal<Option<(Task, Option<String>)>>,
    controller: StoredValue<Option<AbortController>, LocalStorage>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            items: RwSignal::new_local(Vec::new()),
            running: RwSignal::new(false),
            progress: RwSignal::new(Progress::default()),
            ran: RwSignal::new(None),
            controller: StoredValue::new_local(None),
        }
    }

    fn set_files(&self, files: Vec<(String, File)>) {
        if self.running.get_untracked() {
            return;
        }
        let items = files
            .into_iter()
            .enumerate()
            .map(|(id, (name, file))| Item {
                id,
                name,
                file,
                status: RwSignal::new_local(Status::Queued),
            })
            .collect::<Vec<_>>();
        self.progress.set(Progress {
            total: items.len(),
            ..Progress::default()
        });
        self.ran.set(None);
        self.items.set(items);
    }

    fn count(&self) -> Progress {
        let items = self.items.get_untracked();
        let mut p = self.progress.get_untracked();
        p.total = items.len();
        p.done = 0;
        p.failed = 0;
        for item in &items {
            match item.status.get_untracked() {
                Status::Done { .. } => p.done += 1,
                Status::Failed(_) => p.failed += 1,
                _ => {}
            }
        }
        p
    }
}

#[component]
pub fn BatchPanel(state: AppState, local: LocalState) -> impl IntoView {
    let batch = Batch::new();
    let problem = RwSignal::new(None::<String>);
    let on_files = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<HtmlInputElement>().ok())
        else {
            return;
        };
        let files = input.files().map_or_else(Vec::new, |list| {
            (0..list.length())
                .filter_map(|i| list.get(i))
                .map(|f| (f.name(), f))
                .collect()
        });
        batch.set_files(files);
        input.set_value("");
    };
    let on_drop = move |ev: leptos::ev::DragEvent| {
        // The batch's own: the page's drop (one picture into the viewer) must not see it.
        ev.prevent_default();
        ev.stop_propagation();
        let Some(data) = ev.data_transfer() else {
            return;
        };
        spawn_local(async move {
            match dropped_files(&data).await {
                Ok(files) => {
                    // From folders, only pictures (as `florence2 label` walks them); files
                    // dropped one by one are all tried, and a broken one is listed.
                    let files = files
                        .into_iter()
                        .filter(|(path, _)| !path.contains('/') || is_picture_name(path))
                        .collect();
                    batch.set_files(files);
                }
                Err(e) => problem.set(Some(format!(
                    "The drop could not be read: {}",
                    describe(&e)
                ))),
            }
        });
    };
    let start = move |_| {
        problem.set(None);
        match start_batch(state, local, batch) {
            Ok(()) => {}
            Err(why) => problem.set(Some(why)),
        }
    };
    let export = move |_| {
        let Some((task, text)) = batch.ran.get_untracked() else {
            return;
        };
        let items = batch.items.get_untracked();
        let done: Vec<(String, Answer)> = items
            .iter()
            .filter_map(|i| match i.status.get_untracked() {
                Status::Done { answer, .. } => Some((i.name.clone(), *answer)),
                _ => None,
            })
            .collect();
        let doc = dataset(
            task,
            text.as_deref(),
            done.iter().map(|(n, a)| (n.as_str(), a.result.as_ref())),
        );
        let name = download_name("batch", task.token(), "-coco", "json");
        // A document of numbers and strings always serialises.
        let json = serde_json::to_string(&doc).unwrap_or_default();
        if let Err(e) =
            blob_of(json.as_bytes(), "application/json").and_then(|b| download(&b, &name))
        {
            problem.set(Some(format!(
                "The file could not be made: {}",
                describe(&e)
            )));
        }
    };
    let has_items = move || batch.items.with(|i| !i.is_empty());
    let can_export =
        move || !batch.running.get() && batch.ran.get().is_some() && batch.progress.get().done > 0;
    view! {
        <section class="panel batch" aria-labelledby="batch-title"
            on:dragover=|ev: leptos::ev::DragEvent| { ev.prevent_default(); ev.stop_propagation(); }
            on:drop=on_drop>
            <h2 id="batch-title">"Batch"</h2>
            <p class="help">"Many pictures, the task above, where Florence-2 runs: choose files or drop them (folders too) here."</p>
            <div class="row">
                <input id="batch-input" class="visually-hidden" type="file" accept="image/*" multiple data-testid="batch-input" on:change=on_files/>
                <label for="batch-input" class="button">"Choose pictures"</label>
                <button type="button" class="button primary-soft" data-testid="batch-run"
                    disabled=move || batch.running.get() || !has_items()
                    on:click=start>
                    {move || if batch.running.get() { "Running…" } else { "Run the batch" }}
                </button>
                <button type="button" class="button" data-testid="batch-cancel"
                    disabled=move || !batch.running.get()
                    on:click=move |_| if let Some(c) = batch.controller.get_value() { c.abort() }>
                    "Cancel"
                </button>
                <button type="button" class="button small" data-testid="batch-export-coco"
                    disabled=move || !can_export()
                    on:click=export>
                    "COCO"
                </button>
            </div>
            <Show when=has_items>
                <p class="batch-progress" data-testid="batch-progress" role="status"
                    data-running=move || batch.running.get().to_string()>
                    {move || batch.progress.get().line()}
                </p>
            </Show>
            {move || problem.get().map(|p| view! { <p class="mistake" role="alert">{p}</p> })}
            <ol class="batch-list">
                <For each=move || batch.items.get() key=|item| item.id let:item>
                    <BatchItem state item/>
                </For>
            </ol>
        </section>
    }
}

#[component]
fn BatchItem(state: AppState, item: Item) -> impl IntoView {
    let status = item.status;
    let state_name = move || match status.get() {
        Status::Queued => "queued",
        Status::Running => "running",
        Status::Waiting => "waiting",
        Status::Done { .. } => "done",
        Status::Failed(_) => "failed",
        Status::Cancelled => "cancelled",
    };
    let name = item.name.clone();
    view! {
        <li class="batch-item" data-testid="batch-item" data-state=state_name>
            {move || match status.get() {
                Status::Done { answer, thumbnail } => {
                    let label = format!("Open the answer for {}", answer.picture.name);
                    let answer = *answer;
                    view! {
                        <button type="button" class="batch-thumb" aria-label=label
                            on:click=move |_| state.reopen(answer.clone())>
                            {(!thumbnail.is_empty()).then(|| view! { <img src=thumbnail alt=""/> })}
                        </button>
                    }.into_any()
                }
                Status::Failed(why) => view! { <span class="batch-why" data-testid="batch-failure">{why}</span> }.into_any(),
                Status::Running => view! { <span class="batch-why">"running…"</span> }.into_any(),
                Status::Waiting => view! { <span class="batch-why">"rate-limited: waiting to try again…"</span> }.into_any(),
                Status::Cancelled => view! { <span class="batch-why">"cancelled"</span> }.into_any(),
                Status::Queued => view! { <span class="batch-why">"queued"</span> }.into_any(),
            }}
            <span class="batch-name">{name}</span>
        </li>
    }
}

/// Starts the batch on the current path with the current task and text; `Err` says why not.
fn start_batch(state: AppState, local: LocalState, batch: Batch) -> Result<(), String> {
    if batch.running.get_untracked() {
        return Ok(());
    }
    let task = state.task.get_untracked();
    let text = match task.text_kind() {
        TextKind::None => None,
        // A region belongs to one picture's frame: it means nothing across a batch.
        TextKind::Region => {
            return Err(
                "Region tasks need a region on each picture: pick another task for a batch.".into(),
            );
        }
        TextKind::Required => {
            Some(state.text.get_untracked().trim().to_owned()).filter(|t| !t.is_empty())
        }
    };
    let path = if local.is_local_untracked() {
        let model = local.model().ok_or_else(|| Problem::no_model().title)?;
        let options = local.run_options().map_err(|why| why.to_string())?;
        Path::Local(model, options)
    } else {
        Path::Remote(client_of(state).map_err(|e| e.message)?)
    };
    let controller = AbortController::new().map_err(|e| describe(&e))?;
    batch.controller.set_value(Some(controller.clone()));
    for item in batch.items.get_untracked() {
        item.status.set(Status::Queued);
    }
    batch.ran.set(Some((task, text.clone())));
    batch.running.set(true);
    let started = js_sys::Date::now();
    batch.progress.set(Progress {
        total: batch.items.with_untracked(Vec::len),
        ..Progress::default()
    });
    spawn_local(async move {
        let signal = controller.signal();
        let tick = move || {
            let mut p = batch.count();
            p.elapsed_ms = js_sys::Date::now() - started;
            batch.progress.set(p);
        };
        for item in batch.items.get_untracked() {
            if signal.aborted() {
                item.status.set(Status::Cancelled);
                continue;
            }
            item.status.set(Status::Running);
            let status = run_one(&path, &item, task, text.clone(), &signal).await;
            item.status.set(status);
            tick();
        }
        batch.controller.set_value(None);
        batch.running.set(false);
        tick();
    });
    Ok(())
}

/// One picture of the batch: its answer (retried after a rate limit), or why it failed.
async fn run_one(
    path: &Path,
    item: &Item,
    task: Task,
    text: Option<String>,
    signal: &AbortSignal,
) -> Status {
    let bytes = match blob_bytes(item.file.unchecked_ref::<Blob>()).await {
        Ok(bytes) => bytes,
        Err(e) => return Status::Failed(format!("the file cannot be read: {}", describe(&e))),
    };
    let mut rate_limited = 0;
    loop {
        let started = js_sys::Date::now();
        let outcome: Result<Answered, Error> = match path {
            Path::Remote(client) => {
                paths::remote(
                    client,
                    bytes.clone(),
                    task,
                    text.clone(),
                    signal.clone(),
                    None,
                )
                .await
            }
            Path::Local(model, options) => {
                paths::local(model, &bytes, task, text.as_deref(), *options, signal, None).await
            }
        };
        let elapsed = js_sys::Date::now() - started;
        let error = match outcome {
            Ok(answered) => return done(item, bytes, task, text, answered, elapsed).await,
            Err(e) => e,
        };
        if error.code == ErrorCode::Aborted {
            return Status::Cancelled;
        }
        match after_error(error.code, error.retry_after_secs, rate_limited) {
            AfterError::Retry { wait_ms } => {
                rate_limited += 1;
                item.status.set(Status::Waiting);
                sleep(wait_ms).await;
                if signal.aborted() {
                    return Status::Cancelled;
                }
                item.status.set(Status::Running);
            }
            AfterError::Fail => {
                return Status::Failed(format!("{}: {}", error.code, error.message));
            }
        }
    }
}

async fn done(
    item: &Item,
    bytes: Vec<u8>,
    task: Task,
    text: Option<String>,
    answered: Answered,
    elapsed_ms: f64,
) -> Status {
    // The answer's frame is the picture's own (EXIF orientation applied): no second decode.
    let size = answered.result.image;
    let url = match blob_of(&bytes, "").and_then(|b| ObjectUrl::new(&b)) {
        Ok(url) => url,
        Err(e) => return Status::Failed(format!("the picture cannot be shown: {}", describe(&e))),
    };
    let picture = Picture {
        name: item
            .name
            .rsplit('/')
            .next()
            .unwrap_or(&item.name)
            .to_owned(),
        bytes: bytes.into(),
        url: Arc::new(url),
        size,
    };
    let answer = answer_of(
        picture,
        task,
        text.unwrap_or_default(),
        answered,
        elapsed_ms,
    );
    let thumbnail = thumbnail(&answer, THUMBNAIL).await.unwrap_or_default();
    Status::Done {
        answer: Box::new(answer),
        thumbnail,
    }
}
