//! Reading a model folder (the proxy's only model file I/O) and describing the loaded model
//! for `/healthz`.

use std::fs::File;
use std::io::{BufReader, ErrorKind};
use std::path::Path;
use std::time::Instant;

use burn::tensor::Device;
use florence2_burn::safetensors_file::SafetensorsFile;
use florence2_burn::{Florence2, Layout, ModelFiles};
use serde::Serialize;

/// What `/healthz` says about the model.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelInfo {
    /// The folder's name (e.g. `Florence-2-base`).
    pub name: String,
    pub folder: String,
    /// Parameters stored in the checkpoint (tied embeddings counted once).
    pub parameters: u64,
    /// `native` (transformers) or `original` (microsoft's remote-code checkpoints).
    pub layout: &'static str,
    pub vision_dims: Vec<usize>,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub vocab_size: usize,
    /// The model's input image, `[width, height]`.
    pub image_size: [u32; 2],
    pub num_beams: usize,
    pub max_new_tokens: usize,
    pub no_repeat_ngram_size: usize,
    pub device: &'static str,
    pub load_ms: f64,
}

/// Loads the model of `dir` on the CPU; the error names the file and what is wrong with it.
pub fn load(dir: &Path) -> Result<(Florence2, ModelInfo), String> {
    let started = Instant::now();
    if !dir.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let read = |name: &str| -> Result<Vec<u8>, String> {
        std::fs::read(dir.join(name)).map_err(|e| format!("{}: {e}", dir.join(name).display()))
    };
    let optional = |name: &str| -> Result<Option<Vec<u8>>, String> {
        match std::fs::read(dir.join(name)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", dir.join(name).display())),
        }
    };
    let open = || -> Result<BufReader<File>, String> {
        let path = dir.join("model.safetensors");
        File::open(&path)
            .map(BufReader::new)
            .map_err(|e| format!("{}: {e}", path.display()))
    };
    let processor_config = match optional("processor_config.json")? {
        Some(bytes) => Some(bytes),
        None => optional("preprocessor_config.json")?,
    };
    let files = ModelFiles {
        config: read("config.json")?,
        checkpoint: open()?,
        tokenizer: read("tokenizer.json")?,
        generation_config: optional("generation_config.json")?,
        processor_config,
    };
    let device = Device::flex();
    let model = Florence2::load(files, &device).map_err(|e| e.to_string())?;
    let parameters = SafetensorsFile::open(open()?)
        .map(|file| {
            let names: Vec<String> = file.names().map(str::to_owned).collect();
            names
                .iter()
                .filter_map(|n| file.shape(n))
                .map(|shape| shape.iter().product::<usize>() as u64)
                .sum()
        })
        .map_err(|e| e.to_string())?;
    let config = model.model.config();
    let (text, vision) = (&config.text_config, &config.vision_config);
    let folder = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let info = ModelInfo {
        name: folder.file_name().map_or_else(
            || folder.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
        folder: folder.display().to_string(),
        parameters,
        layout: match model.model.layout() {
            Layout::Native => "native",
            Layout::Original => "original",
        },
        vision_dims: vision.embed_dim.clone(),
        d_model: text.d_model,
        encoder_layers: text.encoder_layers,
        decoder_layers: text.decoder_layers,
        vocab_size: text.vocab_size,
        image_size: [model.image_processor.width, model.image_processor.height],
        num_beams: model.generation.num_beams,
        max_new_tokens: model.generation.max_new_tokens,
        no_repeat_ngram_size: model.generation.no_repeat_ngram_size,
        device: "cpu",
        load_ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    Ok((model, info))
}
