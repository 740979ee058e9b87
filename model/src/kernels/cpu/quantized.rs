//! Products with quantized matrices (`W` `[out, in]` as codes and block scales, see
//! `load::quantized`), the weights never held as f32: a few rows (decoder steps) dequantize
//! each block into registers' worth of floats right before they multiply it; many rows (the
//! vision tower, the encoder) dequantize a panel of `W`'s rows into a small scratch that
//! `gemm` multiplies, panel after panel.

use super::gemv::{Columns, GEMV_MAX_ROWS, by_column_blocks};
use super::matmul::{MatRef, Output, Split, matmul};
use super::simd::multiversion;
use crate::load::quantized::{BLOCK, Bits, QuantizedValues, block_bytes, dequantize_block};

/// Output columns (rows of `W`) per task of the few-rows product: each task streams its own
/// contiguous part of the codes.
const ROWS_PER_TASK: usize = 64;

/// Rows of `W` dequantized at a time for the many-rows product: a scratch of at most
/// `PANEL × in` floats (768 KB for base's 3072-wide inputs) that stays in L2 while `gemm`
/// reads it once per block of rows.
pub const PANEL: usize = 64;

/// `out[m × out] = x[m × in] · Wᵀ` for `m ≤` [`GEMV_MAX_ROWS`], over the pool by blocks of
/// `W`'s rows.
///
/// # Panics
/// When the sizes disagree (the caller checks the tensors' shapes first).
pub fn few_rows(x: &[f32], m: usize, w: &QuantizedValues, out: &mut [f32]) {
    let (n, k) = (w.rows, w.cols);
    assert!(
        m <= GEMV_MAX_ROWS && x.len() == m * k && out.len() == m * n,
        "quantized few_rows shapes"
    );
    by_column_blocks(m, n, ROWS_PER_TASK, out, |cols, acc| {
        rows_block(w.bits, &w.codes, &w.scales, k, x, m, cols, acc)
    });
}

/// Rows `first..first + count` of `W` as f32 into `panel` (`[count × in]`, row-major).
fn dequantize_panel(w: &QuantizedValues, first: usize, count: usize, panel: &mut [f32]) {
    for (j, row) in panel
        .chunks_exact_mut(w.cols.max(1))
        .take(count)
        .enumerate()
    {
        w.dequantize_row(first + j, row);
    }
}

/// `out[m × out] (+)= x[m × in] · Wᵀ` on the calling thread, `x` row-major with `m` rows, a
/// panel of `W` at a time; `scratch` holds a panel and its product. `Output::Accumulate`
/// adds to what `out` holds (a bias).
pub fn many_rows(
    x: MatRef<'_>,
    w: &QuantizedValues,
    out: &mut [f32],
    output: Output,
    scratch: &mut Vec<f32>,
) {
    many_rows_of(x, w, 0..w.rows, out, output, scratch);
}

/// [`many_rows`] with `W`'s rows `rows` only (`out` is `[m × rows.len()]`): a part of a
/// layer's outputs, such as the v third of a qkv projection.
pub fn many_rows_of(
    x: MatRef<'_>,
    w: &QuantizedValues,
    rows: std::ops::Range<usize>,
    out: &mut [f32],
    output: Output,
    scratch: &mut Vec<f32>,
) {
    let (m, n, k) = (x.rows, rows.len(), w.cols);
    assert!(
        x.cols == k && rows.end <= w.rows && out.len() == m * n,
        "quantized many_rows shapes"
    );
    for first in (0..n).step_by(PANEL) {
        let count = PANEL.min(n - first);
        scratch.resize(k * count + m * count, 0.0);
        let (panel, product) = scratch.split_at_mut(k * count);
        dequantize_panel(w, rows.start + first, count, panel);
        // The panel's transpose, `[in × count]`, as `gemm`'s right-hand side.
        let rhs = MatRef {
            data: panel,
            offset: 0,
            rows: k,
            cols: count,
            row_stride: 1,
            col_stride: k,
        };
        matmul(product, x, rhs, 1.0, Output::Overwrite, Split::Caller);
        for (o, p) in out.chunks_exact_mut(n).zip(product.chunks_exact(count)) {
            let o = &mut o[first..first + count];
            if output == Output::Accumulate {
                for (o, &p) in o.iter_mut().zip(p) {
                    *o += p;
                }
            } else {
                o.copy_from_slice(p);
            }
        }
    }
}

multiversion! {
    /// Columns `cols` of `x · Wᵀ` into `acc` (`[m × cols.stride]`): for each row of `W`, each
    /// block dequantized into 64 floats and multiplied with every row of `x` in 8 lanes.
    #[allow(clippy::too_many_arguments)]
    fn rows_block(bits: Bits, codes: &[u8], scales: &[f32], k: usize, x: &[f32], m: usize, cols: Columns, acc: &mut [f32]) {
        const LANES: usize = 8;
        let row_bytes = QuantizedValues::row_bytes(bits, k);
        let blocks = QuantizedValues::blocks_per_row(k);
        let step = block_bytes(bits);
        let mut w = [0.0f32; BLOCK];
        for j in 0..cols.width {
            let o = cols.first + j;
            let codes = &codes[o * row_bytes..][..row_bytes];
            let scales = &scales[o * blocks..][..blocks];
            let mut lanes = [[0.0f32; LANES]; GEMV_MAX_ROWS];
            let mut tails = [0.0f32; GEMV_MAX_ROWS];
            for (b, &scale) in scales.iter().enumerate() {
                let start = b * BLOCK;
                let len = BLOCK.min(k - start);
                let w = &mut w[..len];
                dequantize_block(bits, &codes[b * step..], scale, w);
                let whole = len - len % LANES;
                for r in 0..m {
                    let xr = &x[r * k + start..][..len];
                    let l = &mut lanes[r];
                    for (xc, wc) in xr[..whole].chunks_exact(LANES).zip(w[..whole].chunks_exact(LANES)) {
                        for i in 0..LANES {
                            l[i] += xc[i] * wc[i];
                        }
                    }
                    for (xv, wv) in xr[whole..].iter().zip(&w[whole..]) {
                        tails[r] += xv * wv;
                    }
                }
            }
            for r in 0..m {
                acc[r * cols.stride + j] = lanes[r].iter().sum::<f32>() + tails[r];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f32], m: usize, w: &QuantizedValues) -> Vec<f64> {
        let dense = w.dequantize();
        let (n, k) = (w.rows, w.cols);
        let mut out = vec![0.0f64; m * n];
        for r in 0..m {
            for o in 0..n {
                out[r * n + o] = (0..k)
                    .map(|p| x[r * k + p] as f64 * dense[o * k + p] as f64)
                    .sum();
            }
        }
        out
    }

    #[test]
    fn products_match_the_dequantized_matrix() {
        // 150 inputs: two full blocks and a short one; 70 outputs: more than one task/panel.
        for bits in [Bits::Q8, Bits::Q4] {
            for (m, k, n) in [
                (1, 150, 70),
                (3, 64, 129),
                (8, 8, 5),
                (20, 150, 70),
                (9, 200, 3),
            ] {
                let w: Vec<f32> = (0..n * k)
                    .map(|i| ((i * 11 % 31) as f32 - 15.0) * 0.03)
                    .collect();
                let w = QuantizedValues::quantize(&w, n, k, bits).unwrap();
                let x: Vec<f32> = (0..m * k)
                    .map(|i| ((i * 7 % 23) as f32 - 11.0) * 0.1)
                    .collect();
                let want = reference(&x, m, &w);
                let mut out = vec![f32::NAN; m * n];
                if m <= GEMV_MAX_ROWS {
                    few_rows(&x, m, &w, &mut out);
                } else {
                    let xv = MatRef {
                        data: &x,
                        offset: 0,
                        rows: m,
                        cols: k,
                        row_stride: k,
                        col_stride: 1,
                    };
                    many_rows(xv, &w, &mut out, Output::Overwrite, &mut Vec::new());
                }
                for (i, (&got, &want)) in out.iter().zip(&want).enumerate() {
                    assert!(
                        (got as f64 - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{bits:?} {m}x{k}x{n} [{i}]: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_range_of_rows_gives_those_columns_of_the_whole_product() {
        let (m, k, n) = (12, 150, 130);
        for bits in [Bits::Q8, Bits::Q4] {
            let w: Vec<f32> = (0..n * k)
                .map(|i| ((i * 13 % 29) as f32 - 14.0) * 0.02)
                .collect();
            let w = QuantizedValues::quantize(&w, n, k, bits).unwrap();
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 5 % 17) as f32 - 8.0) * 0.1)
                .collect();
            let xv = MatRef {
                data: &x,
                offset: 0,
                rows: m,
                cols: k,
                row_stride: k,
                col_stride: 1,
            };
            let mut whole = vec![f32::NAN; m * n];
            many_rows(xv, &w, &mut whole, Output::Overwrite, &mut Vec::new());
            // From a panel's edge (as the thirds of DaViT's qkv, whose widths are multiples
            // of 64) the panels are the whole product's: the same values. From elsewhere,
            // `gemm` sees panels of other widths: equal up to rounding.
            for (range, exact) in [(64..130, true), (40..110, false)] {
                let len = range.len();
                let mut part = vec![1.0f32; m * len];
                many_rows_of(
                    xv,
                    &w,
                    range.clone(),
                    &mut part,
                    Output::Accumulate,
                    &mut Vec::new(),
                );
                for r in 0..m {
                    for (j, &got) in part[r * len..][..len].iter().enumerate() {
                        let want = 1.0 + whole[r * n + range.start + j];
                        if exact {
                            assert_eq!(got, want, "{bits:?} {range:?} row {r} column {j}");
                        } else {
                            assert!(
                                (got - want).abs() < 1e-5 * (1.0 + want.abs()),
                                "{bits:?} {range:?} [{r}, {j}]"
                            );
                        }
                    }
                }
            }
        }
    }
}
