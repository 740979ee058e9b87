//! CPU kernels for the flex backend, for the operations burn-flex runs far slower than
//! PyTorch (attention, GELU, LayerNorm, MLPs, depthwise convolutions, products with a
//! transposed or few-row operand), as the [`FlexKernels`] set of the model's one kernel seam
//! (`flex.rs` adapts burn tensors to the loops of the other files). Each kernel takes burn
//! tensors and returns `None` unless they live on the flex device as f32 with shapes that
//! agree, so burn's generic ops take the rest (wgpu, or these kernels switched off with
//! [`set_enabled`]).

mod allocator;
mod attention;
mod channel_attention;
mod conv;
mod flex;
mod gemv;
mod layer;
mod matmul;
mod parallel;
mod patch_conv;
mod quantized;
mod simd;
mod token_matrix;

pub use allocator::keep_freed_memory;
pub use flex::FlexKernels;
pub use matmul::sgemm_gflops;
pub use parallel::{adopt_pool, on_pool, set_threads, threads};

use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Switches these kernels on or off (off: burn's generic ops everywhere, as on wgpu; the
/// tests use it to check the generic path on the CPU).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}
