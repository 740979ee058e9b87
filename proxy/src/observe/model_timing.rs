//! How long a request waited for the local model and how long the model ran: set by the local
//! backend while it answers, read by the access log for its line and the `Server-Timing`
//! header. A task-local, so the `Backend` trait and the routes need not carry it.

use std::sync::{Arc, Mutex};

use axum::http::HeaderValue;

tokio::task_local! {
    static CURRENT: Arc<Mutex<Option<ModelTiming>>>;
}

/// One request's time with the local model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelTiming {
    /// Requests waiting in the queue when this one arrived (itself not counted).
    pub queued_behind: usize,
    pub wait_ms: f64,
    pub run_ms: f64,
    /// New tokens generated.
    pub tokens: usize,
}

impl ModelTiming {
    /// `Server-Timing: queue;dur=…, model;dur=…`.
    pub fn header(&self) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!(
            "queue;dur={:.1}, model;dur={:.1}",
            self.wait_ms, self.run_ms
        ))
        .ok()
    }
}

/// Runs `future` with a slot for its [`ModelTiming`]; answers what was recorded.
pub async fn scope<F: Future>(future: F) -> (F::Output, Option<ModelTiming>) {
    let slot = Arc::new(Mutex::new(None));
    let output = CURRENT.scope(slot.clone(), future).await;
    let timing = *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    (output, timing)
}

/// Records the current request's timing (nothing outside a [`scope`]).
pub fn record(timing: ModelTiming) {
    let _ = CURRENT.try_with(|slot| {
        *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(timing);
    });
}
