//! `florence2 label`: flags → `florence2_cli::label`, the Ctrl-C handler, the summary and the
//! exit status (0 all labelled, 1 some picture failed, 2 the run could not be made, 130
//! interrupted).

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::tensor::Device;
use florence2::Task;
use florence2_burn::{LoadOptions, MAX_BEAMS, RunOptions};
use florence2_cli::label::backend::{Endpoint, Labeller, Local};
use florence2_cli::label::{self as labelling, LabelError, Options, Shard, Summary};

use crate::Command;

/// Set by the first Ctrl-C: no new pictures are taken.
static STOP: AtomicBool = AtomicBool::new(false);

pub fn main(command: Command) -> ExitCode {
    match execute(command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn execute(command: Command) -> Result<ExitCode, LabelError> {
    let Command::Label {
        task,
        text,
        out,
        model,
        endpoint,
        jobs,
        beams,
        max_new_tokens,
        shard,
        merge,
        paths,
    } = command
    else {
        return Err(LabelError::Usage("not a label command".into()));
    };
    if let Some(out) = merge {
        let doc = labelling::output::merge_files(&out, &paths)?;
        println!(
            "merged {} parts into {}: {} images, {} annotations, {} categories",
            paths.len(),
            out.display(),
            doc.images.len(),
            doc.annotations.len(),
            doc.categories.len()
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Refused before anything is read or loaded (the search would refuse it per picture).
    if let Some(b) = beams
        && !(1..=MAX_BEAMS).contains(&b)
    {
        return Err(LabelError::Usage(format!(
            "--beams must be 1 to {MAX_BEAMS}, not {b}"
        )));
    }
    // clap requires both without --merge; checked again rather than unwrapped.
    let (Some(task), Some(out)) = (task, out) else {
        return Err(LabelError::Usage("--task and --out are required".into()));
    };
    let task = Task::from_token(&task).map_err(|e| LabelError::Usage(e.to_string()))?;
    if model.is_none() == endpoint.is_none() {
        return Err(LabelError::Usage(
            "give exactly one of --model DIR and --endpoint URL".into(),
        ));
    }
    if jobs == 0 {
        return Err(LabelError::Usage("--jobs must be at least 1".into()));
    }
    let shard = shard.as_deref().map(Shard::parse).transpose()?;
    ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            // Second Ctrl-C: leave now. Every results line written is whole, and the COCO file
            // on disk is the previous run's whole file; a rerun regenerates it.
            eprintln!("interrupted again: leaving without finishing");
            std::process::exit(130);
        }
        eprintln!("interrupted: finishing the pictures in flight (Ctrl-C again to leave now)");
    })
    .map_err(|e| LabelError::Usage(format!("cannot handle Ctrl-C: {e}")))?;
    let options = Options {
        task,
        text,
        out: out.clone(),
        paths,
        jobs,
        shard,
        stop: &STOP,
        progress: true,
    };
    let summary = labelling::run(&options, || -> Result<Box<dyn Labeller>, LabelError> {
        Ok(match (&model, &endpoint) {
            (Some(dir), _) => {
                let model = crate::load_model(dir, &Device::flex(), LoadOptions::default())?;
                Box::new(Local::new(
                    model,
                    RunOptions {
                        num_beams: beams,
                        max_new_tokens,
                    },
                ))
            }
            (None, Some(url)) => {
                let key = std::env::var("NVIDIA_API_KEY").ok();
                let max_tokens = max_new_tokens.map(|n| u32::try_from(n).unwrap_or(u32::MAX));
                Box::new(Endpoint::new(url, key, max_tokens, &STOP)?)
            }
            (None, None) => return Err(LabelError::Usage("no backend".into())),
        })
    })?;
    print_summary(&summary, &out);
    Ok(if STOP.load(Ordering::SeqCst) {
        ExitCode::from(130)
    } else if summary.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `key: value` lines on stdout (scripts and tests read them), failures listed last.
fn print_summary(s: &Summary, out: &std::path::Path) {
    for w in &s.warnings {
        eprintln!("warning: {w}");
    }
    println!("pictures: {}", s.pictures);
    println!("already done: {}", s.already_done);
    println!("labelled: {}", s.labelled);
    println!("failed: {}", s.failed.len());
    println!("not started: {}", s.not_started);
    println!(
        "coco: {} ({} images, {} annotations)",
        out.display(),
        s.coco_images,
        s.coco_annotations
    );
    println!(
        "results: {}",
        labelling::records::results_path(out).display()
    );
    for (path, failure) in &s.failed {
        println!("failed {path}: {failure}");
    }
}
