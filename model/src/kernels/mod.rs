//! The one seam where the model's hot operations get their kernels. Each operation asks the
//! specialised kernel sets in [`SPECIALISED`] in turn; a set answers `None` for tensors it
//! does not handle (another device, another dtype, switched off), and burn's generic ops —
//! which run on every backend, WebGPU included — take what no set claims. A GPU set (our own
//! WGSL kernels) or another CPU set plugs in here, not at the call sites.
//!
//! Each operation is "a faster kernel if a set takes the tensors, else this": for the
//! primitives (a linear layer, LayerNorm, attention, a convolution) "this" is the seam
//! function's burn fallback below; for DaViT's window and channel attention, compositions of
//! those primitives, it is the model's own code (`network/vision.rs`), which asks
//! [`specialised`] first.

#[cfg(feature = "flex")]
pub mod cpu;
#[cfg(feature = "wgpu")]
pub mod gpu;

pub mod quantized;

use std::sync::Arc;

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, activation, s};

use crate::load::quantized::QuantizedValues;

/// A linear layer's weight as held on its device (one per layer: its size does not matter).
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
pub enum Matrix {
    /// f32, stored transposed (`[in, out]`) so that `x · w` is a plain row-major product.
    Dense(Tensor<2>),
    /// Quantized (`[out, in]`, blocks along the input), kept by a kernel set in its own form.
    Quantized(Arc<dyn QuantizedMatrix>),
}

impl Matrix {
    /// `[in, out]`.
    pub fn dims(&self) -> [usize; 2] {
        match self {
            Matrix::Dense(w) => w.dims(),
            Matrix::Quantized(q) => {
                let [out, inp] = q.dims();
                [inp, out]
            }
        }
    }
}

impl std::fmt::Debug for Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Matrix::Dense(w) => write!(f, "Dense({:?})", w.dims()),
            Matrix::Quantized(q) => write!(f, "Quantized({:?})", q.dims()),
        }
    }
}

/// A linear layer's tensors as the kernels take them: the weight and the bias.
#[derive(Clone, Copy)]
pub struct LinearRef<'a> {
    pub weight: &'a Matrix,
    pub bias: Option<&'a Tensor<1>>,
}

impl<'a> LinearRef<'a> {
    /// The f32 weight `[in, out]`, for the kernels that only take those.
    pub fn dense(&self) -> Option<&'a Tensor<2>> {
        match self.weight {
            Matrix::Dense(w) => Some(w),
            Matrix::Quantized(_) => None,
        }
    }
}

/// A quantized matrix `W` `[out, in]` kept in a kernel set's own form (weights stay quantized
/// in memory: the kernels dequantize a block at a time).
pub trait QuantizedMatrix: Send + Sync {
    /// `[out, in]`.
    fn dims(&self) -> [usize; 2];
    /// The kernel set's own type, for its kernels that take several layers at once.
    fn as_any(&self) -> &dyn std::any::Any;
    /// `x · Wᵀ (+ bias) (→ GELU)` for `x` `[rows, in]`: `[rows, out]`.
    fn linear(&self, x: &Tensor<2>, bias: Option<&Tensor<1>>, gelu: bool) -> Tensor<2>;
    /// The rows `ids` of `W` (each `< out`) as f32, in order: `[ids.len(), in]` (token lookups).
    fn select(&self, ids: &[u32]) -> Tensor<2>;
}

/// The `[vocab, d]` token matrix (embedding and tied `lm_head`) kept by a kernel set in its
/// own form ([`Kernels::token_matrix`]).
pub trait TokenMatrix: Send + Sync {
    /// The rows `ids` (each `< vocab`), in order: `[ids.len(), d]`.
    fn select(&self, ids: &[u32]) -> Tensor<2>;
    /// `x · Mᵀ`: `[n, d]` → `[n, vocab]`.
    fn matmul_transposed(&self, x: &Tensor<2>) -> Tensor<2>;
    /// For one row `x` (`d` values): the tokens not in `banned` that can hold the largest
    /// logit, each with its exact logit (all tied ones included), or `None` to be asked for
    /// the full product instead.
    fn greedy_candidates(&self, x: &[f32], banned: &[u32]) -> Option<Vec<(u32, f32)>> {
        let _ = (x, banned);
        None
    }
}

/// Kernels for some tensors (a device, a dtype): `None` means "not mine", and is what a set
/// answers for the operations it does not implement.
pub trait Kernels: Sync {
    /// Takes the token matrix (`values`, `shape` `[vocab, d]`, row-major) to keep in its own
    /// form for `device`, or hands `values` back (`Err`) to be kept as tensors.
    fn token_matrix(
        &self,
        values: Vec<f32>,
        shape: [usize; 2],
        device: &Device,
    ) -> Result<Box<dyn TokenMatrix>, Vec<f32>> {
        let _ = (shape, device);
        Err(values)
    }
    /// Takes a quantized matrix to keep in its own form for `device`, or hands it back.
    fn quantized(
        &self,
        values: QuantizedValues,
        device: &Device,
    ) -> Result<Arc<dyn QuantizedMatrix>, QuantizedValues> {
        let _ = device;
        Err(values)
    }
    /// Whether the `[vocab, d]` token matrix should be stored transposed (`[d, vocab]`) on
    /// `device`, so that `lm_head` is a plain [`linear`](Self::linear) rather than a
    /// [`matmul_transposed`](Self::matmul_transposed).
    fn vocab_by_columns(&self, device: &Device) -> Option<bool> {
        let _ = device;
        None
    }
    /// Whether convolution filters should lie tap-major in memory on `device`: a patch
    /// convolution's `[c_out, c_in, k, k]` as `[c_out, k, k, c_in]`, a depthwise one's
    /// `[c, 1, k, k]` as `[k, k, c]`, so that the set's kernels read them as they are loaded
    /// instead of reordering them at every call. The tensors keep their checkpoint shape (a
    /// permuted view), so burn's generic ops take them as they are.
    fn filters_tap_major(&self, device: &Device) -> Option<bool> {
        let _ = device;
        None
    }
    /// `x · w (+ bias) (→ GELU)` for `x` `[rows, in]` and `w` `[in, out]`.
    fn linear(
        &self,
        x: &Tensor<2>,
        w: &Tensor<2>,
        bias: Option<&Tensor<1>>,
        gelu: bool,
    ) -> Option<Tensor<2>> {
        let _ = (x, w, bias, gelu);
        None
    }
    /// `x · eᵀ` for `x` `[rows, d]` and `e` `[n, d]`.
    fn matmul_transposed(&self, x: &Tensor<2>, e: &Tensor<2>) -> Option<Tensor<2>> {
        let _ = (x, e);
        None
    }
    /// LayerNorm over the last dimension of `x` `[rows, d]`.
    fn layer_norm(
        &self,
        x: &Tensor<2>,
        w: &Tensor<1>,
        b: &Tensor<1>,
        eps: f64,
    ) -> Option<Tensor<2>> {
        let _ = (x, w, b, eps);
        None
    }
    /// `softmax(scale · q kᵀ) v` over `[batch, heads, len, head_dim]`.
    fn scaled_dot_product_attention(
        &self,
        q: &Tensor<4>,
        k: &Tensor<4>,
        v: &Tensor<4>,
        scale: f32,
        causal: bool,
    ) -> Option<Tensor<4>> {
        let _ = (q, k, v, scale, causal);
        None
    }
    /// DaViT's position encoding `x + depthwise_conv(x)`: a `k × k` convolution (stride 1, zero
    /// `padding`) of channels-last tokens `x` `[b, h·w, c]`; `weight` `[c, 1, k, k]`, `bias`
    /// `[c]`.
    fn conv_pos_enc(
        &self,
        x: &Tensor<3>,
        h: usize,
        w: usize,
        weight: &Tensor<4>,
        bias: &Tensor<1>,
        padding: usize,
    ) -> Option<Tensor<3>> {
        let _ = (x, h, w, weight, bias, padding);
        None
    }
    /// DaViT's patch embedding convolution: `k × k`, `stride`, zero `padding`, from
    /// channels-last tokens `x` `[b, h·w, c_in]` (`grid` = `[h, w]`) to channels-last tokens
    /// `[b, ho·wo, c_out]`; `weight` `[c_out, c_in, k, k]`, `bias` `[c_out]`.
    fn patch_conv(
        &self,
        x: &Tensor<3>,
        grid: [usize; 2],
        weight: &Tensor<4>,
        bias: &Tensor<1>,
        stride: usize,
        padding: usize,
    ) -> Option<Tensor<3>> {
        let _ = (x, grid, weight, bias, stride, padding);
        None
    }
    /// DaViT's window attention on normed tokens `x` `[b, h·w, c]` (`grid` = `[h, w]`): the
    /// `qkv` projection, attention with `heads` heads inside non-overlapping `window × window`
    /// windows (the grid padded with zero tokens at the right and bottom, which take part),
    /// and the `proj` projection, back in raster order.
    fn window_attention(
        &self,
        x: &Tensor<3>,
        grid: [usize; 2],
        window: usize,
        heads: usize,
        qkv: LinearRef<'_>,
        proj: LinearRef<'_>,
    ) -> Option<Tensor<3>> {
        let _ = (x, grid, window, heads, qkv, proj);
        None
    }
    /// DaViT's channel attention on normed tokens `x` `[b, n, c]`: the `qkv` projection,
    /// attention within each of `groups` groups of channels (the channels the sequence, the
    /// tokens the features, scaled by `n^-0.5`), and the `proj` projection.
    fn channel_attention(
        &self,
        x: &Tensor<3>,
        groups: usize,
        qkv: LinearRef<'_>,
        proj: LinearRef<'_>,
    ) -> Option<Tensor<3>> {
        let _ = (x, groups, qkv, proj);
        None
    }
    /// `residual + fc2(GELU(fc1(x)))` for `x` `[rows, in]` and `residual` `[rows, out]`,
    /// either layer dense or quantized.
    fn mlp(
        &self,
        x: &Tensor<2>,
        fc1: LinearRef<'_>,
        fc2: LinearRef<'_>,
        residual: &Tensor<2>,
    ) -> Option<Tensor<2>> {
        let _ = (x, fc1, fc2, residual);
        None
    }
}

/// The specialised kernel sets compiled in, asked in order.
const SPECIALISED: &[&dyn Kernels] = &[
    #[cfg(feature = "flex")]
    &crate::kernels::cpu::FlexKernels,
    #[cfg(feature = "wgpu")]
    &crate::kernels::gpu::CubeKernels,
];

/// The first set's answer to `op`, or `None` when no set takes its tensors: for an operation
/// whose burn composition lives with the model (DaViT's window and channel attention in
/// `network/vision.rs`), which runs it when this answers `None`.
pub fn specialised<T>(mut op: impl FnMut(&dyn Kernels) -> Option<T>) -> Option<T> {
    SPECIALISED.iter().find_map(|set| op(*set))
}

/// The token matrix in the form of the first set that takes it, or `values` back.
pub fn token_matrix(
    mut values: Vec<f32>,
    shape: [usize; 2],
    device: &Device,
) -> Result<Box<dyn TokenMatrix>, Vec<f32>> {
    for set in SPECIALISED {
        match set.token_matrix(values, shape, device) {
            Ok(kept) => return Ok(kept),
            Err(back) => values = back,
        }
    }
    Err(values)
}

/// A quantized matrix in the form of the first set that takes it, else in the reference
/// form ([`quantized::Dequantizing`], which multiplies by a dequantized copy).
pub fn quantized(mut values: QuantizedValues, device: &Device) -> Arc<dyn QuantizedMatrix> {
    for set in SPECIALISED {
        match set.quantized(values, device) {
            Ok(kept) => return kept,
            Err(back) => values = back,
        }
    }
    Arc::new(quantized::Dequantizing::new(values, device))
}

/// A linear layer, dense or quantized: `x · w (+ bias) (→ GELU)`.
pub fn apply(x: Tensor<2>, layer: LinearRef<'_>, gelu: bool) -> Tensor<2> {
    match layer.weight {
        Matrix::Dense(w) => linear(x, w, layer.bias, gelu),
        Matrix::Quantized(q) => q.linear(&x, layer.bias, gelu),
    }
}

pub fn vocab_by_columns(device: &Device) -> bool {
    SPECIALISED
        .iter()
        .find_map(|set| set.vocab_by_columns(device))
        .unwrap_or(false)
}

/// [`Kernels::filters_tap_major`].
pub fn filters_tap_major(device: &Device) -> bool {
    specialised(|set| set.filters_tap_major(device)).unwrap_or(false)
}

pub fn linear(x: Tensor<2>, w: &Tensor<2>, bias: Option<&Tensor<1>>, gelu: bool) -> Tensor<2> {
    if let Some(y) = SPECIALISED.iter().find_map(|k| k.linear(&x, w, bias, gelu)) {
        return y;
    }
    let y = burn::tensor::module::linear(x, w.clone(), bias.cloned());
    if gelu { activation::gelu(y) } else { y }
}

pub fn matmul_transposed(x: Tensor<2>, e: &Tensor<2>) -> Tensor<2> {
    if let Some(y) = SPECIALISED.iter().find_map(|k| k.matmul_transposed(&x, e)) {
        return y;
    }
    x.matmul(e.clone().transpose())
}

pub fn layer_norm(x: Tensor<2>, w: &Tensor<1>, b: &Tensor<1>, eps: f64) -> Tensor<2> {
    if let Some(y) = SPECIALISED.iter().find_map(|k| k.layer_norm(&x, w, b, eps)) {
        return y;
    }
    burn::tensor::module::layer_norm(x, w.clone(), Some(b.clone()), eps)
}

pub fn scaled_dot_product_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    scale: f64,
    causal: bool,
) -> Tensor<4> {
    if let Some(y) = SPECIALISED
        .iter()
        .find_map(|set| set.scaled_dot_product_attention(&q, &k, &v, scale as f32, causal))
    {
        return y;
    }
    let options = burn::tensor::ops::AttentionModuleOptions {
        scale: Some(scale),
        is_causal: causal,
        ..Default::default()
    };
    burn::tensor::module::attention(q, k, v, None, None, options)
}

pub fn conv_pos_enc(
    x: Tensor<3>,
    h: usize,
    w: usize,
    weight: &Tensor<4>,
    bias: &Tensor<1>,
    padding: usize,
) -> Tensor<3> {
    if let Some(y) = SPECIALISED
        .iter()
        .find_map(|set| set.conv_pos_enc(&x, h, w, weight, bias, padding))
    {
        return y;
    }
    // Channels-last tokens → [b, c, h, w] for burn's conv, and back.
    let [b, _, c] = x.dims();
    let image = x.clone().swap_dims(1, 2).reshape([b, c, h, w]);
    let options = ConvOptions::new([1, 1], [padding, padding], [1, 1], c);
    burn::tensor::module::conv2d(image, weight.clone(), Some(bias.clone()), options)
        .flatten::<3>(2, 3)
        .swap_dims(1, 2)
        + x
}

/// [`Kernels::patch_conv`]; also returns the output grid `[ho, wo]`.
pub fn patch_conv(
    x: Tensor<3>,
    grid: [usize; 2],
    weight: &Tensor<4>,
    bias: &Tensor<1>,
    stride: usize,
    padding: usize,
) -> (Tensor<3>, [usize; 2]) {
    let [_, _, k, _] = weight.dims();
    // As PyTorch sizes the output (the specialised sets refuse grids without one).
    let side = |n: usize| (n + 2 * padding).saturating_sub(k) / stride.max(1) + 1;
    if let Some(y) = SPECIALISED
        .iter()
        .find_map(|set| set.patch_conv(&x, grid, weight, bias, stride, padding))
    {
        return (y, grid.map(side));
    }
    // Channels-last tokens → [b, c, h, w] for burn's conv, and back.
    let [b, _, c] = x.dims();
    let [h, w] = grid;
    let image = x.swap_dims(1, 2).reshape([b, c, h, w]);
    let options = ConvOptions::new([stride, stride], [padding, padding], [1, 1], 1);
    let y = burn::tensor::module::conv2d(image, weight.clone(), Some(bias.clone()), options);
    let [_, _, ho, wo] = y.dims();
    (y.flatten::<3>(2, 3).swap_dims(1, 2), [ho, wo])
}

pub fn mlp(x: Tensor<2>, fc1: LinearRef<'_>, fc2: LinearRef<'_>, residual: Tensor<2>) -> Tensor<2> {
    if let Some(y) = SPECIALISED
        .iter()
        .find_map(|set| set.mlp(&x, fc1, fc2, &residual))
    {
        return y;
    }
    residual + apply(apply(x, fc1, true), fc2, false)
}

/// `[b, 3·heads, …]` (a qkv projection's output, q, k and v one after the other) → the three
/// `[b, heads, …]` parts, as views: a reshape of a permuted tensor would copy it.
pub fn split_qkv(qkv: Tensor<4>, heads: usize) -> (Tensor<4>, Tensor<4>, Tensor<4>) {
    let part = |i: usize| qkv.clone().slice(s![.., i * heads..(i + 1) * heads]);
    (part(0), part(1), part(2))
}
