//! The reference composition of a quantized linear layer, for devices no kernel set takes
//! quantized matrices on: the codes stay on the host, and each product multiplies by a
//! dequantized copy of the whole matrix made for that call. The CPU (`cpu::quantized`) and
//! GPU kernels replace it, dequantizing a block at a time and holding no f32 copy.

use burn::tensor::{Device, Tensor, TensorData, activation};

use super::QuantizedMatrix;
use crate::load::quantized::QuantizedValues;

pub struct Dequantizing {
    values: QuantizedValues,
    device: Device,
}

impl Dequantizing {
    pub fn new(values: QuantizedValues, device: &Device) -> Self {
        Dequantizing {
            values,
            device: device.clone(),
        }
    }
}

/// `x · dequantized(W)ᵀ (+ bias) (→ GELU)` with burn's ops on `device`.
pub fn reference_linear(
    w: &QuantizedValues,
    device: &Device,
    x: &Tensor<2>,
    bias: Option<&Tensor<1>>,
    gelu: bool,
) -> Tensor<2> {
    let dense = Tensor::<2>::from_data(TensorData::new(w.dequantize(), [w.rows, w.cols]), device);
    let y = burn::tensor::module::linear(x.clone(), dense.transpose(), bias.cloned());
    if gelu { activation::gelu(y) } else { y }
}

impl QuantizedMatrix for Dequantizing {
    fn dims(&self) -> [usize; 2] {
        [self.values.rows, self.values.cols]
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn linear(&self, x: &Tensor<2>, bias: Option<&Tensor<1>>, gelu: bool) -> Tensor<2> {
        reference_linear(&self.values, &self.device, x, bias, gelu)
    }

    fn select(&self, ids: &[u32]) -> Tensor<2> {
        let rows = self.values.dequantize_rows(ids);
        Tensor::from_data(
            TensorData::new(rows, [ids.len(), self.values.cols]),
            &self.device,
        )
    }
}
