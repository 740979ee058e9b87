//! Tensors read back from the device into host memory: the one place that turns a device's
//! failure to do so into [`Error::Backend`]. A leaf: the model, the kernels and the tests all
//! read tensors back through it.

use burn::tensor::Tensor;

use crate::error::{Error, Result};

/// A tensor's values as f32, row-major (reads it back from the device). A device's failure
/// (a buffer it could not allocate, a lost device) is `Error::Backend`, not a panic.
pub fn values<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.try_into_data()
        .map_err(|e| Error::Backend(format!("cannot read a tensor back: {e}")))?
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::Backend(format!("cannot read a tensor back: {e:?}")))
}

/// [`values`] without blocking: on WebGPU the read is a mapped buffer the browser fills later.
pub async fn values_async<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    t.into_data_async()
        .await
        .map_err(|e| Error::Backend(format!("cannot read a tensor back: {e:?}")))?
        .try_into_vec_as::<f32>()
        .map_err(|e| Error::Backend(format!("cannot read a tensor back: {e:?}")))
}
