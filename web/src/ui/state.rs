//! The app's state: signals the components share, passed to them explicitly.

use std::sync::{Arc, OnceLock};

use florence2::browser::client::Stage;
use florence2::{Florence2Result, ImageSize, Task};
use leptos::prelude::*;
use web_sys::AbortController;

use crate::messages::health::Notice;
use crate::messages::{Problem, Situation};
use crate::scene::{Layer, Scene};
use crate::session::{History, Settings};
use crate::ui::dom::{ObjectUrl, blob_of};

/// How many runs the history keeps (each holds its picture's bytes).
const HISTORY_LENGTH: usize = 24;

/// A picture a person brought.
#[derive(Debug, Clone)]
pub struct Picture {
    pub name: String,
    pub bytes: Arc<[u8]>,
    pub url: Arc<ObjectUrl>,
    /// As it is meant to be seen (EXIF orientation applied): the frame of the coordinates.
    pub size: ImageSize,
}

impl Picture {
    pub fn same(&self, other: &Picture) -> bool {
        Arc::ptr_eq(&self.bytes, &other.bytes)
    }
}

/// One run's answer, as shown and as kept in the history.
#[derive(Debug, Clone)]
pub struct Answer {
    pub picture: Picture,
    pub task: Task,
    /// The text or region the task was run with.
    pub text: String,
    pub result: Arc<Florence2Result>,
    pub scene: Arc<Scene>,
    /// The result JSON, pretty-printed.
    pub json: Arc<str>,
    /// The endpoint's own drawing, when it sent one.
    pub overlay: Option<Arc<EndpointDrawing>>,
    /// What was sent and how long each step took, in a line.
    pub summary: String,
    /// The backend (`cpu`, `webgpu`) when the model in this browser answered.
    pub in_browser: Option<String>,
    /// Where the time went, in a line (each path's own steps, and the total).
    pub timings: String,
    /// The model in this browser reused the picture's features (no vision pass).
    pub image_reused: bool,
    /// From Run to the answer, e.g. `1.3 s`.
    pub elapsed: String,
    /// When it finished (time of day).
    pub at: String,
}

impl Answer {
    pub fn same(&self, other: &Answer) -> bool {
        Arc::ptr_eq(&self.result, &other.result)
    }
}

/// The endpoint's overlay image. Its object URL is made the first time it is shown, so an
/// answer is drawn without first copying a megabyte it may never need.
#[derive(Debug)]
pub struct EndpointDrawing {
    bytes: Vec<u8>,
    mime: &'static str,
    url: OnceLock<Option<ObjectUrl>>,
}

impl EndpointDrawing {
    pub fn new(bytes: Vec<u8>, mime: &'static str) -> EndpointDrawing {
        EndpointDrawing {
            bytes,
            mime,
            url: OnceLock::new(),
        }
    }

    /// Its object URL (`None` if the browser would not make one).
    pub fn url(&self) -> Option<String> {
        let url = self.url.get_or_init(|| {
            blob_of(&self.bytes, self.mime)
                .and_then(|b| ObjectUrl::new(&b))
                .ok()
        });
        url.as_ref().map(|u| u.as_str().to_owned())
    }
}

/// A history entry: the answer and a thumbnail of it (a data URL).
#[derive(Debug, Clone)]
pub struct Visit {
    pub answer: Answer,
    pub thumbnail: String,
}

/// A run asked for by an answer: its task and text, on the same picture.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    pub task: Task,
    pub text: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Idle,
    Running(Stage),
    Done,
    Cancelled,
    Failed,
}

/// Which layers are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    pub boxes: bool,
    pub masks: bool,
    pub text: bool,
    pub labels: bool,
    /// The endpoint's own overlay image (off by default: ours is drawn instead).
    pub endpoint: bool,
}

impl Default for Layers {
    fn default() -> Self {
        Layers {
            boxes: true,
            masks: true,
            text: true,
            labels: true,
            endpoint: false,
        }
    }
}

impl Layers {
    pub fn shows(&self, layer: Layer) -> bool {
        match layer {
            Layer::Boxes => self.boxes,
            Layer::Masks => self.masks,
            Layer::Text => self.text,
        }
    }

    pub fn set(&mut self, layer: Layer, on: bool) {
        match layer {
            Layer::Boxes => self.boxes = on,
            Layer::Masks => self.masks = on,
            Layer::Text => self.text = on,
        }
    }
}

#[derive(Clone, Copy)]
pub struct AppState {
    pub settings: RwSignal<Settings>,
    /// The person's own API key: in memory only, never stored.
    pub api_key: RwSignal<String>,
    pub picture: RwSignal<Option<Picture>>,
    pub task: RwSignal<Task>,
    pub text: RwSignal<String>,
    pub phase: RwSignal<Phase>,
    /// Whether the run went through the upload stage (the picture was too large to inline).
    pub uploaded: RwSignal<bool>,
    pub answer: RwSignal<Option<Answer>>,
    pub problem: RwSignal<Option<Problem>>,
    /// The shape under the pointer or the list's focus (an index into the answer's scene).
    pub hovered: RwSignal<Option<usize>>,
    pub layers: RwSignal<Layers>,
    pub history: RwSignal<History<Visit>>,
    pub notices: RwSignal<Vec<Notice>>,
    /// The tasks the proxy's backend runs (its `/healthz` says): the endpoint's 14, or all
    /// 15 with `<REGION_TO_OCR>` when the proxy runs the model itself.
    pub tasks: RwSignal<&'static [Task]>,
    /// The text of the local run in flight (or of the last one), token by token; `None` for a
    /// remote run, which has nothing to stream.
    pub stream: RwSignal<Option<String>>,
    /// A run another part of the page asks for (a chained grounding, a box described): the
    /// app sets the task and text and runs it on the current picture.
    pub follow_up: RwSignal<Option<FollowUp>>,
    /// Cancels the run in flight.
    pub controller: StoredValue<Option<AbortController>, LocalStorage>,
    /// Bumped by each run, so a late answer of a superseded run is dropped.
    pub run_number: StoredValue<u32>,
}

impl AppState {
    pub fn new(settings: Settings) -> AppState {
        let task = Task::from_token(&settings.task)
            .ok()
            .filter(|t| t.on_endpoint())
            .unwrap_or(Task::Caption);
        AppState {
            settings: RwSignal::new(settings),
            api_key: RwSignal::new(String::new()),
            picture: RwSignal::new(None),
            task: RwSignal::new(task),
            text: RwSignal::new(String::new()),
            phase: RwSignal::new(Phase::Idle),
            uploaded: RwSignal::new(false),
            answer: RwSignal::new(None),
            problem: RwSignal::new(None),
            hovered: RwSignal::new(None),
            layers: RwSignal::new(Layers::default()),
            history: RwSignal::new(History::new(HISTORY_LENGTH)),
            notices: RwSignal::new(Vec::new()),
            tasks: RwSignal::new(Task::ENDPOINT),
            stream: RwSignal::new(None),
            follow_up: RwSignal::new(None),
            controller: StoredValue::new_local(None),
            run_number: StoredValue::new(0),
        }
    }

    /// Shows a problem (the page's `error` element).
    pub fn fail(&self, problem: Problem) {
        self.problem.set(Some(problem));
    }

    /// An error in words, with advice that fits the current settings and task.
    pub fn problem_of(&self, error: &florence2::Error) -> Problem {
        let proxy = self.settings.with_untracked(Settings::proxy_name);
        let own_key = self.api_key.with_untracked(|k| !k.is_empty());
        Problem::from_error(
            error,
            Situation {
                proxy: &proxy,
                own_key,
                text: self.task.get_untracked().text_kind(),
            },
        )
    }

    pub fn running(&self) -> bool {
        matches!(self.phase.get(), Phase::Running(_))
    }

    /// Stops the run in flight, if any; the status then says it was cancelled.
    pub fn cancel(&self) {
        if let Some(controller) = self.controller.get_value() {
            controller.abort();
        }
    }

    /// Stops the run in flight and forgets it: whatever it answers is dropped.
    fn supersede(&self) {
        self.cancel();
        self.controller.set_value(None);
        self.run_number.update_value(|n| *n += 1);
    }

    /// Shows a new picture: whatever was running for the old one stops, its answer goes.
    pub fn show_picture(&self, picture: Picture) {
        self.supersede();
        self.problem.set(None);
        self.hovered.set(None);
        self.answer.set(None);
        self.stream.set(None);
        if self.task.get_untracked().text_kind() == florence2::TextKind::Region {
            // A region belongs to the old picture's frame.
            self.text.set(String::new());
        }
        self.picture.set(Some(picture));
        self.phase.set(Phase::Idle);
    }

    /// Reopens an answer from the history.
    pub fn reopen(&self, answer: Answer) {
        self.supersede();
        self.problem.set(None);
        self.hovered.set(None);
        self.picture.set(Some(answer.picture.clone()));
        self.task.set(answer.task);
        self.text.set(answer.text.clone());
        self.stream.set(None);
        self.answer.set(Some(answer));
        self.phase.set(Phase::Done);
    }
}
