//! A batch: many pictures, one task, on either path. The queue's progress in words (done of
//! total, rate, time left), what to do after an error (a rate limit waits and tries the same
//! picture again; anything else fails that picture and the batch goes on), which files of a
//! dropped folder are pictures, and the one COCO file of the whole batch — written by crate
//! florence2's COCO writer exactly as `florence2 label` writes its dataset (images sorted by
//! path, `CocoStyle::Dataset`, the task and its text in `info`).

use florence2::coco::{Coco, CocoBuilder, CocoStyle, Info, source_name};
use florence2::{ErrorCode, Florence2Result, Task};
use serde_json::{Map, Value};

use crate::messages::units::duration;

/// The extensions `florence2 label` walks folders for.
pub const PICTURE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "webp", "gif", "bmp"];

/// How often one picture may meet a rate limit before it counts as failed.
pub const MAX_RATE_LIMITED: u32 = 8;

/// Whether a file found in a dropped folder is one of the pictures (by its extension, as
/// `florence2 label` decides).
pub fn is_picture_name(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty() && PICTURE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str())
    })
}

/// How far a batch is.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    pub total: usize,
    pub done: usize,
    pub failed: usize,
    /// Since the batch started.
    pub elapsed_ms: f64,
}

impl Progress {
    pub fn finished(&self) -> usize {
        self.done + self.failed
    }

    /// Pictures per second so far (done or failed), once one has finished.
    pub fn rate(&self) -> Option<f64> {
        (self.finished() > 0 && self.elapsed_ms > 0.0)
            .then(|| self.finished() as f64 * 1000.0 / self.elapsed_ms)
    }

    /// At the rate so far.
    pub fn time_left_ms(&self) -> Option<f64> {
        let left = self.total.saturating_sub(self.finished());
        self.rate().map(|r| left as f64 * 1000.0 / r)
    }

    /// `3/6 done · 1 failed · 1.4 pictures/s · about 2.1 s left`.
    pub fn line(&self) -> String {
        let mut line = format!("{}/{} done", self.done, self.total);
        if self.failed > 0 {
            line += &format!(" · {} failed", self.failed);
        }
        if let Some(rate) = self.rate() {
            line += &format!(" · {rate:.2} pictures/s");
        }
        match self.time_left_ms() {
            Some(_) if self.finished() == self.total => {
                line += &format!(" · took {}", duration(self.elapsed_ms))
            }
            Some(ms) => line += &format!(" · about {} left", duration(ms)),
            None => {}
        }
        line
    }
}

/// After a picture's run failed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterError {
    /// Rate-limited: wait this long, then run the same picture again.
    Retry { wait_ms: f64 },
    /// This picture failed; the batch goes on with the next.
    Fail,
}

/// A rate limit (429) waits for its `Retry-After` (else backs off: 1, 2, 4… s, at most 30)
/// and retries; `rate_limited` is how often this picture met one already.
pub fn after_error(
    code: ErrorCode,
    retry_after_secs: Option<f64>,
    rate_limited: u32,
) -> AfterError {
    if code != ErrorCode::RateLimited || rate_limited >= MAX_RATE_LIMITED {
        return AfterError::Fail;
    }
    let backoff = 1000.0 * f64::from(1_u32 << rate_limited.min(5)).min(30.0);
    let wait_ms = retry_after_secs
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(backoff, |s| (s * 1000.0).min(60_000.0));
    AfterError::Retry { wait_ms }
}

/// The batch's COCO dataset: the successful pictures (`(path, result)`), sorted by path, in
/// the dataset style of `florence2 label`, with the same `info` fields (`task`, `text`).
pub fn dataset<'a>(
    task: Task,
    text: Option<&str>,
    done: impl IntoIterator<Item = (&'a str, &'a Florence2Result)>,
) -> Coco {
    let mut done: Vec<(&str, &Florence2Result)> = done.into_iter().collect();
    done.sort_by(|a, b| a.0.cmp(b.0));
    let source = done.first().map(|(_, r)| r.source);
    let mut extra = Map::new();
    extra.insert("task".into(), Value::from(task.token()));
    extra.insert("text".into(), text.map_or(Value::Null, Value::from));
    let info = Info {
        description: format!(
            "Florence-2 {} labels ({}), made by the florence2-web demo",
            task.token(),
            source.map_or("no results yet", source_name)
        ),
        extra,
    };
    let mut builder = CocoBuilder::new(info, CocoStyle::Dataset);
    for (path, result) in done {
        builder.add(path, result);
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use florence2::coco::merge;
    use florence2::{Entities, ImageSize, Source};

    use super::*;

    fn od(labels: &[&str], width: u32) -> Florence2Result {
        Florence2Result {
            task: "<OD>".into(),
            text: String::new(),
            entities: Entities {
                bboxes: Some(
                    labels
                        .iter()
                        .enumerate()
                        .map(|(i, _)| [i as f64, 1.0, i as f64 + 10.0, 20.0])
                        .collect(),
                ),
                labels: Some(labels.iter().map(|l| (*l).to_owned()).collect()),
                ..Default::default()
            },
            image: ImageSize::new(width, 48),
            source: Source::Local,
            usage: None,
        }
    }

    #[test]
    fn folder_files_are_pictures_by_extension() {
        for name in [
            "a.jpg",
            "b.JPEG",
            "c.png",
            "d.webp",
            "e.gif",
            "f.bmp",
            "dir/g.Png",
        ] {
            assert!(is_picture_name(name), "{name}");
        }
        for name in ["notes.txt", "jpg", ".png", "archive.png.zip", "README"] {
            assert!(!is_picture_name(name), "{name}");
        }
    }

    #[test]
    fn progress_in_words() {
        let p = Progress {
            total: 6,
            done: 0,
            failed: 0,
            elapsed_ms: 0.0,
        };
        assert_eq!(p.line(), "0/6 done");
        let p = Progress {
            total: 6,
            done: 2,
            failed: 1,
            elapsed_ms: 1500.0,
        };
        assert_eq!(p.rate(), Some(2.0));
        assert_eq!(p.time_left_ms(), Some(1500.0));
        assert_eq!(
            p.line(),
            "2/6 done · 1 failed · 2.00 pictures/s · about 1.5 s left"
        );
        let p = Progress {
            total: 6,
            done: 5,
            failed: 1,
            elapsed_ms: 3000.0,
        };
        assert_eq!(
            p.line(),
            "5/6 done · 1 failed · 2.00 pictures/s · took 3.0 s"
        );
    }

    #[test]
    fn a_rate_limit_waits_and_retries_anything_else_fails_the_picture() {
        assert_eq!(
            after_error(ErrorCode::RateLimited, Some(2.0), 0),
            AfterError::Retry { wait_ms: 2000.0 }
        );
        assert_eq!(
            after_error(ErrorCode::RateLimited, None, 2),
            AfterError::Retry { wait_ms: 4000.0 }
        );
        assert_eq!(
            after_error(ErrorCode::RateLimited, None, 7),
            AfterError::Retry { wait_ms: 30000.0 }
        );
        assert_eq!(
            after_error(ErrorCode::RateLimited, Some(1.0), MAX_RATE_LIMITED),
            AfterError::Fail
        );
        assert_eq!(
            after_error(ErrorCode::ImageDecode, None, 0),
            AfterError::Fail
        );
        assert_eq!(
            after_error(ErrorCode::Upstream, Some(1.0), 0),
            AfterError::Fail
        );
    }

    /// `florence2 label`'s writer (`coco_of` in florence2-burn's `label::output`), as it builds
    /// its dataset from the same results: its steps, verbatim but for the words of `info`.
    fn label_writer(task: &str, text: Option<&str>, records: &[(&str, &Florence2Result)]) -> Coco {
        let mut done: Vec<&(&str, &Florence2Result)> = records.iter().collect();
        done.sort_by(|a, b| a.0.cmp(b.0));
        let mut extra = Map::new();
        extra.insert("task".into(), Value::from(task));
        extra.insert("text".into(), text.map_or(Value::Null, Value::from));
        let info = Info {
            description: String::new(),
            extra,
        };
        let mut builder = CocoBuilder::new(info, CocoStyle::Dataset);
        for (path, result) in done {
            builder.add(path, result);
        }
        builder.finish()
    }

    #[test]
    fn the_batch_export_is_what_florence2_label_writes() {
        let (a, b, c) = (od(&["car", "dog"], 64), od(&["dog"], 80), od(&[], 32));
        // In the order they finished, not by name.
        let finished = [
            ("photos/b.jpg", &b),
            ("photos/a.png", &a),
            ("photos/c.webp", &c),
        ];
        let mine = dataset(Task::ObjectDetection, None, finished);
        let theirs = label_writer("<OD>", None, &finished);
        assert_eq!(mine.images, theirs.images);
        assert_eq!(mine.categories, theirs.categories);
        assert_eq!(mine.annotations, theirs.annotations);
        assert_eq!(mine.info.extra, theirs.info.extra);
        assert_eq!(
            mine.info.description,
            "Florence-2 <OD> labels (the model in this browser), made by the florence2-web demo"
                .replace("the model in this browser", source_name(Source::Local))
        );
        let names: Vec<&str> = mine.images.iter().map(|i| i.file_name.as_str()).collect();
        assert_eq!(names, ["photos/a.png", "photos/b.jpg", "photos/c.webp"]);
        assert_eq!(mine.annotations.len(), 3);
        // `florence2 label --merge` reads it back unchanged.
        let json = serde_json::to_string(&mine).unwrap();
        let back: Coco = serde_json::from_str(&json).unwrap();
        let merged = merge(&[back]).unwrap();
        assert_eq!(merged.images, mine.images);
        assert_eq!(merged.annotations, mine.annotations);
    }
}
