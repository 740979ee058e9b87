//! An endpoint speaking NVIDIA's protocol: the picture prepared as the JS client prepares it
//! (crate `florence2`'s planner: a JPEG whose base64 fits 180,000 characters), the body POSTed,
//! the ZIP answer parsed by crate `florence2`, coordinates mapped back to the original picture.
//!
//! `--endpoint` takes a base URL (`http://127.0.0.1:8080`, `https://ai.api.nvidia.com`), to
//! which the invoke path `/v1/vlm/microsoft/florence-2` is added, or that full invoke URL.
//! A key in `NVIDIA_API_KEY` is sent as `Authorization: Bearer`. NVIDIA is asked to hold the
//! request up to 300 s (`NVCF-POLL-SECONDS`) rather than answer 202; an answer still pending
//! after that is this picture's `UPSTREAM` failure (our proxy resolves 202 polling itself).
//! Rate limits (429) and unavailability (503) are retried up to 3 times after `Retry-After`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use florence2::http_error::error_from_http;
use florence2::image_prep::{PrepareOptions, native};
use florence2::request::{INVOKE_PATH, InvokeRequest};
use florence2::response::{ResponseContext, ZipLimits, parse_zip};
use florence2::{ErrorCode, Florence2Result, ImageSize, Task, build_content};

use crate::label::backend::Labeller;
use crate::label::error::{Failure, LabelError};

const RETRIES: u32 = 3;
const POLL_SECONDS: u64 = 300;

pub struct Endpoint {
    client: reqwest::blocking::Client,
    url: String,
    key: Option<String>,
    /// Sent as the body's `max_tokens` when set.
    max_tokens: Option<u32>,
    prepare: PrepareOptions,
    stop: &'static AtomicBool,
}

/// The invoke URL of `endpoint`: kept when it already ends with the invoke path, else the path
/// is added to it.
pub fn invoke_url(endpoint: &str) -> Result<String, LabelError> {
    let trimmed = endpoint.trim().trim_end_matches('/');
    if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
        return Err(LabelError::Usage(format!(
            "--endpoint {endpoint:?}: expected an http:// or https:// URL"
        )));
    }
    Ok(if trimmed.ends_with(INVOKE_PATH) {
        trimmed.to_owned()
    } else {
        format!("{trimmed}{INVOKE_PATH}")
    })
}

impl Endpoint {
    /// `stop` cuts retries' waits short when the run is interrupted.
    pub fn new(
        endpoint: &str,
        key: Option<String>,
        max_tokens: Option<u32>,
        stop: &'static AtomicBool,
    ) -> Result<Endpoint, LabelError> {
        // reqwest is built without a default crypto provider (as the proxy is): ring. A second
        // install (another part of the process did it) is not an error worth reporting.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(POLL_SECONDS + 60))
            .connect_timeout(Duration::from_secs(20))
            .build()
            .map_err(|e| LabelError::Usage(format!("cannot make the HTTP client: {e}")))?;
        Ok(Endpoint {
            client,
            url: invoke_url(endpoint)?,
            key: key.filter(|k| !k.trim().is_empty()),
            max_tokens,
            prepare: PrepareOptions::default(),
            stop,
        })
    }

    fn invoke_once(&self, body: &str) -> Result<Vec<u8>, florence2::Error> {
        let mut request = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("NVCF-POLL-SECONDS", POLL_SECONDS.to_string())
            .body(body.to_owned());
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        let response = request.send().map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().map_err(transport)?;
        match status {
            200 => Ok(bytes.to_vec()),
            202 => Err(florence2::Error::new(
                ErrorCode::Upstream,
                format!(
                    "still pending after {POLL_SECONDS} s (HTTP 202); put florence2-proxy in \
                     front of the endpoint, it polls for the answer"
                ),
            )
            .with_status(202)),
            _ => Err(error_from_http(
                status,
                retry_after.as_deref(),
                &bytes,
                SystemTime::now(),
            )),
        }
    }
}

fn transport(e: reqwest::Error) -> florence2::Error {
    let code = if e.is_timeout() {
        ErrorCode::Timeout
    } else {
        ErrorCode::Network
    };
    florence2::Error::new(code, e.to_string())
}

impl Labeller for Endpoint {
    fn label(
        &self,
        bytes: &[u8],
        task: Task,
        text: Option<&str>,
    ) -> Result<Florence2Result, Failure> {
        let image = native::prepare(bytes, &self.prepare)?;
        let content = build_content(task.token(), text, &image.data_url())?;
        let mut request = InvokeRequest::new(content);
        request.max_tokens = self.max_tokens;
        let body = request.to_json();
        let mut attempt = 0;
        let zip = loop {
            match self.invoke_once(&body) {
                Ok(zip) => break zip,
                Err(e) => {
                    let again = matches!(e.code, ErrorCode::RateLimited) || e.status == Some(503);
                    if !again || attempt >= RETRIES || self.stop.load(Ordering::Relaxed) {
                        return Err(e.into());
                    }
                    attempt += 1;
                    let wait = e
                        .retry_after_secs
                        .unwrap_or(f64::from(attempt))
                        .clamp(0.0, 60.0);
                    sleep_unless_stopped(Duration::from_secs_f64(wait), self.stop);
                }
            }
        };
        let ctx = ResponseContext {
            original: ImageSize::new(image.width, image.height),
            sent: ImageSize::new(image.sent_width, image.sent_height),
            task: Some(task),
        };
        Ok(parse_zip(&zip, ctx, ZipLimits::default())?.result)
    }
}

fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(100);
    let mut left = total;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let now = left.min(step);
        std::thread::sleep(now);
        left -= now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_and_full_invoke_urls_are_both_accepted() {
        let full = "https://ai.api.nvidia.com/v1/vlm/microsoft/florence-2";
        assert_eq!(invoke_url("https://ai.api.nvidia.com").unwrap(), full);
        assert_eq!(invoke_url("https://ai.api.nvidia.com/").unwrap(), full);
        assert_eq!(invoke_url(full).unwrap(), full);
        assert_eq!(invoke_url(&format!("{full}/")).unwrap(), full);
        assert_eq!(
            invoke_url("http://127.0.0.1:8080/prefix").unwrap(),
            "http://127.0.0.1:8080/prefix/v1/vlm/microsoft/florence-2"
        );
        assert_eq!(invoke_url("ftp://x").unwrap_err().code(), "BAD_OPTION");
    }
}
