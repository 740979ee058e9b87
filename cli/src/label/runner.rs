//! N pictures in flight: worker threads take pictures from one list, the calling thread writes
//! each result line as it comes and moves the progress bar. A stop request (Ctrl-C) stops the
//! taking of new pictures; those in flight finish and are recorded.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use florence2::Task;
use indicatif::{ProgressBar, ProgressStyle};

use crate::label::backend::Labeller;
use crate::label::error::{Failure, LabelError};
use crate::label::inputs::Picture;
use crate::label::records::{Appender, Record};

/// What one pass over the pictures did.
#[derive(Debug, Default)]
pub struct Pass {
    pub labelled: usize,
    pub failed: Vec<(String, Failure)>,
    /// Pictures never started because the run was stopped.
    pub not_started: usize,
}

pub struct Job<'a> {
    pub task: Task,
    pub text: Option<&'a str>,
    pub jobs: usize,
    pub stop: &'a AtomicBool,
    /// Show a progress bar (only drawn when stderr is a terminal).
    pub progress: bool,
}

pub fn run(
    job: &Job<'_>,
    backend: &dyn Labeller,
    todo: &[Picture],
    results: &mut Appender,
) -> Result<Pass, LabelError> {
    let bar = progress_bar(job.progress, todo.len());
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(&Picture, Result<florence2::Florence2Result, Failure>)>();
    let mut pass = Pass::default();
    let written = std::thread::scope(|scope| {
        for _ in 0..job.jobs.clamp(1, todo.len().max(1)) {
            let tx = tx.clone();
            let next = &next;
            scope.spawn(move || {
                while !job.stop.load(Ordering::Relaxed) {
                    let Some(picture) = todo.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        break;
                    };
                    let outcome = std::fs::read(&picture.file)
                        .map_err(|e| {
                            Failure::new(
                                Failure::READ_FAILED,
                                format!("{}: {e}", picture.file.display()),
                            )
                        })
                        .and_then(|bytes| backend.label(&bytes, job.task, job.text));
                    if tx.send((picture, outcome)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut first_error = None;
        for (picture, outcome) in rx {
            let (result, error) = match outcome {
                Ok(r) => (Some(r), None),
                Err(f) => (None, Some(f)),
            };
            let record = Record {
                path: picture.path.clone(),
                task: job.task.token().to_owned(),
                text: job.text.map(str::to_owned),
                result,
                error,
            };
            // A results file that cannot be written ends the run (nothing after would be kept);
            // the workers are told to stop and their pictures are dropped.
            if first_error.is_none()
                && let Err(e) = results.append(&record)
            {
                job.stop.store(true, Ordering::Relaxed);
                first_error = Some(e);
                continue;
            }
            match record.error {
                None => pass.labelled += 1,
                Some(f) => {
                    bar.suspend(|| eprintln!("failed: {}: {f}", record.path));
                    pass.failed.push((record.path, f));
                }
            }
            bar.inc(1);
        }
        first_error.map_or(Ok(()), Err)
    });
    bar.finish_and_clear();
    written?;
    pass.not_started = todo
        .len()
        .saturating_sub(next.load(Ordering::Relaxed).min(todo.len()));
    Ok(pass)
}

fn progress_bar(wanted: bool, len: usize) -> ProgressBar {
    if !wanted || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    // The template is a constant: it parses, or the default style is as good.
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} pictures  {per_sec}  ETA {eta}",
    ) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}
