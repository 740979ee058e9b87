//! Florence-2 as a whole (`Florence2ForConditionalGeneration`): image → DaViT → projector →
//! image features put in front of (or in place of the `<image>` placeholders among) the
//! prompt's embeddings → BART encoder → decoder → tied `lm_head`.

use std::io::{Read, Seek};

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::decode::generation::Search;
use crate::error::{Error, Result};
use crate::load::config::{Florence2Config, GenerationConfig};
use crate::load::memory::MemoryLimits;
use crate::load::quantized::Scheme;
use crate::load::safetensors_file::SafetensorsFile;
use crate::load::weights::{Layout, Weights};
use crate::network::bart::{Decoder, DecoderCache, Encoder, LayerRecorder};
use crate::network::projector::Projector;
use crate::network::vision::{DaVit, Recorder};
use crate::network::vocab::VocabMatrix;
use crate::readback::{values, values_async};

/// Sees every generation step's raw logits (`rows × vocab`).
pub type LogitsHook<'a> = Option<&'a mut dyn FnMut(&[f32])>;

pub struct Florence2Model {
    config: Florence2Config,
    layout: Layout,
    /// The checkpoint's quantization (`None`: f32).
    scheme: Option<Scheme>,
    device: Device,
    vision: DaVit,
    projector: Projector,
    /// `[vocab, d_model]`: token embedding, tied to `lm_head` unless one is stored.
    embed_tokens: VocabMatrix,
    /// `[vocab, d_model]` when the checkpoint has its own `lm_head`.
    lm_head: Option<VocabMatrix>,
    encoder: Encoder,
    decoder: Decoder,
}

/// How the weights are laid out on the device, and what the device can hold.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// The most bytes one weight buffer may hold (`None`: no limit). Only the `[vocab,
    /// d_model]` matrix comes near WebGPU's 128 MiB per binding; it is split in row blocks.
    pub max_buffer_bytes: Option<usize>,
    /// A model (or, with a processor that keeps each picture's size, a picture) that cannot
    /// fit these is refused with `Error::OutOfMemory` before anything is allocated. Checked by
    /// [`crate::Florence2::load_with`], which knows the processor's input size; this type's
    /// own `load_with` only lays the weights out.
    pub limits: MemoryLimits,
}

impl LoadOptions {
    /// What every WebGPU device can bind (the default `maxStorageBufferBindingSize`).
    pub const WEBGPU: LoadOptions = LoadOptions {
        max_buffer_bytes: Some(128 << 20),
        limits: MemoryLimits {
            memory_bytes: None,
            buffer_bytes: Some(128 << 20),
        },
    };
}

impl Florence2Model {
    /// Loads `model.safetensors` (from any `Read + Seek` source) for `config`, on `device`.
    pub fn load<R: Read + Seek>(
        config: Florence2Config,
        checkpoint: R,
        device: &Device,
    ) -> Result<Self> {
        Self::load_with(config, checkpoint, device, LoadOptions::default())
    }

    /// [`Florence2Model::load`] with its buffers laid out as `options` say.
    pub fn load_with<R: Read + Seek>(
        config: Florence2Config,
        checkpoint: R,
        device: &Device,
        options: LoadOptions,
    ) -> Result<Self> {
        Self::from_checkpoint(config, SafetensorsFile::open(checkpoint)?, device, options)
    }

    /// [`Florence2Model::load_with`] from a checkpoint whose header is already read.
    pub fn from_checkpoint<R: Read + Seek>(
        config: Florence2Config,
        checkpoint: SafetensorsFile<R>,
        device: &Device,
        options: LoadOptions,
    ) -> Result<Self> {
        let mut w = Weights::new(checkpoint, device)?;
        let t = &config.text_config;
        let vision = DaVit::load(&mut w, &config.vision_config)?;
        let projector = Projector::load(&mut w, &config.vision_config)?;
        let vocab_shape = [t.vocab_size, t.d_model];
        let embed_tokens = w.embedding(vocab_shape, options.max_buffer_bytes)?;
        let lm_head = w.lm_head(vocab_shape, options.max_buffer_bytes)?;
        let encoder = Encoder::load(&mut w, t)?;
        let decoder = Decoder::load(&mut w, t)?;
        let layout = w.layout();
        let scheme = w.scheme();
        w.finish()?;
        Ok(Florence2Model {
            config,
            layout,
            scheme,
            device: device.clone(),
            vision,
            projector,
            embed_tokens,
            lm_head,
            encoder,
            decoder,
        })
    }

    pub fn config(&self) -> &Florence2Config {
        &self.config
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The checkpoint's quantization scheme (`None`: a plain f32/f16 checkpoint).
    pub fn scheme(&self) -> Option<Scheme> {
        self.scheme
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// How many buffers hold the token matrix (1 unless a buffer limit split it).
    pub fn vocab_blocks(&self) -> usize {
        self.embed_tokens.block_count()
    }

    /// DaViT's last feature map `[1, C, H/32, W/32]`; `record` receives the intermediates.
    pub fn vision_features(
        &self,
        pixel_values: Tensor<4>,
        record: Recorder<'_>,
    ) -> Result<Tensor<4>> {
        let [_, c, h, w] = pixel_values.dims();
        let want = self.config.vision_config.in_channels;
        if c != want || h == 0 || w == 0 {
            return Err(Error::Input(format!(
                "pixel values are {c}x{h}x{w}, the model takes {want} channels"
            )));
        }
        Ok(self.vision.forward(pixel_values, record))
    }

    /// Projected image features `[1, 1 + h*w, d_model]`.
    pub fn image_features(&self, vision_features: Tensor<4>) -> Result<Tensor<3>> {
        self.projector.forward(vision_features)
    }

    /// Token embeddings `[1, len, d_model]` (scaled by √d_model when the config says so).
    pub fn embed(&self, ids: &[u32]) -> Result<Tensor<3>> {
        let vocab = self.config.text_config.vocab_size;
        if let Some(bad) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::Input(format!(
                "token id {bad} is outside the vocabulary ({vocab})"
            )));
        }
        let x = self.embed_tokens.select(ids).unsqueeze_dim::<3>(0);
        Ok(if self.config.text_config.scale_embedding {
            x * (self.config.text_config.d_model as f64).sqrt()
        } else {
            x
        })
    }

    /// The encoder's input: image features followed by the prompt's embeddings (the original
    /// processor's layout; the native one's `<image>` placeholders all come first, which is
    /// the same).
    pub fn inputs_embeds(
        &self,
        image_features: Tensor<3>,
        prompt_ids: &[u32],
    ) -> Result<Tensor<3>> {
        Ok(Tensor::cat(
            vec![image_features, self.embed(prompt_ids)?],
            1,
        ))
    }

    /// The encoder's input for native-layout `input_ids`: the image features replace the
    /// `<image>` placeholders, in order, wherever they are.
    pub fn inputs_embeds_with_placeholders(
        &self,
        image_features: Tensor<3>,
        input_ids: &[u32],
    ) -> Result<Tensor<3>> {
        let image_token = self.config.image_token_id.ok_or_else(|| {
            Error::Input("this config has no image_token_id; put the image features before the prompt instead".into())
        })?;
        let [_, n_features, _] = image_features.dims();
        let n_placeholders = input_ids.iter().filter(|&&id| id == image_token).count();
        if n_placeholders != n_features {
            return Err(Error::Input(format!(
                "{n_placeholders} <image> tokens for {n_features} image features"
            )));
        }
        let text: Vec<u32> = input_ids
            .iter()
            .copied()
            .filter(|&id| id != image_token)
            .collect();
        // Rows of [image features; text embeddings] in input order.
        let (mut next_image, mut next_text) = (0i64, n_features as i64);
        let order: Vec<i64> = input_ids
            .iter()
            .map(|&id| {
                let counter = if id == image_token {
                    &mut next_image
                } else {
                    &mut next_text
                };
                *counter += 1;
                *counter - 1
            })
            .collect();
        let all = Tensor::cat(vec![image_features, self.embed(&text)?], 1);
        let order =
            Tensor::<1, Int>::from_data(TensorData::new(order, [input_ids.len()]), &self.device);
        Ok(all.select(1, order))
    }

    /// BART encoder over `inputs_embeds` `[1, len, d]`.
    pub fn encode(&self, inputs_embeds: Tensor<3>, record: LayerRecorder<'_>) -> Result<Tensor<3>> {
        self.encoder.forward(inputs_embeds, record)
    }

    /// A decoder cache for this encoder output.
    pub fn decoder_cache(&self, encoder_hidden: &Tensor<3>) -> DecoderCache {
        self.decoder.cache(encoder_hidden)
    }

    /// Decoder hidden states for `tokens` (`rows × t` ids, row-major), continuing `cache`.
    pub fn decode(
        &self,
        tokens: &[u32],
        rows: usize,
        cache: &mut DecoderCache,
        record: LayerRecorder<'_>,
    ) -> Result<Tensor<3>> {
        if rows == 0 || !tokens.len().is_multiple_of(rows) {
            return Err(Error::Input(format!(
                "{} decoder tokens do not split into {rows} rows",
                tokens.len()
            )));
        }
        let t = tokens.len() / rows;
        let embeds = self
            .embed(tokens)?
            .reshape([rows, t, self.config.text_config.d_model]);
        self.decoder.forward(embeds, cache, record)
    }

    /// Whether greedy steps compute only the logits that can win ([`Decoding::step`]): the
    /// token matrix is in a form that screens them (the CPU's).
    pub fn screens_greedy_steps(&self) -> bool {
        self.head().screens()
    }

    /// The `[vocab, d]` matrix of `lm_head`: its own, or the tied embedding.
    fn head(&self) -> &VocabMatrix {
        self.lm_head.as_ref().unwrap_or(&self.embed_tokens)
    }

    /// `lm_head`: hidden states `[rows, t, d]` → logits `[rows, t, vocab]`.
    pub fn logits(&self, hidden: Tensor<3>) -> Tensor<3> {
        let head = self.head();
        let [rows, t, d] = hidden.dims();
        let x: Tensor<2> = hidden.reshape([rows * t, d]);
        head.matmul_transposed(x).reshape([rows, t, head.rows()])
    }
}

impl Florence2Model {
    /// Runs a search to the end against `encoder_hidden`; `on_logits` sees every step's raw
    /// logits (`rows × vocab`). Returns the ids, decoder start token first.
    pub fn generate(
        &self,
        encoder_hidden: &Tensor<3>,
        config: &GenerationConfig,
        on_logits: LogitsHook<'_>,
    ) -> Result<Vec<u32>> {
        self.generate_until(encoder_hidden, config, on_logits, &|| false)
    }

    /// [`Florence2Model::generate`] that asks `stop` before every decoder step and ends with
    /// [`Error::Cancelled`] when it says so: a server stops a run whose client went away at the
    /// next token instead of spending the rest of the budget on it.
    pub fn generate_until(
        &self,
        encoder_hidden: &Tensor<3>,
        config: &GenerationConfig,
        mut on_logits: LogitsHook<'_>,
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<u32>> {
        let mut decoding = self.start_decoding(encoder_hidden, config)?;
        while !decoding.is_done() {
            if stop() {
                return Err(Error::Cancelled);
            }
            match on_logits.as_mut() {
                Some(f) => {
                    let logits = values(decoding.forward()?)?;
                    f(&logits);
                    decoding.push_logits(&logits)?;
                }
                None => decoding.step()?,
            }
        }
        Ok(decoding.ids())
    }

    /// A search against `encoder_hidden`, driven one decoder step at a time by the caller:
    /// synchronously ([`Florence2Model::generate_until`]) or, in the browser, reading each
    /// step's logits back asynchronously ([`Decoding::step_async`]).
    pub fn start_decoding(
        &self,
        encoder_hidden: &Tensor<3>,
        config: &GenerationConfig,
    ) -> Result<Decoding<'_>> {
        let vocab = self.config.text_config.vocab_size;
        if config.max_new_tokens > self.config.text_config.max_position_embeddings {
            return Err(Error::Input(format!(
                "max_new_tokens {} exceeds the decoder's {} positions",
                config.max_new_tokens, self.config.text_config.max_position_embeddings
            )));
        }
        Ok(Decoding {
            model: self,
            search: Search::new(config, vocab)?,
            cache: self.decoder_cache(encoder_hidden),
        })
    }
}

/// A greedy or beam search in progress on a model: the tensor-free [`Search`] plus the
/// decoder's cache.
pub struct Decoding<'m> {
    model: &'m Florence2Model,
    search: Search,
    cache: DecoderCache,
}

impl Decoding<'_> {
    pub fn is_done(&self) -> bool {
        self.search.is_done()
    }

    /// Runs the decoder on the search's next input: the step's logits `[rows, vocab]`, still
    /// on the device.
    pub fn forward(&mut self) -> Result<Tensor<2>> {
        let hidden = self.hidden()?;
        Ok(self.logits(hidden))
    }

    /// The decoder's last hidden state for the search's next input, `[rows, 1, d]`.
    fn hidden(&mut self) -> Result<Tensor<3>> {
        let next = self.search.next_input();
        self.cache.reorder(&next.cache_rows)?;
        self.model
            .decode(&next.tokens, next.tokens.len(), &mut self.cache, None)
    }

    fn logits(&self, hidden: Tensor<3>) -> Tensor<2> {
        let [rows, _, _] = hidden.dims();
        let logits = self.model.logits(hidden);
        let vocab = logits.dims()[2];
        logits.reshape([rows, vocab])
    }

    /// For a greedy step on a token matrix that screens (the CPU's): the banned tokens,
    /// which the screening must skip. `None`: the step needs the full logits.
    fn screened_step(&self) -> Option<Vec<u32>> {
        if !self.model.head().screens() {
            return None;
        }
        self.search.greedy_banned()
    }

    /// Hands the logits of the last [`Decoding::forward`] to the search.
    pub fn push_logits(&mut self, logits: &[f32]) -> Result<()> {
        self.search.push_logits(logits)
    }

    /// One step, chosen exactly as from the full logits; a greedy step on the CPU computes
    /// only the logits that can win ([`VocabMatrix::greedy_candidates`]).
    pub fn step(&mut self) -> Result<()> {
        let banned = self.screened_step();
        let hidden = self.hidden()?;
        if let Some(banned) = banned {
            let x = values(hidden.clone())?;
            if let Some(candidates) = self.model.head().greedy_candidates(&x, &banned) {
                return self.search.push_greedy_candidates(&candidates);
            }
        }
        let logits = values(self.logits(hidden))?;
        self.push_logits(&logits)
    }

    /// [`Decoding::step`] reading back without blocking (the browser's only way).
    pub async fn step_async(&mut self) -> Result<()> {
        let banned = self.screened_step();
        let hidden = self.hidden()?;
        if let Some(banned) = banned {
            let x = values_async(hidden.clone()).await?;
            if let Some(candidates) = self.model.head().greedy_candidates(&x, &banned) {
                return self.search.push_greedy_candidates(&candidates);
            }
        }
        let logits = values_async(self.logits(hidden)).await?;
        self.push_logits(&logits)
    }

    /// The generated ids so far (the best beam), decoder start token first.
    pub fn ids(&self) -> Vec<u32> {
        self.search.best()
    }
}
