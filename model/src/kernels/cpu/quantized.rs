//! Products with quantized matrices (`W` `[out, in]` as codes and block scales, see
//! `load::quantized`), the weights never held as f32: a few rows (decoder steps) multiply
//! each block's codes, unpacked in registers, with `x` and apply its scale once; many rows (the
//! vision tower, the encoder) dequantize a panel of `W`'s rows, transposed, into a scratch
//! that `gemm` multiplies, panel after panel.

use super::gemv::{Columns, GEMV_MAX_ROWS, by_column_blocks};
use super::matmul::{MatRef, Output, Split, matmul_strided};
use super::simd::{madd, multiversion};
use crate::load::quantized::{BLOCK, Bits, QuantizedValues, dequantize_block};

/// Output columns (rows of `W`) per task of the few-rows product: each task streams its own
/// contiguous part of the codes.
const ROWS_PER_TASK: usize = 64;

/// Most floats of the panel of `W` the many-rows product dequantizes at a time (4 MB):
/// `gemm` packs `x` again for every panel, so a panel holds as many of `W`'s rows as fit
/// (all of them for most of the vision tower's layers; at least 64).
const PANEL_FLOATS: usize = 1 << 20;

/// Rows of `W` per panel of the many-rows product, for `in` = `k`.
fn panel_rows(n: usize, k: usize) -> usize {
    (PANEL_FLOATS / k.max(1) / 64 * 64).max(64).min(n.max(1))
}

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

/// Block column `b` of rows `first..first + count` of `W` (their inputs `64b..64b + len`),
/// dequantized and transposed: `out[len × count]`, row-major. 16 rows of `W` at a time go
/// through a small tile, so that every write is a run of 16 floats: `gemm` packs a
/// right-hand side with contiguous rows several times faster than one it must gather by
/// columns (base's vision tower spent 12% of its time packing a transposed view).
pub fn dequantize_transposed(
    w: &QuantizedValues,
    first: usize,
    count: usize,
    b: usize,
    out: &mut [f32],
) {
    const TILE: usize = 16;
    let (k, bits) = (w.cols, w.bits);
    let start = b * BLOCK;
    let len = BLOCK.min(k - start);
    let (row_bytes, blocks) = (
        QuantizedValues::row_bytes(bits, k),
        QuantizedValues::blocks_per_row(k),
    );
    let step = QuantizedValues::row_bytes(bits, BLOCK);
    let out = &mut out[..len * count];
    let mut tile = [[0.0f32; BLOCK]; TILE];
    for j0 in (0..count).step_by(TILE) {
        let rows = TILE.min(count - j0);
        for (jj, t) in tile.iter_mut().take(rows).enumerate() {
            let j = first + j0 + jj;
            let codes = &w.codes[j * row_bytes + b * step..];
            dequantize_block(bits, codes, w.scales[j * blocks + b], &mut t[..len]);
        }
        for (p, o) in out.chunks_exact_mut(count).enumerate() {
            for (o, t) in o[j0..j0 + rows].iter_mut().zip(&tile) {
                *o = t[p];
            }
        }
    }
}

/// `out[m × out] (+)= x[m × in] · Wᵀ` on the calling thread, `x` row-major with `m` rows, a
/// panel of `W` at a time, its product written straight into its columns of `out`;
/// `scratch` holds a panel. `Output::Accumulate` adds to what `out` holds (a bias).
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
    let panel_rows = panel_rows(rows.len(), w.cols);
    many_rows_in_panels(x, w, rows, out, output, scratch, panel_rows);
}

/// [`many_rows_of`] by panels of `panel_rows` rows of `W`.
fn many_rows_in_panels(
    x: MatRef<'_>,
    w: &QuantizedValues,
    rows: std::ops::Range<usize>,
    out: &mut [f32],
    output: Output,
    scratch: &mut Vec<f32>,
    panel_rows: usize,
) {
    let (m, n, k) = (x.rows, rows.len(), w.cols);
    assert!(
        x.cols == k && rows.end <= w.rows && out.len() == m * n,
        "quantized many_rows shapes"
    );
    if m == 0 {
        return;
    }
    for first in (0..n).step_by(panel_rows) {
        let count = panel_rows.min(n - first);
        scratch.resize(k * count, 0.0);
        let panel = &mut scratch[..k * count];
        for (b, part) in panel.chunks_mut(BLOCK * count).enumerate() {
            dequantize_transposed(w, rows.start + first, count, b, part);
        }
        // `[in × count]`, row-major: `gemm`'s right-hand side.
        let rhs = MatRef {
            data: panel,
            offset: 0,
            rows: k,
            cols: count,
            row_stride: count,
            col_stride: 1,
        };
        matmul_strided(&mut out[first..], n, x, rhs, 1.0, output, Split::Caller);
    }
}

multiversion! {
    /// Columns `cols` of `x · Wᵀ` into `acc` (`[m × cols.stride]`), rows of `x` four at a
    /// time (their accumulators stay in registers).
    #[allow(clippy::too_many_arguments)]
    fn rows_block(bits: Bits, codes: &[u8], scales: &[f32], k: usize, x: &[f32], m: usize, cols: Columns, acc: &mut [f32]) {
        let q4 = bits == Bits::Q4;
        for first in (0..m).step_by(4) {
            let (x, acc) = (&x[first * k..], &mut acc[first * cols.stride..]);
            match (q4, m - first) {
                (false, 1) => fused_rows::<FUSED, false, 1>(codes, scales, k, x, cols, acc),
                (false, 2) => fused_rows::<FUSED, false, 2>(codes, scales, k, x, cols, acc),
                (false, 3) => fused_rows::<FUSED, false, 3>(codes, scales, k, x, cols, acc),
                (false, _) => fused_rows::<FUSED, false, 4>(codes, scales, k, x, cols, acc),
                (true, 1) => fused_rows::<FUSED, true, 1>(codes, scales, k, x, cols, acc),
                (true, 2) => fused_rows::<FUSED, true, 2>(codes, scales, k, x, cols, acc),
                (true, 3) => fused_rows::<FUSED, true, 3>(codes, scales, k, x, cols, acc),
                (true, _) => fused_rows::<FUSED, true, 4>(codes, scales, k, x, cols, acc),
            }
        }
    }
}

/// Lanes of the fused dot products: one AVX-512 register, two AVX2 ones, four of wasm's
/// simd128. The same count in every build, so that every build adds in the same order.
const LANES: usize = 16;

/// Where in its block each 16 codes of a block's codes land, in the order the dot products
/// take them: pass `h` (0, 1) unpacks two runs of 16 weights, starting where `runs(h)` says. A
/// 4-bit block's 16 bytes give 16 weights of its first half (low nibbles) and the 16 at 32
/// past them (high nibbles); an 8-bit block's 32 bytes two neighbouring runs.
#[inline(always)]
fn runs<const Q4: bool>(h: usize) -> (usize, usize) {
    if Q4 {
        (h * 16, 32 + h * 16)
    } else {
        (h * 32, h * 32 + 16)
    }
}

/// The codes of the two runs of pass `h` of a full block, as f32 (unscaled), unpacked in
/// registers.
#[inline(always)]
fn unpack<const Q4: bool>(block: &[u8], h: usize) -> ([f32; LANES], [f32; LANES]) {
    let (mut c0, mut c1) = ([0.0f32; LANES], [0.0f32; LANES]);
    if Q4 {
        let bytes = &block[h * 16..][..16];
        for i in 0..LANES {
            c0[i] = f32::from((bytes[i] & 15) as i8 - 8);
            c1[i] = f32::from((bytes[i] >> 4) as i8 - 8);
        }
    } else {
        let (b0, b1) = (&block[h * 32..][..16], &block[h * 32 + 16..][..16]);
        for i in 0..LANES {
            c0[i] = f32::from(b0[i] as i8);
            c1[i] = f32::from(b1[i] as i8);
        }
    }
    (c0, c1)
}

/// Columns `cols` of `x · Wᵀ` for `M` rows of `x` (the first `M` rows of `x` and `acc`).
/// Each block's codes meet `x` as they are (`Σ code·x` in two chains of [`LANES`] lanes) and
/// its scale multiplies that sum once: the decoder's products were bound by dequantizing
/// each weight into a buffer and reading it back, not by the 4–8× fewer bytes they stream.
/// One row unpacks each run of codes right before its products (2.5 ms against 4 for base's
/// 4-bit token matrix, one core); more rows unpack a block once into 64 floats that each row
/// reads. Both add in the same order, so a row's values do not depend on how many there are.
#[inline(always)]
fn fused_rows<const FUSED: bool, const Q4: bool, const M: usize>(
    codes: &[u8],
    scales: &[f32],
    k: usize,
    x: &[f32],
    cols: Columns,
    acc: &mut [f32],
) {
    let bits = if Q4 { Bits::Q4 } else { Bits::Q8 };
    let step = if Q4 { BLOCK / 2 } else { BLOCK };
    let row_bytes = QuantizedValues::row_bytes(bits, k);
    let blocks = QuantizedValues::blocks_per_row(k);
    let full = k / BLOCK;
    for j in 0..cols.width {
        let o = cols.first + j;
        let codes = &codes[o * row_bytes..][..row_bytes];
        let scales = &scales[o * blocks..][..blocks];
        let mut lanes = [[0.0f32; LANES]; M];
        for (b, (block, &scale)) in codes.chunks_exact(step).zip(scales).take(full).enumerate() {
            // The two branches spell out the same dot product: one helper taking the codes
            // as a closure made the decoder 3x slower (a closure is compiled without the
            // target features `multiversion!` gives this function).
            if M == 1 {
                let xr = &x[b * BLOCK..][..BLOCK];
                let (mut s0, mut s1) = ([0.0f32; LANES], [0.0f32; LANES]);
                for h in 0..2 {
                    let (c0, c1) = unpack::<Q4>(block, h);
                    let (w0, w1) = runs::<Q4>(h);
                    let (x0, x1) = (&xr[w0..][..LANES], &xr[w1..][..LANES]);
                    for i in 0..LANES {
                        s0[i] = madd::<FUSED>(c0[i], x0[i], s0[i]);
                        s1[i] = madd::<FUSED>(c1[i], x1[i], s1[i]);
                    }
                }
                for i in 0..LANES {
                    lanes[0][i] = madd::<FUSED>(s0[i] + s1[i], scale, lanes[0][i]);
                }
            } else {
                let mut c = [[0.0f32; LANES]; 4];
                for h in 0..2 {
                    (c[2 * h], c[2 * h + 1]) = unpack::<Q4>(block, h);
                }
                for (r, lanes) in lanes.iter_mut().enumerate() {
                    let xr = &x[r * k + b * BLOCK..][..BLOCK];
                    let (mut s0, mut s1) = ([0.0f32; LANES], [0.0f32; LANES]);
                    for h in 0..2 {
                        let (c0, c1) = (&c[2 * h], &c[2 * h + 1]);
                        let (w0, w1) = runs::<Q4>(h);
                        let (x0, x1) = (&xr[w0..][..LANES], &xr[w1..][..LANES]);
                        for i in 0..LANES {
                            s0[i] = madd::<FUSED>(c0[i], x0[i], s0[i]);
                            s1[i] = madd::<FUSED>(c1[i], x1[i], s1[i]);
                        }
                    }
                    for i in 0..LANES {
                        lanes[i] = madd::<FUSED>(s0[i] + s1[i], scale, lanes[i]);
                    }
                }
            }
        }
        // A short last block (`k` not a multiple of 64): its codes as f32 (a scale of 1
        // leaves them exact), a plain dot, then its scale.
        let mut tails = [0.0f32; M];
        if full < blocks {
            let (start, len) = (full * BLOCK, k - full * BLOCK);
            let mut c = [0.0f32; BLOCK];
            dequantize_block(bits, &codes[full * step..], 1.0, &mut c[..len]);
            for (r, tail) in tails.iter_mut().enumerate() {
                let xr = &x[r * k + start..][..len];
                let dot: f32 = xr.iter().zip(&c[..len]).map(|(a, b)| a * b).sum();
                *tail = dot * scales[full];
            }
        }
        for (r, (lanes, tail)) in lanes.iter().zip(tails).enumerate() {
            acc[r * cols.stride + j] = lanes.iter().sum::<f32>() + tail;
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
    fn transposed_blocks_are_the_dequantized_matrix_transposed() {
        // 150 inputs (a short last block), rows 3..40 of 45 (tiles of 16 and a short one).
        for bits in [Bits::Q8, Bits::Q4] {
            let (n, k, first, count) = (45, 150, 3, 37);
            let w: Vec<f32> = (0..n * k).map(|i| (i % 17) as f32 * 0.1 - 0.8).collect();
            let w = QuantizedValues::quantize(&w, n, k, bits).unwrap();
            let dense = w.dequantize();
            let mut out = vec![f32::NAN; k * count];
            for (b, part) in out.chunks_mut(BLOCK * count).enumerate() {
                dequantize_transposed(&w, first, count, b, part);
            }
            for p in 0..k {
                for j in 0..count {
                    assert_eq!(out[p * count + j], dense[(first + j) * k + p], "{bits:?}");
                }
            }
        }
    }

    #[test]
    fn fused_few_rows_match_the_dequantized_matrix_for_every_row_count() {
        // Widths: a short block alone, whole blocks, whole blocks and a short one (odd for
        // 8 bits; 4-bit codes need an even width).
        for bits in [Bits::Q8, Bits::Q4] {
            for k in [22, 128, 150, 135, 256 + 46] {
                if bits == Bits::Q4 && k % 2 == 1 {
                    continue;
                }
                let n = 67;
                let w: Vec<f32> = (0..n * k)
                    .map(|i| ((i * 13 % 37) as f32 - 18.0) * 0.021)
                    .collect();
                let w = QuantizedValues::quantize(&w, n, k, bits).unwrap();
                for m in 1..=GEMV_MAX_ROWS {
                    let x: Vec<f32> = (0..m * k)
                        .map(|i| ((i * 5 % 29) as f32 - 14.0) * 0.07)
                        .collect();
                    let want = reference(&x, m, &w);
                    let mut out = vec![f32::NAN; m * n];
                    few_rows(&x, m, &w, &mut out);
                    for (i, (&got, &want)) in out.iter().zip(&want).enumerate() {
                        assert!(
                            (got as f64 - want).abs() < 1e-4 * (1.0 + want.abs()),
                            "{bits:?} m {m} k {k} [{i}]: {got} vs {want}"
                        );
                    }
                    // A row's values do not depend on the rows beside it.
                    let last = &x[(m - 1) * k..];
                    let mut alone = vec![f32::NAN; n];
                    few_rows(last, 1, &w, &mut alone);
                    let with_others = &out[(m - 1) * n..];
                    assert!(
                        alone
                            .iter()
                            .zip(with_others)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{bits:?} m {m} k {k}: the last row alone differs"
                    );
                }
            }
        }
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
                    // Panels of 16 rows and a short one, into a bias.
                    let mut panels = vec![0.5f32; m * n];
                    many_rows_in_panels(
                        xv,
                        &w,
                        0..n,
                        &mut panels,
                        Output::Accumulate,
                        &mut Vec::new(),
                        16,
                    );
                    for (&p, &o) in panels.iter().zip(&out) {
                        assert!(
                            (p - 0.5 - o).abs() < 1e-5 * (1.0 + o.abs()),
                            "{p} vs {o} + 0.5"
                        );
                    }
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
            // In panels of 32 rows: a range from a panel's edge (as the thirds of DaViT's
            // qkv, whose widths are multiples of 64) is cut into the whole product's panels,
            // the same values. From elsewhere, `gemm` sees panels of other widths: equal up to
            // rounding.
            let mut whole = vec![f32::NAN; m * n];
            many_rows_in_panels(
                xv,
                &w,
                0..n,
                &mut whole,
                Output::Overwrite,
                &mut Vec::new(),
                32,
            );
            for (range, exact) in [(64..130, true), (40..110, false)] {
                let len = range.len();
                let mut part = vec![1.0f32; m * len];
                let scratch = &mut Vec::new();
                if exact {
                    many_rows_in_panels(
                        xv,
                        &w,
                        range.clone(),
                        &mut part,
                        Output::Accumulate,
                        scratch,
                        32,
                    );
                } else {
                    many_rows_of(
                        xv,
                        &w,
                        range.clone(),
                        &mut part,
                        Output::Accumulate,
                        scratch,
                    );
                }
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
