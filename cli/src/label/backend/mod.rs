//! Where a picture's answer comes from: the model in this process, or an endpoint that speaks
//! NVIDIA's protocol (NVIDIA itself, our proxy, the proxy's local backend).

mod endpoint;
mod local;

pub use endpoint::{Endpoint, invoke_url};
pub use local::Local;

use florence2::{Florence2Result, Task};

use crate::label::error::Failure;

/// Labels one picture. Shared by the worker threads (`Sync`): each call is independent.
pub trait Labeller: Sync {
    fn label(
        &self,
        bytes: &[u8],
        task: Task,
        text: Option<&str>,
    ) -> Result<Florence2Result, Failure>;
}
