//! `out = lhs · rhs (+ bias)` for a `lhs` of a few rows: one invocation per vector of output
//! columns.

use burn::backend::wgpu::CubeTensor;
use burn::tensor::Shape;
use burn_cubecl::ops::numeric::empty_device_dtype;
use cubecl::prelude::*;

/// Invocations per cube.
const CUBE_SIZE: u32 = 64;

/// Each invocation owns `N` adjacent columns of `out` `[rows, cols]` (a vector of them): for
/// every row, the dot products of `lhs`'s row with `rhs`'s columns, from the tensors' own
/// strides (in elements; a vector index is an element index over `N`). Neighbouring
/// invocations read neighbouring vectors: unit stride for a row-major `[k, n]` weight. The
/// rows are a compile-time count (one shader per count, at most [`super::SKINNY_MAX_ROWS`]), so their
/// sums live in registers and `rhs` is read once.
#[cube(launch_unchecked)]
fn skinny_matmul_kernel<N: Size>(
    lhs: &Tensor<f32>,
    rhs: &Tensor<Vector<f32, N>>,
    bias: &Tensor<Vector<f32, N>>,
    out: &mut Tensor<Vector<f32, N>>,
    #[comptime] rows: usize,
    #[comptime] has_bias: bool,
) {
    let width = N::value();
    let vectors = out.shape(1) / width;
    let col = ABSOLUTE_POS;
    if col >= vectors {
        terminate!();
    }
    let depth = lhs.shape(1);
    let (lhs_row, lhs_k) = (lhs.stride(0), lhs.stride(1));
    let rhs_k = rhs.stride(0) / width;
    let start = if has_bias {
        bias[col]
    } else {
        Vector::new(f32::new(0.0))
    };
    let mut sums = Array::<Vector<f32, N>>::new(rows);
    #[unroll]
    for row in 0..rows {
        sums[row] = start;
    }
    let mut at = col;
    for k in 0..depth {
        let w = rhs[at];
        at += rhs_k;
        #[unroll]
        for row in 0..rows {
            sums[row] += Vector::new(lhs[row * lhs_row + k * lhs_k]) * w;
        }
    }
    #[unroll]
    for row in 0..rows {
        out[row * vectors + col] = sums[row];
    }
}

/// `lhs` `[rows, k]` · `rhs` `[k, cols]` (+ `bias` `[cols]`), all f32; `rhs` and `bias` with
/// unit stride along the columns, `lhs` any strides.
pub fn matmul(lhs: CubeTensor, rhs: CubeTensor, bias: Option<CubeTensor>) -> CubeTensor {
    let [rows, depth] = lhs.meta.shape().dims();
    let [rhs_depth, cols] = rhs.meta.shape().dims();
    assert!(
        depth == rhs_depth && rows <= super::SKINNY_MAX_ROWS && rhs.meta.strides()[1] == 1,
        "skinny matmul: shapes checked by the caller"
    );
    if let Some(bias) = &bias {
        assert_eq!(
            bias.meta.shape().dims::<1>(),
            [cols],
            "skinny matmul: bias shape"
        );
    }
    let client = lhs.client.clone();
    let out = empty_device_dtype(
        client.clone(),
        lhs.device.clone(),
        Shape::new([rows, cols]),
        lhs.dtype,
    );
    // Four columns a vector where every row of `rhs` and `bias` starts on a vector.
    let aligned = |t: &CubeTensor| t.handle.offset_start.unwrap_or(0).is_multiple_of(16);
    let width = if cols.is_multiple_of(4)
        && rhs.meta.strides()[0].is_multiple_of(4)
        && aligned(&rhs)
        && bias.as_ref().is_none_or(aligned)
    {
        4
    } else {
        1
    };
    let has_bias = bias.is_some();
    // Without a bias the kernel never reads its bias argument: `rhs` stands in (read-only
    // like it, and of the same vector width; WebGPU refuses a buffer bound both read-only and
    // writable in one dispatch, so `out` cannot).
    let bias = bias.unwrap_or_else(|| rhs.clone());
    let units = cols / width;
    // SAFETY: every index the kernel forms is inside its tensor: column vectors `< cols / width`
    // (checked in the kernel), `row < rows`, `k < depth`, with the shapes checked here and the
    // strides the tensors' own.
    unsafe {
        skinny_matmul_kernel::launch_unchecked(
            &client,
            CubeCount::new_1d(units.div_ceil(CUBE_SIZE as usize) as u32),
            CubeDim::new_1d(CUBE_SIZE),
            width,
            lhs.into_tensor_arg(),
            rhs.into_tensor_arg(),
            bias.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            rows,
            has_bias,
        );
    }
    out
}
