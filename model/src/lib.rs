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

pub mod bart;
pub mod config;
#[cfg(feature = "flex")]
pub mod cpu;
pub mod error;
pub mod generation;
#[cfg(feature = "wgpu")]
pub mod gpu;
pub mod image;
pub mod kernels;
pub mod memory;
pub mod model;
pub mod nn;
pub mod pipeline;
pub mod projector;
pub mod safetensors_file;
pub mod tokenizer;
pub mod vision;
pub mod vocab;
pub mod weights;

pub use config::{EarlyStopping, Florence2Config, GenerationConfig, ImageProcessorConfig};
pub use error::{Error, Result};
pub use image::RgbImage;
pub use memory::MemoryLimits;
pub use model::{Florence2Model, LoadOptions};
pub use pipeline::{Florence2, ImageFeatures, ModelFiles, RunOptions, RunOutput};
pub use tokenizer::Tokenizer;
pub use weights::Layout;
