//! The one seam where the model's hot operations get their kernels. Each operation asks the
//! specialised kernel sets in [`SPECIALISED`] in turn; a set answers `None` for tensors it
//! does not handle (another device, another dtype, switched off), and burn's generic ops —
//! which run on every backend, WebGPU included — take what no set claims. A GPU set (our own
//! WGSL kernels) or another CPU set plugs in here, not at the call sites.

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, activation};

/// Kernels for some tensors (a device, a dtype): `None` means "not mine", and is what a set
/// answers for the operations it does not implement.
pub trait Kernels: Sync {
    /// Whether the `[vocab, d]` token matrix should be stored transposed (`[d, vocab]`) on
    /// `device`, so that `lm_head` is a plain [`linear`](Self::linear) rather than a
    /// [`matmul_transposed`](Self::matmul_transposed).
    fn vocab_by_columns(&self, device: &Device) -> Option<bool> {
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
    fn attention(
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
    /// Depthwise `k × k` convolution (stride 1, zero `padding`) of channels-last tokens `x`
    /// `[b, h·w, c]`; `weight` `[c, 1, k, k]`, `bias` `[c]`.
    fn depthwise_conv(
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
    /// `GELU(x · w1 + b1) · w2 + b2` for `x` `[rows, in]`, `w1` `[in, hidden]`, `w2`
    /// `[hidden, out]`.
    fn mlp(
        &self,
        x: &Tensor<2>,
        w1: &Tensor<2>,
        b1: &Tensor<1>,
        w2: &Tensor<2>,
        b2: &Tensor<1>,
    ) -> Option<Tensor<2>> {
        let _ = (x, w1, b1, w2, b2);
        None
    }
}

/// The specialised kernel sets compiled in, asked in order.
const SPECIALISED: &[&dyn Kernels] = &[
    #[cfg(feature = "flex")]
    &crate::cpu::FlexKernels,
    #[cfg(feature = "wgpu")]
    &crate::gpu::CubeKernels,
];

pub fn vocab_by_columns(device: &Device) -> bool {
    SPECIALISED
        .iter()
        .find_map(|set| set.vocab_by_columns(device))
        .unwrap_or(false)
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

pub fn attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, scale: f64, causal: bool) -> Tensor<4> {
    if let Some(y) = SPECIALISED
        .iter()
        .find_map(|set| set.attention(&q, &k, &v, scale as f32, causal))
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

pub fn depthwise_conv(
    x: Tensor<3>,
    h: usize,
    w: usize,
    weight: &Tensor<4>,
    bias: &Tensor<1>,
    padding: usize,
) -> Tensor<3> {
    if let Some(y) = SPECIALISED
        .iter()
        .find_map(|set| set.depthwise_conv(&x, h, w, weight, bias, padding))
    {
        return y;
    }
    // Channels-last tokens → [b, c, h, w] for burn's conv, and back.
    let [b, _, c] = x.dims();
    let image = x.swap_dims(1, 2).reshape([b, c, h, w]);
    let options = ConvOptions::new([1, 1], [padding, padding], [1, 1], c);
    burn::tensor::module::conv2d(image, weight.clone(), Some(bias.clone()), options)
        .flatten::<3>(2, 3)
        .swap_dims(1, 2)
}

pub fn mlp(
    x: Tensor<2>,
    w1: &Tensor<2>,
    b1: &Tensor<1>,
    w2: &Tensor<2>,
    b2: &Tensor<1>,
) -> Tensor<2> {
    if let Some(y) = SPECIALISED
        .iter()
        .find_map(|set| set.mlp(&x, w1, b1, w2, b2))
    {
        return y;
    }
    let hidden = linear(x, w1, Some(b1), true);
    linear(hidden, w2, Some(b2), false)
}
