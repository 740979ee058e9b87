//! The small layers every model part is made of, as plain structs holding their tensors
//! (no training, so no burn `Module` machinery), loaded under their checkpoint names.

use std::io::{Read, Seek};

use burn::tensor::module::{conv2d, layer_norm};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, activation};

use crate::config::LAYER_NORM_EPS;
use crate::error::Result;
use crate::weights::Weights;

/// `nn.Linear`: `y = x Wᵀ + b`, with W stored transposed (`[in, out]`) so the product is a
/// plain row-major matmul.
#[derive(Debug, Clone)]
pub struct Linear {
    weight_t: Tensor<2>,
    bias: Option<Tensor<1>>,
}

impl Linear {
    pub fn load<R: Read + Seek>(w: &mut Weights<R>, prefix: &str, d_in: usize, d_out: usize, bias: bool) -> Result<Self> {
        let weight_t = w.transposed(&format!("{prefix}.weight"), [d_out, d_in])?;
        let bias = if bias { Some(w.tensor(&format!("{prefix}.bias"), [d_out])?) } else { None };
        Ok(Linear { weight_t, bias })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        burn::tensor::module::linear(x, self.weight_t.clone(), self.bias.clone())
    }
}

/// `nn.LayerNorm` over the last dimension (eps 1e-5).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor<1>,
    bias: Tensor<1>,
}

impl LayerNorm {
    pub fn load<R: Read + Seek>(w: &mut Weights<R>, prefix: &str, dim: usize) -> Result<Self> {
        Ok(LayerNorm { weight: w.tensor(&format!("{prefix}.weight"), [dim])?, bias: w.tensor(&format!("{prefix}.bias"), [dim])? })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        layer_norm(x, self.weight.clone(), Some(self.bias.clone()), LAYER_NORM_EPS)
    }
}

/// `nn.Conv2d` with square kernel, stride and padding, optionally depthwise (`groups`).
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor<4>,
    bias: Tensor<1>,
    options: ConvOptions<2>,
}

impl Conv2d {
    #[allow(clippy::too_many_arguments)]
    pub fn load<R: Read + Seek>(
        w: &mut Weights<R>,
        prefix: &str,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        groups: usize,
    ) -> Result<Self> {
        Ok(Conv2d {
            weight: w.tensor(&format!("{prefix}.weight"), [c_out, c_in / groups, kernel, kernel])?,
            bias: w.tensor(&format!("{prefix}.bias"), [c_out])?,
            options: ConvOptions::new([stride, stride], [padding, padding], [1, 1], groups),
        })
    }

    /// `x`: `[batch, c_in, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        conv2d(x, self.weight.clone(), Some(self.bias.clone()), self.options.clone())
    }
}

/// Two linear layers with GELU between (DaViT's `ffn` and BART's `fc1`/`fc2`).
#[derive(Debug, Clone)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    pub fn new(fc1: Linear, fc2: Linear) -> Self {
        Mlp { fc1, fc2 }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.fc2.forward(activation::gelu(self.fc1.forward(x)))
    }
}
