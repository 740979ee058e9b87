//! The boundary the worker (`js/worker.js`) calls: load a model folder's bytes on a device,
//! run one prompt. Files arrive as JS `Uint8Array`s and the checkpoint is read from the JS heap
//! in place, tensor by tensor, so the download is never copied whole into wasm memory.

use std::io::{Read, Seek, SeekFrom};
use std::rc::Rc;

use burn::tensor::Device;
use florence2::{Error, ErrorCode, ImageSize};
use florence2_burn::safetensors_file::SafetensorsFile;
use florence2_burn::{Florence2, ModelFiles, RgbImage};
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

/// Whether this build has the WebGPU backend.
#[wasm_bindgen(js_name = hasWebgpu)]
pub fn has_webgpu() -> bool {
    cfg!(feature = "webgpu")
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Info {
    dtype: &'static str,
    parameters: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RunAnswer<'a> {
    result: &'a florence2::Florence2Result,
    generated_ids: &'a [u32],
    decoded: &'a str,
}

#[wasm_bindgen]
pub struct LocalModel {
    model: Rc<Florence2>,
    info: String,
}

#[wasm_bindgen]
impl LocalModel {
    /// `files`: `{ config, model, tokenizer, generationConfig?, processorConfig? }`
    /// (`Uint8Array`s); `backend`: `"webgpu"` or `"cpu"`.
    pub async fn load(files: JsValue, backend: String) -> Result<LocalModel, JsValue> {
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
        let parameters = count_parameters(&checkpoint).map_err(|e| js_error(from_load(e)))?;
        let files = ModelFiles {
            config: config.to_vec(),
            checkpoint: JsBytes::new(checkpoint),
            tokenizer: tokenizer.to_vec(),
            generation_config: file("generationConfig").map(|a| a.to_vec()),
            processor_config: file("processorConfig").map(|a| a.to_vec()),
        };
        let model = Florence2::load(files, &device).map_err(|e| js_error(from_load(e)))?;
        let info = serde_json::to_string(&Info {
            dtype: "f32",
            parameters,
        })
        .unwrap_or_default();
        Ok(LocalModel {
            model: Rc::new(model),
            info,
        })
    }

    /// `{ dtype, parameters }` as JSON.
    pub fn info(&self) -> String {
        self.info.clone()
    }

    /// Runs `request` (the JSON of `RunRequest`) on the image's bytes. `between` is called
    /// between the stages and before every token, returns a promise (a turn of the worker's
    /// event loop, where an abort message can arrive) and resolves to `true` to stop.
    /// Resolves to `{ result, generatedIds, decoded }` as JSON.
    pub fn run(&self, image: Uint8Array, request: String, between: Function) -> Promise {
        let model = Rc::clone(&self.model);
        wasm_bindgen_futures::future_to_promise(async move {
            run(&model, &image.to_vec(), &request, &between)
                .await
                .map(JsValue::from)
                .map_err(js_error)
        })
    }
}

async fn run(
    model: &Florence2,
    image: &[u8],
    request: &str,
    between: &Function,
) -> Result<String, Error> {
    let stop = || async {
        let promise = between
            .call0(&JsValue::NULL)
            .ok()
            .and_then(|p| p.dyn_into::<Promise>().ok());
        match promise {
            Some(p) => JsFuture::from(p)
                .await
                .map(|v| v.is_truthy())
                .unwrap_or(true),
            None => true,
        }
    };
    let cancelled = || Error::new(ErrorCode::Aborted, "the run was cancelled");
    let request = RunRequest::from_json(request)?;
    let image = RgbImage::decode(image).map_err(from_run)?;
    let size = ImageSize::new(image.width, image.height);
    let max_positions = model.model.config().text_config.max_position_embeddings;
    let plan = request.plan(size, &model.generation, max_positions)?;
    if stop().await {
        return Err(cancelled());
    }
    let mut started = model
        .start(
            &image,
            plan.task,
            plan.text.as_deref(),
            &plan.generation,
            &|| false,
        )
        .map_err(from_run)?;
    while !started.decoding.is_done() {
        if stop().await {
            return Err(cancelled());
        }
        started.decoding.step_async().await.map_err(from_run)?;
    }
    let out = model.finish(started).map_err(from_run)?;
    serde_json::to_string(&RunAnswer {
        result: &out.result,
        generated_ids: &out.generated_ids,
        decoded: &out.decoded,
    })
    .map_err(|e| Error::new(ErrorCode::PostProcess, e.to_string()))
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

/// The checkpoint's parameter count, from its header (tied tensors are stored once).
fn count_parameters(checkpoint: &Uint8Array) -> florence2_burn::Result<u64> {
    let file = SafetensorsFile::open(JsBytes::new(checkpoint.clone()))?;
    let names: Vec<String> = file.names().map(str::to_owned).collect();
    Ok(names
        .iter()
        .filter_map(|n| file.shape(n))
        .map(|shape| shape.iter().map(|&d| d as u64).product::<u64>())
        .sum())
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
