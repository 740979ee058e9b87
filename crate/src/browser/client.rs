//! The client of our proxy. It prepares the image, sends it inline when it fits the inline
//! limit and as an uploaded asset otherwise, retries 429 answers (honouring `Retry-After`,
//! bounded), times out, stops on an `AbortSignal`, and returns the typed result.

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use gloo_net::http::{Request, RequestBuilder};
use js_sys::{Array, Promise, Uint8Array};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

use crate::browser::image;
use crate::http_error::{backoff, error_from_http};
use crate::image_prep::{DEFAULT_MAX_BASE64_CHARS, PrepareOptions, base64_len};
use crate::prompt::Prompt;
use crate::region::ImageSize;
use crate::request::{ASSETS_PATH, INVOKE_PATH, ImageRef, InvokeRequest};
use crate::response::{Overlay, ResponseContext, ZipLimits, parse_zip};
use crate::result::{Florence2Result, Source};
use crate::task::Task;
use crate::{Error, ErrorCode, Result};

#[wasm_bindgen(inline_js = "
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal && signal.aborted) { reject(signal.reason); return; }
    const timer = setTimeout(resolve, ms);
    if (signal) signal.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
  });
}
export function anySignal(signals) { return AbortSignal.any(signals); }
export function timeoutSignal(ms) { return AbortSignal.timeout(ms); }
")]
extern "C" {
    fn sleep(ms: f64, signal: Option<&AbortSignal>) -> Promise;
    #[wasm_bindgen(js_name = anySignal)]
    fn any_signal(signals: &Array) -> AbortSignal;
    #[wasm_bindgen(js_name = timeoutSignal)]
    fn timeout_signal(ms: f64) -> AbortSignal;
}

/// Where the proxy is and how patient to be.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientConfig {
    /// The proxy's origin (`http://127.0.0.1:8080`), a path prefix, or empty for this page's origin.
    pub base_url: String,
    /// Sent as `X-Api-Key` for a proxy without a key of its own.
    pub api_key: Option<String>,
    pub timeout_ms: f64,
    pub max_retries: u32,
    /// A `Retry-After` longer than this ends the retries at once.
    pub max_retry_wait_ms: f64,
    /// Images whose base64 is longer are uploaded as assets.
    pub max_base64_chars: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            base_url: String::new(),
            api_key: None,
            timeout_ms: 120_000.0,
            max_retries: 3,
            max_retry_wait_ms: 60_000.0,
            max_base64_chars: DEFAULT_MAX_BASE64_CHARS,
        }
    }
}

impl ClientConfig {
    /// Checks the values a person or a page may have typed.
    pub fn validated(mut self) -> Result<Self> {
        let bad = |why: String| Err(Error::new(ErrorCode::BadOption, why));
        self.base_url = self.base_url.trim().trim_end_matches('/').to_owned();
        let b = &self.base_url;
        if !(b.is_empty()
            || b.starts_with("http://")
            || b.starts_with("https://")
            || b.starts_with('/'))
        {
            return bad(format!(
                "the proxy URL must be an http(s) URL or a path, not {b:?}"
            ));
        }
        for (v, what) in [
            (self.timeout_ms, "timeoutMs"),
            (self.max_retry_wait_ms, "maxRetryWaitMs"),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("{what} must be a positive number, not {v}"));
            }
        }
        crate::image_prep::max_base64_chars(self.max_base64_chars as f64)?;
        self.max_retries = self.max_retries.min(10);
        self.api_key = self.api_key.filter(|k| !k.trim().is_empty());
        Ok(self)
    }
}

/// The steps of a run, reported as they start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Preparing,
    Uploading,
    Waiting,
    Done,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Preparing => "preparing",
            Stage::Uploading => "uploading",
            Stage::Waiting => "waiting",
            Stage::Done => "done",
        }
    }
}

/// One run: an image (encoded bytes), a task and its text.
pub struct RunRequest {
    pub image: Vec<u8>,
    pub task: Task,
    pub text: Option<String>,
    pub signal: Option<AbortSignal>,
    pub on_progress: Option<Rc<dyn Fn(Stage)>>,
    /// The body's `max_tokens`: the most new tokens the model may generate.
    pub max_tokens: Option<u32>,
}

/// What was sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentImage {
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
    pub inline: bool,
    pub quality: Option<f32>,
}

/// Where the time went, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Timings {
    pub prepare_ms: f64,
    pub upload_ms: f64,
    pub wait_ms: f64,
    pub parse_ms: f64,
}

/// The answer of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutput {
    pub result: Florence2Result,
    pub overlay: Option<Overlay<'static>>,
    pub sent: SentImage,
    pub timings: Timings,
}

/// A client of our proxy.
#[derive(Debug, Clone)]
pub struct Client {
    config: Rc<ClientConfig>,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client> {
        Ok(Client {
            config: Rc::new(config.validated()?),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Runs a task. The prompt is validated before any work, so a bad one never costs an upload.
    pub async fn run(&self, request: RunRequest) -> Result<RunOutput> {
        let config = &*self.config;
        let RunRequest {
            image: image_bytes,
            task,
            text,
            signal,
            on_progress,
            max_tokens,
        } = request;
        let progress = |stage: Stage| {
            if let Some(f) = &on_progress {
                f(stage);
            }
        };
        let signal = signal.as_ref();
        let prompt = Prompt::new(task, text.as_deref())?;
        check_abort(signal)?;

        let started = js_sys::Date::now();
        progress(Stage::Preparing);
        let full = PrepareOptions {
            max_base64_chars: None,
            ..PrepareOptions::default()
        };
        let prepared = image::prepare(&image_bytes, &full).await?;
        check_abort(signal)?;
        let prepared_at = js_sys::Date::now();

        let inline = base64_len(prepared.bytes.len()) <= config.max_base64_chars;
        let image_ref = if inline {
            ImageRef::Inline {
                mime: prepared.mime.into(),
                base64: prepared.base64(),
            }
        } else {
            progress(Stage::Uploading);
            let asset_id = self.upload(&prepared.bytes, prepared.mime, signal).await?;
            ImageRef::Asset {
                mime: prepared.mime.into(),
                asset_id,
            }
        };
        let uploaded_at = js_sys::Date::now();

        progress(Stage::Waiting);
        let mut invoke = InvokeRequest::new(prompt.endpoint_content(&image_ref.src())?);
        invoke.max_tokens = max_tokens;
        let body = invoke.to_json();
        let url = format!("{}{INVOKE_PATH}", config.base_url);
        let answered = send_with_retries(
            config,
            signal,
            || {
                self.authorised(Request::post(&url))
                    .header("Content-Type", "application/json")
                    .header("Accept", "application/zip, application/json")
            },
            Some(body),
        )
        .await?;
        let zip = answered.body;
        let answered_at = js_sys::Date::now();
        let ctx = ResponseContext {
            original: ImageSize::new(prepared.width, prepared.height),
            sent: ImageSize::new(prepared.sent_width, prepared.sent_height),
            task: Some(prompt.task),
        };
        let mut parsed = parse_zip(&zip, ctx, ZipLimits::default())?;
        // The ZIP is the endpoint's either way; the proxy says which backend made it.
        if answered.backend.as_deref() == Some(LOCAL_BACKEND) {
            parsed.result.source = Source::Local;
        }
        let overlay = parsed.overlay.map(|o| Overlay {
            name: o.name,
            mime: o.mime,
            bytes: o.bytes.into_owned().into(),
        });
        let parsed_at = js_sys::Date::now();
        progress(Stage::Done);
        Ok(RunOutput {
            result: parsed.result,
            overlay,
            sent: SentImage {
                width: prepared.sent_width,
                height: prepared.sent_height,
                bytes: prepared.bytes.len(),
                inline,
                quality: prepared.quality,
            },
            timings: Timings {
                prepare_ms: prepared_at - started,
                upload_ms: uploaded_at - prepared_at,
                wait_ms: answered_at - uploaded_at,
                parse_ms: parsed_at - answered_at,
            },
        })
    }

    /// Uploads image bytes through the proxy's asset route; returns the asset id.
    pub async fn upload(
        &self,
        bytes: &[u8],
        mime: &str,
        signal: Option<&AbortSignal>,
    ) -> Result<String> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Asset {
            asset_id: String,
        }
        let url = format!("{}{ASSETS_PATH}", self.config.base_url);
        let body = send_with_retries(
            &self.config,
            signal,
            || {
                self.authorised(Request::post(&url))
                    .header("Content-Type", mime)
            },
            BodyBytes(bytes),
        )
        .await?
        .body;
        let asset: Asset = serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                ErrorCode::ResponseInvalid,
                format!("the asset route answered something other than {{\"assetId\"}}: {e}"),
            )
        })?;
        Ok(asset.asset_id)
    }

    /// The proxy's `GET /healthz` (its `backend` says `nvidia` or `local`).
    pub async fn health(&self, signal: Option<&AbortSignal>) -> Result<serde_json::Value> {
        let url = format!("{}/healthz", self.config.base_url);
        let body = send_with_retries(&self.config, signal, || Request::get(&url), None)
            .await?
            .body;
        serde_json::from_slice(&body).map_err(|e| {
            Error::new(
                ErrorCode::ResponseInvalid,
                format!("the proxy's /healthz is not JSON: {e}"),
            )
        })
    }

    /// The tasks the proxy's backend runs: the endpoint's 14, and `<REGION_TO_OCR>` when
    /// `/healthz` says the backend is the local model.
    pub async fn tasks(&self, signal: Option<&AbortSignal>) -> Result<&'static [Task]> {
        let health = self.health(signal).await?;
        Ok(crate::task::tasks_for_backend(health["backend"].as_str()))
    }

    fn authorised(&self, builder: RequestBuilder) -> RequestBuilder {
        match &self.config.api_key {
            Some(key) => builder.header("X-Api-Key", key),
            None => builder,
        }
    }
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(js_sys::Date::now() as u64)
}

struct BodyBytes<'a>(&'a [u8]);

/// A request body that can be sent more than once (retries).
trait Body {
    fn to_js(&self) -> JsValue;
}

impl Body for Option<String> {
    fn to_js(&self) -> JsValue {
        self.as_deref().map_or(JsValue::UNDEFINED, JsValue::from)
    }
}

impl Body for BodyBytes<'_> {
    fn to_js(&self) -> JsValue {
        Uint8Array::from(self.0).into()
    }
}

/// The `x-florence2-backend` value of an answer made by the proxy's local model.
pub const LOCAL_BACKEND: &str = "local";

/// A 2xx answer: its body, and which backend made it (`x-florence2-backend`).
struct Answered {
    body: Vec<u8>,
    backend: Option<String>,
}

/// Sends and reads the answer, retrying 429 answers up to `max_retries` times: waits
/// `Retry-After` (or [`backoff`] without one), unless that is longer than `max_retry_wait_ms`.
/// Any other failure is final.
async fn send_with_retries(
    config: &ClientConfig,
    signal: Option<&AbortSignal>,
    make: impl Fn() -> RequestBuilder,
    body: impl Body,
) -> Result<Answered> {
    let mut attempt = 0;
    loop {
        let timeout = timeout_signal(config.timeout_ms);
        let combined = combined_signal(&timeout, signal);
        let request = make()
            .abort_signal(Some(&combined))
            .body(body.to_js())
            .map_err(|e| {
                Error::new(
                    ErrorCode::BadOption,
                    format!("the request cannot be built: {e}"),
                )
            })?;
        let response = request
            .send()
            .await
            .map_err(|e| fetch_error(&e.to_string(), &timeout, signal, config))?;
        let status = response.status();
        if (200..300).contains(&status) {
            let backend = response.headers().get("x-florence2-backend");
            let body = response.binary().await.map_err(|e| {
                fetch_error(
                    &format!("the answer was cut off: {e}"),
                    &timeout,
                    signal,
                    config,
                )
            })?;
            return Ok(Answered { body, backend });
        }
        let retry_after = response.headers().get("retry-after");
        let body = response.binary().await.unwrap_or_default();
        let error = error_from_http(status, retry_after.as_deref(), &body, now());
        if status != 429 || attempt >= config.max_retries {
            return Err(error);
        }
        let wait_ms = error
            .retry_after_secs
            .map_or(backoff(attempt).as_secs_f64() * 1000.0, |s| s * 1000.0);
        if wait_ms > config.max_retry_wait_ms {
            return Err(error);
        }
        JsFuture::from(sleep(wait_ms, signal))
            .await
            .map_err(|_| aborted())?;
        attempt += 1;
    }
}

fn combined_signal(timeout: &AbortSignal, user: Option<&AbortSignal>) -> AbortSignal {
    let signals = Array::of1(timeout);
    if let Some(user) = user {
        signals.push(user);
    }
    any_signal(&signals)
}

fn fetch_error(
    what: &str,
    timeout: &AbortSignal,
    user: Option<&AbortSignal>,
    config: &ClientConfig,
) -> Error {
    if user.is_some_and(AbortSignal::aborted) {
        aborted()
    } else if timeout.aborted() {
        Error::new(
            ErrorCode::Timeout,
            format!("no answer within {} s", config.timeout_ms / 1000.0),
        )
    } else {
        let whom = if config.base_url.is_empty() {
            "this page's origin"
        } else {
            &config.base_url
        };
        Error::new(
            ErrorCode::Network,
            format!("the proxy at {whom} cannot be reached: {what}"),
        )
    }
}

fn aborted() -> Error {
    Error::new(ErrorCode::Aborted, "the run was cancelled")
}

fn check_abort(signal: Option<&AbortSignal>) -> Result<()> {
    if signal.is_some_and(AbortSignal::aborted) {
        Err(aborted())
    } else {
        Ok(())
    }
}
