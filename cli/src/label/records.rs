//! The results file: one JSON line per picture, appended and flushed as each picture finishes,
//! so an interrupted run loses at most the pictures in flight. A rerun reads it back to skip
//! what is done; the COCO file is always regenerated from it.
//!
//! A line: `{"path", "task", "text", "result": {…}}` or `{"path", "task", "text", "error":
//! {"code", "message"}}`. The last line of a path wins (a retried failure is superseded by its
//! success).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use florence2::Florence2Result;
use serde::{Deserialize, Serialize};

use crate::label::error::{Failure, LabelError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub path: String,
    pub task: String,
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Florence2Result>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

impl Record {
    pub fn succeeded(&self) -> bool {
        self.result.is_some()
    }
}

/// The results file beside a COCO file: `coco.json` → `coco.jsonl`.
pub fn results_path(out: &Path) -> PathBuf {
    out.with_extension("jsonl")
}

/// What a results file holds: the last record of each path, and how many lines it could not
/// read (a line cut short when a run was killed, torn even inside a UTF-8 character: skipped
/// and reported, never a reason to refuse the whole file).
#[derive(Debug, Default)]
pub struct Existing {
    pub records: BTreeMap<String, Record>,
    pub unreadable_lines: usize,
}

pub fn read(path: &Path) -> Result<Existing, LabelError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::default()),
        Err(e) => return Err(LabelError::io(format!("opening {}", path.display()), e)),
    };
    let mut bytes = Vec::new();
    let mut file = file;
    file.read_to_end(&mut bytes)
        .map_err(|e| LabelError::io(format!("reading {}", path.display()), e))?;
    let mut existing = Existing::default();
    for line in bytes.split(|&b| b == b'\n') {
        if line.trim_ascii().is_empty() {
            continue;
        }
        match serde_json::from_slice::<Record>(line) {
            Ok(r) => {
                existing.records.insert(r.path.clone(), r);
            }
            Err(_) => existing.unreadable_lines += 1,
        }
    }
    Ok(existing)
}

/// Appends records, one line each, flushed to the operating system line by line and synced
/// to the disk every [`SYNC_EVERY`] lines and at [`Appender::sync`] (the end of a run), so a
/// power loss costs at most the last few pictures, not the file.
pub struct Appender {
    file: File,
    path: PathBuf,
    unsynced: usize,
}

/// Lines between two syncs of the results file.
pub const SYNC_EVERY: usize = 16;

impl Appender {
    pub fn open(path: &Path) -> Result<Appender, LabelError> {
        let io = |e| LabelError::io(format!("opening {}", path.display()), e);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        // A line cut short by a killed run must not swallow the next one.
        let len = file.seek(SeekFrom::End(0)).map_err(io)?;
        if len > 0 {
            file.seek(SeekFrom::Start(len - 1)).map_err(io)?;
            let mut last = [0u8];
            file.read_exact(&mut last).map_err(io)?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(io)?;
            }
        }
        Ok(Appender {
            file,
            path: path.to_owned(),
            unsynced: 0,
        })
    }

    /// Writes what was appended through to the disk.
    pub fn sync(&mut self) -> Result<(), LabelError> {
        self.unsynced = 0;
        self.file
            .sync_data()
            .map_err(|e| LabelError::io(format!("syncing {}", self.path.display()), e))
    }

    pub fn append(&mut self, record: &Record) -> Result<(), LabelError> {
        let io = |e| LabelError::io(format!("writing {}", self.path.display()), e);
        let mut line = serde_json::to_string(record)
            .map_err(|e| LabelError::io("serialising a record", std::io::Error::other(e)))?;
        line.push('\n');
        // One write per line: with O_APPEND the line lands whole.
        self.file.write_all(line.as_bytes()).map_err(io)?;
        self.file.flush().map_err(io)?;
        self.unsynced += 1;
        if self.unsynced >= SYNC_EVERY {
            self.sync()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str, error: Option<&str>) -> Record {
        Record {
            path: path.into(),
            task: "<OD>".into(),
            text: None,
            result: None,
            error: error.map(|c| Failure::new(c, "m")),
        }
    }

    #[test]
    fn the_last_line_of_a_path_wins_and_torn_lines_are_survived() {
        let path =
            std::env::temp_dir().join(format!("florence2-records-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut a = Appender::open(&path).unwrap();
        a.append(&record("x.jpg", Some("IMAGE_DECODE"))).unwrap();
        a.append(&record("y.jpg", Some("NETWORK"))).unwrap();
        drop(a);
        // A run killed mid-line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"path":"z.jpg","ta"#).unwrap();
        drop(f);
        let mut a = Appender::open(&path).unwrap();
        a.append(&record("x.jpg", Some("TIMEOUT"))).unwrap();
        let existing = read(&path).unwrap();
        assert_eq!(existing.unreadable_lines, 1);
        assert_eq!(existing.records.len(), 2);
        assert_eq!(
            existing.records["x.jpg"].error.as_ref().unwrap().code,
            "TIMEOUT"
        );
        assert!(
            read(&path.with_extension("none"))
                .unwrap()
                .records
                .is_empty()
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_line_torn_inside_a_utf8_character_is_skipped_not_fatal() {
        let path =
            std::env::temp_dir().join(format!("florence2-torn-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let mut a = Appender::open(&path).unwrap();
        a.append(&record("été.jpg", Some("IMAGE_DECODE"))).unwrap();
        drop(a);
        // Killed in the middle of "é" (0xC3 0xA9): the file ends on a lone 0xC3.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"path\":\"\xC3").unwrap();
        drop(f);
        let existing = read(&path).expect("a torn last line does not block the resume");
        assert_eq!(existing.records.len(), 1);
        assert_eq!(existing.unreadable_lines, 1);
        // The appender starts a new line after the torn one, and both records read back.
        let mut a = Appender::open(&path).unwrap();
        a.append(&record("b.jpg", None)).unwrap();
        a.sync().unwrap();
        let existing = read(&path).unwrap();
        assert_eq!(existing.records.len(), 2);
        assert_eq!(existing.unreadable_lines, 1);
        std::fs::remove_file(&path).unwrap();
    }
}
