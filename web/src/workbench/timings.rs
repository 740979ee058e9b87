//! Where an answer's time went, in one line: for the endpoint what the client measures
//! (preparing the picture, uploading it, waiting for the answer — its download included —,
//! reading the ZIP); for the model in this browser what its worker measures (`local.run`'s
//! `timings`: vision, encoder, decoder per token) and whether the picture was reused.

use serde::Deserialize;

use crate::messages::units::duration;

/// `local.run`'s `timings` (ms of the worker's clock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalTimings {
    pub vision_ms: f64,
    pub encoder_ms: f64,
    pub decoder_ms_per_token: f64,
    pub tokens: u32,
}

/// The remote client's timings (`florence2::browser::client::Timings`, without its wasm-only
/// home), in ms; `upload_ms` is `None` when the picture went inline.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemoteTimings {
    pub prepare_ms: f64,
    pub upload_ms: Option<f64>,
    pub wait_ms: f64,
    pub read_ms: f64,
}

/// `vision 310 ms · encoder 42 ms · decoder 3.1 ms/token × 24 · total 0.45 s`, or with
/// `picture reused, vision skipped` in place of the vision's time.
pub fn local_line(t: &LocalTimings, reused: bool, total_ms: f64) -> String {
    let vision = if reused {
        "picture reused, vision skipped".to_owned()
    } else {
        format!("vision {}", duration(t.vision_ms))
    };
    format!(
        "{vision} · encoder {} · decoder {} ms/token × {} · total {}",
        duration(t.encoder_ms),
        per_token(t.decoder_ms_per_token),
        t.tokens,
        duration(total_ms),
    )
}

/// `prepare 4 ms · upload — · wait 120 ms · read 2 ms · total 0.13 s`.
pub fn remote_line(t: &RemoteTimings, total_ms: f64) -> String {
    format!(
        "prepare {} · upload {} · wait {} · read {} · total {}",
        duration(t.prepare_ms),
        t.upload_ms.map_or_else(|| "—".to_owned(), duration),
        duration(t.wait_ms),
        duration(t.read_ms),
        duration(total_ms),
    )
}

fn per_token(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.1}")
    } else {
        format!("{ms:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_timings_read_the_runtime_s_json_and_say_when_vision_was_skipped() {
        let t: LocalTimings = serde_json::from_str(
            r#"{"visionMs":310.2,"encoderMs":42,"decoderMsPerToken":3.14,"tokens":24}"#,
        )
        .unwrap();
        let line = local_line(&t, false, 450.0);
        assert!(
            line.starts_with("vision 310 ms · encoder 42 ms · decoder 3.1 ms/token × 24 · total"),
            "{line}"
        );
        let line = local_line(&t, true, 450.0);
        assert!(
            line.starts_with("picture reused, vision skipped · encoder"),
            "{line}"
        );
    }

    #[test]
    fn an_inline_picture_has_no_upload() {
        let t = RemoteTimings {
            prepare_ms: 4.0,
            upload_ms: None,
            wait_ms: 120.0,
            read_ms: 2.0,
        };
        let line = remote_line(&t, 130.0);
        assert!(
            line.starts_with("prepare 4 ms · upload — · wait 120 ms · read 2 ms · total"),
            "{line}"
        );
    }
}
