//! Scaled dot-product attention on strided views (q, k and v are read however they were
//! permuted), per batch and head. Short head dimensions (DaViT's windows, BART) are packed
//! into small padded buffers for a register-blocked kernel, several times faster than
//! `gemm` on 144×32 matrices; long ones (DaViT's channel attention, where the tokens are
//! the features) take `gemm`.

use burn::backend::flex::FlexTensor;

use super::gemv::GEMV_MAX_ROWS;
use super::layer::Layer;
use super::matmul::{MatRef, Output, Split, matmul};
use super::parallel::{for_each_chunk, for_each_chunk_sized, zeros};
use super::simd::{PackedHead, attend_head, attend_query, pad, softmax_rows};

/// Rank-4 view `[b, h, t, d]` of a flex tensor.
struct View4<'a> {
    data: &'a [f32],
    offset: usize,
    shape: [usize; 4],
    strides: [usize; 4],
}

impl<'a> View4<'a> {
    fn new(t: &'a FlexTensor) -> Option<Self> {
        let layout = t.layout();
        let shape: [usize; 4] = layout.shape().as_slice().try_into().ok()?;
        let strides: Vec<usize> = layout
            .strides()
            .iter()
            .map(|&s| usize::try_from(s).ok())
            .collect::<Option<_>>()?;
        Some(View4 {
            data: t.storage::<f32>(),
            offset: layout.start_offset(),
            shape,
            strides: strides.try_into().ok()?,
        })
    }

    /// The `[t, d]` matrix of batch `b` and head `h`.
    fn matrix(&self, b: usize, h: usize) -> MatRef<'a> {
        MatRef {
            data: self.data,
            offset: self.offset + b * self.strides[0] + h * self.strides[1],
            rows: self.shape[2],
            cols: self.shape[3],
            row_stride: self.strides[2],
            col_stride: self.strides[3],
        }
    }
}

/// Heads up to this dimension and this many keys (DaViT's 144-token windows) are packed for
/// the register-blocked kernel; longer ones (the channel attention's token dimension, the
/// BART encoder's whole prompt) go to `gemm`.
const SMALL_HEAD_MAX_DIM: usize = 256;
const SMALL_HEAD_MAX_KEYS: usize = 256;

/// Row-major `[b, h, tq, dv]` output, or `None` when the shapes do not fit together.
pub fn strided_attention(
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    scale: f32,
    causal: bool,
) -> Option<Vec<f32>> {
    let (q, k, v) = (View4::new(q)?, View4::new(k)?, View4::new(v)?);
    let [b, h, tq, d] = q.shape;
    let [kb, kh, tk, kd] = k.shape;
    let [vb, vh, vt, dv] = v.shape;
    if !(kb == b && vb == b && kh == h && vh == h && kd == d && vt == tk) || (causal && tq > tk) {
        return None;
    }
    let mut out = zeros(b * h * tq * dv);
    // One head per chunk of the output, spread over the pool; each thread packs into its
    // own scratch.
    let head_of = |index: usize| (index / h, index % h);
    if tq <= GEMV_MAX_ROWS && k.strides[3] == 1 && v.strides[3] == 1 {
        // A few queries (a decoder step): keys and values read where they are.
        for_each_chunk_sized(
            b * h * tq * tk * (d + dv),
            &mut out,
            tq * dv,
            || (vec![0.0f32; d], vec![0.0f32; tk]),
            |(qs, scores), index, o| {
                let (bi, hi) = head_of(index);
                let qm = q.matrix(bi, hi);
                let keys = &k.data[k.offset + bi * k.strides[0] + hi * k.strides[1]..];
                let values = &v.data[v.offset + bi * v.strides[0] + hi * v.strides[1]..];
                for (i, o) in o.chunks_exact_mut(dv).enumerate() {
                    for (e, x) in qs.iter_mut().enumerate() {
                        *x = qm.at(i, e) * scale;
                    }
                    // Query i sees keys up to i + (tk - tq) when causal.
                    let visible = if causal { i + 1 + tk - tq } else { tk };
                    let (ks, vs) = (k.strides[2], v.strides[2]);
                    attend_query(qs, keys, ks, values, vs, &mut scores[..visible], o);
                }
            },
        );
        return Some(out);
    }
    if d <= SMALL_HEAD_MAX_DIM && tk <= SMALL_HEAD_MAX_KEYS {
        let (tq4, tk16, dv16) = (pad(tq, 4), pad(tk, 16), pad(dv, 16));
        let scratch = || {
            (
                vec![0.0f32; tq4 * d],
                vec![0.0f32; d * tk16],
                vec![0.0f32; tk * dv16],
                vec![0.0f32; tq4 * tk16],
                vec![0.0f32; tq4 * dv16],
            )
        };
        for_each_chunk(
            &mut out,
            tq * dv,
            scratch,
            |(qs, kt, vs, scores, tmp), index, o| {
                let (bi, hi) = head_of(index);
                let (qm, km, vm) = (q.matrix(bi, hi), k.matrix(bi, hi), v.matrix(bi, hi));
                for i in 0..tq {
                    for e in 0..d {
                        qs[i * d + e] = qm.at(i, e) * scale;
                    }
                }
                for j in 0..tk {
                    for e in 0..d {
                        kt[e * tk16 + j] = km.at(j, e);
                    }
                    for e in 0..dv {
                        vs[j * dv16 + e] = vm.at(j, e);
                    }
                }
                let head = PackedHead {
                    q: qs,
                    kt,
                    v: vs,
                    tq,
                    tk,
                    d,
                    dv,
                };
                attend_head(&head, causal, scores, tmp, o);
            },
        );
        return Some(out);
    }
    for_each_chunk(
        &mut out,
        tq * dv,
        || vec![0.0f32; tq * tk],
        |scores, index, o| {
            let (bi, hi) = head_of(index);
            matmul(
                scores,
                q.matrix(bi, hi),
                k.matrix(bi, hi).t(),
                scale,
                Output::Overwrite,
                Split::Caller,
            );
            if causal {
                // Query i sees keys up to i + (tk - tq).
                for (i, row) in scores.chunks_exact_mut(tk).enumerate() {
                    row[i + 1 + tk - tq..].fill(f32::NEG_INFINITY);
                }
            }
            softmax_rows(scores, tk);
            let p = MatRef {
                data: scores,
                offset: 0,
                rows: tq,
                cols: tk,
                row_stride: tk,
                col_stride: 1,
            };
            matmul(
                o,
                p,
                v.matrix(bi, hi),
                1.0,
                Output::Overwrite,
                Split::Caller,
            );
        },
    );
    Some(out)
}

/// The sizes of [`window_attention`]'s input: `batch` pictures of `h × w` tokens of
/// `channels` (= `heads` × head dimension), attended in `window × window` windows.
#[derive(Clone, Copy)]
pub struct WindowGrid {
    pub batch: usize,
    pub h: usize,
    pub w: usize,
    pub channels: usize,
    pub window: usize,
    pub heads: usize,
}

/// Scratch of one thread for [`attend_strip`]: a head's packed q, kᵀ and v, its scores and
/// its output.
struct WindowScratch {
    q: Vec<f32>,
    kt: Vec<f32>,
    v: Vec<f32>,
    scores: Vec<f32>,
    tmp: Vec<f32>,
    out: Vec<f32>,
}

impl WindowScratch {
    fn new(g: &WindowGrid) -> Self {
        let (d, t) = (g.channels / g.heads, g.window * g.window);
        let (t4, t16, d16) = (pad(t, 4), pad(t, 16), pad(d, 16));
        WindowScratch {
            q: vec![0.0; t4 * d],
            kt: vec![0.0; d * t16],
            v: vec![0.0; t * d16],
            scores: vec![0.0; t4 * t16],
            tmp: vec![0.0; t4 * d16],
            out: vec![0.0; t * d],
        }
    }
}

/// Checks `g` against the lengths of the picture's tokens in (`tokens_in` per token) and
/// out; `false` for an empty grid.
fn check_grid(g: &WindowGrid, tokens_in: usize, input: usize, out: usize) -> bool {
    let n = g.h * g.w;
    assert!(
        g.heads > 0
            && g.window > 0
            && g.channels.is_multiple_of(g.heads)
            && input == g.batch * n * tokens_in
            && out == g.batch * n * g.channels,
        "window attention shapes"
    );
    n > 0 && g.channels > 0
}

/// The attention of one strip of `window` token rows (the last strip may have fewer): `qkv`
/// the strip's projections in raster order (`3·channels` per token), `padding` the projection
/// of a padding token, `out` the strip's output rows.
fn attend_strip(
    qkv: &[f32],
    padding: &[f32],
    g: &WindowGrid,
    scale: f32,
    s: &mut WindowScratch,
    out: &mut [f32],
) {
    let (w, c, ws, heads) = (g.w, g.channels, g.window, g.heads);
    let (d, t, t16, d16) = (c / heads, ws * ws, pad(ws * ws, 16), pad(c / heads, 16));
    let rows = out.len() / (w * c);
    for x0 in (0..w).step_by(ws) {
        // Token j of the window: its projection, or the padding's.
        let source = |j: usize| {
            let (y, x) = (j / ws, x0 + j % ws);
            if y < rows && x < w {
                &qkv[(y * w + x) * 3 * c..][..3 * c]
            } else {
                padding
            }
        };
        for hi in 0..heads {
            for j in 0..t {
                let src = source(j);
                let (q, k, v) = (
                    &src[hi * d..][..d],
                    &src[c + hi * d..][..d],
                    &src[2 * c + hi * d..][..d],
                );
                for (dst, &x) in s.q[j * d..][..d].iter_mut().zip(q) {
                    *dst = x * scale;
                }
                for (e, &x) in k.iter().enumerate() {
                    s.kt[e * t16 + j] = x;
                }
                s.v[j * d16..][..d].copy_from_slice(v);
            }
            let head = PackedHead {
                q: &s.q,
                kt: &s.kt,
                v: &s.v,
                tq: t,
                tk: t,
                d,
                dv: d,
            };
            attend_head(&head, false, &mut s.scores, &mut s.tmp, &mut s.out);
            // The window's real tokens back to their places in the strip.
            for j in 0..t {
                let (y, x) = (j / ws, x0 + j % ws);
                if y < rows && x < w {
                    out[(y * w + x) * c + hi * d..][..d].copy_from_slice(&s.out[j * d..][..d]);
                }
            }
        }
    }
}

/// DaViT's window attention on tokens in raster order: `qkv` `[batch, h·w, 3·channels]` (the
/// projection: q, k and v one after the other, each `heads × d`), attention inside each
/// `window × window` window of the grid padded at the right and bottom with tokens whose
/// projection is `padding` (`3·channels`: a zero token's, i.e. the bias), into `out`
/// `[batch, h·w, channels]` in raster order, heads side by side. Each head's window is
/// gathered while it is packed for [`attend_head`], so the tokens are never copied into
/// window order and back. The strips of windows are spread over the pool.
///
/// # Panics
/// When the slices do not fit the grid (the caller checks the tensors' shapes; a bug there).
pub fn window_attention(qkv: &[f32], padding: &[f32], g: WindowGrid, scale: f32, out: &mut [f32]) {
    let c = g.channels;
    assert!(padding.len() == 3 * c, "window attention padding");
    if !check_grid(&g, 3 * c, qkv.len(), out.len()) {
        return;
    }
    let (n, strip) = (g.h * g.w, g.window * g.w);
    for (qkv, out) in qkv.chunks_exact(n * 3 * c).zip(out.chunks_exact_mut(n * c)) {
        for_each_chunk(
            out,
            strip * c,
            || WindowScratch::new(&g),
            |s, i, out| {
                let qkv = &qkv[i * strip * 3 * c..][..out.len() * 3];
                attend_strip(qkv, padding, &g, scale, s, out)
            },
        );
    }
}

/// [`window_attention`] with both projections done strip by strip: `x` `[batch, h·w,
/// channels]` are the normed tokens, `out` gets `proj(attention(qkv(x)))`. A strip's
/// projections and attention stay in the thread's scratch (a few MB, in cache) instead of
/// the whole picture's (56 MB for DaViT-base's first stage, page-faulted in at every block);
/// each strip's products run on its own thread, so this wants at least two strips per thread.
///
/// # Panics
/// When the slices do not fit the grid (the caller checks the tensors' shapes; a bug there).
pub fn window_attention_fused(
    x: &[f32],
    qkv: Layer<'_>,
    proj: Layer<'_>,
    g: WindowGrid,
    scale: f32,
    out: &mut [f32],
) {
    let c = g.channels;
    if !check_grid(&g, c, x.len(), out.len()) {
        return;
    }
    let padding = qkv.start(1);
    let (n, strip) = (g.h * g.w, g.window * g.w);
    for (x, out) in x.chunks_exact(n * c).zip(out.chunks_exact_mut(n * c)) {
        let tokens = MatRef {
            data: x,
            offset: 0,
            rows: n,
            cols: c,
            row_stride: c,
            col_stride: 1,
        };
        for_each_chunk(
            out,
            strip * c,
            || (WindowScratch::new(&g), vec![0.0f32; strip * c], Vec::new()),
            |(s, attended, panel), i, out| {
                let rows = out.len() / c;
                let strip_tokens = MatRef {
                    offset: i * strip * c,
                    rows,
                    ..tokens
                };
                let mut projected = qkv.start(rows);
                qkv.weight.accumulate(strip_tokens, &mut projected, panel);
                let attended = &mut attended[..rows * c];
                attend_strip(&projected, &padding, &g, scale, s, attended);
                let attended = MatRef {
                    data: attended,
                    offset: 0,
                    rows,
                    cols: c,
                    row_stride: c,
                    col_stride: 1,
                };
                proj.start_into(out);
                proj.weight.accumulate(attended, out, panel);
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::layer::{Layer, Weight};
    use burn::backend::flex::FlexTensor;
    use burn::tensor::TensorData;

    /// The plain formula in f64 on `[h, t, d]` row-major heads (batch 1).
    #[allow(clippy::too_many_arguments)]
    fn naive(
        q: &[f32],
        k: &[f32],
        v: &[f32],
        h: usize,
        tq: usize,
        tk: usize,
        d: usize,
        causal: bool,
    ) -> Vec<f64> {
        let scale = (d as f64).powf(-0.5);
        let mut out = vec![0.0; h * tq * d];
        for hi in 0..h {
            for i in 0..tq {
                let visible = if causal { i + 1 + tk - tq } else { tk };
                let s: Vec<f64> = (0..visible)
                    .map(|j| {
                        (0..d)
                            .map(|e| {
                                q[(hi * tq + i) * d + e] as f64 * k[(hi * tk + j) * d + e] as f64
                            })
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
                for (j, x) in s.iter().enumerate() {
                    let p = (x - m).exp() / z;
                    for e in 0..d {
                        out[(hi * tq + i) * d + e] += p * v[(hi * tk + j) * d + e] as f64;
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_path_matches_the_plain_formula() {
        // Few queries (read in place), packed heads, and long sequences (gemm); causal or not.
        for (tq, tk, d) in [
            (1, 40, 16),
            (3, 3, 8),
            (20, 20, 16),
            (300, 300, 8),
            (5, 300, 8),
        ] {
            for causal in [false, true] {
                let h = 3;
                let values = |n: usize, seed: usize| -> Vec<f32> {
                    (0..n)
                        .map(|i| (((i * 31 + seed) % 97) as f32 - 48.0) * 0.03)
                        .collect()
                };
                let (q, k, v) = (
                    values(h * tq * d, 1),
                    values(h * tk * d, 2),
                    values(h * tk * d, 3),
                );
                let t = |x: &[f32], t: usize| {
                    FlexTensor::from_data(TensorData::new(x.to_vec(), [1, h, t, d]))
                };
                let scale = (d as f32).powf(-0.5);
                let ours =
                    super::strided_attention(&t(&q, tq), &t(&k, tk), &t(&v, tk), scale, causal)
                        .unwrap();
                let want = naive(&q, &k, &v, h, tq, tk, d, causal);
                for (i, (a, b)) in ours.iter().zip(&want).enumerate() {
                    assert!(
                        (*a as f64 - b).abs() < 1e-5,
                        "tq {tq} tk {tk} causal {causal}: [{i}] {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn window_attention_matches_the_plain_formula() {
        // Grids that the windows divide and that they do not (padded tokens take part).
        for (batch, h, w, ws, heads, d) in
            [(1, 4, 6, 2, 2, 3), (2, 5, 7, 3, 1, 4), (1, 2, 3, 4, 3, 2)]
        {
            let c = heads * d;
            let qkv: Vec<f32> = (0..batch * h * w * 3 * c)
                .map(|i| (((i * 29 + 7) % 83) as f32 - 41.0) * 0.04)
                .collect();
            let pad: Vec<f32> = (0..3 * c).map(|i| i as f32 * 0.05 - 0.3).collect();
            let scale = (d as f32).powf(-0.5);
            let grid = super::WindowGrid {
                batch,
                h,
                w,
                channels: c,
                window: ws,
                heads,
            };
            let mut out = vec![f32::NAN; batch * h * w * c];
            super::window_attention(&qkv, &pad, grid, scale, &mut out);
            for bi in 0..batch {
                // Token (y, x)'s projection, or the padding's outside the grid.
                let proj = |y: usize, x: usize| -> &[f32] {
                    if y < h && x < w {
                        &qkv[((bi * h + y) * w + x) * 3 * c..][..3 * c]
                    } else {
                        &pad
                    }
                };
                for y in 0..h {
                    for x in 0..w {
                        let (wy, wx) = (y / ws * ws, x / ws * ws);
                        let keys: Vec<(usize, usize)> =
                            (0..ws * ws).map(|j| (wy + j / ws, wx + j % ws)).collect();
                        for hi in 0..heads {
                            let q = &proj(y, x)[hi * d..][..d];
                            let s: Vec<f64> = keys
                                .iter()
                                .map(|&(ky, kx)| {
                                    let k = &proj(ky, kx)[c + hi * d..][..d];
                                    q.iter()
                                        .zip(k)
                                        .map(|(a, b)| *a as f64 * *b as f64)
                                        .sum::<f64>()
                                        * scale as f64
                                })
                                .collect();
                            let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                            let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
                            for e in 0..d {
                                let want: f64 = keys
                                    .iter()
                                    .zip(&s)
                                    .map(|(&(ky, kx), x)| {
                                        (x - m).exp() / z * proj(ky, kx)[2 * c + hi * d + e] as f64
                                    })
                                    .sum();
                                let got = out[((bi * h + y) * w + x) * c + hi * d + e];
                                assert!(
                                    (got as f64 - want).abs() < 1e-5,
                                    "grid {h}x{w} window {ws}: ({y}, {x}) head {hi}: {got} vs {want}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn fused_projections_match_the_unfused_path() {
        use super::super::matmul::MatRef;
        let (batch, h, w, ws, heads, d) = (2, 7, 5, 3, 2, 4);
        let c = heads * d;
        let values = |n: usize, seed: usize| -> Vec<f32> {
            (0..n)
                .map(|i| (((i * 37 + seed) % 89) as f32 - 44.0) * 0.02)
                .collect()
        };
        let x = values(batch * h * w * c, 1);
        let (qkv_w, qkv_b) = (values(c * 3 * c, 2), values(3 * c, 3));
        let (proj_w, proj_b) = (values(c * c, 4), values(c, 5));
        // Row-major x · W + b in f64.
        let linear = |x: &[f32], wt: &[f32], b: Option<&[f32]>, out_dim: usize| -> Vec<f32> {
            let d_in = wt.len() / out_dim;
            x.chunks_exact(d_in)
                .flat_map(|row| {
                    (0..out_dim).map(move |o| {
                        let s: f64 = (0..d_in)
                            .map(|i| row[i] as f64 * wt[i * out_dim + o] as f64)
                            .sum();
                        (s + b.map_or(0.0, |b| b[o] as f64)) as f32
                    })
                })
                .collect()
        };
        let grid = super::WindowGrid {
            batch,
            h,
            w,
            channels: c,
            window: ws,
            heads,
        };
        let scale = (d as f32).powf(-0.5);
        for with_bias in [true, false] {
            let (qb, pb) = if with_bias {
                (Some(&qkv_b[..]), Some(&proj_b[..]))
            } else {
                (None, None)
            };
            let projected = linear(&x, &qkv_w, qb, 3 * c);
            let padding = qb.map_or(vec![0.0; 3 * c], |b| b.to_vec());
            let mut attended = vec![0.0; x.len()];
            super::window_attention(&projected, &padding, grid, scale, &mut attended);
            let want = linear(&attended, &proj_w, pb, c);
            fn weight(data: &[f32], rows: usize, cols: usize) -> MatRef<'_> {
                MatRef {
                    data,
                    offset: 0,
                    rows,
                    cols,
                    row_stride: cols,
                    col_stride: 1,
                }
            }
            let mut got = vec![f32::NAN; x.len()];
            super::window_attention_fused(
                &x,
                Layer {
                    weight: Weight::Dense(weight(&qkv_w, c, 3 * c)),
                    bias: qb,
                },
                Layer {
                    weight: Weight::Dense(weight(&proj_w, c, c)),
                    bias: pb,
                },
                grid,
                scale,
                &mut got,
            );
            for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!((a - b).abs() < 1e-5, "bias {with_bias}: [{i}] {a} vs {b}");
            }
        }
    }
}
