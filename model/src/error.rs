//! Every way loading or running the model can fail, as one typed error. Bad checkpoints,
//! configs, images and prompts end here with a message that names the culprit; nothing in
//! the model panics on bad input.

use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum Error {
    /// `config.json` (or a generation/processor config) could not be read or makes no sense.
    #[error("bad config ({file}): {message}")]
    Config { file: String, message: String },

    /// The safetensors file itself is unreadable: bad header, truncated data, overlapping
    /// or out-of-range offsets.
    #[error("bad checkpoint: {0}")]
    Checkpoint(String),

    /// Neither the native (transformers) nor the original (microsoft) tensor names.
    #[error("unknown checkpoint layout: {0}")]
    UnknownLayout(String),

    #[error("checkpoint is missing tensor `{name}`")]
    MissingTensor { name: String },

    #[error("checkpoint has {count} unexpected tensor(s), e.g. `{first}`")]
    UnexpectedTensors { count: usize, first: String },

    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    TensorShape {
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    #[error("tensor `{name}` has dtype {dtype}, expected F32, F16, BF16 or F64")]
    TensorDtype { name: String, dtype: String },

    /// Finite weights are required: a NaN/∞ weight would silently poison every output.
    #[error("tensor `{name}` holds a non-finite value")]
    NonFinite { name: String },

    #[error("image: {0}")]
    Image(String),

    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// The inputs do not fit the model (too long for the position table, image token count
    /// mismatch, token id outside the vocabulary, ...).
    #[error("input: {0}")]
    Input(String),

    /// The backend could not hand a tensor back (a device lost, a dtype it cannot convert).
    #[error("backend: {0}")]
    Backend(String),

    /// The model, or a picture at the size it takes, cannot fit where it runs (see
    /// [`crate::load::memory::MemoryLimits`]).
    #[error("out of memory: {0}")]
    OutOfMemory(String),

    /// The caller asked the run to stop (see `Florence2Model::generate_until`).
    #[error("the run was cancelled")]
    Cancelled,

    /// Task, prompt or post-processing errors of the shared core (crate `florence2`).
    #[error(transparent)]
    Core(#[from] florence2::Error),

    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn config(file: &str, message: impl Into<String>) -> Self {
        Error::Config {
            file: file.to_owned(),
            message: message.into(),
        }
    }

    /// The shared core's typed error when the failure is the input's — the task or prompt,
    /// the image, a prompt the model cannot take, a stop — with the codes every path gives;
    /// otherwise `Err(self)`, the model's own failure, for the caller to name (a server's 500,
    /// the browser's unusable model).
    pub fn into_input_error(self) -> std::result::Result<florence2::Error, Self> {
        use florence2::ErrorCode;
        match self {
            Error::Core(e) => Ok(e),
            Error::Image(why) => Ok(florence2::Error::new(
                ErrorCode::ImageDecode,
                format!("image: {why}"),
            )),
            Error::Cancelled => Ok(florence2::Error::new(
                ErrorCode::Aborted,
                "the run was cancelled",
            )),
            Error::OutOfMemory(why) => Ok(florence2::Error::new(
                ErrorCode::OutOfMemory,
                format!("out of memory: {why}"),
            )),
            // A prompt the model cannot take (too long for its positions, an unknown token).
            Error::Tokenizer(why) | Error::Input(why) => Ok(florence2::Error::new(
                ErrorCode::TextInvalid,
                format!("the model cannot take this prompt: {why}"),
            )),
            other => Err(other),
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
