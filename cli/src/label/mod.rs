//! `florence2 label`: many pictures through one task, into a COCO file and a JSON-lines file of
//! raw results — resumable, shardable, interruptible. Behind the `cli` feature (it reads files
//! and speaks HTTP; the rest of this crate does neither).
//!
//! A run: collect the pictures ([`inputs`]), keep this shard's ([`shard`]), skip those the
//! results file already has a success for ([`records`]; failures are retried), label the rest
//! N at a time ([`runner`], [`backend`]), then regenerate the COCO file from the results file
//! ([`output`]).

pub mod backend;
pub mod error;
pub mod inputs;
pub mod output;
pub mod records;
pub mod runner;
pub mod shard;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use florence2::Task;

pub use error::{Failure, LabelError};
pub use shard::Shard;

use backend::Labeller;
use records::{Appender, Record};

/// What a run is asked to do.
pub struct Options<'a> {
    pub task: Task,
    pub text: Option<String>,
    /// The COCO file; the results file is beside it ([`records::results_path`]).
    pub out: PathBuf,
    pub paths: Vec<PathBuf>,
    pub jobs: usize,
    pub shard: Option<Shard>,
    pub stop: &'a AtomicBool,
    pub progress: bool,
}

/// What a run did, for the summary and the exit status.
#[derive(Debug, Default)]
pub struct Summary {
    /// Pictures in this run (this shard's).
    pub pictures: usize,
    /// Already labelled by an earlier run: skipped.
    pub already_done: usize,
    pub labelled: usize,
    /// Pictures that failed in this run, with why.
    pub failed: Vec<(String, Failure)>,
    /// Pictures left for a rerun because the run was stopped.
    pub not_started: usize,
    /// Unreadable subfolders met while walking.
    pub warnings: Vec<String>,
    /// Images and annotations in the COCO file written.
    pub coco_images: usize,
    pub coco_annotations: usize,
}

/// Runs a labelling. `backend` is made only when there is something to do (loading a model
/// takes a while; a rerun with nothing left should not).
pub fn run(
    options: &Options<'_>,
    backend: impl FnOnce() -> Result<Box<dyn Labeller>, LabelError>,
) -> Result<Summary, LabelError> {
    let text = options.text.as_deref();
    // Task and text are checked once, before any picture: a bad one would fail them all.
    florence2::model_prompt(options.task, text).map_err(|e| LabelError::Usage(e.to_string()))?;
    let (mut pictures, warnings) = inputs::collect(&options.paths)?;
    if let Some(shard) = options.shard {
        pictures.retain(|p| shard.contains(&p.path));
    }
    let results_path = records::results_path(&options.out);
    let existing = records::read(&results_path)?;
    check_same_task(&existing.records, options.task, text, &results_path)?;
    let mut warnings = warnings;
    if existing.unreadable_lines > 0 {
        warnings.push(format!(
            "{}: {} unreadable line(s) skipped (a line cut short by an interrupted run)",
            results_path.display(),
            existing.unreadable_lines
        ));
    }
    let known = rekeyed(existing.records, &pictures);
    let (done, todo): (Vec<_>, Vec<_>) = pictures
        .iter()
        .cloned()
        .partition(|p| known.get(&p.path).is_some_and(Record::succeeded));
    let mut summary = Summary {
        pictures: pictures.len(),
        already_done: done.len(),
        warnings,
        ..Summary::default()
    };
    let mut appender = Appender::open(&results_path)?;
    if !todo.is_empty() {
        let backend = backend()?;
        let job = runner::Job {
            task: options.task,
            text,
            jobs: options.jobs,
            stop: options.stop,
            progress: options.progress,
        };
        let pass = runner::run(&job, backend.as_ref(), &todo, &mut appender)?;
        summary.labelled = pass.labelled;
        summary.failed = pass.failed;
        summary.not_started = pass.not_started;
    }
    // A checkpoint: what the COCO file is made from is on the disk first.
    appender.sync()?;
    drop(appender);
    // From the file, not from memory: the COCO file holds exactly what the results file does.
    let all = rekeyed(records::read(&results_path)?.records, &pictures);
    let doc = output::coco_of(all.values(), options.task.token(), text);
    summary.coco_images = doc.images.len();
    summary.coco_annotations = doc.annotations.len();
    output::write_atomically(&options.out, &doc)?;
    Ok(summary)
}

/// The records under this run's keys. A record whose key is no picture of this run but names
/// the file of one (the key of an earlier version, the path as it was typed) is that picture's:
/// so a picture is never labelled, nor listed in the COCO file, twice. Where two records end
/// under one key, a success wins over a failure.
fn rekeyed(
    records: BTreeMap<String, Record>,
    pictures: &[inputs::Picture],
) -> BTreeMap<String, Record> {
    let keys: std::collections::HashSet<&str> = pictures.iter().map(|p| p.path.as_str()).collect();
    let mut by_file: Option<HashMap<PathBuf, &str>> = None;
    let mut out: BTreeMap<String, Record> = BTreeMap::new();
    for (key, mut record) in records {
        if !keys.contains(key.as_str()) {
            let by_file = by_file.get_or_insert_with(|| {
                pictures
                    .iter()
                    .map(|p| (inputs::canonical(&p.file), p.path.as_str()))
                    .collect()
            });
            if let Some(now) = by_file.get(&inputs::canonical(Path::new(&key))) {
                record.path = (*now).to_owned();
            }
        }
        match out.get(&record.path) {
            Some(kept) if kept.succeeded() && !record.succeeded() => {}
            _ => {
                out.insert(record.path.clone(), record);
            }
        }
    }
    out
}

/// A results file is one task's: mixing tasks in one COCO file would mix categories.
fn check_same_task(
    records: &std::collections::BTreeMap<String, Record>,
    task: Task,
    text: Option<&str>,
    path: &Path,
) -> Result<(), LabelError> {
    if let Some(other) = records
        .values()
        .find(|r| r.task != task.token() || r.text.as_deref() != text)
    {
        return Err(LabelError::Results(format!(
            "{} holds results of {} {:?}, not {} {:?}; choose another --out",
            path.display(),
            other.task,
            other.text.as_deref().unwrap_or(""),
            task.token(),
            text.unwrap_or(""),
        )));
    }
    Ok(())
}
