//! What a model certainly needs, known from its configs and the checkpoint's header before
//! any weight is read, and the limits of where it runs. A runtime with a hard ceiling —
//! wasm32's 4 GiB, a GPU's largest buffer — refuses a model that cannot fit with
//! [`Error::OutOfMemory`] at load, instead of failing part-way: in wasm an allocation that
//! cannot grow memory traps and takes the instance with it, and a GPU refuses the buffer.
//!
//! The figures are floors, not estimates: each is a tensor (or tensors alive together) that
//! every run allocates whole, so a refused model would certainly not have fitted. One that
//! passes can still run out (the allocator's slack, fragmentation); that stays a trap, which
//! the browser's worker also reports as out of memory.

use crate::error::{Error, Result};
use crate::load::config::{ImageProcessorConfig, VisionConfig};

/// Bytes of one `f32`, how every backend holds weights and activations today.
const F32: u64 = 4;

/// What a device can hold. `None`: not known (a native process, a GPU's total memory, which
/// WebGPU does not tell), not checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryLimits {
    /// The weights plus a run's tensors, when both live in this memory (the CPU's).
    pub memory_bytes: Option<u64>,
    /// One tensor: a GPU's largest buffer it can bind (WebGPU's `maxStorageBufferBindingSize`,
    /// at most `maxBufferSize`).
    pub buffer_bytes: Option<u64>,
}

impl MemoryLimits {
    /// wasm32's address space: memory grows to 4 GiB at most, whatever the machine has.
    pub const WASM32: MemoryLimits = MemoryLimits {
        memory_bytes: Some(4 << 30),
        buffer_bytes: None,
    };

    /// Refuses `floor` where it cannot fit: `Error::OutOfMemory` saying which part and why.
    pub fn check(&self, floor: &MemoryFloor) -> Result<()> {
        if let (Some(limit), Some(vision)) = (self.buffer_bytes, &floor.vision)
            && vision.largest_tensor > limit
        {
            return Err(Error::OutOfMemory(format!(
                "a {} picture needs a tensor of {} in the vision tower; this device's buffers \
                 hold at most {}",
                vision.input,
                mib(vision.largest_tensor),
                mib(limit)
            )));
        }
        if let Some(limit) = self.memory_bytes {
            let run = floor.vision.map_or(0, |v| v.peak);
            let needed = floor.weights.saturating_add(run);
            if needed > limit {
                let picture = match &floor.vision {
                    Some(v) => format!(
                        ", {} for a {} picture in the vision tower",
                        mib(run),
                        v.input
                    ),
                    None => String::new(),
                };
                return Err(Error::OutOfMemory(format!(
                    "the model needs at least {} ({} of weights{picture}); this runtime's \
                     memory holds at most {}",
                    mib(needed),
                    mib(floor.weights),
                    mib(limit)
                )));
            }
        }
        Ok(())
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1 << 20) as f64)
}

/// A model's floor: its weights and one run's vision pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryFloor {
    /// The weights' bytes as held (f32, or quantized codes and scales).
    pub weights: u64,
    /// `None` where the input size is not known yet (a processor that keeps each picture's
    /// size: the picture is checked when it arrives).
    pub vision: Option<VisionFloor>,
}

impl MemoryFloor {
    /// The weights' bytes as the model holds them ([`crate::load::weights::held`]).
    pub fn new(weight_bytes: u64, vision: Option<VisionFloor>) -> Self {
        MemoryFloor {
            weights: weight_bytes,
            vision,
        }
    }
}

/// The vision tower's tensors at one input size (the text side is a few hundred tokens, far
/// below these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisionFloor {
    /// The picture as the model takes it, `W×H`.
    pub input: Size,
    /// The largest single tensor: the pixel values, or a stage's feed-forward activations
    /// (`tokens × mlp_hidden`), whichever is larger.
    pub largest_tensor: u64,
    /// Tensors alive together: the pixel values with the first convolution's output, or a
    /// feed-forward layer's input with its output.
    pub peak: u64,
}

/// Width × height in pixels (or feature cells).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: u64,
    pub height: u64,
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

impl Size {
    fn area(&self) -> u64 {
        self.width.saturating_mul(self.height)
    }
}

impl VisionFloor {
    /// The floor for a `width × height` input.
    pub fn of(config: &VisionConfig, width: u64, height: u64) -> Self {
        let input = Size { width, height };
        let pixels = (config.in_channels as u64).saturating_mul(input.area());
        let mut largest = pixels;
        let mut peak = 0;
        let mut grid = input;
        for stage in 0..config.num_stages() {
            grid = stage_output(config, stage, grid);
            let tokens = grid.area();
            let dim = tokens.saturating_mul(config.embed_dim[stage] as u64);
            let hidden = tokens.saturating_mul(config.mlp_hidden(stage) as u64);
            if stage == 0 {
                peak = pixels.saturating_add(dim);
            }
            largest = largest.max(hidden);
            peak = peak.max(dim.saturating_add(hidden));
        }
        VisionFloor {
            input,
            largest_tensor: largest.saturating_mul(F32),
            peak: peak.saturating_mul(F32),
        }
    }
}

/// A stage's convolutional embedding: `(n + 2·padding − kernel) / stride + 1` per axis.
fn stage_output(config: &VisionConfig, stage: usize, input: Size) -> Size {
    let (k, s, p) = (
        config.patch_size[stage] as u64,
        config.patch_stride[stage].max(1) as u64,
        config.patch_padding[stage] as u64,
    );
    let axis = |n: u64| n.saturating_add(p.saturating_mul(2)).saturating_sub(k) / s + 1;
    Size {
        width: axis(input.width),
        height: axis(input.height),
    }
}

/// DaViT's last feature grid for a `width × height` input: the projector's position table
/// must hold that many rows and columns.
pub fn feature_grid(config: &VisionConfig, width: u64, height: u64) -> Size {
    (0..config.num_stages()).fold(Size { width, height }, |grid, stage| {
        stage_output(config, stage, grid)
    })
}

/// The feature grid of a `width × height` input when the position table cannot hold it.
pub fn grid_beyond_table(config: &VisionConfig, width: u64, height: u64) -> Option<Size> {
    let grid = feature_grid(config, width, height);
    let table = config.max_position_embeddings as u64;
    (grid.width > table || grid.height > table).then_some(grid)
}

/// A processor config whose pictures the model cannot take (a feature grid larger than the
/// position table) is a broken model folder: refused at load, not after a vision pass.
pub fn check_processor(config: &VisionConfig, processor: &ImageProcessorConfig) -> Result<()> {
    if !processor.do_resize {
        return Ok(());
    }
    let (width, height) = (u64::from(processor.width), u64::from(processor.height));
    if let Some(grid) = grid_beyond_table(config, width, height) {
        let table = config.max_position_embeddings;
        return Err(Error::config(
            "processor config",
            format!(
                "its {}x{} pictures give a {grid} feature grid; the model's position table \
                 holds {table}x{table}",
                processor.width, processor.height
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::config::Florence2Config;

    /// Florence-2-base's vision config (`vision_config` of microsoft/Florence-2-base-ft).
    fn base() -> VisionConfig {
        let json = br#"{
            "vision_config": {
                "depths": [1, 1, 9, 1], "dim_embed": [128, 256, 512, 1024],
                "num_heads": [4, 8, 16, 32], "num_groups": [4, 8, 16, 32],
                "patch_size": [7, 3, 3, 3], "patch_stride": [4, 2, 2, 2],
                "patch_padding": [3, 1, 1, 1], "patch_prenorm": [false, true, true, true],
                "window_size": 12, "projection_dim": 768
            },
            "text_config": {
                "vocab_size": 51289, "d_model": 768, "encoder_layers": 6, "decoder_layers": 6,
                "encoder_attention_heads": 12, "decoder_attention_heads": 12,
                "encoder_ffn_dim": 3072, "decoder_ffn_dim": 3072, "max_position_embeddings": 1024
            }
        }"#;
        Florence2Config::from_json(json).unwrap().vision_config
    }

    #[test]
    fn base_at_768_has_the_grid_and_tensors_of_its_stages() {
        let c = base();
        assert_eq!(
            feature_grid(&c, 768, 768),
            Size {
                width: 24,
                height: 24
            }
        );
        let floor = VisionFloor::of(&c, 768, 768);
        // Stage 0: 192×192 tokens × 512 hidden; the pixels are 3×768×768.
        assert_eq!(floor.largest_tensor, 192 * 192 * 512 * 4);
        assert_eq!(floor.peak, 192 * 192 * (128 + 512) * 4);
    }

    #[test]
    fn base_fits_wasm32_and_a_model_of_a_billion_parameters_does_not() {
        let vision = VisionFloor::of(&base(), 768, 768);
        let limits = MemoryLimits::WASM32;
        limits
            .check(&MemoryFloor::new(231_000_000 * 4, Some(vision)))
            .unwrap();
        let e = limits
            .check(&MemoryFloor::new(1_100_000_000 * 4, Some(vision)))
            .unwrap_err();
        assert!(matches!(e, Error::OutOfMemory(_)), "{e}");
        assert!(e.to_string().contains("4096 MiB"), "{e}");
        // No limits: nothing is refused.
        MemoryLimits::default()
            .check(&MemoryFloor::new(u64::MAX, Some(vision)))
            .unwrap();
    }

    #[test]
    fn a_picture_larger_than_the_devices_buffers_is_refused() {
        let vision = VisionFloor::of(&base(), 768, 768);
        let limits = |mib: u64| MemoryLimits {
            memory_bytes: None,
            buffer_bytes: Some(mib << 20),
        };
        limits(128)
            .check(&MemoryFloor::new(0, Some(vision)))
            .unwrap();
        let e = limits(64)
            .check(&MemoryFloor::new(0, Some(vision)))
            .unwrap_err();
        assert!(e.to_string().contains("768x768"), "{e}");
    }

    #[test]
    fn huge_inputs_saturate_instead_of_overflowing() {
        let floor = VisionFloor::of(&base(), u64::MAX, u64::MAX);
        assert_eq!(floor.largest_tensor, u64::MAX);
        assert!(
            MemoryLimits::WASM32
                .check(&MemoryFloor::new(1, Some(floor)))
                .is_err()
        );
    }

    #[test]
    fn a_processor_size_beyond_the_position_table_is_a_config_error() {
        let c = base();
        let mut processor = ImageProcessorConfig::default();
        check_processor(&c, &processor).unwrap();
        // 50 rows of the table take pictures up to 1600 pixels (50 × 32).
        (processor.width, processor.height) = (1600, 1600);
        check_processor(&c, &processor).unwrap();
        processor.width = 1632;
        let e = check_processor(&c, &processor).unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e}");
        assert!(e.to_string().contains("51x50 feature grid"), "{e}");
        // Without resizing, each picture is checked when it arrives, not the config.
        processor.do_resize = false;
        check_processor(&c, &processor).unwrap();
    }
}
