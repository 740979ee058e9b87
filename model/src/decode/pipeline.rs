//! The whole local path: image → preprocessing → task prompt → generation → decoding →
//! post-processing (crate `florence2`) → the result every path of the project returns.

use std::io::{Read, Seek};

use burn::tensor::{Device, Tensor};
use florence2::{Florence2Result, ImageSize, Source, Task};

use crate::decode::image::RgbImage;
use crate::decode::tokenizer::Tokenizer;
use crate::error::{Error, Result};
use crate::load::config::{Florence2Config, GenerationConfig, ImageProcessorConfig};
use crate::load::memory::{self, MemoryFloor, MemoryLimits, VisionFloor};
use crate::load::safetensors_file::SafetensorsFile;
use crate::load::weights;
use crate::network::model::{Decoding, Florence2Model, LoadOptions};

/// The files of a model folder, already read (file I/O is the caller's: a CLI, a fetch).
pub struct ModelFiles<R> {
    pub config: Vec<u8>,
    pub checkpoint: R,
    pub tokenizer: Vec<u8>,
    pub generation_config: Option<Vec<u8>>,
    /// `processor_config.json` or `preprocessor_config.json`.
    pub processor_config: Option<Vec<u8>>,
}

/// A loaded model with everything around it.
pub struct Florence2 {
    pub model: Florence2Model,
    pub tokenizer: Tokenizer,
    pub generation: GenerationConfig,
    pub image_processor: ImageProcessorConfig,
    /// Where the load's limits still matter: a processor that keeps each picture's size.
    limits: MemoryLimits,
    parameters: u64,
    /// The weights' bytes as held (f32, or quantized codes and scales).
    weight_bytes: u64,
}

/// Per-run overrides of the generation config.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    pub num_beams: Option<usize>,
    pub max_new_tokens: Option<usize>,
}

/// A run's result with the intermediate steps a check may want to see.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub result: Florence2Result,
    /// The prompt's ids (`<s>` … `</s>`), without the image.
    pub prompt_ids: Vec<u32>,
    /// How many image features went in front of the prompt.
    pub image_tokens: usize,
    /// Generated ids, decoder start token first.
    pub generated_ids: Vec<u32>,
    /// The generated ids decoded with special tokens.
    pub decoded: String,
    pub answer: florence2::Answer,
}

impl Florence2 {
    pub fn load<R: Read + Seek>(files: ModelFiles<R>, device: &Device) -> Result<Self> {
        Self::load_with(files, device, LoadOptions::default())
    }

    /// [`Florence2::load`] with the weights laid out as `options` say.
    pub fn load_with<R: Read + Seek>(
        files: ModelFiles<R>,
        device: &Device,
        options: LoadOptions,
    ) -> Result<Self> {
        let config = Florence2Config::from_json(&files.config)?;
        let generation = match &files.generation_config {
            Some(bytes) => GenerationConfig::from_json(bytes, &config.text_config)?,
            None => GenerationConfig::defaults_for(&config.text_config),
        };
        let image_processor = match &files.processor_config {
            Some(bytes) => ImageProcessorConfig::from_json(bytes)?,
            None => ImageProcessorConfig::default(),
        };
        let tokenizer = Tokenizer::from_bytes(&files.tokenizer)?;
        // Before any weight is read: a model that cannot take its own pictures is broken, one
        // that cannot fit is refused (in wasm, failing part-way would be a trap).
        memory::check_processor(&config.vision_config, &image_processor)?;
        let checkpoint = SafetensorsFile::open(files.checkpoint)?;
        let held = weights::held(&checkpoint)?;
        let vision = image_processor.do_resize.then(|| {
            VisionFloor::of(
                &config.vision_config,
                u64::from(image_processor.width),
                u64::from(image_processor.height),
            )
        });
        options
            .limits
            .check(&MemoryFloor::new(held.bytes, vision))?;
        let model = Florence2Model::from_checkpoint(config, checkpoint, device, options)?;
        Ok(Florence2 {
            model,
            tokenizer,
            generation,
            image_processor,
            limits: options.limits,
            parameters: held.parameters,
            weight_bytes: held.bytes,
        })
    }

    /// The weights' elements, as held (a tied matrix once, however many names store it).
    pub fn parameters(&self) -> u64 {
        self.parameters
    }

    /// The weights' bytes in memory (4 a weight, or the quantized codes and their scales).
    pub fn weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// How the weights are held: `"f32"`, or the quantization scheme (`"q8"`, `"q4"`,
    /// `"mixed"`).
    pub fn dtype(&self) -> &'static str {
        self.model.scheme().map_or("f32", |s| s.name())
    }

    /// The prompt's ids: the task's natural-language prompt (crate `florence2`) tokenized
    /// with `<s>` and `</s>`.
    pub fn prompt_ids(&self, task: Task, text: Option<&str>) -> Result<Vec<u32>> {
        let prompt = florence2::model_prompt(task, text)?;
        self.tokenizer.encode(&prompt, true)
    }

    /// The generation config of this model with `options` applied.
    pub fn generation_config(&self, options: RunOptions) -> GenerationConfig {
        let mut g = self.generation.clone();
        if let Some(n) = options.num_beams {
            g.num_beams = n;
        }
        if let Some(n) = options.max_new_tokens {
            g.max_new_tokens = n;
        }
        g
    }

    pub fn run(
        &self,
        image: &RgbImage,
        task: Task,
        text: Option<&str>,
        options: RunOptions,
    ) -> Result<RunOutput> {
        self.run_with(image, task, text, self.generation_config(options))
    }

    /// [`Florence2::run`] with a complete generation config.
    pub fn run_with(
        &self,
        image: &RgbImage,
        task: Task,
        text: Option<&str>,
        generation: GenerationConfig,
    ) -> Result<RunOutput> {
        self.run_until(image, task, text, generation, &|| false)
    }

    /// [`Florence2::run_with`] that asks `stop` between the stages and before every generated
    /// token, and ends with [`crate::Error::Cancelled`] when it says so.
    pub fn run_until(
        &self,
        image: &RgbImage,
        task: Task,
        text: Option<&str>,
        generation: GenerationConfig,
        stop: &dyn Fn() -> bool,
    ) -> Result<RunOutput> {
        // The prompt first: a task or text it refuses costs no vision pass.
        self.prompt_ids(task, text)?;
        let features = self.image_features(image)?;
        self.run_from(&features, task, text, generation, stop)
    }

    /// [`Florence2::run_until`] from a picture's features made earlier (see
    /// [`Florence2::start_from`]).
    pub fn run_from(
        &self,
        image: &ImageFeatures,
        task: Task,
        text: Option<&str>,
        generation: GenerationConfig,
        stop: &dyn Fn() -> bool,
    ) -> Result<RunOutput> {
        if stop() {
            return Err(Error::Cancelled);
        }
        let mut run = self.start_from(image, task, text, &generation)?;
        while !run.decoding.is_done() {
            if stop() {
                return Err(Error::Cancelled);
            }
            run.decoding.step()?;
        }
        self.finish(run)
    }

    /// Preprocessing, the vision tower and the projector: what the model makes of a picture,
    /// whatever the task. Nothing is read back, so on WebGPU this only queues work.
    pub fn image_features(&self, image: &RgbImage) -> Result<ImageFeatures> {
        if !self.image_processor.do_resize {
            self.check_picture(image)?;
        }
        let pixel_values = image.to_tensor(&self.image_processor, self.model.device())?;
        let features = self.model.vision_features(pixel_values, None)?;
        Ok(ImageFeatures {
            features: self.model.image_features(features)?,
            size: ImageSize::new(image.width, image.height),
        })
    }

    /// A picture taken at its own size: the position table must cover its feature grid and
    /// the limits its tensors, checked before the vision pass rather than during or after it.
    fn check_picture(&self, image: &RgbImage) -> Result<()> {
        let c = &self.model.config().vision_config;
        let (width, height) = (u64::from(image.width), u64::from(image.height));
        if let Some(grid) = memory::grid_beyond_table(c, width, height) {
            return Err(Error::Input(format!(
                "the image gives a {grid} feature grid, the position table has only {} rows \
                 and columns",
                c.max_position_embeddings
            )));
        }
        let vision = VisionFloor::of(c, width, height);
        self.limits
            .check(&MemoryFloor::new(self.weight_bytes, Some(vision)))
    }

    /// Everything before generation from a picture's features ([`Florence2::image_features`]):
    /// the prompt, the encoder, the decoder's start; nothing is read back, so on WebGPU this
    /// only queues work. Another task on the same picture skips the vision tower (the most
    /// expensive stage). Drive the returned run's [`crate::network::model::Decoding`] to its end, then
    /// [`Florence2::finish`].
    pub fn start_from(
        &self,
        image: &ImageFeatures,
        task: Task,
        text: Option<&str>,
        generation: &GenerationConfig,
    ) -> Result<StartedRun<'_>> {
        let prompt_ids = self.prompt_ids(task, text)?;
        let [_, image_tokens, _] = image.features.dims();
        let inputs_embeds = self
            .model
            .inputs_embeds(image.features.clone(), &prompt_ids)?;
        let encoder_hidden = self.model.encode(inputs_embeds, None)?;
        let decoding = self.model.start_decoding(&encoder_hidden, generation)?;
        Ok(StartedRun {
            decoding,
            task,
            size: image.size,
            prompt_ids,
            image_tokens,
        })
    }

    /// Decodes a finished run's ids and post-processes them (crate `florence2`).
    pub fn finish(&self, run: StartedRun<'_>) -> Result<RunOutput> {
        let generated_ids = run.decoding.ids();
        let decoded = self.tokenizer.decode(&generated_ids, false)?;
        let answer = florence2::post_process(run.task, &decoded, run.size)?;
        let result = Florence2Result {
            task: run.task.token().to_owned(),
            text: answer.text.clone(),
            entities: answer.entities.clone(),
            image: run.size,
            source: Source::Local,
            usage: None,
        };
        Ok(RunOutput {
            result,
            prompt_ids: run.prompt_ids,
            image_tokens: run.image_tokens,
            generated_ids,
            decoded,
            answer,
        })
    }
}

/// The projected image features of one picture (a cheap handle: clones share the tensor) and
/// the picture's size, which post-processing scales to.
#[derive(Clone)]
pub struct ImageFeatures {
    features: Tensor<3>,
    size: ImageSize,
}

impl ImageFeatures {
    /// The size of the picture they were made from.
    pub fn size(&self) -> ImageSize {
        self.size
    }
}

/// A run whose encoder has run: its decoding, and what [`Florence2::finish`] needs.
pub struct StartedRun<'a> {
    pub decoding: Decoding<'a>,
    task: Task,
    size: ImageSize,
    prompt_ids: Vec<u32>,
    image_tokens: usize,
}
