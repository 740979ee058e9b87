//! The search for the encode to send, driven the same way by both codecs: ask for an attempt,
//! encode it, record the bytes, until the planner is satisfied; the largest encode that fitted
//! is the one sent.

use crate::error::{Error, ErrorCode, Result};
use crate::image_prep::{Attempt, ImageInfo, Next, Planner, PrepareOptions, PreparedImage};

/// What the codec should do next.
#[derive(Debug)]
pub enum Step {
    Encode(Attempt),
    Finished(PreparedImage),
}

#[derive(Debug)]
pub struct Search {
    planner: Planner,
    width: u32,
    height: u32,
    kept: Option<(Attempt, Vec<u8>)>,
    encodes: u32,
}

impl Search {
    /// `width`×`height` is the original after EXIF orientation.
    pub fn new(width: u32, height: u32, options: &PrepareOptions) -> Search {
        Search {
            planner: Planner::new(width, height, options),
            width,
            height,
            kept: None,
            encodes: 0,
        }
    }

    /// The file as it is, when it can be sent unchanged; otherwise the first encode to make.
    pub fn start(&self, info: &ImageInfo, bytes: &[u8]) -> Step {
        if self.planner.can_send_original(info, bytes.len()) {
            let (width, height) = (self.width, self.height);
            Step::Finished(PreparedImage {
                bytes: bytes.to_vec(),
                mime: info.format.mime(),
                width,
                height,
                sent_width: width,
                sent_height: height,
                quality: None,
                encodes: 0,
            })
        } else {
            Step::Encode(self.planner.first())
        }
    }

    /// Records the JPEG made for `attempt`.
    pub fn record(&mut self, attempt: Attempt, jpeg: Vec<u8>) -> Result<Step> {
        self.encodes += 1;
        let verdict = self.planner.next(attempt, jpeg.len())?;
        if verdict.fits && self.kept.as_ref().is_none_or(|(_, k)| jpeg.len() > k.len()) {
            self.kept = Some((attempt, jpeg));
        }
        match verdict.next {
            Next::Retry(next) => Ok(Step::Encode(next)),
            Next::Done => {
                let (attempt, bytes) = self.kept.take().ok_or_else(|| {
                    Error::new(ErrorCode::ImageBudget, "no encode fitted the budget")
                })?;
                Ok(Step::Finished(PreparedImage {
                    bytes,
                    mime: "image/jpeg",
                    width: self.width,
                    height: self.height,
                    sent_width: attempt.width,
                    sent_height: attempt.height,
                    quality: Some(attempt.quality),
                    encodes: self.encodes,
                }))
            }
        }
    }
}
