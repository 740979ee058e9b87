//! The `[vocab, d]` token matrix on the CPU, with an 8-bit copy that a greedy step screens.
//!
//! A greedy step needs only the largest allowed logit, but `lm_head` reads the whole matrix
//! (Florence-2-base: 158 MB a token, 40% of a step's bytes; the step is bound by memory
//! bandwidth). Each row `w_j` is also kept as 8-bit codes `q_j` with one scale `s_j`
//! (`ŵ_j = s_j·q_j`, nearest code, `|q| ≤ 127`), a quarter of its bytes. A pass over the
//! codes gives every logit within a bound `‖x‖·b_j` (below); only the tokens whose interval
//! can still reach the best allowed lower bound are computed exactly, from the f32 row, with
//! the same dot product as the full product. The chosen token is then exactly the full
//! product's argmax: no approximation reaches the search.
//!
//! Codes against bf16 (the high halves of the f32 weights, screened before these): half the
//! bytes again, and about as tight a bound, because `b_j` holds the row's own rounding
//! error `‖w_j − ŵ_j‖`, measured at load, where bf16's had to take the worst case of every
//! weight (2⁻⁷·‖w_j‖, 0.78%): on the random base model's rows the codes' error is 0.75% of
//! `‖w_j‖` at the median, 1.2% at most. The codes cost a quarter of the matrix's memory
//! (39 MB for base).

use super::gemv::{TRANSPOSED_BLOCK as BLOCK, by_column_blocks, rows_times_transposed};
use super::simd::{dot, multiversion, prefetch};

/// Per unit of `‖x‖·‖w‖`, the most an f32 dot product of `d ≤` [`MAX_COLS`] terms rounds
/// by: [`dot`] sums 512 terms a lane in 8 lanes, then the lanes and the tail (≤ 521
/// roundings of at most 2⁻²⁴ of `Σ|x||w|` each, < 3.11·10⁻⁵); [`code_dots`] sums fewer a
/// lane. `Σ|x||w| ≤ ‖x‖·‖w‖` by Cauchy–Schwarz.
const DOT_ROUNDING: f64 = 3.2e-5;

/// The widest rows the bound above holds for.
const MAX_COLS: usize = 4096;

/// Added to every bound: products that underflow round by an absolute amount, not a
/// relative one (at most `d·2⁻¹⁴⁹` a product, scaled by `s_j ≤` [`MAX_SCALE`]: far below
/// this, and far below any logit that matters).
const UNDERFLOW_SLACK: f64 = 1e-30;

/// Rows with a larger scale (weights beyond ~10⁸) are not screened: the slack above would
/// no longer cover their underflow.
const MAX_SCALE: f32 = 1_048_576.0;

/// How many rows ahead of the one being read the screening pass prefetches: with the
/// hardware prefetcher alone, a pass that reads rows back to back leaves bandwidth unused
/// (measured on the bf16 screen this one replaces: 8.6 GB/s against 10.7 with prefetching,
/// one AMD core, 14 in a plain loop).
const PREFETCH_ROWS: usize = 4;

/// Past this many candidates the screening saves nothing worth its bookkeeping: the caller
/// takes the full product instead.
const MAX_CANDIDATES: usize = 4096;

pub struct ScreenedRows {
    /// The matrix, row-major: lookups and exact products.
    values: Vec<f32>,
    /// Each row's codes `q_j`, row-major.
    codes: Vec<i8>,
    /// Each row's scale `s_j`.
    scales: Vec<f32>,
    /// `b_j = ‖w_j − ŵ_j‖ + DOT_ROUNDING·(‖w_j‖ + ‖ŵ_j‖)`, rounded up: `|x·w_j − x·ŵ_j|`,
    /// both as computed in f32, is at most `‖x‖·b_j`.
    bounds: Vec<f32>,
    /// False when some weight is not finite or too large to screen.
    screenable: bool,
    rows: usize,
    cols: usize,
}

/// One row's codes, into `q`, and its scale and bound `b_j`; `None` for a row that cannot be
/// screened.
fn quantize(row: &[f32], q: &mut [i8]) -> Option<(f32, f32)> {
    let max = row.iter().fold(0.0f32, |m, &v| m.max(v.abs()));
    if !max.is_finite() || row.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let scale = max / 127.0;
    if scale > MAX_SCALE {
        return None;
    }
    let (mut err, mut norm, mut code_norm) = (0.0f64, 0.0f64, 0.0f64);
    for (q, &v) in q.iter_mut().zip(row) {
        // The clamp catches the division rounding just past 127; the error below is the
        // row's real one either way.
        let code = if scale > 0.0 {
            (v / scale).round().clamp(-127.0, 127.0)
        } else {
            0.0
        };
        *q = code as i8;
        let approx = f64::from(scale) * f64::from(code);
        err += (f64::from(v) - approx).powi(2);
        norm += f64::from(v).powi(2);
        code_norm += approx * approx;
    }
    let bound = err.sqrt() + DOT_ROUNDING * (norm.sqrt() + code_norm.sqrt());
    // Rounded up (past the f64 sums' own rounding), so that a bound made from it never
    // comes out smaller.
    Some((scale, (bound * (1.0 + 1e-6)) as f32))
}

impl ScreenedRows {
    /// `values` is `rows × cols`, row-major.
    ///
    /// # Panics
    /// When `values.len() != rows · cols`: a caller's bug (the one caller,
    /// `FlexKernels::token_matrix`, hands the values back instead when they disagree).
    pub fn new(values: Vec<f32>, [rows, cols]: [usize; 2]) -> Self {
        assert_eq!(values.len(), rows * cols, "token matrix shape");
        let mut codes = vec![0i8; values.len()];
        let (mut scales, mut bounds) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
        let mut screenable = cols <= MAX_COLS;
        for (row, q) in values
            .chunks(cols.max(1))
            .zip(codes.chunks_mut(cols.max(1)))
        {
            let (scale, bound) = quantize(row, q).unwrap_or_else(|| {
                screenable = false;
                (0.0, f32::INFINITY)
            });
            scales.push(scale);
            bounds.push(bound);
        }
        ScreenedRows {
            values,
            codes,
            scales,
            bounds,
            screenable,
            rows,
            cols,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `j`, into `out` (`cols` long).
    pub fn row(&self, j: usize, out: &mut [f32]) {
        out.copy_from_slice(&self.values[j * self.cols..][..self.cols]);
    }

    /// `out[m × rows] = x[m × cols] · Mᵀ`.
    ///
    /// # Panics
    /// When the slices do not fit the sizes (a caller's bug).
    pub fn times_transposed(&self, x: &[f32], m: usize, out: &mut [f32]) {
        rows_times_transposed(x, m, &self.values, self.rows, out);
    }

    /// The tokens that can hold the largest logit of `x` (one row, `cols` long) once the
    /// tokens `banned` are excluded, with their exact logits: every allowed token whose
    /// logit could equal or exceed the best one is listed, so the argmax over the list is
    /// the argmax over the whole row. `None` when screening cannot help (non-finite values,
    /// too many candidates, every token banned): take the full product then.
    pub fn greedy_candidates(&self, x: &[f32], banned: &[u32]) -> Option<Vec<(u32, f32)>> {
        let (n, d) = (self.rows, self.cols);
        if x.len() != d || n == 0 || !self.screenable {
            return None;
        }
        let mut coded = vec![0.0f32; n];
        by_column_blocks(1, n, BLOCK, &mut coded, |cols, acc| {
            code_dots(x, &self.codes[cols.first * d..], &mut acc[..cols.width])
        });
        let x_norm = x
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        if !x_norm.is_finite() || coded.iter().any(|v| !v.is_finite()) {
            return None;
        }
        // A product of two f32 is exact in f64.
        let approx = |j: usize| f64::from(coded[j]) * f64::from(self.scales[j]);
        let bound = |j: usize| f64::from(self.bounds[j]) * x_norm + UNDERFLOW_SLACK;
        let mut allowed = vec![true; n];
        for &t in banned {
            if let Some(a) = allowed.get_mut(t as usize) {
                *a = false;
            }
        }
        let floor = (0..n)
            .filter(|&j| allowed[j])
            .map(|j| approx(j) - bound(j))
            .fold(f64::NEG_INFINITY, f64::max);
        if floor == f64::NEG_INFINITY {
            return None;
        }
        let candidates: Vec<usize> = (0..n)
            .filter(|&j| allowed[j] && approx(j) + bound(j) >= floor)
            .collect();
        if candidates.len() > MAX_CANDIDATES {
            return None;
        }
        Some(
            candidates
                .into_iter()
                .map(|j| (j as u32, dot(x, &self.values[j * d..][..d])))
                .collect(),
        )
    }
}

multiversion! {
    /// `out[k] = x · q_k` for the first `out.len()` rows of `codes` (each `x.len()` long;
    /// the rows after them are only prefetched), widened as they are read, in 32 lanes.
    fn code_dots(x: &[f32], codes: &[i8], out: &mut [f32]) {
        let d = x.len();
        for (k, (q, o)) in codes.chunks_exact(d.max(1)).zip(out.iter_mut()).enumerate() {
            if let Some(next) = codes.get((k + PREFETCH_ROWS) * d..) {
                prefetch(&next[..d.min(next.len())]);
            }
            let mut acc = [0.0f32; 32];
            let (xs, qs) = (x.chunks_exact(32), q.chunks_exact(32));
            let tail: f32 = xs
                .remainder()
                .iter()
                .zip(qs.remainder())
                .map(|(&a, &c)| a * f32::from(c))
                .sum();
            for (a, c) in xs.zip(qs) {
                for l in 0..32 {
                    acc[l] += a[l] * f32::from(c[l]);
                }
            }
            *o = acc.iter().sum::<f32>() + tail;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic values of mixed sign and magnitude (no two rows alike).
    fn values(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32 - 0.5) * 4.0
            })
            .collect()
    }

    fn argmax_allowed(logits: &[f32], banned: &[u32]) -> usize {
        let mut best: Option<usize> = None;
        for (j, &v) in logits.iter().enumerate() {
            if banned.contains(&(j as u32)) {
                continue;
            }
            if best.is_none_or(|b| v > logits[b]) {
                best = Some(j);
            }
        }
        best.unwrap()
    }

    #[test]
    fn rows_and_products_are_the_f32_ones_bit_for_bit() {
        // 300 rows: two whole blocks and a short one.
        let (n, d, m) = (300, 37, 3);
        let w = values(n * d, 1);
        let split = ScreenedRows::new(w.clone(), [n, d]);
        let mut row = vec![0.0; d];
        for j in [0, 1, 127, 128, 255, 256, 299] {
            split.row(j, &mut row);
            assert_eq!(row, &w[j * d..][..d], "row {j}");
        }
        let x = values(m * d, 2);
        let mut out = vec![f32::NAN; m * n];
        split.times_transposed(&x, m, &mut out);
        for r in 0..m {
            for j in 0..n {
                let want = dot(&x[r * d..][..d], &w[j * d..][..d]);
                assert_eq!(out[r * n + j].to_bits(), want.to_bits(), "({r}, {j})");
            }
        }
    }

    #[test]
    fn candidates_hold_the_exact_argmax_of_the_allowed_tokens() {
        // 37: a width with a tail after the 16-lane steps of the four-row pass.
        for d in [64, 37] {
            candidates_hold_the_exact_argmax(1000, d);
        }
    }

    fn candidates_hold_the_exact_argmax(n: usize, d: usize) {
        let w = values(n * d, 3);
        let split = ScreenedRows::new(w.clone(), [n, d]);
        for case in 0..40u32 {
            let x = values(d, 100 + case);
            let logits: Vec<f32> = (0..n).map(|j| dot(&x, &w[j * d..][..d])).collect();
            // Ban the current best tokens in some cases, so the answer moves.
            let mut banned: Vec<u32> = Vec::new();
            for _ in 0..case % 4 {
                banned.push(argmax_allowed(&logits, &banned) as u32);
            }
            let candidates = split.greedy_candidates(&x, &banned).expect("screened");
            assert!(candidates.len() < n / 4, "{} candidates", candidates.len());
            let best = argmax_allowed(&logits, &banned);
            let &(token, value) = candidates
                .iter()
                .find(|&&(t, _)| t as usize == best)
                .expect("the argmax is a candidate");
            assert_eq!(token as usize, best);
            assert_eq!(value.to_bits(), logits[best].to_bits());
            assert!(candidates.iter().all(|&(t, _)| !banned.contains(&t)));
        }
    }

    #[test]
    fn coded_products_are_within_their_bounds() {
        // Rows of very different sizes (the scale is per row), a width with a tail after
        // the 32-lane steps, and a zero row.
        let (n, d) = (200, 75);
        let mut w = values(n * d, 6);
        for (j, row) in w.chunks_exact_mut(d).enumerate() {
            let size = 10f32.powi(j as i32 % 7 - 3);
            row.iter_mut().for_each(|v| *v *= size);
        }
        w[7 * d..8 * d].fill(0.0);
        let screened = ScreenedRows::new(w.clone(), [n, d]);
        assert!(screened.screenable);
        for case in 0..20 {
            let x = values(d, 200 + case);
            let x_norm = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
            let mut coded = vec![0.0f32; n];
            code_dots(&x, &screened.codes, &mut coded);
            for j in 0..n {
                let exact = f64::from(dot(&x, &w[j * d..][..d]));
                let approx = f64::from(coded[j]) * f64::from(screened.scales[j]);
                let bound = f64::from(screened.bounds[j]) * x_norm + UNDERFLOW_SLACK;
                assert!(
                    (exact - approx).abs() <= bound,
                    "row {j}: {exact} vs {approx} ± {bound}"
                );
                // And not uselessly loose: within 1% of the row's size.
                let row_norm = w[j * d..][..d]
                    .iter()
                    .map(|&v| f64::from(v).powi(2))
                    .sum::<f64>()
                    .sqrt();
                assert!(
                    bound <= 0.01 * x_norm * row_norm + UNDERFLOW_SLACK,
                    "row {j}: bound {bound}"
                );
            }
        }
    }

    #[test]
    fn rows_it_cannot_bound_turn_screening_off() {
        for bad in [f32::INFINITY, f32::NAN, 1e30] {
            let mut w = values(8 * 4, 7);
            w[5] = bad;
            let screened = ScreenedRows::new(w, [8, 4]);
            assert!(
                screened.greedy_candidates(&[1.0; 4], &[]).is_none(),
                "{bad}"
            );
        }
    }

    #[test]
    fn ties_keep_every_tied_token() {
        // Rows 5 and 9 identical: both are the argmax, both must be listed.
        let (n, d) = (20, 16);
        let mut w = values(n * d, 4);
        let top: Vec<f32> = (0..d).map(|i| 3.0 + i as f32 * 0.01).collect();
        w[5 * d..6 * d].copy_from_slice(&top);
        w[9 * d..10 * d].copy_from_slice(&top);
        let split = ScreenedRows::new(w, [n, d]);
        let x = vec![1.0; d];
        let c = split.greedy_candidates(&x, &[]).unwrap();
        assert!(c.iter().any(|&(t, _)| t == 5) && c.iter().any(|&(t, _)| t == 9));
    }

    #[test]
    fn declines_what_it_cannot_screen() {
        let split = ScreenedRows::new(values(8 * 4, 5), [8, 4]);
        let all: Vec<u32> = (0..8).collect();
        assert!(split.greedy_candidates(&[1.0; 4], &all).is_none());
        assert!(
            split
                .greedy_candidates(&[f32::NAN, 0.0, 0.0, 0.0], &[])
                .is_none()
        );
        assert!(split.greedy_candidates(&[1.0; 3], &[]).is_none());
    }
}
