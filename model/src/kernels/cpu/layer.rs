//! A linear layer as the fused kernels multiply it (the MLP, window attention): its weight
//! f32 or quantized, a block of rows at a time on the calling thread, so that a quantized
//! tower takes the same fused paths as an f32 one.

use super::matmul::{MatRef, Output, Split, matmul};
use super::quantized;
use crate::load::quantized::QuantizedValues;

/// A layer's weight: f32 `[in, out]`, or quantized (`W` `[out, in]`).
#[derive(Clone, Copy)]
pub enum Weight<'a> {
    Dense(MatRef<'a>),
    Quantized(&'a QuantizedValues),
}

impl Weight<'_> {
    /// `[in, out]`.
    pub fn dims(&self) -> [usize; 2] {
        match self {
            Weight::Dense(w) => [w.rows, w.cols],
            Weight::Quantized(q) => [q.cols, q.rows],
        }
    }

    /// `out += x · W` on the calling thread (`out` holds the bias): the products the layer's
    /// own `linear` computes for the same rows. `scratch` keeps a quantized layer's
    /// dequantized panel between calls.
    pub fn accumulate(&self, x: MatRef<'_>, out: &mut [f32], scratch: &mut Vec<f32>) {
        match self {
            Weight::Dense(w) => matmul(out, x, *w, 1.0, Output::Accumulate, Split::Caller),
            Weight::Quantized(q) => {
                quantized::many_rows(x, q, out, Output::Accumulate, scratch);
            }
        }
    }
}

/// A layer's weight and bias.
#[derive(Clone, Copy)]
pub struct Layer<'a> {
    pub weight: Weight<'a>,
    pub bias: Option<&'a [f32]>,
}

impl Layer<'_> {
    /// `rows` rows of the bias (zeros without one): an output the product is added to, as
    /// the linear kernel starts its own.
    pub fn start(&self, rows: usize) -> Vec<f32> {
        let mut out = vec![0.0; rows * self.weight.dims()[1]];
        self.start_into(&mut out);
        out
    }

    /// [`Layer::start`] into `out` (whole rows), reusing its memory.
    pub fn start_into(&self, out: &mut [f32]) {
        match self.bias {
            Some(b) => {
                for row in out.chunks_exact_mut(b.len().max(1)) {
                    row.copy_from_slice(b);
                }
            }
            None => out.fill(0.0),
        }
    }
}
