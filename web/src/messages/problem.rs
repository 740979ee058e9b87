//! Every failure a person can meet, in words: what happened and what to do next. The stable
//! code travels along (the page's `error` element carries it as `data-code`).

use florence2::{Error, ErrorCode, TextKind};

/// A failure as the page shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// florence2's stable error code, or one of the demo's own (`NO_IMAGE`, `NO_MODEL`, `CAMERA`, `IMAGE_URL`).
    pub code: String,
    pub title: String,
    /// The precise cause, as reported.
    pub detail: String,
    /// What to do about it.
    pub next: String,
}

/// What the advice depends on.
#[derive(Debug, Clone, Copy)]
pub struct Situation<'a> {
    /// Where the proxy is, as people read it ("this page's server" or a URL).
    pub proxy: &'a str,
    /// Whether the person entered their own API key.
    pub own_key: bool,
    /// What the chosen task takes.
    pub text: TextKind,
}

impl Problem {
    fn new(code: &str, title: &str, detail: impl Into<String>, next: impl Into<String>) -> Problem {
        Problem {
            code: code.to_owned(),
            title: title.to_owned(),
            detail: detail.into(),
            next: next.into(),
        }
    }

    pub fn from_error(error: &Error, at: Situation<'_>) -> Problem {
        use ErrorCode as C;
        let detail = error.message.clone();
        let (title, next): (&str, String) = match error.code {
            C::TextRequired | C::BadRegion if at.text == TextKind::Region => (
                "Select a region first",
                "Drag a rectangle on the picture (or focus the picture and press Enter, then use the arrow keys), or type four <loc_…> tokens.".into(),
            ),
            C::TextRequired => ("This task needs text", "Type what to look for in the text field, then run again.".into()),
            C::BadRegion => ("The region is not valid", "Drag a new rectangle on the picture.".into()),
            C::TextNotAllowed => ("This task takes no text", "Clear the text field, or pick a task that takes text.".into()),
            C::TextInvalid => ("The text cannot be sent", "Shorten it and remove line breaks, control characters and HTML tags.".into()),
            C::UnknownTask => ("Unknown task", "Pick a task from the list.".into()),
            C::ImageDecode => ("This file is not a picture the browser can read", "Use a JPEG, PNG, WebP, GIF or BMP file.".into()),
            C::ImageTooLarge if error.status == Some(413) => {
                ("The request is too large for the proxy", "Lower the inline-size limit in Settings so large pictures are uploaded instead.".into())
            }
            C::ImageTooLarge => ("The picture is too large", "Scale it down (at most 50 megapixels and 64 MB), then bring it again.".into()),
            C::ImageBudget => ("The picture cannot be made small enough to send", "Raise the inline-size limit in Settings, or use a smaller picture.".into()),
            C::ZipInvalid | C::ZipTooLarge | C::ResponseInvalid | C::PostProcess => (
                "The answer could not be read",
                "Run again. If it keeps happening, the endpoint's answer format may have changed: please report it with the result JSON.".into(),
            ),
            C::BadOption => ("A setting is not valid", "Fix it in Settings.".into()),
            C::Unauthorized if at.own_key => ("Your API key was refused", "Check the key in Settings: it starts with nvapi- and needs access to Florence-2.".into()),
            C::Unauthorized => (
                "No usable API key",
                "Set NVIDIA_API_KEY where the proxy runs and restart it (cargo xtask demo), or enter your own key in Settings.".into(),
            ),
            C::RateLimited => ("Too many requests", format!("Wait {}, then run again.", wait_words(error.retry_after_secs))),
            C::Upstream if error.status == Some(402) => ("The account's credits are used up", "Add credits at build.nvidia.com, or use another key in Settings.".into()),
            C::Upstream if matches!(error.status, Some(400..=499)) => ("The endpoint refused the request", "Try another picture or task; if it persists, report the detail below.".into()),
            C::Upstream => ("NVIDIA's service failed", "This is usually temporary: wait a minute and run again.".into()),
            // A status means the proxy answered: the proxy itself could not reach NVIDIA.
            C::Network if error.status.is_some() => ("The proxy cannot reach NVIDIA", "Check the proxy machine's internet connection, then run again.".into()),
            C::Network => (
                "The proxy cannot be reached",
                format!("Is it running? Start it with cargo xtask demo, or set the proxy URL in Settings (now: {}).", at.proxy),
            ),
            C::Timeout => ("No answer in time", "The service may be busy: run again in a moment, or try a smaller picture.".into()),
            C::Aborted => ("Cancelled", "Run again when you are ready.".into()),
            C::ModelFetch => (
                "The model could not be downloaded",
                "Check the model URL: the folder must hold config.json, model.safetensors and tokenizer.json, and its server must allow this page (CORS).".into(),
            ),
            C::ModelInvalid => ("The model folder is not a usable Florence-2 checkpoint", "Use a Florence-2 folder in safetensors (the detail says which file is wrong).".into()),
            C::WebgpuUnavailable => ("This browser has no WebGPU", "Choose the CPU backend, or use a browser with WebGPU enabled.".into()),
            C::WasmSimdUnavailable => (
                "This browser cannot run the local model",
                "It lacks WebAssembly SIMD (Chrome 91, Firefox 89 and Safari 16.4 have it): update the browser, or run on the endpoint.".into(),
            ),
            C::OutOfMemory => ("Out of memory", "Close other tabs, or use a smaller model or the CPU backend.".into()),
        };
        Problem::new(error.code.as_str(), title, detail, next)
    }

    /// Run was pressed before there was a picture.
    pub fn no_image() -> Problem {
        Problem::new(
            "NO_IMAGE",
            "Bring a picture first",
            "There is no picture to run the task on.",
            "Choose a file, drop or paste a picture, enter its URL, or use the camera.",
        )
    }

    /// Run was pressed in Local mode before a model was loaded.
    pub fn no_model() -> Problem {
        Problem::new(
            "NO_MODEL",
            "Load the model first",
            "Local mode runs Florence-2 in this browser: no model is loaded yet.",
            "Press Load model (or switch back to Remote).",
        )
    }

    /// An option of the Local panel (beams, max new tokens) is not usable.
    pub fn local_option(detail: impl Into<String>) -> Problem {
        Problem::new(
            "BAD_OPTION",
            "A local model option is not valid",
            detail,
            "Fix it in the Local model panel, or leave it empty for the model's own.",
        )
    }

    /// The camera could not be opened (denied, absent, or in use).
    pub fn camera(detail: impl Into<String>) -> Problem {
        Problem::new(
            "CAMERA",
            "The camera cannot be used",
            detail,
            "Allow camera access for this page in the browser, or bring a picture another way.",
        )
    }

    /// An image URL could not be read.
    pub fn image_url(detail: impl Into<String>) -> Problem {
        Problem::new(
            "IMAGE_URL",
            "That picture cannot be loaded from its URL",
            detail,
            "Check the address. Many sites do not let other pages read their pictures: save it and choose the file instead.",
        )
    }
}

/// "12 s", "about 2 minutes", "a moment".
fn wait_words(secs: Option<f64>) -> String {
    match secs {
        Some(s) if s.is_finite() && s > 90.0 => format!("about {} minutes", (s / 60.0).round()),
        Some(s) if s.is_finite() && s > 0.0 => format!("{} s", s.ceil()),
        _ => "a moment".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: Situation<'static> = Situation {
        proxy: "this page's server",
        own_key: false,
        text: TextKind::None,
    };

    fn said(code: ErrorCode, status: Option<u16>, at: Situation<'_>) -> Problem {
        let mut e = Error::new(code, "detail from below");
        e.status = status;
        Problem::from_error(&e, at)
    }

    #[test]
    fn every_code_has_words_and_a_next_step() {
        for code in ErrorCode::ALL {
            for status in [
                None,
                Some(400),
                Some(402),
                Some(413),
                Some(429),
                Some(500),
                Some(502),
            ] {
                let p = said(code, status, HERE);
                assert_eq!(p.code, code.as_str());
                assert!(
                    !p.title.is_empty() && p.next.ends_with('.'),
                    "{code:?} {status:?}: {p:?}"
                );
                assert_eq!(p.detail, "detail from below");
            }
        }
    }

    #[test]
    fn rate_limits_say_how_long_to_wait() {
        let e = Error::new(ErrorCode::RateLimited, "slow down")
            .with_status(429)
            .with_retry_after(Some(11.2));
        assert_eq!(
            Problem::from_error(&e, HERE).next,
            "Wait 12 s, then run again."
        );
        let e = e.with_retry_after(Some(150.0));
        assert_eq!(
            Problem::from_error(&e, HERE).next,
            "Wait about 3 minutes, then run again."
        );
        let e = e.with_retry_after(None);
        assert_eq!(
            Problem::from_error(&e, HERE).next,
            "Wait a moment, then run again."
        );
    }

    #[test]
    fn advice_depends_on_the_situation() {
        assert!(
            said(ErrorCode::Unauthorized, Some(401), HERE)
                .next
                .contains("NVIDIA_API_KEY")
        );
        assert!(
            said(
                ErrorCode::Unauthorized,
                Some(401),
                Situation {
                    own_key: true,
                    ..HERE
                }
            )
            .next
            .contains("Check the key")
        );
        assert!(
            said(ErrorCode::Network, None, HERE)
                .next
                .contains("cargo xtask demo")
        );
        assert!(
            said(ErrorCode::Network, Some(502), HERE)
                .title
                .contains("cannot reach NVIDIA")
        );
        assert!(
            said(
                ErrorCode::TextRequired,
                None,
                Situation {
                    text: TextKind::Region,
                    ..HERE
                }
            )
            .next
            .contains("Drag a rectangle")
        );
        assert!(
            said(
                ErrorCode::TextRequired,
                None,
                Situation {
                    text: TextKind::Required,
                    ..HERE
                }
            )
            .next
            .contains("Type what")
        );
        assert!(
            said(ErrorCode::Upstream, Some(500), HERE)
                .next
                .contains("temporary")
        );
        assert!(
            said(ErrorCode::ImageTooLarge, Some(413), HERE)
                .next
                .contains("inline-size")
        );
    }

    #[test]
    fn the_demo_s_own_problems_have_codes() {
        assert_eq!(Problem::no_image().code, "NO_IMAGE");
        assert_eq!(Problem::no_model().code, "NO_MODEL");
        assert_eq!(Problem::local_option("Beams …").code, "BAD_OPTION");
        assert_eq!(Problem::camera("denied").code, "CAMERA");
        assert_eq!(Problem::image_url("CORS").detail, "CORS");
    }
}
