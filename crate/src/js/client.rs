//! `Florence2Client` for JS: reads JS objects into the Rust client's types and back.

use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use serde::Deserialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;
use web_sys::AbortSignal;

use crate::browser::client::{Client, ClientConfig, RunRequest, Stage};
use crate::browser::describe;
use crate::js::convert::{bytes_of, from_js, js_error, overlay_to_js, to_js};
use crate::task::Task;
use crate::{Error, ErrorCode};

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

/// A client of our proxy.
#[wasm_bindgen]
pub struct Florence2Client {
    client: Client,
}

#[wasm_bindgen]
impl Florence2Client {
    /// `new Florence2Client({ baseUrl, apiKey?, timeoutMs?, maxRetries?, maxRetryWaitMs?, maxBase64Chars? })`;
    /// `baseUrl` defaults to the page's own origin.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "ClientOptions | undefined")] options: JsValue,
    ) -> Result<Florence2Client, JsValue> {
        let o: ClientOptions = if options.is_undefined() || options.is_null() {
            ClientOptions::default()
        } else {
            from_js(options, ErrorCode::BadOption, "client options")?
        };
        let d = ClientConfig::default();
        let max_base64_chars = match o.max_base64_chars {
            None => d.max_base64_chars,
            Some(v) => crate::image_prep::max_base64_chars(v).map_err(js_error)?,
        };
        let config = ClientConfig {
            base_url: o.base_url.unwrap_or(d.base_url),
            api_key: o.api_key,
            timeout_ms: o.timeout_ms.unwrap_or(d.timeout_ms),
            max_retries: o.max_retries.unwrap_or(d.max_retries),
            max_retry_wait_ms: o.max_retry_wait_ms.unwrap_or(d.max_retry_wait_ms),
            max_base64_chars,
        };
        Ok(Florence2Client {
            client: Client::new(config).map_err(js_error)?,
        })
    }

    /// Runs `{ image, task, text?, signal?, onProgress? }` → `{ result, overlay, sent, timings }`.
    #[wasm_bindgen(unchecked_return_type = "Promise<RunResult>")]
    pub fn run(
        &self,
        #[wasm_bindgen(unchecked_param_type = "RunRequest")] request: JsValue,
    ) -> Promise {
        let client = self.client.clone();
        future_to_promise(async move {
            let request = read_request(&request).await.map_err(js_error)?;
            let out = client.run(request).await.map_err(js_error)?;
            let obj = Object::new();
            let set = |k: &str, v: &JsValue| {
                // Defining a property on a plain object we just made cannot fail.
                let _ = Reflect::set(&obj, &k.into(), v);
            };
            set("result", &to_js(&out.result)?);
            set("overlay", &overlay_to_js(out.overlay.as_ref(), None));
            set("sent", &to_js(&out.sent)?);
            set("timings", &to_js(&out.timings)?);
            Ok(obj.into())
        })
    }

    /// The proxy's `GET /healthz`: `{ ok, backend: "nvidia" | "local", model?, queue?, … }`.
    #[wasm_bindgen(unchecked_return_type = "Promise<ProxyHealth>")]
    pub fn health(&self, signal: Option<AbortSignal>) -> Promise {
        let client = self.client.clone();
        future_to_promise(async move {
            let health = client.health(signal.as_ref()).await.map_err(js_error)?;
            to_js(&health)
        })
    }

    /// The tasks this proxy runs, described like `TASKS`: the endpoint's 14, plus
    /// `<REGION_TO_OCR>` when its backend is the local model.
    #[wasm_bindgen(unchecked_return_type = "Promise<TaskInfo[]>")]
    pub fn tasks(&self, signal: Option<AbortSignal>) -> Promise {
        let client = self.client.clone();
        future_to_promise(async move {
            let tasks = client.tasks(signal.as_ref()).await.map_err(js_error)?;
            to_js(&crate::task::task_infos(tasks))
        })
    }

    /// Uploads image bytes through the proxy's asset route; resolves to the asset id.
    #[wasm_bindgen(js_name = uploadAsset, unchecked_return_type = "Promise<string>")]
    pub fn upload_asset(
        &self,
        bytes: Uint8Array,
        mime: Option<String>,
        signal: Option<AbortSignal>,
    ) -> Promise {
        let client = self.client.clone();
        future_to_promise(async move {
            let mime = mime.unwrap_or_else(|| "image/jpeg".into());
            client
                .upload(&bytes.to_vec(), &mime, signal.as_ref())
                .await
                .map(JsValue::from)
                .map_err(js_error)
        })
    }
}

fn get(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

async fn read_request(request: &JsValue) -> crate::Result<RunRequest> {
    if !request.is_object() {
        return Err(Error::new(
            ErrorCode::BadOption,
            "run() takes { image, task, text?, signal?, onProgress?, maxTokens? }",
        ));
    }
    let token = get(request, "task").as_string().ok_or_else(|| {
        Error::new(
            ErrorCode::UnknownTask,
            "task must be a task token such as \"<OD>\"",
        )
    })?;
    let task = Task::from_token(&token)?;
    let text = get(request, "text").as_string();
    // Validate the prompt before reading a possibly large image.
    crate::prompt::Prompt::new(task, text.as_deref())?;
    let signal = get(request, "signal").dyn_into::<AbortSignal>().ok();
    let on_progress =
        get(request, "onProgress")
            .dyn_into::<Function>()
            .ok()
            .map(|f| -> Rc<dyn Fn(Stage)> {
                Rc::new(move |stage: Stage| {
                    let event = Object::new();
                    let _ = Reflect::set(&event, &"stage".into(), &stage.as_str().into());
                    // A throwing callback is the caller's bug; it must not break the run.
                    let _ = f.call1(&JsValue::NULL, &event);
                })
            });
    let image = bytes_of(&get(request, "image"))
        .await
        .map_err(|e| Error::new(ErrorCode::BadOption, format!("image: {}", describe(&e))))?;
    let max_tokens = match get(request, "maxTokens") {
        v if v.is_undefined() || v.is_null() => None,
        v => match v.as_f64() {
            Some(n) if n.fract() == 0.0 && (1.0..=f64::from(u32::MAX)).contains(&n) => {
                Some(n as u32)
            }
            _ => {
                return Err(Error::new(
                    ErrorCode::BadOption,
                    "maxTokens must be a whole number of at least 1",
                ));
            }
        },
    };
    Ok(RunRequest {
        image,
        task,
        text,
        signal,
        on_progress,
        max_tokens,
    })
}
