//! DaViT's patch embeddings: a strided `k × k` convolution from channels-last tokens to
//! channels-last tokens, the layout the blocks on either side work in. Each block of output
//! pixels gathers its patches (im2col) into a scratch buffer of its thread, in cache, and
//! multiplies them by the filters with `gemm`. burn-flex's `conv2d` took 2–3× as long as its
//! products need, plus a transpose to `[c, h, w]` and back around every stage.

use super::matmul::{MatRef, Output, Split, matmul};
use super::parallel::{balanced_block_len, for_each_chunk};

/// A strided convolution's geometry on one `h × w` image of `c_in` channels.
#[derive(Clone, Copy, Debug)]
pub struct PatchGeometry {
    pub h: usize,
    pub w: usize,
    pub c_in: usize,
    pub k: usize,
    pub stride: usize,
    pub padding: usize,
}

impl PatchGeometry {
    /// `[ho, wo]`, as PyTorch computes them; `None` when the padded image is smaller than the
    /// filter or the stride is 0.
    pub fn out_grid(&self) -> Option<[usize; 2]> {
        let side = |n: usize| {
            let span = n.checked_add(2 * self.padding)?.checked_sub(self.k)?;
            span.checked_div(self.stride).map(|q| q + 1)
        };
        Some([side(self.h)?, side(self.w)?])
    }

    /// Length of one patch: `k · k · c_in`.
    fn patch_len(&self) -> usize {
        self.k * self.k * self.c_in
    }
}

/// Most scratch floats of one task's patches (8 MB). Each task packs the filters for `gemm`
/// again, so tasks are few and large: with 1 MB, DaViT-base's last patch embedding (filters
/// of 4608 × 1024, 19 MB) went in 11 tasks of 56 pixels, repacking its filters 11 times, and
/// took 110 ms for its 5.4 GFLOP on one core.
const SCRATCH: usize = 1 << 21;

/// `out[b, oy·wo + ox, co] = bias[co] + Σ x[b, iy·w + ix, ci] · filters[co, (ky·k + kx)·c_in + ci]`
/// over the taps `iy = oy·stride + ky − padding`, `ix = ox·stride + kx − padding` inside the
/// image (zero padding), for `x` `[batch, h·w, c_in]` and `filters` `[c_out, k·k·c_in]` (each
/// filter tap-major: PyTorch's `[c_out, c_in, k, k]` reordered).
///
/// # Panics
/// When the geometry has no output or the slices do not fit it. The only caller
/// (`flex.rs`) checks the tensors' shapes first and builds the slices from them, so that
/// is a bug there.
pub fn patch_conv(
    x: &[f32],
    batch: usize,
    g: PatchGeometry,
    filters: &[f32],
    bias: &[f32],
    out: &mut [f32],
) {
    // The one caller sizes `out` from this same grid, after `out_grid()?` refused geometries
    // without an output, so this cannot fail there.
    let [ho, wo] = g.out_grid().expect("patch_conv geometry");
    let (c_out, len) = (bias.len(), g.patch_len());
    assert!(
        x.len() == batch * g.h * g.w * g.c_in
            && filters.len() == c_out * len
            && out.len() == batch * ho * wo * c_out,
        "patch_conv shapes"
    );
    let rows = batch * ho * wo;
    if rows == 0 || c_out == 0 {
        return;
    }
    // Blocks of equal length, as many as a multiple of the pool's size, each fitting the
    // scratch.
    let block = balanced_block_len(rows, SCRATCH / len.max(1));
    let filters = MatRef {
        data: filters,
        offset: 0,
        rows: len,
        cols: c_out,
        row_stride: 1,
        col_stride: len,
    };
    for_each_chunk(
        out,
        block * c_out,
        || vec![0.0f32; block * len],
        |patches, b, out| {
            let first = b * block;
            let n = out.len() / c_out;
            let patches = &mut patches[..n * len];
            for (i, patch) in patches.chunks_exact_mut(len).enumerate() {
                gather(x, g, [ho, wo], first + i, patch);
            }
            // The output starts as the bias, which the product is added to.
            for row in out.chunks_exact_mut(c_out) {
                row.copy_from_slice(bias);
            }
            let patches = MatRef {
                data: patches,
                offset: 0,
                rows: n,
                cols: len,
                row_stride: len,
                col_stride: 1,
            };
            matmul(
                out,
                patches,
                filters,
                1.0,
                Output::Accumulate,
                Split::Caller,
            );
        },
    );
}

/// The patch of output pixel `r` (counted over the batch), tap-major, zeros outside the image.
fn gather(x: &[f32], g: PatchGeometry, [ho, wo]: [usize; 2], r: usize, patch: &mut [f32]) {
    let image = g.h * g.w * g.c_in;
    let (b, pixel) = (r / (ho * wo), r % (ho * wo));
    let (oy, ox) = (pixel / wo, pixel % wo);
    let x = &x[b * image..][..image];
    let inside = |o: usize, tap: usize, n: usize| {
        (o * g.stride + tap)
            .checked_sub(g.padding)
            .filter(|&i| i < n)
    };
    for ky in 0..g.k {
        let iy = inside(oy, ky, g.h);
        for kx in 0..g.k {
            let dst = &mut patch[(ky * g.k + kx) * g.c_in..][..g.c_in];
            match (iy, inside(ox, kx, g.w)) {
                (Some(iy), Some(ix)) => {
                    dst.copy_from_slice(&x[(iy * g.w + ix) * g.c_in..][..g.c_in])
                }
                _ => dst.fill(0.0),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain formula on PyTorch's layouts (`x` `[c_in, h, w]`, weight
    /// `[c_out, c_in, k, k]`), in f64, → `[c_out, ho, wo]`.
    fn naive(x_chw: &[f32], g: PatchGeometry, wt: &[f32], b: &[f32]) -> Vec<f64> {
        let [ho, wo] = g.out_grid().unwrap();
        let c_out = b.len();
        let mut out = vec![0.0; c_out * ho * wo];
        for co in 0..c_out {
            for oy in 0..ho {
                for ox in 0..wo {
                    let mut acc = b[co] as f64;
                    for ci in 0..g.c_in {
                        for ky in 0..g.k {
                            for kx in 0..g.k {
                                let iy = (oy * g.stride + ky) as isize - g.padding as isize;
                                let ix = (ox * g.stride + kx) as isize - g.padding as isize;
                                if iy < 0 || ix < 0 || iy as usize >= g.h || ix as usize >= g.w {
                                    continue;
                                }
                                let (iy, ix) = (iy as usize, ix as usize);
                                acc += wt[((co * g.c_in + ci) * g.k + ky) * g.k + kx] as f64
                                    * x_chw[(ci * g.h + iy) * g.w + ix] as f64;
                            }
                        }
                    }
                    out[(co * ho + oy) * wo + ox] = acc;
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_plain_formula() {
        // DaViT's two kinds (7×7 stride 4 pad 3; 3×3 stride 2 pad 1), grids the stride does
        // not divide, batch 2, and a filter as large as the padded image.
        for (batch, h, w, c_in, c_out, k, stride, padding) in [
            (1, 13, 10, 3, 8, 7, 4, 3),
            (2, 7, 9, 5, 6, 3, 2, 1),
            (1, 4, 4, 2, 3, 3, 1, 0),
            (1, 1, 2, 4, 5, 3, 2, 1),
        ] {
            let g = PatchGeometry {
                h,
                w,
                c_in,
                k,
                stride,
                padding,
            };
            let [ho, wo] = g.out_grid().unwrap();
            let image = c_in * h * w;
            let x_chw: Vec<f32> = (0..batch * image)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.02)
                .collect();
            let wt: Vec<f32> = (0..c_out * c_in * k * k)
                .map(|i| ((i * 13 % 29) as f32 - 14.0) * 0.05)
                .collect();
            let b: Vec<f32> = (0..c_out).map(|i| i as f32 * 0.1 - 0.2).collect();
            // Channels-last tokens; filters tap-major.
            let x: Vec<f32> = (0..batch * image)
                .map(|i| {
                    let (bi, j) = (i / image, i % image);
                    x_chw[bi * image + (j % c_in) * h * w + j / c_in]
                })
                .collect();
            let len = k * k * c_in;
            let filters: Vec<f32> = (0..c_out * len)
                .map(|i| {
                    let (co, j) = (i / len, i % len);
                    let (tap, ci) = (j / c_in, j % c_in);
                    wt[(co * c_in + ci) * k * k + tap]
                })
                .collect();
            let mut out = vec![f32::NAN; batch * ho * wo * c_out];
            patch_conv(&x, batch, g, &filters, &b, &mut out);
            for bi in 0..batch {
                let want = naive(&x_chw[bi * image..][..image], g, &wt, &b);
                for p in 0..ho * wo {
                    for co in 0..c_out {
                        let got = out[(bi * ho * wo + p) * c_out + co] as f64;
                        let expected = want[co * ho * wo + p];
                        assert!(
                            (got - expected).abs() < 1e-4,
                            "{g:?} batch {bi} pixel {p} filter {co}: {got} vs {expected}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn geometry_without_an_output_is_refused() {
        let g = |h, k, stride, padding| PatchGeometry {
            h,
            w: 8,
            c_in: 1,
            k,
            stride,
            padding,
        };
        assert_eq!(g(8, 3, 2, 1).out_grid(), Some([4, 4]));
        assert_eq!(g(2, 7, 4, 3).out_grid(), Some([1, 2]));
        assert_eq!(g(2, 7, 4, 2).out_grid(), None);
        assert_eq!(g(8, 3, 0, 1).out_grid(), None);
    }
}
