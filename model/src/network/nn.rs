//! The small layers every model part is made of, as plain structs holding their tensors
//! (no training, so no burn `Module` machinery), loaded under their checkpoint names.

use std::io::{Read, Seek};

use burn::tensor::Tensor;

use crate::error::{Error, Result};
use crate::kernels::{self, Matrix};
use crate::load::config::LAYER_NORM_EPS;
use crate::load::quantized::QuantizedValues;
use crate::load::weights::{StoredMatrix, Weights};

/// Whether a linear layer's checkpoint stores a bias (`{prefix}.bias`) beside its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bias {
    Stored,
    Absent,
}

/// `nn.Linear`: `y = x Wᵀ + b`, with W stored transposed (`[in, out]`) so the product is a
/// plain row-major matmul — or quantized (`[out, in]`), as a quantized checkpoint stores it.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Matrix,
    bias: Option<Tensor<1>>,
}

impl Linear {
    pub fn load<R: Read + Seek>(
        w: &mut Weights<R>,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        bias: Bias,
    ) -> Result<Self> {
        Self::load_side_by_side(w, &[prefix], d_in, d_out, bias)
    }

    /// The layers `prefixes` (each `d_in → d_out`) as one `d_in → n·d_out` layer whose
    /// outputs are theirs side by side, in order: one product instead of several.
    pub fn load_side_by_side<R: Read + Seek>(
        w: &mut Weights<R>,
        prefixes: &[&str],
        d_in: usize,
        d_out: usize,
        bias: Bias,
    ) -> Result<Self> {
        let mut dense = Vec::new();
        let mut quantized = Vec::new();
        let mut biases = Vec::new();
        for p in prefixes {
            match w.matrix(&format!("{p}.weight"), [d_out, d_in])? {
                StoredMatrix::Dense(values) => dense.extend(values),
                StoredMatrix::Quantized(q) => quantized.push(q),
            }
            if bias == Bias::Stored {
                biases.push(w.tensor(&format!("{p}.bias"), [d_out])?);
            }
        }
        let out = prefixes.len() * d_out;
        // The layers' `[out, in]` rows one after the other are the joined layer's rows.
        let stored = match (dense.is_empty(), QuantizedValues::stack(quantized)) {
            (false, None) => StoredMatrix::Dense(dense),
            (true, Some(q)) => StoredMatrix::Quantized(q),
            _ => {
                return Err(Error::Checkpoint(format!(
                    "`{}`: the layers joined into one must all be quantized alike, or none",
                    prefixes.join("`, `")
                )));
            }
        };
        let weight = w.upload_matrix(stored, [out, d_in]);
        let bias = (!biases.is_empty()).then(|| Tensor::cat(biases, 0));
        Ok(Linear { weight, bias })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.apply(x, false)
    }

    /// The tensors, for the kernels that take a layer whole.
    pub fn weights(&self) -> kernels::LinearRef<'_> {
        kernels::LinearRef {
            weight: &self.weight,
            bias: self.bias.as_ref(),
        }
    }

    /// `GELU(x Wᵀ + b)`, fused on the CPU.
    pub fn forward_gelu<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.apply(x, true)
    }

    fn apply<const D: usize>(&self, x: Tensor<D>, gelu: bool) -> Tensor<D> {
        let mut dims = x.dims();
        let d_in = dims[D - 1];
        let rows = x.shape().num_elements() / d_in.max(1);
        let x2: Tensor<2> = x.reshape([rows, d_in]);
        let y = kernels::apply(x2, self.weights(), gelu);
        dims[D - 1] = self.weight.dims()[1];
        y.reshape(dims)
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
        Ok(LayerNorm {
            weight: w.tensor(&format!("{prefix}.weight"), [dim])?,
            bias: w.tensor(&format!("{prefix}.bias"), [dim])?,
        })
    }

    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dims = x.dims();
        let dim = dims[D - 1];
        let x2: Tensor<2> = x.reshape([dims.iter().product::<usize>() / dim.max(1), dim]);
        kernels::layer_norm(x2, &self.weight, &self.bias, LAYER_NORM_EPS).reshape(dims)
    }
}

/// `nn.Conv2d` with square kernel, stride and padding (DaViT's patch embeddings).
#[derive(Debug, Clone)]
pub struct Conv2d {
    weight: Tensor<4>,
    bias: Tensor<1>,
    stride: usize,
    padding: usize,
}

impl Conv2d {
    pub fn load<R: Read + Seek>(
        w: &mut Weights<R>,
        prefix: &str,
        c_in: usize,
        c_out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<Self> {
        let (name, shape) = (format!("{prefix}.weight"), [c_out, c_in, kernel, kernel]);
        let weight = if kernels::filters_tap_major(w.device()) {
            // Memory `[c_out, k, k, c_in]`.
            w.tensor_in_order(&name, shape, [0, 2, 3, 1])?
        } else {
            w.tensor(&name, shape)?
        };
        Ok(Conv2d {
            weight,
            bias: w.tensor(&format!("{prefix}.bias"), [c_out])?,
            stride,
            padding,
        })
    }

    /// Channels-last tokens `x` `[batch, h·w, c_in]` on the grid `[h, w]` → tokens
    /// `[batch, ho·wo, c_out]` and their grid `[ho, wo]`.
    pub fn forward(&self, x: Tensor<3>, grid: [usize; 2]) -> (Tensor<3>, [usize; 2]) {
        kernels::patch_conv(x, grid, &self.weight, &self.bias, self.stride, self.padding)
    }
}

/// DaViT's convolutional position encoding, `x + conv(x)` with a depthwise `nn.Conv2d` (one
/// filter per channel, stride 1, "same" padding), applied to channels-last tokens, the layout
/// DaViT's blocks keep (no transpose around it on the CPU).
#[derive(Debug, Clone)]
pub struct ConvPosEnc {
    weight: Tensor<4>,
    bias: Tensor<1>,
    padding: usize,
}

impl ConvPosEnc {
    pub fn load<R: Read + Seek>(
        w: &mut Weights<R>,
        prefix: &str,
        channels: usize,
        kernel: usize,
    ) -> Result<Self> {
        let (name, shape) = (format!("{prefix}.weight"), [channels, 1, kernel, kernel]);
        let weight = if kernels::filters_tap_major(w.device()) {
            // Memory `[k, k, c]` (the dimension of 1 anywhere).
            w.tensor_in_order(&name, shape, [2, 3, 0, 1])?
        } else {
            w.tensor(&name, shape)?
        };
        Ok(ConvPosEnc {
            weight,
            bias: w.tensor(&format!("{prefix}.bias"), [channels])?,
            padding: kernel / 2,
        })
    }

    /// `x + conv(x)`, `x`: `[batch, h·w, channels]` → the same shape.
    pub fn forward(&self, x: Tensor<3>, h: usize, w: usize) -> Tensor<3> {
        kernels::conv_pos_enc(x, h, w, &self.weight, &self.bias, self.padding)
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

    /// `residual + fc2(GELU(fc1(x)))`: every MLP of the model (DaViT's and BART's) feeds a
    /// residual, which the CPU kernel adds while each block of rows is in cache.
    pub fn forward_residual<const D: usize>(&self, x: Tensor<D>, residual: Tensor<D>) -> Tensor<D> {
        let dims = residual.dims();
        let d_in = x.dims()[D - 1];
        let d_out = dims[D - 1];
        let rows = x.shape().num_elements() / d_in.max(1);
        let y = kernels::mlp(
            x.reshape([rows, d_in]),
            self.fc1.weights(),
            self.fc2.weights(),
            residual.reshape([rows, d_out]),
        );
        y.reshape(dims)
    }
}
