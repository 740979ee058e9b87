//! The boundary the worker (`js/worker.js`) calls: load a model folder's bytes on a device,
//! run one prompt. Files arrive as JS `Uint8Array`s and the checkpoint is read from the JS heap
//! in place, tensor by tensor, so the download is never copied whole into wasm memory.

use std::cell::RefCell;
use std::io::{Read, Seek, SeekFrom};
use std::rc::Rc;

use burn::tensor::Device;
use florence2::{Error, ErrorCode, ImageSize};
use florence2_burn::{Florence2, ImageFeatures, LoadOptions, MemoryLimits, ModelFiles, RgbImage};
use js_sys::{Function, Promise, Reflect, Uint8Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::error::{from_load, from_run};
use crate::request::RunRequest;

/// A JS `Error` named `Florence2Error` with its stable `code` (the worker copies both over).
fn js_error(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.message);
    err.set_name("Florence2Error");
    let _ = Reflect::set(err.as_ref(), &"code".into(), &e.code.as_str().into());
    err.into()
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);

    /// `performance.now()`: the worker's own clock, in ms.
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn now() -> f64;
}

/// A Rust panic ends as `RuntimeError: unreachable` in the worker, which says nothing of why:
/// its message goes to the console first, where a bug report can quote it.
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error(&format!("florence2-local panicked: {info}"));
    }));
}

/// Whether this build has the WebGPU backend.
#[wasm_bindgen(js_name = hasWebgpu)]
pub fn has_webgpu() -> bool {
    cfg!(feature = "webgpu")
}

/// Starts the CPU backend's pool on `n` Web Workers; the worker calls it once, before
/// loading, in the `threads` build only. Passes then run on the pool (see [`on_pool`]).
#[cfg(feature = "threads")]
#[wasm_bindgen(js_name = startThreads)]
pub async fn start_threads(n: usize) -> Result<(), JsValue> {
    JsFuture::from(wasm_bindgen_rayon::init_thread_pool(n)).await?;
    florence2_burn::cpu::adopt_pool();
    Ok(())
}

/// Runs `f` (a vision pass, the encoder, a decoder step) on one of the pool's threads: its
/// kernels then hand out work from inside the pool and take their share, rather than wake
/// the pool from outside for each of a decoder step's ~60 products while this thread waits.
#[cfg(feature = "threads")]
fn on_pool<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    florence2_burn::cpu::on_pool(f)
}

#[cfg(not(feature = "threads"))]
fn on_pool<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// How many threads the CPU backend's kernels run on: the pool's size, 1 without one.
#[wasm_bindgen]
pub fn threads() -> usize {
    florence2_burn::cpu::threads()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    dtype: &'static str,
    parameters: u64,
    /// The weights' bytes in memory (wasm memory or GPU buffers).
    weight_bytes: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunAnswer<'a> {
    result: &'a florence2::Florence2Result,
    generated_ids: &'a [u32],
    decoded: &'a str,
    /// Whether the picture's features came from the previous run (the same bytes).
    image_reused: bool,
    timings: Timings,
}

/// Where a run's time went (ms, the worker's clock). `vision_ms`: decoding the picture and the
/// vision tower (0 when the picture was reused); `encoder_ms`: the prompt and the encoder;
/// `decoder_ms_per_token`: the decoding loop over `tokens` generated tokens (each step's wait
/// for a cancel and its `onToken` included, as a person sees it).
#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Timings {
    vision_ms: f64,
    encoder_ms: f64,
    decoder_ms_per_token: f64,
    tokens: usize,
}

/// The last picture's bytes and features: a second task on the same picture (the common case:
/// caption it, then detect, then ground a phrase) skips decoding and the vision tower.
type LastImage = Rc<RefCell<Option<(Vec<u8>, ImageFeatures)>>>;

/// A run's picture: the last run's (the same bytes), or a new one, decoded.
enum Picture {
    Seen(Box<ImageFeatures>),
    New(RgbImage),
}

#[wasm_bindgen]
pub struct LocalModel {
    model: Rc<Florence2>,
    last_image: LastImage,
    info: String,
}

#[wasm_bindgen]
impl LocalModel {
    /// `files`: `{ config, model, tokenizer, generationConfig?, processorConfig? }`
    /// (`Uint8Array`s); `backend`: `"webgpu"` or `"cpu"`; `gpu_buffer_bytes`: the adapter's
    /// largest buffer it binds (`min(maxStorageBufferBindingSize, maxBufferSize)`; the device
    /// gets the adapter's limits).
    pub async fn load(
        files: JsValue,
        backend: String,
        gpu_buffer_bytes: Option<f64>,
    ) -> Result<LocalModel, JsValue> {
        let device = device(&backend).await.map_err(js_error)?;
        let file = |name: &str| -> Option<Uint8Array> {
            Reflect::get(&files, &name.into())
                .ok()
                .and_then(|v| v.dyn_into::<Uint8Array>().ok())
        };
        let missing = |name: &str| {
            js_error(Error::new(
                ErrorCode::ModelInvalid,
                format!("the model folder has no {name}"),
            ))
        };
        let config = file("config").ok_or_else(|| missing("config.json"))?;
        let checkpoint = file("model").ok_or_else(|| missing("model.safetensors"))?;
        let tokenizer = file("tokenizer").ok_or_else(|| missing("tokenizer.json"))?;
        let files = ModelFiles {
            config: config.to_vec(),
            checkpoint: JsBytes::new(checkpoint),
            tokenizer: tokenizer.to_vec(),
            generation_config: file("generationConfig").map(|a| a.to_vec()),
            processor_config: file("processorConfig").map(|a| a.to_vec()),
        };
        let options = match backend.as_str() {
            // Base's token matrix (150 MiB in f32) goes in blocks of the 128 MiB every adapter
            // binds; a model whose activations exceed this adapter's buffers is refused.
            "webgpu" => LoadOptions {
                limits: MemoryLimits {
                    memory_bytes: None,
                    buffer_bytes: gpu_buffer_bytes
                        .filter(|b| *b >= 1.0)
                        .map(|b| b as u64)
                        .or(LoadOptions::WEBGPU.limits.buffer_bytes),
                },
                ..LoadOptions::WEBGPU
            },
            // The weights and every activation live in this instance's memory.
            _ => LoadOptions {
                limits: MemoryLimits::WASM32,
                ..LoadOptions::default()
            },
        };
        let model =
            Florence2::load_with(files, &device, options).map_err(|e| js_error(from_load(e)))?;
        // As the checkpoint holds them: f32 (f16 files widened: f16 weights alone change ids
        // of the tiny goldens, pkg/README.md), or quantized ("q8", "q4", "mixed"), which stay
        // quantized in memory.
        let info = serde_json::to_string(&Info {
            dtype: model.dtype(),
            parameters: model.parameters(),
            weight_bytes: model.weight_bytes(),
        })
        .unwrap_or_default();
        Ok(LocalModel {
            model: Rc::new(model),
            last_image: LastImage::default(),
            info,
        })
    }

    /// Runs a blank picture through every stage once, with two tokens of the checkpoint's
    /// search (beams included), reading the logits back as a run does: on WebGPU the kernels
    /// are compiled here rather than in the user's first prompt. (The CPU has nothing to
    /// compile: the worker does not call this there.)
    pub async fn warmup(&self) -> Result<(), JsValue> {
        warmup(&self.model).await.map_err(|e| js_error(from_run(e)))
    }

    /// `{ dtype, parameters, weightBytes }` as JSON.
    pub fn info(&self) -> String {
        self.info.clone()
    }

    /// Runs `request` (the JSON of `RunRequest`) on the image's bytes. `between` is called
    /// between the stages and before every token, returns a promise (a turn of the worker's
    /// event loop, where an abort message can arrive) and resolves to `true` to stop.
    /// `on_token`, when given, is called after every generated token with the text so far
    /// (the best hypothesis's, post-processed as the final result's `text` is) and the number
    /// of tokens generated. Resolves to `{ result, generatedIds, decoded, imageReused,
    /// timings }` as JSON.
    pub fn run(
        &self,
        image: Uint8Array,
        request: String,
        between: Function,
        on_token: Option<Function>,
    ) -> Promise {
        let model = Rc::clone(&self.model);
        let last_image = Rc::clone(&self.last_image);
        wasm_bindgen_futures::future_to_promise(async move {
            let calls = Calls {
                between: &between,
                on_token: on_token.as_ref(),
            };
            run(&model, &last_image, &image.to_vec(), &request, calls)
                .await
                .map(JsValue::from)
                .map_err(js_error)
        })
    }
}

async fn warmup(model: &Florence2) -> florence2_burn::Result<()> {
    let c = &model.image_processor;
    let (width, height) = (c.width.max(1), c.height.max(1));
    let blank = RgbImage::new(
        width,
        height,
        vec![128; width as usize * height as usize * 3],
    )?;
    let features = model.image_features(&blank)?;
    let mut generation = model.generation.clone();
    generation.max_new_tokens = 2;
    generation.min_new_tokens = 2;
    let mut started = model.start_from(&features, florence2::Task::Caption, None, &generation)?;
    while !started.decoding.is_done() {
        started.decoding.step_async().await?;
    }
    Ok(())
}

/// The worker's callbacks into a run.
struct Calls<'a> {
    between: &'a Function,
    on_token: Option<&'a Function>,
}

async fn run(
    model: &Florence2,
    last_image: &LastImage,
    image: &[u8],
    request: &str,
    calls: Calls<'_>,
) -> Result<String, Error> {
    // `between` is asked first (its turn of the event loop is a timer: at least 4 ms once
    // nested), then the caller's work runs while that timer waits, then the answer is awaited.
    let stop = |meanwhile: &mut dyn FnMut()| {
        let promise = calls
            .between
            .call0(&JsValue::NULL)
            .ok()
            .and_then(|p| p.dyn_into::<Promise>().ok());
        meanwhile();
        async move {
            match promise {
                Some(p) => JsFuture::from(p)
                    .await
                    .map(|v| v.is_truthy())
                    .unwrap_or(true),
                None => true,
            }
        }
    };
    let cancelled = || Error::new(ErrorCode::Aborted, "the run was cancelled");
    let request = RunRequest::from_json(request)?;
    let reused = last_image
        .borrow()
        .as_ref()
        .filter(|(bytes, _)| bytes.as_slice() == image)
        .map(|(_, features)| features.clone());
    let picture = match reused {
        Some(features) => Picture::Seen(Box::new(features)),
        None => Picture::New(RgbImage::decode(image).map_err(from_run)?),
    };
    let image_reused = matches!(picture, Picture::Seen(_));
    let size = match &picture {
        Picture::Seen(features) => features.size(),
        Picture::New(decoded) => ImageSize::new(decoded.width, decoded.height),
    };
    // The request's checks before the vision pass: a refused task or text costs none.
    let max_positions = model.model.config().text_config.max_position_embeddings;
    let plan = request.plan(size, &model.generation, max_positions)?;
    if stop(&mut || {}).await {
        return Err(cancelled());
    }
    let mut timings = Timings::default();
    let vision_started = now();
    let features = match picture {
        Picture::Seen(features) => *features,
        Picture::New(decoded) => {
            let features = on_pool(|| model.image_features(&decoded)).map_err(from_run)?;
            *last_image.borrow_mut() = Some((image.to_vec(), features.clone()));
            features
        }
    };
    // The picture's decoding counts too: a reused picture skips both.
    timings.vision_ms = if image_reused {
        0.0
    } else {
        now() - vision_started
    };
    let encoder_started = now();
    let mut started =
        on_pool(|| model.start_from(&features, plan.task, plan.text.as_deref(), &plan.generation))
            .map_err(from_run)?;
    timings.encoder_ms = now() - encoder_started;
    let decoder_started = now();
    // The text after a token is sent while the next step's turn of the event loop waits (the
    // last one after the loop): streaming costs the decoding next to nothing.
    let mut unsent: Option<Vec<u32>> = None;
    let send = |ids: Option<Vec<u32>>, tokens: usize| {
        if let (Some(on_token), Some(ids)) = (calls.on_token, ids) {
            let text = text_so_far(model, plan.task, size, &ids);
            let _ = on_token.call2(
                &JsValue::NULL,
                &JsValue::from_str(&text),
                &JsValue::from(tokens as f64),
            );
        }
    };
    while !started.decoding.is_done() {
        let tokens = timings.tokens;
        if stop(&mut || send(unsent.take(), tokens)).await {
            return Err(cancelled());
        }
        // The threaded build is the CPU's alone, whose reads never wait.
        #[cfg(feature = "threads")]
        on_pool(|| started.decoding.step()).map_err(from_run)?;
        #[cfg(not(feature = "threads"))]
        started.decoding.step_async().await.map_err(from_run)?;
        timings.tokens += 1;
        if calls.on_token.is_some() {
            unsent = Some(started.decoding.ids());
        }
    }
    send(unsent.take(), timings.tokens);
    if timings.tokens > 0 {
        timings.decoder_ms_per_token = (now() - decoder_started) / timings.tokens as f64;
    }
    let out = model.finish(started).map_err(from_run)?;
    serde_json::to_string(&RunAnswer {
        result: &out.result,
        generated_ids: &out.generated_ids,
        decoded: &out.decoded,
        image_reused,
        timings,
    })
    .map_err(|e| Error::new(ErrorCode::PostProcess, e.to_string()))
}

/// The text of the best hypothesis so far, as the final result's `text` will read once it is
/// complete (the same decoding, the same post-processing); the raw decoding when the partial
/// answer does not post-process.
fn text_so_far(model: &Florence2, task: florence2::Task, size: ImageSize, ids: &[u32]) -> String {
    let Ok(decoded) = model.tokenizer.decode(ids, false) else {
        return String::new();
    };
    match florence2::post_process(task, &decoded, size) {
        Ok(answer) => answer.text,
        Err(_) => decoded,
    }
}

async fn device(backend: &str) -> Result<Device, Error> {
    match backend {
        "cpu" => Ok(Device::flex()),
        #[cfg(feature = "webgpu")]
        "webgpu" => Device::wgpu_options()
            .init_async()
            .await
            .map_err(|e| Error::new(ErrorCode::WebgpuUnavailable, format!("WebGPU: {e}"))),
        #[cfg(not(feature = "webgpu"))]
        "webgpu" => Err(Error::new(
            ErrorCode::WebgpuUnavailable,
            "this build of the local runtime has no WebGPU backend",
        )),
        other => Err(Error::new(
            ErrorCode::BadOption,
            format!("backend must be \"webgpu\" or \"cpu\", not {other:?}"),
        )),
    }
}

/// A `Uint8Array` on the JS heap as a `Read + Seek` source: each read copies just the bytes
/// asked for into wasm memory.
struct JsBytes {
    array: Uint8Array,
    position: u64,
}

impl JsBytes {
    fn new(array: Uint8Array) -> Self {
        JsBytes { array, position: 0 }
    }
}

impl Read for JsBytes {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let len = u64::from(self.array.length());
        let start = self.position.min(len);
        let end = (start + buf.len() as u64).min(len);
        let n = (end - start) as usize;
        self.array
            .subarray(start as u32, end as u32)
            .copy_to(&mut buf[..n]);
        self.position = end;
        Ok(n)
    }
}

impl Seek for JsBytes {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let len = i128::from(self.array.length());
        let target = match pos {
            SeekFrom::Start(p) => i128::from(p),
            SeekFrom::End(d) => len + i128::from(d),
            SeekFrom::Current(d) => i128::from(self.position) + i128::from(d),
        };
        if target < 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start",
            ));
        }
        self.position = target as u64;
        Ok(self.position)
    }
}
