//! `Florence2Client`: runs a task through our proxy. It prepares the image, sends it inline
//! when it fits the inline limit and as an uploaded asset otherwise, retries 429 answers
//! (honouring `Retry-After`, bounded), times out, stops on an `AbortSignal`, and returns the
//! typed result.

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use gloo_net::http::{Request, RequestBuilder};
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::{JsFuture, future_to_promise};
use web_sys::AbortSignal;

use crate::http_error::error_from_http;
use crate::image_prep::{DEFAULT_MAX_BASE64_CHARS, PrepareOptions, base64_len};
use crate::prompt::Prompt;
use crate::region::ImageSize;
use crate::request::{ASSETS_PATH, INVOKE_PATH, ImageRef, InvokeRequest};
use crate::response::{ResponseContext, ZipLimits, parse_zip};
use crate::task::Task;
use crate::js::browser_image;
use crate::js::convert::{bytes_of, describe, js_error, overlay_to_js, to_js};
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

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ClientOptions {
    base_url: Option<String>,
    api_key: Option<String>,
    timeout_ms: Option<f64>,
    max_retries: Option<u32>,
    max_retry_wait_ms: Option<f64>,
    max_base64_chars: Option<f64>,
}

#[derive(Debug)]
struct ClientConfig {
    base_url: String,
    api_key: Option<String>,
    timeout_ms: f64,
    max_retries: u32,
    max_retry_wait_ms: f64,
    max_base64_chars: usize,
}

/// A client of our proxy.
#[wasm_bindgen]
pub struct Florence2Client {
    config: Rc<ClientConfig>,
}

#[wasm_bindgen]
impl Florence2Client {
    /// `new Florence2Client({ baseUrl, apiKey?, timeoutMs?, maxRetries?, maxRetryWaitMs?, maxBase64Chars? })`;
    /// `baseUrl` defaults to the page's own origin.
    #[wasm_bindgen(constructor)]
    pub fn new(#[wasm_bindgen(unchecked_param_type = "ClientOptions | undefined")] options: JsValue) -> std::result::Result<Florence2Client, JsValue> {
        let options: ClientOptions = if options.is_undefined() || options.is_null() {
            ClientOptions::default()
        } else {
            crate::js::convert::from_js(options, ErrorCode::BadOption, "client options")?
        };
        let positive = |v: Option<f64>, default: f64, what: &str| match v {
            None => Ok(default),
            Some(v) if v.is_finite() && v > 0.0 => Ok(v),
            Some(v) => Err(js_error(Error::new(ErrorCode::BadOption, format!("{what} must be a positive number, not {v}")))),
        };
        let base_url = options.base_url.unwrap_or_default().trim_end_matches('/').to_owned();
        if !(base_url.is_empty() || base_url.starts_with("http://") || base_url.starts_with("https://") || base_url.starts_with('/')) {
            return Err(js_error(Error::new(ErrorCode::BadOption, format!("baseUrl must be an http(s) URL or a path, not {base_url:?}"))));
        }
        Ok(Florence2Client {
            config: Rc::new(ClientConfig {
                base_url,
                api_key: options.api_key.filter(|k| !k.trim().is_empty()),
                timeout_ms: positive(options.timeout_ms, 120_000.0, "timeoutMs")?,
                max_retries: options.max_retries.unwrap_or(3).min(10),
                max_retry_wait_ms: positive(options.max_retry_wait_ms, 60_000.0, "maxRetryWaitMs")?,
                max_base64_chars: positive(options.max_base64_chars, DEFAULT_MAX_BASE64_CHARS as f64, "maxBase64Chars")? as usize,
            }),
        })
    }

    /// Runs `{ image, task, text?, signal?, onProgress? }` → `{ result, overlay, sent, timings }`.
    #[wasm_bindgen(unchecked_return_type = "Promise<RunResult>")]
    pub fn run(&self, #[wasm_bindgen(unchecked_param_type = "RunRequest")] request: JsValue) -> Promise {
        let config = Rc::clone(&self.config);
        future_to_promise(async move { run(&config, &request).await.map_err(js_error) })
    }

    /// Uploads image bytes through the proxy's asset route; resolves to the asset id.
    #[wasm_bindgen(js_name = uploadAsset, unchecked_return_type = "Promise<string>")]
    pub fn upload_asset(&self, bytes: Uint8Array, mime: Option<String>, signal: Option<AbortSignal>) -> Promise {
        let config = Rc::clone(&self.config);
        future_to_promise(async move {
            let mime = mime.unwrap_or_else(|| "image/jpeg".into());
            upload(&config, &bytes.to_vec(), &mime, signal.as_ref()).await.map(JsValue::from).map_err(js_error)
        })
    }
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

fn now() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(js_sys::Date::now() as u64)
}

struct Progress(Option<Function>);

impl Progress {
    fn report(&self, stage: &str) {
        if let Some(f) = &self.0 {
            let event = Object::new();
            let _ = Reflect::set(&event, &"stage".into(), &stage.into());
            // A throwing callback is the caller's bug; it must not break the run.
            let _ = f.call1(&JsValue::NULL, &event);
        }
    }
}

async fn run(config: &ClientConfig, request: &JsValue) -> Result<JsValue> {
    if !request.is_object() {
        return Err(Error::new(ErrorCode::BadOption, "run() takes { image, task, text?, signal?, onProgress? }"));
    }
    let task_token = get(request, "task").as_string().ok_or_else(|| Error::new(ErrorCode::UnknownTask, "task must be a task token such as \"<OD>\""))?;
    let text = get(request, "text").as_string();
    let signal = get(request, "signal").dyn_into::<AbortSignal>().ok();
    let progress = Progress(get(request, "onProgress").dyn_into::<Function>().ok());
    // Validate before any work: a bad prompt never costs an upload.
    let prompt = Prompt::new(Task::from_token(&task_token)?, text.as_deref())?;
    check_abort(signal.as_ref())?;

    let started = js_sys::Date::now();
    progress.report("preparing");
    let image_bytes = bytes_of(&get(request, "image")).await.map_err(|e| Error::new(ErrorCode::BadOption, format!("image: {}", describe(&e))))?;
    let full = PrepareOptions { max_base64_chars: None, ..PrepareOptions::default() };
    let prepared = browser_image::prepare(&image_bytes, &full).await?;
    check_abort(signal.as_ref())?;
    let prepared_at = js_sys::Date::now();

    let inline = base64_len(prepared.bytes.len()) <= config.max_base64_chars;
    let image = if inline {
        ImageRef::Inline { mime: prepared.mime.into(), base64: prepared.base64() }
    } else {
        progress.report("uploading");
        let asset_id = upload(config, &prepared.bytes, prepared.mime, signal.as_ref()).await?;
        ImageRef::Asset { mime: prepared.mime.into(), asset_id }
    };
    let uploaded_at = js_sys::Date::now();

    progress.report("waiting");
    let body = InvokeRequest::new(prompt.endpoint_content(&image.src())?).to_json();
    let url = format!("{}{INVOKE_PATH}", config.base_url);
    let zip = send_with_retries(
        config,
        signal.as_ref(),
        || authorised(config, Request::post(&url)).header("Content-Type", "application/json").header("Accept", "application/zip, application/json"),
        Some(body),
    )
    .await?;
    let answered_at = js_sys::Date::now();
    let ctx = ResponseContext {
        original: ImageSize::new(prepared.width, prepared.height),
        sent: ImageSize::new(prepared.sent_width, prepared.sent_height),
        task: Some(prompt.task),
    };
    let parsed = parse_zip(&zip, ctx, ZipLimits::default())?;
    let parsed_at = js_sys::Date::now();
    progress.report("done");

    let out = Object::new();
    let set = |k: &str, v: &JsValue| {
        let _ = Reflect::set(&out, &k.into(), v);
    };
    set("result", &to_js(&parsed.result).map_err(|e| Error::new(ErrorCode::ResponseInvalid, describe(&e)))?);
    set("overlay", &overlay_to_js(parsed.overlay.as_ref()));
    let sent = serde_json::json!({
        "width": prepared.sent_width, "height": prepared.sent_height, "bytes": prepared.bytes.len(),
        "inline": inline, "quality": prepared.quality,
    });
    set("sent", &to_js(&sent).map_err(|e| Error::new(ErrorCode::BadOption, describe(&e)))?);
    let timings = serde_json::json!({
        "prepareMs": prepared_at - started, "uploadMs": uploaded_at - prepared_at,
        "waitMs": answered_at - uploaded_at, "parseMs": parsed_at - answered_at,
    });
    set("timings", &to_js(&timings).map_err(|e| Error::new(ErrorCode::BadOption, describe(&e)))?);
    Ok(out.into())
}

fn authorised(config: &ClientConfig, builder: RequestBuilder) -> RequestBuilder {
    match &config.api_key {
        Some(key) => builder.header("X-Api-Key", key),
        None => builder,
    }
}

async fn upload(config: &ClientConfig, bytes: &[u8], mime: &str, signal: Option<&AbortSignal>) -> Result<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Asset {
        asset_id: String,
    }
    let url = format!("{}{ASSETS_PATH}", config.base_url);
    let body = send_with_retries(config, signal, || authorised(config, Request::post(&url)).header("Content-Type", mime), BodyBytes(bytes)).await?;
    let asset: Asset = serde_json::from_slice(&body)
        .map_err(|e| Error::new(ErrorCode::ResponseInvalid, format!("the asset route answered something other than {{\"assetId\"}}: {e}")))?;
    Ok(asset.asset_id)
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

/// Sends, retrying 429 answers up to `max_retries` times: waits `Retry-After` (or 1, 2, 4 … s
/// without one), unless that is longer than `max_retry_wait_ms`. Any other failure is final.
async fn send_with_retries(
    config: &ClientConfig,
    signal: Option<&AbortSignal>,
    make: impl Fn() -> RequestBuilder,
    body: impl Body,
) -> Result<Vec<u8>> {
    let mut attempt = 0;
    loop {
        let timeout = timeout_signal(config.timeout_ms);
        let combined = combined_signal(&timeout, signal);
        let request = make()
            .abort_signal(Some(&combined))
            .body(body.to_js())
            .map_err(|e| Error::new(ErrorCode::BadOption, format!("the request cannot be built: {e}")))?;
        let response = request.send().await.map_err(|e| fetch_error(&e.to_string(), &timeout, signal, config))?;
        let status = response.status();
        if (200..300).contains(&status) {
            return response.binary().await.map_err(|e| fetch_error(&format!("the answer was cut off: {e}"), &timeout, signal, config));
        }
        let retry_after = response.headers().get("retry-after");
        let body = response.binary().await.unwrap_or_default();
        let error = error_from_http(status, retry_after.as_deref(), &body, now());
        if status != 429 || attempt >= config.max_retries {
            return Err(error);
        }
        let wait_ms = error.retry_after_secs.map_or(1000.0 * f64::from(1u32 << attempt.min(6)), |s| s * 1000.0);
        if wait_ms > config.max_retry_wait_ms {
            return Err(error);
        }
        JsFuture::from(sleep(wait_ms, signal)).await.map_err(|_| aborted())?;
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

fn fetch_error(what: &str, timeout: &AbortSignal, user: Option<&AbortSignal>, config: &ClientConfig) -> Error {
    if user.is_some_and(AbortSignal::aborted) {
        aborted()
    } else if timeout.aborted() {
        Error::new(ErrorCode::Timeout, format!("no answer within {} s", config.timeout_ms / 1000.0))
    } else {
        Error::new(ErrorCode::Network, format!("the proxy at {} cannot be reached: {what}", if config.base_url.is_empty() { "this page's origin" } else { &config.base_url }))
    }
}

fn aborted() -> Error {
    Error::new(ErrorCode::Aborted, "the run was cancelled")
}

fn check_abort(signal: Option<&AbortSignal>) -> Result<()> {
    if signal.is_some_and(AbortSignal::aborted) { Err(aborted()) } else { Ok(()) }
}
