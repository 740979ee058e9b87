//! The model in this process, as `florence2 run` uses it. One model is shared by every worker:
//! `Florence2` is `Sync` (its weights are read-only tensors), so `--jobs N` runs N pictures at
//! once on one copy of the weights. The CPU kernels are single-threaded per call, so on a
//! machine with idle cores N workers use N of them; past the core count it only adds memory.

use std::panic::{AssertUnwindSafe, catch_unwind};

use florence2::image_prep::{PrepareOptions, native};
use florence2::{Florence2Result, Task};

use crate::label::backend::Labeller;
use crate::label::error::Failure;
use florence2_burn::{Florence2, RgbImage, RunOptions};

pub struct Local {
    model: Florence2,
    options: RunOptions,
    prepare: PrepareOptions,
}

impl Local {
    pub fn new(model: Florence2, options: RunOptions) -> Local {
        Local {
            model,
            options,
            // The same limits (pixels, bytes, smallest side) as the endpoint path; nothing is
            // downscaled here: the model resizes to its input size itself.
            prepare: PrepareOptions {
                max_base64_chars: None,
                ..PrepareOptions::default()
            },
        }
    }
}

impl Labeller for Local {
    fn label(
        &self,
        bytes: &[u8],
        task: Task,
        text: Option<&str>,
    ) -> Result<Florence2Result, Failure> {
        // Decoded as the endpoint path decodes (EXIF orientation applied), so both paths give
        // coordinates in the frame a viewer shows.
        let decoded = native::decode(bytes, &self.prepare)?.to_rgb8();
        let (width, height) = decoded.dimensions();
        let image = RgbImage::new(width, height, decoded.into_raw())?;
        // A panic deep in the backend on one odd picture must not end a run of thousands: it
        // is that picture's failure. The model holds no state a panicked run could leave half
        // written (every run builds its own tensors and caches).
        match catch_unwind(AssertUnwindSafe(|| {
            self.model.run(&image, task, text, self.options)
        })) {
            Ok(out) => Ok(out?.result),
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                Err(Failure::new(Failure::MODEL_PANICKED, why))
            }
        }
    }
}
