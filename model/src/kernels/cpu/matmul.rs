//! A safe face for the `gemm` crate (the matrix kernel burn-flex itself uses): matrices are
//! described by a slice and strides, and every element they reach is checked to lie inside
//! the slice before the raw-pointer call.

/// A read-only matrix: `rows × cols` elements of `data` at `offset + r·row_stride +
/// c·col_stride` (any non-negative strides: transposed and sliced views need no copy).
#[derive(Clone, Copy)]
pub struct MatRef<'a> {
    pub data: &'a [f32],
    pub offset: usize,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl MatRef<'_> {
    /// Whether every element lies inside `data`.
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1)
            .checked_mul(self.row_stride)
            .zip((self.cols - 1).checked_mul(self.col_stride))
            .and_then(|(a, b)| a.checked_add(b))
            .and_then(|x| x.checked_add(self.offset));
        matches!(last, Some(l) if l < self.data.len())
    }

    /// Element `(r, c)`.
    ///
    /// # Panics
    /// Outside the view's data (views come from tensor layouts, so that is a bug).
    pub fn at(&self, r: usize, c: usize) -> f32 {
        self.data[self.offset + r * self.row_stride + c * self.col_stride]
    }

    /// The transposed view.
    pub fn t(self) -> Self {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// What [`matmul`] does with the values already in `out`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Output {
    /// `out = scale · a · b` (what `out` held is ignored).
    Overwrite,
    /// `out += scale · a · b` (a bias or a residual already there).
    Accumulate,
}

/// Where [`matmul`] runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Split {
    /// Over the pool (when the product is large enough).
    Pool,
    /// On the calling thread: for callers that already split their work over the pool.
    Caller,
}

/// `out[m×n] = scale · a[m×k] · b[k×n]`, or added to `out` ([`Output`]), `out` row-major and
/// dense; over the pool or on the calling thread ([`Split`]).
///
/// # Panics
/// When the shapes disagree or a view reaches outside its slice: callers build the views
/// from tensor shapes, so this is a bug, not bad input.
pub fn matmul(
    out: &mut [f32],
    a: MatRef<'_>,
    b: MatRef<'_>,
    scale: f32,
    output: Output,
    split: Split,
) {
    let (m, n) = (a.rows, b.cols);
    assert!(
        out.len() == m * n,
        "matmul shapes: a {m}x{}, b {}x{n}, out {}",
        a.cols,
        b.rows,
        out.len()
    );
    matmul_strided(out, n, a, b, scale, output, split);
}

/// [`matmul`] into `out`'s first `b.cols` columns of rows `out_row_stride` apart (a block of
/// columns of a wider output), `out_row_stride ≥ b.cols`.
///
/// # Panics
/// As [`matmul`], and when the rows do not fit `out`.
pub fn matmul_strided(
    out: &mut [f32],
    out_row_stride: usize,
    a: MatRef<'_>,
    b: MatRef<'_>,
    scale: f32,
    output: Output,
    split: Split,
) {
    let (accumulate, parallel) = (output == Output::Accumulate, split == Split::Pool);
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        b.rows == k
            && out_row_stride >= n
            && (m == 0 || n == 0 || out.len() >= (m - 1) * out_row_stride + n),
        "matmul shapes: a {m}x{k}, b {}x{n}, out {} with rows {out_row_stride} apart",
        b.rows,
        out.len()
    );
    assert!(
        a.in_bounds() && b.in_bounds(),
        "matmul view outside its data"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for row in out.chunks_mut(out_row_stride).take(m) {
                row[..n].fill(0.0);
            }
        }
        return;
    }
    // SAFETY: `out` holds the m rows of n elements addressed row-major (row stride
    // `out_row_stride`, column stride 1; checked above); every element of `a` and `b` lies
    // inside its slice (checked above); `out` is a unique borrow, so it aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            out_row_stride as isize,
            accumulate,
            a.data.as_ptr().add(a.offset),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr().add(b.offset),
            b.col_stride as isize,
            b.row_stride as isize,
            if accumulate { 1.0 } else { 0.0 },
            scale,
            false,
            false,
            false,
            if parallel {
                super::parallel::gemm_parallelism(m * n * k)
            } else {
                gemm::Parallelism::None
            },
        );
    }
}

/// GFLOP/s of an `n × n` by `n × n` product through [`matmul`] on the pool, the best of ten
/// after a warm-up: this library's side of the machine's practical peak, which the benchmark
/// sets against PyTorch's own.
pub fn sgemm_gflops(n: usize) -> f64 {
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect();
    let b: Vec<f32> = (0..n * n).map(|i| (i % 5) as f32 * 0.5 - 1.0).collect();
    let view = |data| MatRef {
        data,
        offset: 0,
        rows: n,
        cols: n,
        row_stride: n,
        col_stride: 1,
    };
    let mut out = vec![0.0f32; n * n];
    let mut once = || {
        let start = std::time::Instant::now();
        matmul(
            &mut out,
            view(&a),
            view(&b),
            1.0,
            Output::Overwrite,
            Split::Pool,
        );
        start.elapsed().as_secs_f64()
    };
    once();
    let best = (0..10).map(|_| once()).fold(f64::INFINITY, f64::min);
    2.0 * (n as f64).powi(3) / best / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_products_match_the_naive_one() {
        let a: Vec<f32> = (0..12).map(|x| x as f32).collect(); // 3x4
        let b: Vec<f32> = (0..20).map(|x| (x as f32) * 0.5 - 3.0).collect(); // 4x5
        let a_ref = MatRef {
            data: &a,
            offset: 0,
            rows: 3,
            cols: 4,
            row_stride: 4,
            col_stride: 1,
        };
        let b_ref = MatRef {
            data: &b,
            offset: 0,
            rows: 4,
            cols: 5,
            row_stride: 5,
            col_stride: 1,
        };
        let mut out = vec![1.0; 15];
        matmul(&mut out, a_ref, b_ref, 2.0, Output::Accumulate, Split::Pool);
        for i in 0..3 {
            for j in 0..5 {
                let want: f32 =
                    1.0 + 2.0 * (0..4).map(|p| a[i * 4 + p] * b[p * 5 + j]).sum::<f32>();
                assert_eq!(out[i * 5 + j], want);
            }
        }
        // a · aᵀ through a transposed view.
        let mut sq = vec![0.0; 9];
        matmul(
            &mut sq,
            a_ref,
            a_ref.t(),
            1.0,
            Output::Overwrite,
            Split::Caller,
        );
        assert_eq!(sq[1], (0..4).map(|p| a[p] * a[4 + p]).sum::<f32>());
    }
}
