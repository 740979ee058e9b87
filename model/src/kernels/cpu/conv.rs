//! DaViT's convolutional position encoding, `x + depthwise_conv(x)`, on channels-last tokens
//! (`[h·w, c]` per image), the layout its blocks work in: the channel loop is contiguous (it
//! vectorises), the block needs no transpose to `[c, h, w]` and back around each of its two
//! position encodings, and the residual is added while the output row is in cache.

use super::parallel::for_each_chunk;
use super::simd::multiversion;

/// A depthwise filter, `k × k` taps per channel, tap-major (`[k·k, c]`) so each tap is one
/// contiguous row of per-channel weights.
pub struct DepthwiseFilter<'a> {
    pub taps: &'a [f32],
    pub bias: &'a [f32],
    pub k: usize,
    pub padding: usize,
}

/// `out[y, x, :] = (bias + Σ taps[dy, dx, :] · x[y+dy-p, x+dx-p, :]) + x[y, x, :]` (stride 1,
/// zero padding) for one image of `h × w` tokens of `c` channels; `out` has the same shape as
/// `x`. The residual is added last, so the values are those of the convolution followed by
/// a separate addition.
///
/// # Panics
/// When the slices do not fit the sizes. The only caller (`flex.rs`) checks the tensors'
/// shapes first and slices them to exactly these sizes, so that is a bug there.
pub fn conv_pos_enc(x: &[f32], h: usize, w: usize, f: &DepthwiseFilter, out: &mut [f32]) {
    let c = f.bias.len();
    assert!(
        x.len() == h * w * c && out.len() == x.len() && f.taps.len() == f.k * f.k * c,
        "depthwise shapes"
    );
    if c == 0 || w == 0 {
        return;
    }
    for_each_chunk(
        out,
        w * c,
        || (),
        |_, y, row| conv_pos_enc_row(x, h, w, f, y, row),
    );
}

multiversion! {
    /// Output row `y` of [`conv_pos_enc`].
    fn conv_pos_enc_row(x: &[f32], h: usize, w: usize, f: &DepthwiseFilter, y: usize, row: &mut [f32]) {
        let c = f.bias.len();
        for px in row.chunks_exact_mut(c) {
            px.copy_from_slice(f.bias);
        }
        for dy in 0..f.k {
            let Some(sy) = (y + dy).checked_sub(f.padding).filter(|&sy| sy < h) else {
                continue;
            };
            let src_row = &x[sy * w * c..][..w * c];
            for dx in 0..f.k {
                let tap = &f.taps[(dy * f.k + dx) * c..][..c];
                // Output columns whose source column sx = ox + dx - p lies inside the row.
                let first = f.padding.saturating_sub(dx);
                let end = (w + f.padding).saturating_sub(dx).min(w);
                for ox in first..end {
                    let sx = ox + dx - f.padding;
                    let src = &src_row[sx * c..][..c];
                    let dst = &mut row[ox * c..][..c];
                    for ((d, &s), &t) in dst.iter_mut().zip(src).zip(tap) {
                        *d += s * t;
                    }
                }
            }
        }
        for (d, &s) in row.iter_mut().zip(&x[y * w * c..][..w * c]) {
            *d += s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain formula (`x + conv(x)`) on `[c, h, w]` (PyTorch's layout), for comparison.
    #[allow(clippy::too_many_arguments)]
    fn naive(
        x_chw: &[f32],
        c: usize,
        h: usize,
        w: usize,
        k: usize,
        p: usize,
        wt: &[f32],
        b: &[f32],
    ) -> Vec<f32> {
        let mut out = vec![0.0; c * h * w];
        for ch in 0..c {
            for y in 0..h {
                for xx in 0..w {
                    let mut acc = b[ch];
                    for dy in 0..k {
                        for dx in 0..k {
                            let (sy, sx) = (
                                y as isize + dy as isize - p as isize,
                                xx as isize + dx as isize - p as isize,
                            );
                            if sy >= 0 && sx >= 0 && (sy as usize) < h && (sx as usize) < w {
                                acc += wt[(ch * k + dy) * k + dx]
                                    * x_chw[(ch * h + sy as usize) * w + sx as usize];
                            }
                        }
                    }
                    out[(ch * h + y) * w + xx] = acc + x_chw[(ch * h + y) * w + xx];
                }
            }
        }
        out
    }

    #[test]
    fn matches_the_plain_formula() {
        for (c, h, w, k, p) in [
            (5, 4, 7, 3, 1),
            (16, 1, 1, 3, 1),
            (3, 6, 2, 5, 2),
            (9, 3, 3, 1, 0),
        ] {
            let x_chw: Vec<f32> = (0..c * h * w)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.02)
                .collect();
            let wt: Vec<f32> = (0..c * k * k)
                .map(|i| ((i * 13 % 29) as f32 - 14.0) * 0.05)
                .collect();
            let b: Vec<f32> = (0..c).map(|i| i as f32 * 0.1 - 0.2).collect();
            let want = naive(&x_chw, c, h, w, k, p, &wt, &b);
            // To channels-last, taps tap-major.
            let x: Vec<f32> = (0..h * w * c)
                .map(|i| x_chw[(i % c) * h * w + i / c])
                .collect();
            let taps: Vec<f32> = (0..k * k * c)
                .map(|i| wt[(i % c) * k * k + i / c])
                .collect();
            let f = DepthwiseFilter {
                taps: &taps,
                bias: &b,
                k,
                padding: p,
            };
            let mut out = vec![f32::NAN; x.len()];
            conv_pos_enc(&x, h, w, &f, &mut out);
            for i in 0..out.len() {
                let got = out[i];
                let expected = want[(i % c) * h * w + i / c];
                assert!(
                    (got - expected).abs() < 1e-5,
                    "c{c} h{h} w{w} k{k}: {got} vs {expected} at {i}"
                );
            }
        }
    }
}
