//! LayerNorm over the last dimension of a few rows in one launch: one invocation per row.
//!
//! burn's `layer_norm` is nine launches (two mean reductions and seven elementwise ops). A
//! decoder step runs seven LayerNorms on one row per beam, and on a software adapter every
//! launch costs about as much as the arithmetic of a whole row (SwiftShader, lavapipe), so
//! these 63 launches were 40% of a step's 158.

use burn::backend::wgpu::CubeTensor;
use burn::tensor::Shape;
use burn_cubecl::ops::numeric::empty_device_dtype;
use cubecl::prelude::*;

/// Invocations per cube.
const CUBE_SIZE: u32 = 64;

/// `out[r, :] = (x[r, :] - mean) / sqrt(var + eps) * w + b`, with the mean and the (biased)
/// variance of row `r`, in that order of operations as burn's `layer_norm`; `x` `[rows, d]`
/// any strides, `w` and `b` `[d]` any stride, `out` `[rows, d]` contiguous.
#[cube(launch_unchecked)]
fn layer_norm_kernel(
    x: &Tensor<f32>,
    w: &Tensor<f32>,
    b: &Tensor<f32>,
    out: &mut Tensor<f32>,
    eps: f32,
) {
    let row = ABSOLUTE_POS;
    if row >= out.shape(0) {
        terminate!();
    }
    let d = x.shape(1);
    let (x_k, w_k, b_k) = (x.stride(1), w.stride(0), b.stride(0));
    let base = row * x.stride(0);
    let count = f32::cast_from(d);
    let mut sum = 0.0f32;
    for k in 0..d {
        sum += x[base + k * x_k];
    }
    let mean = sum / count;
    let mut squares = 0.0f32;
    for k in 0..d {
        let c = x[base + k * x_k] - mean;
        squares += c * c;
    }
    let denom = f32::sqrt(squares / count + eps);
    for k in 0..d {
        let c = x[base + k * x_k] - mean;
        out[row * d + k] = c / denom * w[k * w_k] + b[k * b_k];
    }
}

/// LayerNorm of `x` `[rows, d]` with `w` and `b` `[d]`, all f32.
pub fn layer_norm(x: CubeTensor, w: CubeTensor, b: CubeTensor, eps: f64) -> CubeTensor {
    let [rows, d] = x.meta.shape().dims();
    assert!(
        w.meta.shape().dims::<1>() == [d] && b.meta.shape().dims::<1>() == [d],
        "layer norm: shapes checked by the caller"
    );
    let client = x.client.clone();
    let out = empty_device_dtype(
        client.clone(),
        x.device.clone(),
        Shape::new([rows, d]),
        x.dtype,
    );
    // SAFETY: every index the kernel forms is inside its tensor: `row < rows` (checked in the
    // kernel), `k < d`, with the shapes checked here and the strides the tensors' own.
    unsafe {
        layer_norm_kernel::launch_unchecked(
            &client,
            CubeCount::new_1d(rows.div_ceil(CUBE_SIZE as usize) as u32),
            CubeDim::new_1d(CUBE_SIZE),
            x.into_tensor_arg(),
            w.into_tensor_arg(),
            b.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            eps as f32,
        );
    }
    out
}
