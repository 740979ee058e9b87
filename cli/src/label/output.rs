//! The COCO file: regenerated from the results file after every run (so it always matches
//! it), written atomically (a temporary file beside it, then a rename), and `--merge`.

use std::io::Write;
use std::path::{Path, PathBuf};

use florence2::coco::{Coco, CocoBuilder, CocoStyle, Info, merge, source_name};
use serde_json::{Map, Value};

use crate::label::error::LabelError;
use crate::label::records::Record;

/// The dataset of the successful records (sorted by path, whatever order they finished in).
/// `info` names the task, its text and the source; each text answer sits on its image.
pub fn coco_of<'a>(
    records: impl IntoIterator<Item = &'a Record>,
    task: &str,
    text: Option<&str>,
) -> Coco {
    let mut done: Vec<&Record> = records.into_iter().filter(|r| r.succeeded()).collect();
    done.sort_by(|a, b| a.path.cmp(&b.path));
    let source = done
        .first()
        .and_then(|r| r.result.as_ref())
        .map(|r| r.source);
    let mut extra = Map::new();
    extra.insert("task".into(), Value::from(task));
    extra.insert("text".into(), text.map_or(Value::Null, Value::from));
    let info = Info {
        description: format!(
            "Florence-2 {task} labels ({}), made by florence2 label",
            source.map_or("no results yet", source_name)
        ),
        extra,
    };
    let mut builder = CocoBuilder::new(info, CocoStyle::Dataset);
    for r in done {
        if let Some(result) = &r.result {
            builder.add(&r.path, result);
        }
    }
    builder.finish()
}

/// Writes `doc` to `path` so that a reader (or a Ctrl-C) only ever sees the old file or the
/// whole new one: a temporary file in the same folder, synced, then renamed over.
pub fn write_atomically(path: &Path, doc: &Coco) -> Result<(), LabelError> {
    let json = serde_json::to_vec(doc)
        .map_err(|e| LabelError::io("serialising the COCO file", std::io::Error::other(e)))?;
    let tmp = temp_beside(path);
    let io = |what: &str, e| LabelError::io(format!("{what} {}", tmp.display()), e);
    let mut file = std::fs::File::create(&tmp).map_err(|e| io("creating", e))?;
    file.write_all(&json).map_err(|e| io("writing", e))?;
    file.sync_all().map_err(|e| io("syncing", e))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        LabelError::io(format!("renaming onto {}", path.display()), e)
    })?;
    sync_folder_of(path)
}

/// The rename itself is an entry in the folder: synced, or a power loss may undo it.
#[cfg(unix)]
fn sync_folder_of(path: &Path) -> Result<(), LabelError> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(folder)
        .and_then(|f| f.sync_all())
        .map_err(|e| LabelError::io(format!("syncing the folder {}", folder.display()), e))
}

/// Windows has no handle on a folder to sync; its rename is as durable as it gets.
#[cfg(not(unix))]
fn sync_folder_of(_: &Path) -> Result<(), LabelError> {
    Ok(())
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "coco.json".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// `--merge OUT PARTS…`: reads the parts, joins them (ids renumbered, categories unified by
/// name), writes `out` atomically; returns the merged document.
pub fn merge_files(out: &Path, parts: &[PathBuf]) -> Result<Coco, LabelError> {
    let mut docs = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let bytes = std::fs::read(part)
            .map_err(|e| LabelError::io(format!("reading {}", part.display()), e))?;
        let doc: Coco = serde_json::from_slice(&bytes).map_err(|e| florence2::coco::CocoError {
            part: i,
            message: format!("{} is not a COCO document: {e}", part.display()),
        })?;
        docs.push(doc);
    }
    let merged = merge(&docs)?;
    write_atomically(out, &merged)?;
    Ok(merged)
}
