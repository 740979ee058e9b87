//! The model's failures as the package's typed errors: a folder that cannot be used is
//! `MODEL_INVALID` (whatever file is wrong), one that cannot fit in wasm32's memory or the
//! GPU's buffers is `OUT_OF_MEMORY`, a bad image or prompt gets the codes the remote path
//! gives, a stop is `ABORTED`.

use florence2::{Error, ErrorCode};

/// A failure while loading a model folder.
pub fn from_load(error: florence2_burn::Error) -> Error {
    use florence2_burn::Error as Model;
    match error {
        Model::Cancelled => Error::new(ErrorCode::Aborted, "the load was cancelled"),
        oom @ Model::OutOfMemory(_) => Error::new(ErrorCode::OutOfMemory, oom.to_string()),
        other => Error::new(ErrorCode::ModelInvalid, other.to_string()),
    }
}

/// A failure while running a loaded model: the input's failures get the codes every path
/// gives; the model's own means the model is not usable.
pub fn from_run(error: florence2_burn::Error) -> Error {
    error.into_input_error().unwrap_or_else(|other| {
        Error::new(
            ErrorCode::ModelInvalid,
            format!("the model failed: {other}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_failures_are_model_invalid_and_run_failures_keep_their_meaning() {
        let missing = florence2_burn::Error::MissingTensor {
            name: "lm_head.weight".into(),
        };
        let e = from_load(missing);
        assert_eq!(e.code, ErrorCode::ModelInvalid);
        assert!(e.message.contains("lm_head.weight"), "{}", e.message);
        assert_eq!(
            from_load(florence2_burn::Error::Cancelled).code,
            ErrorCode::Aborted
        );
        assert_eq!(
            from_load(florence2_burn::Error::OutOfMemory("4 GiB".into())).code,
            ErrorCode::OutOfMemory
        );
        assert_eq!(
            from_run(florence2_burn::Error::OutOfMemory("4 GiB".into())).code,
            ErrorCode::OutOfMemory
        );
        assert_eq!(
            from_run(florence2_burn::Error::Image("truncated".into())).code,
            ErrorCode::ImageDecode
        );
        assert_eq!(
            from_run(florence2_burn::Error::Input("too long".into())).code,
            ErrorCode::TextInvalid
        );
        let core = florence2::Error::new(ErrorCode::TextRequired, "needs text");
        assert_eq!(from_run(florence2_burn::Error::Core(core.clone())), core);
    }
}
