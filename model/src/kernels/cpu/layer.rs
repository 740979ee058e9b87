//! A linear layer as the fused kernels multiply it (the MLP, window attention): its weight
//! f32 or quantized, a block of rows at a time on the calling thread, so that a quantized
//! tower takes the same fused paths as an f32 one.

use super::matmul::{MatRef, Output, Split, matmul};
use super::quantized;
use crate::load::quantized::QuantizedValues;

/// A layer's weight: f32 `[in, out]`, or quantized (`W` `[out, in]`): its rows `first..first
/// + rows` (a layer's output columns, e.g. the v third of a qkv projection).
#[derive(Clone, Copy)]
pub enum Weight<'a> {
    Dense(MatRef<'a>),
    Quantized {
        w: &'a QuantizedValues,
        first: usize,
        rows: usize,
    },
}

impl Weight<'_> {
    /// `[in, out]`.
    pub fn dims(&self) -> [usize; 2] {
        match self {
            Weight::Dense(w) => [w.rows, w.cols],
            Weight::Quantized { w, rows, .. } => [w.cols, *rows],
        }
    }

    /// A quantized matrix whole.
    pub fn quantized(w: &QuantizedValues) -> Weight<'_> {
        Weight::Quantized {
            w,
            first: 0,
            rows: w.rows,
        }
    }

    /// Output columns `first..first + count`.
    ///
    /// # Panics
    /// Beyond the layer's outputs (the caller's shapes; a bug there).
    pub fn columns(self, first: usize, count: usize) -> Self {
        assert!(
            first + count <= self.dims()[1],
            "layer columns out of range"
        );
        match self {
            Weight::Dense(m) => Weight::Dense(MatRef {
                offset: m.offset + first * m.col_stride,
                cols: count,
                ..m
            }),
            Weight::Quantized { w, first: f, .. } => Weight::Quantized {
                w,
                first: f + first,
                rows: count,
            },
        }
    }

    /// `out += x · W` on the calling thread (`out` holds the bias): the products the layer's
    /// own `linear` computes for the same rows. `scratch` keeps a quantized layer's
    /// dequantized panel between calls.
    pub fn accumulate(&self, x: MatRef<'_>, out: &mut [f32], scratch: &mut Vec<f32>) {
        match self {
            Weight::Dense(w) => matmul(out, x, *w, 1.0, Output::Accumulate, Split::Caller),
            Weight::Quantized { w, first, rows } => {
                quantized::many_rows_of(
                    x,
                    w,
                    *first..*first + *rows,
                    out,
                    Output::Accumulate,
                    scratch,
                );
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
    /// Output columns `first..first + count`, with their part of the bias.
    pub fn columns(self, first: usize, count: usize) -> Self {
        Layer {
            weight: self.weight.columns(first, count),
            bias: self.bias.map(|b| &b[first..first + count]),
        }
    }

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
