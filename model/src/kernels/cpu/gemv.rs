//! Products with a few rows — a decoder step has one row per beam — against a large matrix.
//! They read each weight once, so memory bandwidth bounds them, not arithmetic: they are
//! split over the pool so that each thread streams its own contiguous part of the weights
//! (`gemm` runs them on one thread): `x · w` by runs of rows of `w`, `x · eᵀ` by rows of `e`
//! (output columns). Every output is summed in one fixed order, whatever the thread count.

use super::parallel::{for_each_chunk, for_each_chunk_sized};
use super::simd::{dot, multiversion};

/// Output columns per task of `x · eᵀ`, whose tasks read whole rows of `e` (contiguous
/// however few columns a task has): small enough that every thread gets work, large enough
/// that the per-task overhead vanishes.
pub(super) const TRANSPOSED_BLOCK: usize = 128;

/// Most accumulators (floats) of an `x · w` task, `m` rows × its columns: 16 KB, which stay
/// in L1 while the task streams its weights.
const MATRIX_ACC: usize = 4096;

/// Rows of `w` per task of `x · w`. Each task sums its run of rows into its own partial
/// output and the partials are added in order afterwards, so a thread streams one
/// contiguous part of `w`, and the sums are the same whatever the thread count. (Split by
/// output columns instead, two threads each read half of every row, in 1.5 KB runs: a
/// 768² product took 64 µs on two threads against 32 µs this way, and a decoder's
/// products read 17.8 GB/s against 21.3.) 128 rows split 768 and 3072 evenly over 1, 2, 3
/// or 6 threads.
const DEPTH_BLOCK: usize = 128;

/// The output columns `first..first + width` one task computes, into accumulators whose
/// rows are `stride` floats apart.
#[derive(Clone, Copy)]
pub(super) struct Columns {
    pub first: usize,
    pub width: usize,
    pub stride: usize,
}

/// Up to this many rows take these kernels (beams; a prompt's rows go to `gemm`).
pub const GEMV_MAX_ROWS: usize = 8;

/// Output columns per task of `x · w` for `m` rows and `n` columns: all of them, unless
/// their accumulators would outgrow [`MATRIX_ACC`] (in multiples of 16 columns).
fn matrix_block_width(m: usize, n: usize) -> usize {
    n.min((MATRIX_ACC / m.max(1)).next_multiple_of(16)).max(1)
}

/// `out[m×n] = x[m×k] · w[k×n]` (+ `bias[n]` on every row), `x` and `out` dense row-major,
/// row `p` of `w` at `w[p·ldw..][..n]`.
///
/// # Panics
/// When the slices do not fit the sizes. The only caller (`flex.rs`) checks the tensors'
/// shapes against each other first and builds the slices from them, so that is a bug there.
pub fn rows_times_matrix(
    x: &[f32],
    m: usize,
    w: &[f32],
    ldw: usize,
    n: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) {
    let k = x.len().checked_div(m).unwrap_or(0);
    assert!(
        x.len() == m * k
            && out.len() == m * n
            && (k == 0 || w.len() >= (k - 1) * ldw + n)
            && bias.is_none_or(|b| b.len() == n),
        "rows_times_matrix shapes"
    );
    if m == 0 || n == 0 {
        return;
    }
    let width = matrix_block_width(m, n);
    let column_blocks = n.div_ceil(width);
    let depth_blocks = k.div_ceil(DEPTH_BLOCK).max(1);
    // Task `t` takes depth block `t / column_blocks` of column block `t % column_blocks`.
    let mut parts = vec![0.0f32; depth_blocks * column_blocks * m * width];
    for_each_chunk_sized(
        m * k * n,
        &mut parts,
        m * width,
        || (),
        |_, t, acc| {
            let (depth, column) = (t / column_blocks, t % column_blocks);
            let first = column * width;
            let p0 = depth * DEPTH_BLOCK;
            let cols = Columns {
                first,
                width: width.min(n - first),
                stride: width,
            };
            matrix_block(x, m, p0..k.min(p0 + DEPTH_BLOCK), w, ldw, cols, acc);
        },
    );
    // Tasks lie depth block after depth block: each output adds its partials in depth order.
    for (t, task) in parts.chunks_exact(m * width).enumerate() {
        let (depth, j0) = (t / column_blocks, t % column_blocks * width);
        let cols = width.min(n - j0);
        for (r, partial) in task.chunks_exact(width).enumerate() {
            let out = &mut out[r * n + j0..][..cols];
            if depth == 0 {
                out.copy_from_slice(&partial[..cols]);
            } else {
                for (o, &v) in out.iter_mut().zip(partial) {
                    *o += v;
                }
            }
        }
    }
    if let Some(b) = bias {
        for row in out.chunks_exact_mut(n) {
            for (o, &b) in row.iter_mut().zip(b) {
                *o += b;
            }
        }
    }
}

/// `out[m×n] = x[m×d] · eᵀ` for `e` `[n×d]` dense row-major (the tied `lm_head`).
///
/// # Panics
/// As [`rows_times_matrix`]: only on a caller's bug.
pub fn rows_times_transposed(x: &[f32], m: usize, e: &[f32], n: usize, out: &mut [f32]) {
    let d = x.len().checked_div(m).unwrap_or(0);
    assert!(
        x.len() == m * d && e.len() == n * d && out.len() == m * n,
        "rows_times_transposed shapes"
    );
    by_column_blocks(m, n, TRANSPOSED_BLOCK, out, |cols, acc| {
        transposed_block(x, m, d, e, cols, acc)
    });
}

/// Runs `task(columns, acc)` for each block of `block` columns over the pool;
/// `acc` is `[m × block]` (row `r` at `r·block`), copied into `out` afterwards.
pub(super) fn by_column_blocks(
    m: usize,
    n: usize,
    block: usize,
    out: &mut [f32],
    task: impl Fn(Columns, &mut [f32]) + Sync + Send,
) {
    if m == 0 || n == 0 {
        return;
    }
    let blocks = n.div_ceil(block);
    let mut parts = vec![0.0f32; blocks * m * block];
    for_each_chunk(
        &mut parts,
        m * block,
        || (),
        |_, b, acc| {
            let first = b * block;
            let width = block.min(n - first);
            task(
                Columns {
                    first,
                    width,
                    stride: block,
                },
                acc,
            )
        },
    );
    for (b, acc) in parts.chunks_exact(m * block).enumerate() {
        let j0 = b * block;
        let width = block.min(n - j0);
        for (r, row) in acc.chunks_exact(block).enumerate() {
            out[r * n + j0..][..width].copy_from_slice(&row[..width]);
        }
    }
}

multiversion! {
    /// Columns `cols` of `Σ_{p ∈ depth} x[·, p] · w[p, ·]` into `acc` (`[m × cols.stride]`),
    /// four weight rows at a time (one pass over `acc` per four rows).
    fn matrix_block(x: &[f32], m: usize, depth: std::ops::Range<usize>, w: &[f32], ldw: usize, cols: Columns, acc: &mut [f32]) {
        let Columns { first: j0, width, stride } = cols;
        let k = x.len() / m;
        acc.fill(0.0);
        let end = depth.end;
        let mut p = depth.start;
        while p + 4 <= end {
            let rows: [&[f32]; 4] = std::array::from_fn(|i| &w[(p + i) * ldw + j0..][..width]);
            for r in 0..m {
                let xr = &x[r * k + p..][..4];
                let a = &mut acc[r * stride..][..width];
                for (j, a) in a.iter_mut().enumerate() {
                    *a += xr[0] * rows[0][j] + xr[1] * rows[1][j] + xr[2] * rows[2][j] + xr[3] * rows[3][j];
                }
            }
            p += 4;
        }
        for p in p..end {
            let row = &w[p * ldw + j0..][..width];
            for r in 0..m {
                let xv = x[r * k + p];
                for (a, &wv) in acc[r * stride..][..width].iter_mut().zip(row) {
                    *a += xv * wv;
                }
            }
        }
    }
}

multiversion! {
    /// Columns `cols` of `x · eᵀ` into `acc` (`[m × cols.stride]`): one dot product per
    /// output, in 8 lanes.
    fn transposed_block(x: &[f32], m: usize, d: usize, e: &[f32], cols: Columns, acc: &mut [f32]) {
        let Columns { first: j0, width, stride } = cols;
        for j in 0..width {
            let row = &e[(j0 + j) * d..][..d];
            for r in 0..m {
                acc[r * stride + j] = dot(&x[r * d..][..d], row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_the_plain_products() {
        // (8, 9, 700) and (1, 5, 4100) take more than one column block, (2, 300, 40) three
        // depth blocks, the last one short.
        for (m, k, n) in [
            (2, 300, 40),
            (1, 768, 300),
            (3, 7, 129),
            (2, 5, 1),
            (8, 64, 256),
            (8, 9, 700),
            (1, 5, 4100),
        ] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 7 % 23) as f32 - 11.0) * 0.1)
                .collect();
            let ldw = n + 3;
            let w: Vec<f32> = (0..k * ldw)
                .map(|i| ((i * 11 % 31) as f32 - 15.0) * 0.03)
                .collect();
            let bias: Vec<f32> = (0..n).map(|j| j as f32 * 0.01).collect();
            let mut out = vec![f32::NAN; m * n];
            rows_times_matrix(&x, m, &w, ldw, n, Some(&bias), &mut out);
            // e = the first n rows of w's transpose, dense.
            let e: Vec<f32> = (0..n * k).map(|i| w[(i % k) * ldw + i / k]).collect();
            let mut out_t = vec![f32::NAN; m * n];
            rows_times_transposed(&x, m, &e, n, &mut out_t);
            for r in 0..m {
                for j in 0..n {
                    let want: f64 = (0..k)
                        .map(|p| x[r * k + p] as f64 * w[p * ldw + j] as f64)
                        .sum();
                    let tol = 1e-4 * (1.0 + want.abs());
                    assert!(
                        (out[r * n + j] as f64 - want - bias[j] as f64).abs() < tol,
                        "{m}x{k}x{n} [{r},{j}]"
                    );
                    assert!(
                        (out_t[r * n + j] as f64 - want).abs() < tol,
                        "t {m}x{k}x{n} [{r},{j}]"
                    );
                }
            }
        }
    }
}
