//! `softmax(scale · q kᵀ) v` for a few query rows in one launch: one cube per query row
//! (batch, head, row), its units splitting the keys.
//!
//! burn's attention with an explicit scale is eleven launches (two matmuls, a scaling, a
//! softmax of reductions, clamps and elementwise ops). A decoder step attends four times per
//! layer pair with one row per beam, and on a software adapter each launch costs about as
//! much as that row's arithmetic.

use burn::backend::wgpu::CubeTensor;
use burn::tensor::Shape;
use burn_cubecl::ops::numeric::empty_device_dtype;
use cubecl::prelude::*;

/// Units per cube: each takes every `UNITS`-th key. Their partial sums (`UNITS × (head_dim +
/// 1)` floats) stay within WebGPU's 16 KiB of workgroup memory for a head of up to 127.
const UNITS: usize = 32;

/// The largest head this kernel takes (its query and sums live in registers).
pub const MAX_HEAD_DIM: usize = 120;

/// `out` `[b, h, rows, head_dim]` contiguous, for `q` `[b, h, rows, head_dim]`, `k` and `v`
/// `[b, h, len, head_dim]` (any strides). Cube `CUBE_POS` owns query row
/// `(b · h + head) · rows + row`; unit `u` scores keys `u, u + units, …`, first for the row's
/// largest score, then for its exponentials' sum and their weighted values, and the units'
/// partial sums meet in shared memory.
#[cube(launch_unchecked)]
fn attention_kernel(
    q: &Tensor<f32>,
    k: &Tensor<f32>,
    v: &Tensor<f32>,
    out: &mut Tensor<f32>,
    scale: f32,
    #[comptime] head_dim: usize,
    #[comptime] units: usize,
) {
    let heads = q.shape(1);
    let rows = q.shape(2);
    let len = k.shape(2);
    let row = CUBE_POS % rows;
    let bh = CUBE_POS / rows;
    let (b, h) = (bh / heads, bh % heads);
    let unit = UNIT_POS as usize;
    let q_at = b * q.stride(0) + h * q.stride(1) + row * q.stride(2);
    let k_at = b * k.stride(0) + h * k.stride(1);
    let v_at = b * v.stride(0) + h * v.stride(1);
    let (q_d, k_l, k_d) = (q.stride(3), k.stride(2), k.stride(3));
    let (v_l, v_d) = (v.stride(2), v.stride(3));

    let mut qs = Array::<f32>::new(head_dim);
    #[unroll]
    for d in 0..head_dim {
        qs[d] = q[q_at + d * q_d];
    }

    // 1. The largest score of this unit's keys, then of the row.
    // Below any score (a negative literal would be a compile-time constant, not a variable).
    let mut top = 0.0f32;
    top -= 3.0e38f32;
    let mut l = unit;
    while l < len {
        let mut s = 0.0f32;
        #[unroll]
        for d in 0..head_dim {
            s += qs[d] * k[k_at + l * k_l + d * k_d];
        }
        s *= scale;
        if s > top {
            top = s;
        }
        l += units;
    }
    let mut shared = Shared::<[f32]>::new_slice(units * (head_dim + 1));
    shared[unit] = top;
    sync_cube();
    let mut max = shared[0];
    for u in 1..units {
        let m = shared[u];
        if m > max {
            max = m;
        }
    }
    sync_cube();

    // 2. This unit's exponentials (of the same scores, computed the same way) and their
    // weighted values.
    let mut sum = 0.0f32;
    let mut acc = Array::<f32>::new(head_dim);
    #[unroll]
    for d in 0..head_dim {
        acc[d] = 0.0f32;
    }
    l = unit;
    while l < len {
        let mut s = 0.0f32;
        #[unroll]
        for d in 0..head_dim {
            s += qs[d] * k[k_at + l * k_l + d * k_d];
        }
        s *= scale;
        let p = f32::exp(s - max);
        sum += p;
        #[unroll]
        for d in 0..head_dim {
            acc[d] += p * v[v_at + l * v_l + d * v_d];
        }
        l += units;
    }
    let stride = head_dim + 1;
    shared[unit * stride] = sum;
    #[unroll]
    for d in 0..head_dim {
        shared[unit * stride + 1 + d] = acc[d];
    }
    sync_cube();

    // 3. The row's sums; unit `u` writes the values `u, u + units, …`.
    let mut total = 0.0f32;
    for u in 0..units {
        total += shared[u * stride];
    }
    let mut d = unit;
    while d < head_dim {
        let mut o = 0.0f32;
        for u in 0..units {
            o += shared[u * stride + 1 + d];
        }
        out[CUBE_POS * head_dim + d] = o / total;
        d += units;
    }
}

/// Attention of `q` `[b, h, rows, head_dim]` to `k`, `v` `[b, h, len, head_dim]`, all f32,
/// `head_dim ≤` [`MAX_HEAD_DIM`], not masked.
pub fn attention(q: CubeTensor, k: CubeTensor, v: CubeTensor, scale: f32) -> CubeTensor {
    let [b, h, rows, head_dim] = q.meta.shape().dims();
    let [kb, kh, len, kd] = k.meta.shape().dims();
    assert!(
        [kb, kh, kd] == [b, h, head_dim]
            && v.meta.shape().dims::<4>() == [b, h, len, head_dim]
            && head_dim <= MAX_HEAD_DIM
            && len > 0,
        "attention: shapes checked by the caller"
    );
    let client = q.client.clone();
    let out = empty_device_dtype(
        client.clone(),
        q.device.clone(),
        Shape::new([b, h, rows, head_dim]),
        q.dtype,
    );
    // SAFETY: every index the kernel forms is inside its tensor: one cube per query row
    // (`b · h · rows` cubes), keys `l < len`, `d < head_dim`, with the shapes checked here and
    // the strides the tensors' own; shared memory `unit < units`, `d < head_dim`.
    unsafe {
        attention_kernel::launch_unchecked(
            &client,
            CubeCount::new_1d((b * h * rows) as u32),
            CubeDim::new_1d(UNITS as u32),
            q.into_tensor_arg(),
            k.into_tensor_arg(),
            v.into_tensor_arg(),
            out.clone().into_tensor_arg(),
            scale,
            head_dim,
            UNITS,
        );
    }
    out
}
