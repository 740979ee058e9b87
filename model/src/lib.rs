//! florence2-burn: Microsoft's Florence-2 on burn, number for number with transformers'
//! `Florence2ForConditionalGeneration` — DaViT vision encoder, multi-modal projector, BART
//! encoder-decoder, weights loader for the native and the original checkpoint layouts,
//! tokenizer, image preprocessing, greedy and beam search.
//!
//! The model code has no backend type parameter: burn 0.22 picks the backend from the
//! [`burn::tensor::Device`] the weights are loaded on (`Device::flex()` on the CPU with the
//! default `flex` feature, `Device::wgpu(..)` with the `wgpu` feature). Nothing here reads
//! files: everything loads from bytes or a `Read + Seek` source, so the same code runs in the
//! browser; the `florence2` command (crate florence2-cli, `../cli`) does the file I/O.
//!
//! The modules, by concern:
//! - [`load`]: checkpoint files, the weights loader, the configs, what a model needs in memory;
//! - [`network`]: the model itself (DaViT, projector, BART, the token matrix, the whole);
//! - [`decode`]: from a picture and a prompt to a result (preprocessing, tokenizer, search);
//! - [`kernels`]: the one seam where the hot operations get faster kernels (`cpu`, `gpu`).

pub mod decode;
pub mod error;
pub mod kernels;
pub mod load;
pub mod network;
pub mod readback;

#[cfg(feature = "flex")]
pub use kernels::cpu;
pub use load::safetensors_file;

pub use decode::image::RgbImage;
pub use decode::pipeline::{Florence2, ImageFeatures, ModelFiles, RunOptions, RunOutput};
pub use decode::tokenizer::Tokenizer;
pub use error::{Error, Result};
pub use load::config::{
    EarlyStopping, Florence2Config, GenerationConfig, ImageProcessorConfig, MAX_BEAMS,
};
pub use load::memory::MemoryLimits;
pub use load::weights::Layout;
pub use network::model::{Florence2Model, LoadOptions};
pub use readback::{values, values_async};
