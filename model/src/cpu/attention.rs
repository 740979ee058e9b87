//! Scaled dot-product attention on strided views (q, k and v are read however they were
//! permuted), per batch and head. Short head dimensions (DaViT's windows, BART) are packed
//! into small padded buffers for a register-blocked kernel, several times faster than
//! `gemm` on 144×32 matrices; long ones (DaViT's channel attention, where the tokens are
//! the features) take `gemm`.

use burn::backend::flex::FlexTensor;

use super::kernels::{PackedHead, attend_head, pad, softmax_rows};
use super::matmul::{MatRef, matmul};

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

/// Head dimensions up to this are packed for the register-blocked kernel; longer ones (the
/// channel attention's token dimension) go to `gemm`.
const SMALL_HEAD_MAX_DIM: usize = 256;

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
    if d <= SMALL_HEAD_MAX_DIM {
        let (tq4, tk16, dv16) = (pad(tq, 4), pad(tk, 16), pad(dv, 16));
        let mut qs = vec![0.0f32; tq4 * d];
        let mut kt = vec![0.0f32; d * tk16];
        let mut vs = vec![0.0f32; tk * dv16];
        let mut scores = vec![0.0f32; tq4 * tk16];
        let mut tmp = vec![0.0f32; tq4 * dv16];
        for bi in 0..b {
            for hi in 0..h {
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
                    q: &qs,
                    kt: &kt,
                    v: &vs,
                    tq,
                    tk,
                    d,
                    dv,
                };
                let o = &mut out[(bi * h + hi) * tq * dv..][..tq * dv];
                attend_head(&head, causal, &mut scores, &mut tmp, o);
            }
        }
        return Some(out);
    }
    let mut scores = vec![0.0f32; tq * tk];
    for bi in 0..b {
        for hi in 0..h {
            matmul(
                &mut scores,
                q.matrix(bi, hi),
                k.matrix(bi, hi).t(),
                scale,
                false,
            );
            if causal {
                // Query i sees keys up to i + (tk - tq).
                for (i, row) in scores.chunks_exact_mut(tk).enumerate() {
                    row[i + 1 + tk - tq..].fill(f32::NEG_INFINITY);
                }
            }
            softmax_rows(&mut scores, tk);
            let p = MatRef {
                data: &scores,
                offset: 0,
                rows: tq,
                cols: tk,
                row_stride: tk,
                col_stride: 1,
            };
            let o = &mut out[(bi * h + hi) * tq * dv..][..tq * dv];
            matmul(o, p, v.matrix(bi, hi), 1.0, false);
        }
    }
    Some(out)
}
