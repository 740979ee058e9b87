//! The local model's own small state (apart from the app's): the mode, what to load, how far
//! the load got, and the loaded model itself.

use std::cell::Cell;
use std::rc::Rc;

use florence2::{Error, ErrorCode, TextKind};
use gloo_net::http::Request;
use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::AbortController;

use crate::messages::{Problem, Situation};
use crate::session::local_model::{
    BackendChoice, DownloadSize, HUB_MODEL, LoadPhase, LoadProgress, LoadStatus, Mode, RunOptions,
    SERVED_MODEL, SERVED_MODEL_PROBE, checkpoint_url, speed,
};
use crate::ui::local::js::{self, LocalModel};

/// Progress is shown at most this often (a large download reports every chunk).
const PROGRESS_EVERY_MS: f64 = 100.0;

#[derive(Clone, Copy)]
pub struct LocalState {
    pub mode: RwSignal<Mode>,
    pub url: RwSignal<String>,
    pub backend: RwSignal<BackendChoice>,
    pub beams: RwSignal<String>,
    pub max_new_tokens: RwSignal<String>,
    pub status: RwSignal<LoadStatus>,
    /// The folder's download size, asked of its server when the URL changes.
    pub download: RwSignal<DownloadSize>,
    /// Bumped by each size probe, so a superseded probe's answer is dropped.
    size_probe: StoredValue<u32>,
    /// The model ready to run (its worker ends when the last holder lets go).
    model: StoredValue<Option<Rc<LocalModel>>, LocalStorage>,
    /// Cancels the load in flight.
    loading: StoredValue<Option<AbortController>, LocalStorage>,
    /// Bumped by each load, so a superseded load's outcome is dropped.
    load_number: StoredValue<u32>,
    /// Whether the person typed a URL (the probe then leaves it alone).
    url_edited: StoredValue<bool>,
    probed: StoredValue<bool>,
}

impl LocalState {
    pub fn new() -> LocalState {
        LocalState {
            mode: RwSignal::new(Mode::Remote),
            url: RwSignal::new(HUB_MODEL.to_owned()),
            backend: RwSignal::new(BackendChoice::Auto),
            beams: RwSignal::new(String::new()),
            max_new_tokens: RwSignal::new(String::new()),
            status: RwSignal::new(LoadStatus::Idle),
            download: RwSignal::new(DownloadSize::Unknown),
            size_probe: StoredValue::new(0),
            model: StoredValue::new_local(None),
            loading: StoredValue::new_local(None),
            load_number: StoredValue::new(0),
            url_edited: StoredValue::new(false),
            probed: StoredValue::new(false),
        }
    }

    pub fn is_local(&self) -> bool {
        self.mode.get() == Mode::Local
    }

    pub fn is_local_untracked(&self) -> bool {
        self.mode.get_untracked() == Mode::Local
    }

    pub fn model(&self) -> Option<Rc<LocalModel>> {
        self.model.get_value()
    }

    pub fn run_options(&self) -> Result<RunOptions, String> {
        RunOptions::parse(
            &self.beams.get_untracked(),
            &self.max_new_tokens.get_untracked(),
        )
    }

    pub fn edit_url(&self, url: String) {
        self.url_edited.set_value(true);
        self.url.set(url);
    }

    /// Asks the server of the folder `url` how large its `model.safetensors` is (a HEAD
    /// request), for the panel to say before anything is downloaded.
    pub fn probe_size(&self, url: String) {
        let number = self.size_probe.get_value() + 1;
        self.size_probe.set_value(number);
        if url.trim().is_empty() {
            return self.download.set(DownloadSize::Unknown);
        }
        self.download.set(DownloadSize::Checking);
        let this = *self;
        spawn_local(async move {
            let head = gloo_net::http::RequestBuilder::new(&checkpoint_url(&url))
                .method(gloo_net::http::Method::HEAD)
                .send()
                .await;
            let size = match head {
                Ok(r) if r.ok() => r
                    .headers()
                    .get("content-length")
                    .and_then(|v| v.parse().ok())
                    .map_or(DownloadSize::Unknown, DownloadSize::Bytes),
                Ok(r) => DownloadSize::Missing(r.status()),
                Err(_) => DownloadSize::Unknown,
            };
            if this.size_probe.get_value() == number {
                this.download.set(size);
            }
        });
    }

    /// Once: when the page's own server serves the small model folder, that is the default
    /// (nothing to download from the internet, and it loads in a second).
    pub fn probe_served_model(&self) {
        if self.probed.get_value() {
            return;
        }
        self.probed.set_value(true);
        let this = *self;
        spawn_local(async move {
            let served = matches!(Request::get(SERVED_MODEL_PROBE).send().await, Ok(r) if r.ok());
            if served && !this.url_edited.get_value() {
                this.url.set(SERVED_MODEL.to_owned());
            }
        });
    }

    /// Loads the folder at `url` on the chosen backend; a failure goes to `problem`.
    pub fn load(&self, problem: RwSignal<Option<Problem>>) {
        if self.status.with_untracked(LoadStatus::loading) {
            return;
        }
        let Ok(controller) = AbortController::new() else {
            return problem.set(Some(problem_of(&Error::new(
                ErrorCode::BadOption,
                "this browser cannot cancel a load (no AbortController)",
            ))));
        };
        // The old model goes first: two in memory at once may not fit.
        self.model.set_value(None);
        let number = self.load_number.get_value() + 1;
        self.load_number.set_value(number);
        self.loading.set_value(Some(controller.clone()));
        problem.set(None);
        let this = *self;
        let current = move || this.load_number.get_value() == number;
        let first = LoadProgress {
            phase: LoadPhase::Compile,
            loaded: 0.0,
            total: 0.0,
        };
        self.status.set(LoadStatus::Loading {
            progress: first,
            speed: None,
        });
        let download_began = Cell::new(None::<f64>);
        let shown = Cell::new((LoadPhase::Compile, 0.0_f64));
        let on_progress = Rc::new(move |p: LoadProgress| {
            if !current() {
                return;
            }
            let now = js_sys::Date::now();
            if p.phase == LoadPhase::Download && download_began.get().is_none() {
                download_began.set(Some(now));
            }
            let (phase, at) = shown.get();
            let finished = p.total > 0.0 && p.loaded >= p.total;
            if phase == p.phase && !finished && now - at < PROGRESS_EVERY_MS {
                return;
            }
            shown.set((p.phase, now));
            let speed = (p.phase == LoadPhase::Download)
                .then(|| speed(p.loaded, now - download_began.get().unwrap_or(now)))
                .flatten();
            this.status.set(LoadStatus::Loading { progress: p, speed });
        });
        let url = self.url.get_untracked().trim().to_owned();
        let backend = self.backend.get_untracked();
        spawn_local(async move {
            let outcome = js::load(js::Load {
                model_url: &url,
                backend: backend.as_str(),
                signal: &controller.signal(),
                on_progress,
            })
            .await;
            if !current() {
                return; // a newer load replaced this one; its model (if any) is dropped here
            }
            this.loading.set_value(None);
            match outcome {
                Ok(model) => {
                    let info = model.info.clone();
                    this.model.set_value(Some(Rc::new(model)));
                    this.status.set(LoadStatus::Ready(info));
                }
                Err(e) if e.code == ErrorCode::Aborted => this.status.set(LoadStatus::Cancelled),
                Err(e) => {
                    this.status
                        .set(LoadStatus::Failed(e.code.as_str().to_owned()));
                    problem.set(Some(problem_of(&e)));
                }
            }
        });
    }

    /// Stops the load in flight, if any (its worker ends at once).
    pub fn cancel_load(&self) {
        if let Some(controller) = self.loading.get_value() {
            controller.abort();
        }
    }
}

impl Default for LocalState {
    fn default() -> Self {
        LocalState::new()
    }
}

/// A load's error in words (the proxy and the key play no part in it).
fn problem_of(error: &Error) -> Problem {
    Problem::from_error(
        error,
        Situation {
            proxy: "",
            own_key: false,
            text: TextKind::None,
        },
    )
}
