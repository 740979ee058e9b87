//! Scaled dot-product attention on strided views (q, k and v are read however they were
//! permuted), per batch and head. Short head dimensions (DaViT's windows, BART) are packed
//! into small padded buffers for a register-blocked kernel, several times faster than
//! `gemm` on 144×32 matrices; long ones (DaViT's channel attention, where the tokens are
//! the features) take `gemm`.

use burn::backend::flex::FlexTensor;

use super::gemv::MAX_ROWS;
use super::kernels::{PackedHead, attend_head, attend_query, pad, softmax_rows};
use super::matmul::{MatRef, matmul};
use super::parallel::for_each_chunk;

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
pub fn attention(
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
    let mut out = vec![0.0f32; b * h * tq * dv];
    // One head per chunk of the output, spread over the pool; each thread packs into its
    // own scratch.
    let head_of = |index: usize| (index / h, index % h);
    if tq <= MAX_ROWS && k.strides[3] == 1 && v.strides[3] == 1 {
        // A few queries (a decoder step): keys and values read where they are.
        for_each_chunk(
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
                false,
                false,
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
            matmul(o, p, v.matrix(bi, hi), 1.0, false, false);
        },
    );
    Some(out)
}

#[cfg(test)]
mod tests {
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
                    super::attention(&t(&q, tq), &t(&k, tk), &t(&v, tk), scale, causal).unwrap();
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
}
