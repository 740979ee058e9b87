//! Kernels for tensors on a cubecl device (WebGPU in the browser, Vulkan/Metal natively),
//! written in CubeCL for the products burn's default matmul tiles badly.
//!
//! Decoding multiplies a handful of rows (1 greedy, one per beam) by every weight matrix and
//! by the tied embedding (`[beams, d] × [d, vocab]`). Without autotuning (which cubecl 0.11
//! cannot do in the browser), burn's matmul gives these the same tiled kernel as a square
//! product: on SwiftShader and lavapipe the 3-beam `lm_head` alone took 0.6 s a token. A
//! product with at most [`SKINNY_MAX_ROWS`] rows goes to [`skinny`] instead.
//!
//! That kernel reads four adjacent columns of the weights per invocation (one `vec4` load),
//! so it wants the columns adjacent in memory (`[k, n]` row-major). The token matrix is stored
//! the other way (`[vocab, d]`), so on these devices it is kept transposed
//! ([`Kernels::vocab_by_columns`]). The 3-row `lm_head` on lavapipe: 27.7 ms a launch, against
//! 634 ms with burn's matmul (model/README.md has the steps between).

mod attention;
mod norm;
mod quantized;
mod skinny;

use std::sync::Arc;

use burn::backend::wgpu::CubeTensor;
use burn::backend::{DispatchDevice, Wgpu};
use burn::tensor::{DType, Device, Tensor, activation};

use crate::kernels::{Kernels, QuantizedMatrix};
use crate::load::quantized::QuantizedValues;

/// The most rows a product may have to go to [`skinny`]: greedy decoding and beam searches of
/// up to 8 beams (the checkpoints' default is 3); wider products go to burn's tiled matmul.
pub const SKINNY_MAX_ROWS: usize = 8;

pub struct CubeKernels;

/// A tensor's cubecl primitive, when it is an f32 tensor on a cubecl device.
fn cube<const D: usize>(t: &Tensor<D>) -> Option<CubeTensor> {
    if !matches!(t.device().as_dispatch(), DispatchDevice::Cube(_)) {
        return None;
    }
    // Cloning is a reference-count increment; on a cubecl device the downcast succeeds.
    let p = t.clone().try_into_primitive::<Wgpu>().ok()?;
    (p.dtype == DType::F32 && !p.meta.is_tiled()).then_some(p)
}

impl Kernels for CubeKernels {
    /// Quantized matrices stay quantized on the device ([`quantized`]).
    fn quantized(
        &self,
        values: QuantizedValues,
        device: &Device,
    ) -> Result<Arc<dyn QuantizedMatrix>, QuantizedValues> {
        quantized::keep(values, device)
    }

    fn vocab_by_columns(&self, device: &Device) -> Option<bool> {
        matches!(device.as_dispatch(), DispatchDevice::Cube(_)).then_some(true)
    }

    fn linear(
        &self,
        x: &Tensor<2>,
        w: &Tensor<2>,
        bias: Option<&Tensor<1>>,
        gelu: bool,
    ) -> Option<Tensor<2>> {
        let ([rows, depth], [w_depth, cols]) = (x.dims(), w.dims());
        if rows > SKINNY_MAX_ROWS || depth != w_depth || bias.is_some_and(|b| b.dims() != [cols]) {
            return None;
        }
        let bias = match bias {
            Some(b) => Some(cube(b)?),
            None => None,
        };
        // The kernel reads `w` and `bias` a column vector at a time: columns adjacent.
        let w = cube(w)?;
        if w.meta.strides()[1] != 1 || bias.as_ref().is_some_and(|b| b.meta.strides()[0] != 1) {
            return None;
        }
        let y = skinny::matmul(cube(x)?, w, bias);
        let y = Tensor::from_primitive::<Wgpu>(y);
        Some(if gelu { activation::gelu(y) } else { y })
    }

    /// A decoder step's rows in one launch ([`norm`]); wider inputs keep burn's, whose
    /// reductions spread a row over many invocations.
    fn layer_norm(
        &self,
        x: &Tensor<2>,
        w: &Tensor<1>,
        b: &Tensor<1>,
        eps: f64,
    ) -> Option<Tensor<2>> {
        let [rows, d] = x.dims();
        if rows > SKINNY_MAX_ROWS || w.dims() != [d] || b.dims() != [d] {
            return None;
        }
        let y = norm::layer_norm(cube(x)?, cube(w)?, cube(b)?, eps);
        Some(Tensor::from_primitive::<Wgpu>(y))
    }

    /// A decoder step's queries (a row per beam) in one launch ([`attention`]); longer query
    /// sequences (the encoder, the vision tower) keep burn's.
    fn scaled_dot_product_attention(
        &self,
        q: &Tensor<4>,
        k: &Tensor<4>,
        v: &Tensor<4>,
        scale: f32,
        causal: bool,
    ) -> Option<Tensor<4>> {
        let [b, h, rows, head_dim] = q.dims();
        let [_, _, len, _] = k.dims();
        if (causal && rows > 1)
            || rows > SKINNY_MAX_ROWS
            || head_dim > attention::MAX_HEAD_DIM
            || len == 0
            || k.dims() != [b, h, len, head_dim]
            || v.dims() != [b, h, len, head_dim]
        {
            return None;
        }
        let y = attention::attention(cube(q)?, cube(k)?, cube(v)?, scale);
        Some(Tensor::from_primitive::<Wgpu>(y))
    }
}
