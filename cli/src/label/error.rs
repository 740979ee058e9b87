//! The two kinds of failure of `florence2 label`: a picture's (recorded, listed, skipped — the
//! run goes on) and the run's own (bad flags, an unwritable output, a model that will not
//! load — the run cannot start or finish). Both carry a stable code.

use serde::{Deserialize, Serialize};

/// Why one picture has no result. `code` is stable: crate `florence2`'s codes
/// (`IMAGE_DECODE`, `IMAGE_TOO_LARGE`, `UPSTREAM`, `RATE_LIMITED`, `NETWORK`, `TIMEOUT`,
/// `ZIP_INVALID`, `RESPONSE_INVALID`, …) or one of the constants below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

impl Failure {
    /// The file could not be read.
    pub const READ_FAILED: &'static str = "READ_FAILED";
    /// The local model failed on this picture.
    pub const MODEL_FAILED: &'static str = "MODEL_FAILED";
    /// The local model panicked on this picture (a bug; the run goes on without it).
    pub const MODEL_PANICKED: &'static str = "MODEL_PANICKED";

    pub fn new(code: &str, message: impl Into<String>) -> Failure {
        Failure {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl From<florence2::Error> for Failure {
    fn from(e: florence2::Error) -> Failure {
        Failure::new(e.code.as_str(), e.message)
    }
}

impl From<florence2_burn::Error> for Failure {
    fn from(e: florence2_burn::Error) -> Failure {
        match e {
            florence2_burn::Error::Core(core) => core.into(),
            florence2_burn::Error::Image(message) => {
                Failure::new(florence2::ErrorCode::ImageDecode.as_str(), message)
            }
            other => Failure::new(Failure::MODEL_FAILED, other.to_string()),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Why a run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// Flags that make no sense together, a path that does not exist, a bad URL.
    #[error("BAD_OPTION: {0}")]
    Usage(String),
    #[error("IO: {context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// The local model could not be loaded.
    #[error("MODEL_LOAD: {0}")]
    Model(#[from] florence2_burn::Error),
    /// The results file beside `--out` holds another task's results (or is not ours).
    #[error("RESULTS_MISMATCH: {0}")]
    Results(String),
    /// A COCO part of `--merge` is not a readable, consistent COCO document.
    #[error("{0}")]
    Coco(#[from] florence2::coco::CocoError),
}

impl LabelError {
    /// The stable code (the text before the colon of the message).
    pub fn code(&self) -> &'static str {
        match self {
            LabelError::Usage(_) => "BAD_OPTION",
            LabelError::Io { .. } => "IO",
            LabelError::Model(_) => "MODEL_LOAD",
            LabelError::Results(_) => "RESULTS_MISMATCH",
            LabelError::Coco(_) => florence2::coco::CocoError::CODE,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> LabelError {
        LabelError::Io {
            context: context.into(),
            source,
        }
    }
}
