//! The model's errors as the typed errors every route answers: bad input is the client's
//! (4xx, the same codes the NVIDIA path gives), the rest is the model's failure (502, like an
//! upstream's).

use florence2::{Error, ErrorCode};

pub fn from_model(error: florence2_burn::Error) -> Error {
    error.into_input_error().unwrap_or_else(|other| {
        Error::new(
            ErrorCode::Upstream,
            format!("the local model failed: {other}"),
        )
        .with_status(500)
    })
}
