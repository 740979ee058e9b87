//! The model's errors as the typed errors every route answers: bad input is the client's
//! (4xx, the same codes the NVIDIA path gives), the rest is the model's failure (502, like an
//! upstream's).

use florence2::{Error, ErrorCode};

pub fn from_model(error: florence2_burn::Error) -> Error {
    use florence2_burn::Error as Model;
    match error {
        Model::Core(e) => e,
        Model::Image(why) => Error::new(ErrorCode::ImageDecode, format!("image: {why}")),
        Model::Cancelled => Error::new(ErrorCode::Aborted, "the run was cancelled"),
        // A prompt the model cannot take (too long for its positions, an unknown token).
        Model::Tokenizer(why) | Model::Input(why) => Error::new(
            ErrorCode::TextInvalid,
            format!("the model cannot take this prompt: {why}"),
        ),
        other => Error::new(
            ErrorCode::Upstream,
            format!("the local model failed: {other}"),
        )
        .with_status(500),
    }
}
