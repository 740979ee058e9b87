//! DaViT's channel attention with both of its projections, block by block of tokens. In the
//! channel attention the channels are the sequence and the tokens the features: each
//! group's `d × d` scores (`d` = channels per group) sum over every token of the picture.
//! Done as transformers does it — the whole picture's q, k and v, then attention on them
//! permuted, then the output permuted back — the first stage of DaViT-base wrote and read
//! back 56 MB of projections (page-faulted in at every block) and copied 19 MB of output,
//! and ran at half the speed of its MLP. Here a first pass projects q and k a block of
//! tokens at a time and adds up the blocks' scores; a second projects v, attends and
//! projects the output a block at a time, straight into the output's rows. Every
//! intermediate stays in the thread's cache.

use super::layer::Layer;
use super::matmul::{MatRef, Output, Split, matmul};
use super::parallel::{balanced_block_len, for_each_chunk};
use super::simd::{pad, softmax_rows};

/// The sizes of [`channel_attention_fused`]'s input: `batch` pictures of `tokens` tokens of
/// `channels` channels, in `groups` groups of `channels / groups`.
#[derive(Clone, Copy)]
pub struct ChannelGrid {
    pub batch: usize,
    pub tokens: usize,
    pub channels: usize,
    pub groups: usize,
}

/// Tokens per block of the scores' pass, at most: each block packs the q and k weights for
/// `gemm` again, so not much shorter than this.
const SCORE_BLOCK_MAX: usize = 512;

/// How many blocks the scores' pass cuts `tokens` into: from the number of tokens alone
/// (never from the pool's size), so that the scores are summed in the same order on any
/// number of threads; a multiple of 4, so that 1, 2 or 4 threads get equal shares.
fn score_blocks(tokens: usize) -> usize {
    pad(tokens.div_ceil(SCORE_BLOCK_MAX), 4)
}

/// Rows per task of the output's pass, at most (it sums nothing across blocks).
const OUTPUT_BLOCK_MAX: usize = 1024;

/// `proj(channel_attention(qkv(x)))` for `x` `[batch, tokens, channels]`, the normed tokens,
/// into `out` (same shape): per group, `softmax(scale · qᵀk)` over the group's channels,
/// applied to v, with q, k and v the three thirds of the `qkv` projection (`[channels,
/// 3·channels]`), each `groups` groups side by side.
///
/// # Panics
/// When the slices do not fit the grid (the caller checks the tensors' shapes; a bug there).
pub fn channel_attention_fused(
    x: &[f32],
    qkv: Layer<'_>,
    proj: Layer<'_>,
    g: ChannelGrid,
    scale: f32,
    out: &mut [f32],
) {
    let (n, c, groups) = (g.tokens, g.channels, g.groups);
    assert!(
        groups > 0
            && c.is_multiple_of(groups)
            && x.len() == g.batch * n * c
            && out.len() == x.len()
            && qkv.weight.dims() == [c, 3 * c]
            && qkv.bias.is_none_or(|b| b.len() == 3 * c)
            && proj.weight.dims() == [c, c]
            && proj.bias.is_none_or(|b| b.len() == c),
        "channel attention shapes"
    );
    if n == 0 || c == 0 {
        return;
    }
    let d = c / groups;
    // The three thirds of the qkv layer: q and k together, then v.
    let qk_layer = qkv.columns(0, 2 * c);
    let v_layer = qkv.columns(2 * c, c);
    for (x, out) in x.chunks_exact(n * c).zip(out.chunks_exact_mut(n * c)) {
        let tokens = |first: usize, rows: usize| MatRef {
            data: x,
            offset: first * c,
            rows,
            cols: c,
            row_stride: c,
            col_stride: 1,
        };
        // Pass 1: each block's q and k, and its share of every group's qᵀk.
        let blocks = score_blocks(n);
        let block_len = n.div_ceil(blocks);
        let mut partial = vec![0.0f32; blocks * groups * d * d];
        for_each_chunk(
            &mut partial,
            groups * d * d,
            || (vec![0.0f32; block_len * 2 * c], Vec::new()),
            |(qk, panel), block, scores| {
                let first = (block * block_len).min(n);
                let rows = block_len.min(n - first);
                if rows == 0 {
                    scores.fill(0.0);
                    return;
                }
                let qk = &mut qk[..rows * 2 * c];
                qk_layer.start_into(qk);
                qk_layer.weight.accumulate(tokens(first, rows), qk, panel);
                for (gi, scores) in scores.chunks_exact_mut(d * d).enumerate() {
                    // q of the group as `[d, rows]` (transposed in place), k as `[rows, d]`.
                    let q = MatRef {
                        data: qk,
                        offset: gi * d,
                        rows: d,
                        cols: rows,
                        row_stride: 1,
                        col_stride: 2 * c,
                    };
                    let k = MatRef {
                        data: qk,
                        offset: c + gi * d,
                        rows,
                        cols: d,
                        row_stride: 2 * c,
                        col_stride: 1,
                    };
                    matmul(scores, q, k, 1.0, Output::Overwrite, Split::Caller);
                }
            },
        );
        // The blocks' shares added in block order, then scaled and normalised per row.
        let (probs, rest) = partial.split_at_mut(groups * d * d);
        for share in rest.chunks_exact(groups * d * d) {
            for (p, &s) in probs.iter_mut().zip(share) {
                *p += s;
            }
        }
        for p in probs.iter_mut() {
            *p *= scale;
        }
        softmax_rows(probs, d);
        let probs = &*probs;
        // Pass 2: each block's v, its attention output (v · pᵀ per group) and projection.
        let rows_max = balanced_block_len(n, OUTPUT_BLOCK_MAX);
        for_each_chunk(
            out,
            rows_max * c,
            || {
                (
                    vec![0.0f32; rows_max * c],
                    vec![0.0f32; rows_max * c],
                    vec![0.0f32; rows_max * d],
                    Vec::new(),
                )
            },
            |(v, attended, group_out, panel), block, out| {
                let (first, rows) = (block * rows_max, out.len() / c);
                let (v, attended) = (&mut v[..rows * c], &mut attended[..rows * c]);
                let group_out = &mut group_out[..rows * d];
                v_layer.start_into(v);
                v_layer.weight.accumulate(tokens(first, rows), v, panel);
                for gi in 0..groups {
                    let v_group = MatRef {
                        data: v,
                        offset: gi * d,
                        rows,
                        cols: d,
                        row_stride: c,
                        col_stride: 1,
                    };
                    // pᵀ of the group: `[d, d]`, transposed in place.
                    let p_t = MatRef {
                        data: probs,
                        offset: gi * d * d,
                        rows: d,
                        cols: d,
                        row_stride: 1,
                        col_stride: d,
                    };
                    matmul(
                        group_out,
                        v_group,
                        p_t,
                        1.0,
                        Output::Overwrite,
                        Split::Caller,
                    );
                    for (dst, src) in attended.chunks_exact_mut(c).zip(group_out.chunks_exact(d)) {
                        dst[gi * d..][..d].copy_from_slice(src);
                    }
                }
                proj.start_into(out);
                let attended = MatRef {
                    data: attended,
                    offset: 0,
                    rows,
                    cols: c,
                    row_stride: c,
                    col_stride: 1,
                };
                proj.weight.accumulate(attended, out, panel);
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::layer::{Layer, Weight};
    use super::super::matmul::MatRef;
    use super::{ChannelGrid, channel_attention_fused};

    /// The formula as transformers writes it, in f64: the whole picture's projections, then
    /// per group `softmax(scale · q·kᵀ) · v` with channels as the sequence.
    #[allow(clippy::too_many_arguments)]
    fn plain(
        x: &[f32],
        wqkv: &[f32],
        bqkv: Option<&[f32]>,
        wproj: &[f32],
        bproj: Option<&[f32]>,
        n: usize,
        c: usize,
        groups: usize,
        scale: f64,
    ) -> Vec<f64> {
        let linear = |x: &[f64], w: &[f32], b: Option<&[f32]>, d_in: usize, d_out: usize| {
            x.chunks_exact(d_in)
                .flat_map(|row| {
                    (0..d_out).map(move |o| {
                        (0..d_in)
                            .map(|i| row[i] * w[i * d_out + o] as f64)
                            .sum::<f64>()
                            + b.map_or(0.0, |b| b[o] as f64)
                    })
                })
                .collect::<Vec<f64>>()
        };
        let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let qkv = linear(&x, wqkv, bqkv, c, 3 * c);
        let d = c / groups;
        let at =
            |t: usize, part: usize, gi: usize, i: usize| qkv[t * 3 * c + part * c + gi * d + i];
        let mut attended = vec![0.0; n * c];
        for gi in 0..groups {
            for i in 0..d {
                let s: Vec<f64> = (0..d)
                    .map(|j| {
                        (0..n)
                            .map(|t| at(t, 0, gi, i) * at(t, 1, gi, j))
                            .sum::<f64>()
                            * scale
                    })
                    .collect();
                let m = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
                for t in 0..n {
                    attended[t * c + gi * d + i] =
                        (0..d).map(|j| (s[j] - m).exp() / z * at(t, 2, gi, j)).sum();
                }
            }
        }
        linear(&attended, wproj, bproj, c, c)
    }

    fn matrix(data: &[f32], rows: usize, cols: usize) -> MatRef<'_> {
        MatRef {
            data,
            offset: 0,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    #[test]
    fn matches_the_plain_formula() {
        // Token counts that one block holds, that the blocks divide, and that leave short and
        // empty blocks; with and without biases.
        for (batch, n, c, groups) in [(1, 5, 8, 2), (2, 37, 6, 3), (1, 1100, 8, 2), (1, 3, 4, 1)] {
            let values = |len: usize, seed: usize| -> Vec<f32> {
                (0..len)
                    .map(|i| (((i * 37 + seed) % 89) as f32 - 44.0) * 0.01)
                    .collect()
            };
            let x = values(batch * n * c, 1);
            let (wqkv, bqkv) = (values(c * 3 * c, 2), values(3 * c, 3));
            let (wproj, bproj) = (values(c * c, 4), values(c, 5));
            let scale = (n as f32).powf(-0.5);
            for with_bias in [true, false] {
                let (qb, pb) = if with_bias {
                    (Some(&bqkv[..]), Some(&bproj[..]))
                } else {
                    (None, None)
                };
                let mut got = vec![f32::NAN; x.len()];
                channel_attention_fused(
                    &x,
                    Layer {
                        weight: Weight::Dense(matrix(&wqkv, c, 3 * c)),
                        bias: qb,
                    },
                    Layer {
                        weight: Weight::Dense(matrix(&wproj, c, c)),
                        bias: pb,
                    },
                    ChannelGrid {
                        batch,
                        tokens: n,
                        channels: c,
                        groups,
                    },
                    scale,
                    &mut got,
                );
                for (bi, (x, got)) in x
                    .chunks_exact(n * c)
                    .zip(got.chunks_exact(n * c))
                    .enumerate()
                {
                    let want = plain(x, &wqkv, qb, &wproj, pb, n, c, groups, scale as f64);
                    for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                        assert!(
                            (*a as f64 - b).abs() < 1e-5,
                            "n {n} c {c} groups {groups} bias {with_bias} picture {bi}: [{i}] {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}
