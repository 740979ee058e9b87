//! The JS boundary of the model in this browser: `Florence2Local` (the package's
//! `local/index.js`, which `cargo xtask build` copies into `web/dist/local/`), in Rust types.
//! The rest of the demo sees `LocalModel`, `florence2::Error` and `Florence2Result`, never a
//! `JsValue`.

use std::rc::Rc;

use florence2::{Error, ErrorCode, Florence2Result};
use js_sys::{Object, Promise, Reflect, Uint8Array};
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::AbortSignal;

use crate::session::local_model::{LoadProgress, LocalInfo, RunOptions};
use crate::workbench::timings::LocalTimings;

/// Called after every generated token with the text so far and the tokens generated.
pub type OnToken = Rc<dyn Fn(String, u32)>;

// The specifier is kept as written: relative to demo.js, so web/dist works under any path.
#[wasm_bindgen(raw_module = "./local/index.js")]
extern "C" {
    type Florence2Local;

    #[wasm_bindgen(static_method_of = Florence2Local, js_name = load)]
    fn load_js(options: &Object) -> Promise;

    #[wasm_bindgen(method, getter)]
    fn info(this: &Florence2Local) -> JsValue;

    #[wasm_bindgen(method, js_name = run)]
    fn run_js(this: &Florence2Local, options: &Object) -> Promise;

    #[wasm_bindgen(method)]
    fn dispose(this: &Florence2Local);
}

/// A model loaded in its worker; the worker ends when this is dropped.
pub struct LocalModel {
    inner: Florence2Local,
    pub info: LocalInfo,
}

impl Drop for LocalModel {
    fn drop(&mut self) {
        self.inner.dispose();
    }
}

/// What a load needs.
pub struct Load<'a> {
    pub model_url: &'a str,
    pub backend: &'a str,
    pub signal: &'a AbortSignal,
    pub on_progress: Rc<dyn Fn(LoadProgress)>,
}

/// `Florence2Local.load`.
pub async fn load(request: Load<'_>) -> Result<LocalModel, Error> {
    let on_progress = request.on_progress;
    let progress = Closure::<dyn FnMut(JsValue)>::new(move |p: JsValue| {
        if let Ok(p) = from_js::<LoadProgress>(&p) {
            on_progress(p);
        }
    });
    let options = object(&[
        ("modelUrl", JsValue::from_str(request.model_url)),
        ("backend", JsValue::from_str(request.backend)),
        ("signal", request.signal.into()),
        ("onProgress", progress.as_ref().clone()),
    ]);
    // The closure lives until the load has settled: no progress comes after that.
    let loaded = JsFuture::from(Florence2Local::load_js(&options)).await;
    drop(progress);
    let inner: Florence2Local = loaded.map_err(|e| error_of(&e))?.unchecked_into();
    let info = from_js::<LocalInfo>(&inner.info()).map_err(|why| {
        inner.dispose();
        Error::new(ErrorCode::ModelInvalid, format!("local.info: {why}"))
    })?;
    Ok(LocalModel { inner, info })
}

impl LocalModel {
    /// `local.run`: the result JSON (the same type as the remote path's, `source: "local"`),
    /// whether the picture's features were the last run's (`imageReused`) and the run's
    /// `timings`; with `on_token`, the text so far after every token (`onToken`).
    pub async fn run(
        &self,
        image: &[u8],
        task: &str,
        text: Option<&str>,
        options: RunOptions,
        signal: &AbortSignal,
        on_token: Option<OnToken>,
    ) -> Result<LocalAnswer, Error> {
        let mut fields = vec![
            ("image", Uint8Array::from(image).into()),
            ("task", JsValue::from_str(task)),
            ("signal", signal.into()),
        ];
        if let Some(text) = text {
            fields.push(("text", JsValue::from_str(text)));
        }
        if let Some(beams) = options.beams {
            fields.push(("beams", beams.into()));
        }
        if let Some(n) = options.max_new_tokens {
            fields.push(("maxNewTokens", n.into()));
        }
        let text_key = JsValue::from_str("text");
        let tokens_key = JsValue::from_str("tokens");
        let token = on_token.map(|on_token| {
            Closure::<dyn FnMut(JsValue)>::new(move |t: JsValue| {
                let field = |k: &JsValue| Reflect::get(&t, k).unwrap_or_default();
                let text = field(&text_key).as_string().unwrap_or_default();
                let tokens = field(&tokens_key).as_f64().unwrap_or(0.0) as u32;
                on_token(text, tokens);
            })
        });
        if let Some(token) = &token {
            fields.push(("onToken", token.as_ref().clone()));
        }
        // The closure lives until the run has settled: no token comes after that.
        let output = JsFuture::from(self.inner.run_js(&object(&fields))).await;
        drop(token);
        let output = output.map_err(|e| error_of(&e))?;
        let result = Reflect::get(&output, &JsValue::from_str("result")).unwrap_or_default();
        let result = from_js(&result).map_err(|why| {
            Error::new(
                ErrorCode::ResponseInvalid,
                format!("the local model's result: {why}"),
            )
        })?;
        let image_reused = Reflect::get(&output, &JsValue::from_str("imageReused"))
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let timings = Reflect::get(&output, &JsValue::from_str("timings"))
            .ok()
            .and_then(|t| from_js(&t).ok())
            .unwrap_or_default();
        Ok(LocalAnswer {
            result,
            image_reused,
            timings,
        })
    }
}

/// What one `local.run` answered.
pub struct LocalAnswer {
    pub result: Florence2Result,
    /// The picture was the previous run's: its decoding and the vision tower were skipped.
    pub image_reused: bool,
    /// Where the run's time went, as its worker measured it.
    pub timings: LocalTimings,
}

fn object(fields: &[(&str, JsValue)]) -> Object {
    let object = Object::new();
    for (key, value) in fields {
        // Setting a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&object, &JsValue::from_str(key), value);
    }
    object
}

/// A plain JS object (as JSON) into a Rust type.
fn from_js<T: DeserializeOwned>(value: &JsValue) -> Result<T, String> {
    let json = js_sys::JSON::stringify(value)
        .map_err(|e| florence2::browser::describe(&e))?
        .as_string()
        .unwrap_or_default();
    serde_json::from_str(&json).map_err(|e| e.to_string())
}

/// A `Florence2Error` (`code`, `message`) into florence2's error; anything else thrown (the
/// runtime's files missing, a worker that cannot start) is an unusable model.
fn error_of(e: &JsValue) -> Error {
    let field = |name: &str| {
        Reflect::get(e, &JsValue::from_str(name))
            .ok()
            .and_then(|v| v.as_string())
    };
    let code = field("code")
        .and_then(|c| serde_json::from_value::<ErrorCode>(serde_json::Value::String(c)).ok())
        .unwrap_or(ErrorCode::ModelInvalid);
    let message = field("message").unwrap_or_else(|| florence2::browser::describe(e));
    Error::new(code, message)
}
