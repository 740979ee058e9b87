//! The `[vocab, d]` token matrix on the CPU, stored as the two 16-bit halves of each f32, so
//! that a greedy step reads half of it.
//!
//! A greedy step needs only the largest allowed logit, but `lm_head` reads the whole matrix
//! (Florence-2-base: 158 MB a token, 40% of a step's bytes; the step is bound by memory
//! bandwidth). The high halves alone are the weights truncated to bf16, each within 2⁻⁷ of
//! its value, so a pass over them gives every logit within a bound `b_j` (below); only the
//! tokens whose interval can still reach the best allowed lower bound are computed exactly,
//! from both halves, with the same dot product as the full product. The chosen token is then
//! exactly the full product's argmax: no approximation reaches the search.
//!
//! Rows are kept in blocks of [`BLOCK`] rows, each block its high halves then its low halves,
//! so the screening pass streams one contiguous run per block. The halves are rearranged
//! in place, in the checkpoint's own f32 buffer: no second copy of the matrix at load.

use super::gemv::{TRANSPOSED_BLOCK as BLOCK, by_column_blocks};
use super::kernels::{dot, multiversion, prefetch};

/// Bound on `|x·w − x·ŵ|` (plus both products' f32 rounding) per unit of `‖x‖·‖w‖`, where
/// `ŵ` is `w` with the low 16 bits of each weight cleared: truncating to 8 significant bits
/// moves a weight by less than 2⁻⁷ of itself (0.0078125), so by Cauchy–Schwarz the products
/// differ by less than 2⁻⁷·‖x‖·‖w‖; the two f32 dot products of `d ≤` [`MAX_COLS`] terms in
/// 8 lanes each round by less than 3.1·10⁻⁵ of `Σ|x||w|`. 0.0079 covers both, with room for the
/// rounding of the norms themselves.
const TRUNCATION_BOUND: f64 = 0.0079;

/// The widest rows the bound above holds for.
const MAX_COLS: usize = 4096;

/// Added to every bound: products that underflow round by an absolute amount, not a relative
/// one (far below any logit that matters).
const UNDERFLOW_SLACK: f64 = 1e-30;

/// How many rows ahead of the one being read the one-row passes prefetch. On base's matrix,
/// read from memory on one core, the one-row screening pass took 10.2 ms with no
/// prefetching, 9.1 ms two rows ahead, 9.0 ms eight ahead.
const PREFETCH_ROWS: usize = 2;

/// Past this many candidates the screening saves nothing worth its bookkeeping: the caller
/// takes the full product instead.
const MAX_CANDIDATES: usize = 4096;

pub struct SplitRows {
    /// Per block of [`BLOCK`] rows: the rows' high halves, then their low halves.
    halves: Vec<u32>,
    /// `‖w_j‖₂` of each row, rounded up.
    norms: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl SplitRows {
    /// `values` is `rows × cols`, row-major.
    ///
    /// # Panics
    /// When `values.len() != rows · cols`: a caller's bug (the one caller,
    /// `FlexKernels::token_matrix`, hands the values back instead when they disagree).
    pub fn new(values: Vec<f32>, [rows, cols]: [usize; 2]) -> Self {
        assert_eq!(values.len(), rows * cols, "token matrix shape");
        let norms = values
            .chunks(cols.max(1))
            .map(|row| {
                let sq: f64 = row.iter().map(|&v| f64::from(v) * f64::from(v)).sum();
                // Rounded up, so that a bound made from it never comes out smaller.
                (sq.sqrt() * (1.0 + 1e-6)) as f32
            })
            .collect();
        // Same size and alignment: the bits are reinterpreted where they lie.
        let mut halves: Vec<u32> = values.into_iter().map(f32::to_bits).collect();
        let mut scratch = Vec::with_capacity(BLOCK * cols);
        for block in halves.chunks_mut(BLOCK * cols.max(1)) {
            scratch.clear();
            scratch.extend_from_slice(block);
            let as_u16: &mut [u16] = bytemuck::cast_slice_mut(block);
            let (high, low) = as_u16.split_at_mut(scratch.len());
            for ((h, l), &bits) in high.iter_mut().zip(low.iter_mut()).zip(&scratch) {
                *h = (bits >> 16) as u16;
                *l = bits as u16;
            }
        }
        SplitRows {
            halves,
            norms,
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

    /// The high and low halves of row `j`.
    fn row_halves(&self, j: usize) -> (&[u16], &[u16]) {
        let cols = self.cols;
        let first = j / BLOCK * BLOCK;
        let in_block = (self.rows - first).min(BLOCK);
        let block: &[u16] = bytemuck::cast_slice(&self.halves[first * cols..][..in_block * cols]);
        let at = (j - first) * cols;
        (&block[at..][..cols], &block[in_block * cols + at..][..cols])
    }

    /// Row `j` as f32, into `out` (`cols` long).
    pub fn row(&self, j: usize, out: &mut [f32]) {
        let (high, low) = self.row_halves(j);
        join_halves(high, low, out);
    }

    /// `out[m × rows] = x[m × cols] · Mᵀ`, exactly as the product with the f32 matrix.
    ///
    /// # Panics
    /// When the slices do not fit the sizes (a caller's bug).
    pub fn times_transposed(&self, x: &[f32], m: usize, out: &mut [f32]) {
        let (n, d) = (self.rows, self.cols);
        assert!(
            x.len() == m * d && out.len() == m * n,
            "times_transposed shapes"
        );
        by_column_blocks(m, n, BLOCK, out, |cols, acc| {
            let mut row = vec![0.0f32; d];
            for k in 0..cols.width {
                let j = cols.first + k;
                if j + PREFETCH_ROWS < n {
                    let (high, low) = self.row_halves(j + PREFETCH_ROWS);
                    prefetch(high);
                    prefetch(low);
                }
                let (high, low) = self.row_halves(j);
                exact_dots(x, m, high, low, &mut row, cols.stride, &mut acc[k..]);
            }
        });
    }

    /// `out[k] = x · ŵ_j` for the rows `j = first + k`: each row's high halves only, the
    /// rows after them prefetched ([`prefetch`]). Four rows at a time in AVX-512 where the
    /// CPU has it: on base's matrix, one core, 7.4 ms a pass against 9.1 for one row at a
    /// time in AVX2 (both prefetching).
    fn screen(&self, x: &[f32], first: usize, out: &mut [f32]) {
        let done = self.screen_by_fours(x, first, out);
        for (k, a) in out.iter_mut().enumerate().skip(done) {
            let j = first + k;
            if j + PREFETCH_ROWS < self.rows {
                prefetch(self.row_halves(j + PREFETCH_ROWS).0);
            }
            *a = high_dot(x, self.row_halves(j).0);
        }
    }

    /// [`Self::screen`]'s four-row AVX-512 pass over the first rows, a multiple of four;
    /// returns how many it did (none without AVX-512).
    #[cfg(target_arch = "x86_64")]
    fn screen_by_fours(&self, x: &[f32], first: usize, out: &mut [f32]) -> usize {
        if !std::is_x86_feature_detected!("avx512f") {
            return 0;
        }
        let (fours, _) = out.as_chunks_mut::<4>();
        for (k, four) in fours.iter_mut().enumerate() {
            let j = first + 4 * k;
            for ahead in j + 4..(j + 8).min(self.rows) {
                prefetch(self.row_halves(ahead).0);
            }
            let rows = std::array::from_fn(|i| self.row_halves(j + i).0);
            // SAFETY: the CPU has AVX-512F (checked above), the only requirement.
            unsafe { high_dots4_avx512(x, rows, four) };
        }
        4 * fours.len()
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn screen_by_fours(&self, _x: &[f32], _first: usize, _out: &mut [f32]) -> usize {
        0
    }

    /// The tokens that can hold the largest logit of `x` (one row, `cols` long) once the
    /// tokens `banned` are excluded, with their exact logits: every allowed token whose
    /// logit could equal or exceed the best one is listed, so the argmax over the list is
    /// the argmax over the whole row. `None` when screening cannot help (non-finite values,
    /// too many candidates, every token banned): take the full product then.
    pub fn greedy_candidates(&self, x: &[f32], banned: &[u32]) -> Option<Vec<(u32, f32)>> {
        let (n, d) = (self.rows, self.cols);
        if x.len() != d || n == 0 || d > MAX_COLS {
            return None;
        }
        let mut approx = vec![0.0f32; n];
        by_column_blocks(1, n, BLOCK, &mut approx, |cols, acc| {
            self.screen(x, cols.first, &mut acc[..cols.width])
        });
        let x_norm = x
            .iter()
            .map(|&v| f64::from(v) * f64::from(v))
            .sum::<f64>()
            .sqrt();
        let bound =
            |j: usize| TRUNCATION_BOUND * x_norm * f64::from(self.norms[j]) + UNDERFLOW_SLACK;
        let mut allowed = vec![true; n];
        for &t in banned {
            if let Some(a) = allowed.get_mut(t as usize) {
                *a = false;
            }
        }
        if !x_norm.is_finite() || approx.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let floor = (0..n)
            .filter(|&j| allowed[j])
            .map(|j| f64::from(approx[j]) - bound(j))
            .fold(f64::NEG_INFINITY, f64::max);
        if floor == f64::NEG_INFINITY {
            return None;
        }
        let candidates: Vec<usize> = (0..n)
            .filter(|&j| allowed[j] && f64::from(approx[j]) + bound(j) >= floor)
            .collect();
        if candidates.len() > MAX_CANDIDATES {
            return None;
        }
        let mut row = vec![0.0f32; d];
        let mut exact = [0.0f32];
        Some(
            candidates
                .into_iter()
                .map(|j| {
                    let (high, low) = self.row_halves(j);
                    exact_dots(x, 1, high, low, &mut row, 1, &mut exact);
                    (j as u32, exact[0])
                })
                .collect(),
        )
    }
}

#[inline(always)]
fn join_halves(high: &[u16], low: &[u16], out: &mut [f32]) {
    for ((o, &h), &l) in out.iter_mut().zip(high).zip(low) {
        *o = f32::from_bits((u32::from(h) << 16) | u32::from(l));
    }
}

multiversion! {
    /// Row `(high, low)` joined into `row`, then its dot product with each of `x`'s `m` rows
    /// into `acc[r · stride]`: the same [`dot`] as the f32 matrix's product.
    fn exact_dots(x: &[f32], m: usize, high: &[u16], low: &[u16], row: &mut [f32], stride: usize, acc: &mut [f32]) {
        let d = row.len();
        join_halves(high, low, row);
        for r in 0..m {
            acc[r * stride] = dot(&x[r * d..][..d], row);
        }
    }
}

multiversion! {
    /// `x · ŵ` for the row whose high halves are `high` (low bits zero), widened as it is
    /// read. Four 8-lane accumulators: with one (as [`dot`]), each step waits for the last
    /// addition, and this pass, reading half the bytes, ran at half the bandwidth. Each lane
    /// sums fewer terms than [`dot`]'s, so [`TRUNCATION_BOUND`]'s rounding term still holds.
    fn high_dot_into(x: &[f32], high: &[u16], out: &mut f32) {
        let widen = |h: u16| f32::from_bits(u32::from(h) << 16);
        let mut acc = [[0.0f32; 8]; 4];
        let (xs, hs) = (x.chunks_exact(32), high.chunks_exact(32));
        let tail: f32 = xs
            .remainder()
            .iter()
            .zip(hs.remainder())
            .map(|(&a, &h)| a * widen(h))
            .sum();
        for (a, h) in xs.zip(hs) {
            for (q, acc) in acc.iter_mut().enumerate() {
                for l in 0..8 {
                    acc[l] += a[q * 8 + l] * widen(h[q * 8 + l]);
                }
            }
        }
        *out = acc.iter().flatten().sum::<f32>() + tail;
    }
}

/// [`high_dot`] of four rows at once, in 16 lanes a row (each lane sums fewer terms than
/// [`dot`]'s, so [`TRUNCATION_BOUND`]'s rounding term holds).
///
/// # Panics
/// When a row is shorter than `x` (the loads below rely on it).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn high_dots4_avx512(x: &[f32], rows: [&[u16]; 4], out: &mut [f32; 4]) {
    use std::arch::x86_64::*;
    let d = x.len();
    assert!(rows.iter().all(|r| r.len() >= d), "high_dots4 row length");
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 16 <= d {
        // SAFETY: `i + 16 ≤ d`, and `x` and every row hold at least `d` values.
        let xv = unsafe { _mm512_loadu_ps(x.as_ptr().add(i)) };
        for (acc, row) in acc.iter_mut().zip(&rows) {
            // SAFETY: as above: 16 u16 from `i`, inside the row.
            let h = unsafe { _mm256_loadu_si256(row.as_ptr().add(i).cast()) };
            let w = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)));
            *acc = _mm512_fmadd_ps(xv, w, *acc);
        }
        i += 16;
    }
    for ((o, acc), row) in out.iter_mut().zip(acc).zip(&rows) {
        let tail: f32 = x[i..]
            .iter()
            .zip(&row[i..])
            .map(|(&a, &h)| a * f32::from_bits(u32::from(h) << 16))
            .sum();
        *o = _mm512_reduce_add_ps(acc) + tail;
    }
}

fn high_dot(x: &[f32], high: &[u16]) -> f32 {
    let mut out = 0.0;
    high_dot_into(x, high, &mut out);
    out
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
        let split = SplitRows::new(w.clone(), [n, d]);
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
        let split = SplitRows::new(w.clone(), [n, d]);
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
    fn ties_keep_every_tied_token() {
        // Rows 5 and 9 identical: both are the argmax, both must be listed.
        let (n, d) = (20, 16);
        let mut w = values(n * d, 4);
        let top: Vec<f32> = (0..d).map(|i| 3.0 + i as f32 * 0.01).collect();
        w[5 * d..6 * d].copy_from_slice(&top);
        w[9 * d..10 * d].copy_from_slice(&top);
        let split = SplitRows::new(w, [n, d]);
        let x = vec![1.0; d];
        let c = split.greedy_candidates(&x, &[]).unwrap();
        assert!(c.iter().any(|&(t, _)| t == 5) && c.iter().any(|&(t, _)| t == 9));
    }

    #[test]
    fn declines_what_it_cannot_screen() {
        let split = SplitRows::new(values(8 * 4, 5), [8, 4]);
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
