//! florence2 — the plain-Rust core of florence2-web: the Florence-2 tasks, prompt building and
//! validation, regions and `<loc_…>` tokens, the hosted endpoint's request and ZIP response,
//! image preparation, and post-processing of generated text into one result type shared by
//! the remote (endpoint) and local (model) paths.

#[cfg(all(not(target_arch = "wasm32"), feature = "answer-writer"))]
pub mod answer_archive;
pub mod error;
pub mod http_error;
pub mod image_prep;
pub mod postprocess;
pub mod prompt;
pub mod region;
pub mod request;
pub mod response;
pub mod result;
pub mod task;

pub use error::{Error, ErrorCode, Result};
pub use postprocess::{Answer, post_process};
pub use prompt::{Prompt, PromptInput, build_content, model_prompt};
pub use region::{ImageSize, Region};
pub use result::{Entities, Florence2Result, Source};
pub use task::{Task, TaskGroup, TextKind};

#[cfg(all(target_arch = "wasm32", feature = "browser"))]
pub mod browser;
#[cfg(all(target_arch = "wasm32", feature = "js"))]
pub mod js;
