//! The flex backend's side of the kernel seam: [`FlexKernels`] takes burn tensors, checks
//! that they are f32 tensors on the flex device with shapes that agree (`None` otherwise, and
//! burn's generic ops run), and hands their storage to the loops of the sibling modules.

use std::borrow::Cow;
use std::sync::Arc;

use burn::backend::flex::FlexTensor;
use burn::backend::{DispatchDevice, Flex};
use burn::tensor::{DType, Tensor, TensorData};

use super::layer::{Layer, Weight};
use super::matmul::{MatRef, Output, Split, matmul};
use super::token_matrix::ScreenedRows;
use super::{
    attention, channel_attention, conv, enabled, gemv, parallel, patch_conv, quantized, simd,
};
use crate::kernels::{Kernels, LinearRef, Matrix, QuantizedMatrix, TokenMatrix};
use crate::load::quantized::QuantizedValues;

/// A tensor's flex primitive, when it is an f32 tensor on the flex device.
fn flex<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    if !enabled() {
        return None;
    }
    flex_primitive(t)
}

/// [`flex`], whether or not these kernels are switched on (for matrices already kept in
/// this set's own form, which only these kernels can multiply).
fn flex_primitive<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    if !matches!(t.device().as_dispatch(), DispatchDevice::Flex(_)) {
        return None;
    }
    // Cloning is a reference-count increment; on the flex device the downcast succeeds.
    let p = t.clone().try_into_primitive::<Flex>().ok()?;
    (p.dtype() == DType::F32 && p.layout().strides().iter().all(|&s| s >= 0)).then_some(p)
}

fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(values, shape)))
}

/// A flex tensor's values in row-major order: borrowed when it is contiguous (the weights,
/// most activations), copied otherwise.
fn dense(t: &FlexTensor) -> Cow<'_, [f32]> {
    let n = t.layout().shape().num_elements();
    if t.is_contiguous() {
        Cow::Borrowed(&t.storage::<f32>()[t.layout().start_offset()..][..n])
    } else {
        Cow::Owned(t.to_contiguous().storage::<f32>()[..n].to_vec())
    }
}

/// A flex tensor's values with its dimensions in the order `order` (outermost first),
/// row-major: borrowed when the tensor lies so in memory (filters loaded tap-major,
/// [`Kernels::filters_tap_major`]), copied into that order otherwise.
fn in_order<'a>(t: &'a FlexTensor, order: &[usize]) -> Cow<'a, [f32]> {
    let p = t.permute(order);
    if p.is_contiguous() {
        let n = p.layout().shape().num_elements();
        Cow::Borrowed(&t.storage::<f32>()[p.layout().start_offset()..][..n])
    } else {
        Cow::Owned(dense(&p).into_owned())
    }
}

/// Runs `f` on an attention block's `qkv` (`[c, 3c]`) and output (`[c, c]`) projections as
/// the fused kernels take them, f32 or quantized; `None` when their shapes do not fit `c` or
/// they are not this set's tensors.
fn with_attention_layers<R>(
    c: usize,
    qkv: LinearRef<'_>,
    proj: LinearRef<'_>,
    f: impl FnOnce(Layer<'_>, Layer<'_>) -> R,
) -> Option<R> {
    let three_c = c.checked_mul(3)?;
    if qkv.weight.dims() != [c, three_c]
        || proj.weight.dims() != [c, c]
        || qkv.bias.is_some_and(|b| b.dims() != [three_c])
        || proj.bias.is_some_and(|b| b.dims() != [c])
    {
        return None;
    }
    let (qkv_w, proj_w) = (dense_weight(qkv)?, dense_weight(proj)?);
    // `Some(None)` for no bias, `None` for a bias that is not a flex tensor.
    let bias = |b: Option<&Tensor<1>>| match b {
        Some(b) => flex(b).map(Some),
        None => Some(None),
    };
    let (qkv_b, proj_b) = (bias(qkv.bias)?, bias(proj.bias)?);
    let (qkv_b, proj_b) = (qkv_b.as_ref().map(dense), proj_b.as_ref().map(dense));
    Some(f(
        Layer {
            weight: weight_of(qkv, qkv_w.as_ref())?,
            bias: qkv_b.as_deref(),
        },
        Layer {
            weight: weight_of(proj, proj_w.as_ref())?,
            bias: proj_b.as_deref(),
        },
    ))
}

/// A 2-D view (`rows × cols`, dims `row_dim` and `col_dim` of `t`, the others at index 0 +
/// `base`) of a flex tensor.
fn view<'a>(t: &'a FlexTensor, base: usize, row_dim: usize, col_dim: usize) -> MatRef<'a> {
    let layout = t.layout();
    let shape = layout.shape();
    let strides = layout.strides();
    MatRef {
        data: t.storage::<f32>(),
        offset: layout.start_offset() + base,
        rows: shape[row_dim],
        cols: shape[col_dim],
        row_stride: strides[row_dim] as usize,
        col_stride: strides[col_dim] as usize,
    }
}

/// Most rows of an MLP's input per task: the hidden activations of one task (DaViT-base:
/// 9.4 MB at most, its last stage's 576 × 4096) are reused from one block of rows to the
/// next, instead of one buffer the size of the whole hidden layer (75 MB for its first
/// stage) being page-faulted in.
const ROW_BLOCK: usize = 1024;

/// Rows per task of a product over many rows (an MLP, a linear layer): at most
/// [`ROW_BLOCK`], in blocks of equal length, as many as a multiple of the pool's size. Each
/// block packs the weights for `gemm` again, so no more blocks than that: BART's ~590-token
/// prompt is one block on one thread, two on two.
fn row_block_len(rows: usize) -> usize {
    parallel::balanced_block_len(rows, ROW_BLOCK)
}

/// A layer's f32 weight as a flex tensor; `Some(None)` for a quantized one.
fn dense_weight(layer: LinearRef<'_>) -> Option<Option<FlexTensor>> {
    match layer.dense() {
        Some(w) => flex(w).map(Some),
        None => Some(None),
    }
}

/// A layer's weight as the fused kernels take it; `None` for a quantized matrix of another
/// kernel set, or a dense one that is not a flex tensor (`dense` from [`dense_weight`]).
fn weight_of<'a>(layer: LinearRef<'a>, dense: Option<&'a FlexTensor>) -> Option<Weight<'a>> {
    match (layer.weight, dense) {
        (Matrix::Dense(_), Some(w)) => Some(Weight::Dense(view(w, 0, 0, 1))),
        (Matrix::Quantized(q), None) => q
            .as_any()
            .downcast_ref::<FlexQuantized>()
            .map(|q| Weight::quantized(&q.0)),
        _ => None,
    }
}

/// These kernels as the model's [`crate::kernels::Kernels`] set for the flex device.
pub struct FlexKernels;

/// The token matrix as [`ScreenedRows`]: its product and lookups exact, and greedy steps
/// screened on its 8-bit codes.
struct FlexTokenMatrix(ScreenedRows);

impl TokenMatrix for FlexTokenMatrix {
    fn select(&self, ids: &[u32]) -> Tensor<2> {
        let d = self.0.cols();
        let mut out = vec![0.0f32; ids.len() * d];
        for (&id, row) in ids.iter().zip(out.chunks_exact_mut(d.max(1))) {
            self.0.row(id as usize, row);
        }
        tensor(out, [ids.len(), d])
    }

    fn matmul_transposed(&self, x: &Tensor<2>) -> Tensor<2> {
        let [m, _] = x.dims();
        let n = self.0.rows();
        // `x` is the decoder's `[rows, d_model]` hidden state on this matrix's flex device
        // (the only caller, `VocabMatrix`, is built for that device), and `d_model` is the
        // matrix's width, checked against the config at load. `flex` declines it only when
        // the kernels were switched off after loading (a test); reading a flex tensor back is
        // a copy in memory, which has no failure to report.
        let x = match flex(x) {
            Some(f) => dense(&f).into_owned(),
            None => crate::readback::values(x.clone()).unwrap_or_default(),
        };
        let mut out = vec![0.0f32; m * n];
        self.0.times_transposed(&x, m, &mut out);
        tensor(out, [m, n])
    }

    fn greedy_candidates(&self, x: &[f32], banned: &[u32]) -> Option<Vec<(u32, f32)>> {
        self.0.greedy_candidates(x, banned)
    }
}

/// A quantized matrix kept as its codes and scales ([`quantized`]).
struct FlexQuantized(QuantizedValues);

impl QuantizedMatrix for FlexQuantized {
    fn dims(&self) -> [usize; 2] {
        [self.0.rows, self.0.cols]
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn linear(&self, x: &Tensor<2>, bias: Option<&Tensor<1>>, gelu: bool) -> Tensor<2> {
        let w = &self.0;
        let [rows, d_in] = x.dims();
        let bias_values = bias.map(flex_primitive);
        let xf = flex_primitive(x);
        // Not ours to take (shapes that disagree, another device): the reference composition,
        // whose burn ops report the disagreement.
        let ours = d_in == w.cols
            && bias.is_none_or(|b| b.dims() == [w.rows])
            && bias_values.as_ref().is_none_or(Option::is_some);
        let (Some(xf), true) = (xf, ours) else {
            return super::super::quantized::reference_linear(w, &x.device(), x, bias, gelu);
        };
        let n = w.rows;
        let bias_values = bias_values.flatten();
        let bias_values = bias_values.as_ref().map(dense);
        let out = if rows <= gemv::GEMV_MAX_ROWS {
            let mut out = vec![0.0f32; rows * n];
            quantized::few_rows(&dense(&xf), rows, w, &mut out);
            if let Some(b) = &bias_values {
                for row in out.chunks_exact_mut(n) {
                    for (o, &b) in row.iter_mut().zip(b.iter()) {
                        *o += b;
                    }
                }
            }
            if gelu {
                simd::gelu(&mut out);
            }
            out
        } else {
            // In blocks of rows, one task each (as the dense `linear`); each task
            // dequantizes its own panels, a small cost beside its products.
            let (mut out, output) = match &bias_values {
                Some(b) => (parallel::repeat(b, rows), Output::Accumulate),
                None => (parallel::zeros(rows * n), Output::Overwrite),
            };
            let xv = view(&xf, 0, 0, 1);
            let block_rows = row_block_len(rows);
            parallel::for_each_chunk(&mut out, block_rows * n, Vec::new, |scratch, block, out| {
                let x_rows = MatRef {
                    offset: xv.offset + block * block_rows * xv.row_stride,
                    rows: out.len() / n,
                    ..xv
                };
                quantized::many_rows(x_rows, w, out, output, scratch);
                if gelu {
                    simd::gelu(out);
                }
            });
            out
        };
        tensor(out, [rows, n])
    }

    fn select(&self, ids: &[u32]) -> Tensor<2> {
        tensor(self.0.dequantize_rows(ids), [ids.len(), self.0.cols])
    }
}

impl Kernels for FlexKernels {
    fn quantized(
        &self,
        values: QuantizedValues,
        device: &burn::tensor::Device,
    ) -> Result<Arc<dyn QuantizedMatrix>, QuantizedValues> {
        if !enabled() || !matches!(device.as_dispatch(), DispatchDevice::Flex(_)) {
            return Err(values);
        }
        Ok(Arc::new(FlexQuantized(values)))
    }

    fn token_matrix(
        &self,
        values: Vec<f32>,
        shape: [usize; 2],
        device: &burn::tensor::Device,
    ) -> Result<Box<dyn TokenMatrix>, Vec<f32>> {
        if !enabled()
            || !matches!(device.as_dispatch(), DispatchDevice::Flex(_))
            || values.len() != shape[0] * shape[1]
        {
            return Err(values);
        }
        Ok(Box::new(FlexTokenMatrix(ScreenedRows::new(values, shape))))
    }

    /// The convolutions below read their filters tap-major.
    fn filters_tap_major(&self, device: &burn::tensor::Device) -> Option<bool> {
        (enabled() && matches!(device.as_dispatch(), DispatchDevice::Flex(_))).then_some(true)
    }

    /// `x · w (+ bias) (→ GELU)` for `x` `[rows, in]` and `w` `[in, out]`.
    fn linear(
        &self,
        x: &Tensor<2>,
        w: &Tensor<2>,
        bias: Option<&Tensor<1>>,
        gelu: bool,
    ) -> Option<Tensor<2>> {
        let (xf, wf) = (flex(x)?, flex(w)?);
        let [rows, d_in] = x.dims();
        let [w_in, out_dim] = w.dims();
        // Shapes that disagree are not ours (the kernels below assert agreement).
        if d_in != w_in || bias.is_some_and(|b| b.dims() != [out_dim]) {
            return None;
        }
        if rows <= gemv::GEMV_MAX_ROWS && wf.layout().strides()[1] == 1 {
            let x = dense(&xf);
            let w = view(&wf, 0, 0, 1);
            let bias = match bias {
                Some(b) => Some(flex(b)?),
                None => None,
            };
            let bias = bias.as_ref().map(dense);
            let mut out = vec![0.0f32; rows * out_dim];
            let ws = &w.data[w.offset..];
            gemv::rows_times_matrix(
                &x,
                rows,
                ws,
                w.row_stride,
                out_dim,
                bias.as_deref(),
                &mut out,
            );
            if gelu {
                simd::gelu(&mut out);
            }
            return Some(tensor(out, [rows, out_dim]));
        }
        // In blocks of rows, one task each, as the MLP: `gemm`'s own split of the encoder's
        // 590-row products kept two threads less busy (its 4 products per layer, looped on
        // two threads: 219-223 -> 214-216 ms per encoder). The output starts as the bias
        // (written once, not zeroed first), which the product is added to; a row block's
        // values do not depend on how the rows are cut (`gemm` blocks the inner dimension by
        // its length alone).
        let (mut out, output) = match bias {
            Some(b) => (
                parallel::repeat(&dense(&flex(b)?), rows),
                Output::Accumulate,
            ),
            None => (parallel::zeros(rows * out_dim), Output::Overwrite),
        };
        let (xv, wv) = (view(&xf, 0, 0, 1), view(&wf, 0, 0, 1));
        let block_rows = row_block_len(rows);
        parallel::for_each_chunk_sized(
            rows * d_in * out_dim,
            &mut out,
            block_rows * out_dim,
            || (),
            |_, block, out| {
                let x_rows = MatRef {
                    offset: xv.offset + block * block_rows * xv.row_stride,
                    rows: out.len() / out_dim,
                    ..xv
                };
                matmul(out, x_rows, wv, 1.0, output, Split::Caller);
                if gelu {
                    simd::gelu(out);
                }
            },
        );
        Some(tensor(out, [rows, out_dim]))
    }

    /// `residual + fc2(GELU(fc1(x)))` for `x` `[rows, in]`, `w1` `[in, hidden]`, `w2`
    /// `[hidden, out]`, `residual` `[rows, out]`, in blocks of rows spread over the pool, each
    /// block's two products and its residual on its own thread.
    fn mlp(
        &self,
        x: &Tensor<2>,
        fc1: LinearRef<'_>,
        fc2: LinearRef<'_>,
        residual: &Tensor<2>,
    ) -> Option<Tensor<2>> {
        let [rows, d_in] = x.dims();
        // A decoder step's few rows go through the two linear layers (their gemv path).
        if rows <= gemv::GEMV_MAX_ROWS {
            return None;
        }
        let (b1f, b2f) = (flex(fc1.bias?)?, flex(fc2.bias?)?);
        let (xf, rf) = (flex(x)?, flex(residual)?);
        let (w1f, w2f) = (dense_weight(fc1)?, dense_weight(fc2)?);
        let layer1 = weight_of(fc1, w1f.as_ref())?;
        let layer2 = weight_of(fc2, w2f.as_ref())?;
        let ([w1_in, hidden], [w2_in, d_out]) = (layer1.dims(), layer2.dims());
        if d_in != w1_in
            || w2_in != hidden
            || b1f.layout().shape().num_elements() != hidden
            || b2f.layout().shape().num_elements() != d_out
            || residual.dims() != [rows, d_out]
        {
            return None;
        }
        let (b1, b2, residual) = (dense(&b1f), dense(&b2f), dense(&rf));
        let xv = view(&xf, 0, 0, 1);
        let block_rows = row_block_len(rows);
        // The output starts as fc2's bias (written once, not zeroed first).
        let mut out = parallel::repeat(&b2, rows);
        parallel::for_each_chunk(
            &mut out,
            block_rows * d_out,
            // The block's hidden rows, and a quantized layer's dequantized panel: fc1's
            // output is never held for all rows at once (4× the tokens: 75 MB on base's
            // first stage).
            || (vec![0.0f32; block_rows * hidden], Vec::new()),
            |(h, scratch), block, out| {
                let first = block * block_rows;
                let n = out.len() / d_out;
                let h = &mut h[..n * hidden];
                for row in h.chunks_exact_mut(hidden) {
                    row.copy_from_slice(&b1);
                }
                let x_rows = MatRef {
                    offset: xv.offset + first * xv.row_stride,
                    rows: n,
                    ..xv
                };
                layer1.accumulate(x_rows, h, scratch);
                simd::gelu(h);
                let h_rows = MatRef {
                    data: h,
                    offset: 0,
                    rows: n,
                    cols: hidden,
                    row_stride: hidden,
                    col_stride: 1,
                };
                layer2.accumulate(h_rows, out, scratch);
                // Added last, as a separate addition would (addition commutes): the same values.
                let residual = &residual[first * d_out..][..out.len()];
                for (o, &r) in out.iter_mut().zip(residual) {
                    *o += r;
                }
            },
        );
        Some(tensor(out, [rows, d_out]))
    }

    /// DaViT's window attention: both projections on the tokens in raster order, the windows
    /// gathered while the heads are packed ([`attention::window_attention`]); the tokens are
    /// never copied into window order and back.
    fn window_attention(
        &self,
        x: &Tensor<3>,
        [h, w]: [usize; 2],
        window: usize,
        heads: usize,
        qkv: LinearRef<'_>,
        proj: LinearRef<'_>,
    ) -> Option<Tensor<3>> {
        let [batch, n, c] = x.dims();
        let three_c = c.checked_mul(3)?;
        if n != h * w
            || window == 0
            || heads == 0
            || !c.is_multiple_of(heads)
            || qkv.weight.dims() != [c, three_c]
            || proj.weight.dims() != [c, c]
            || qkv.bias.is_some_and(|b| b.dims() != [three_c])
            || proj.bias.is_some_and(|b| b.dims() != [c])
        {
            return None;
        }
        let grid = attention::WindowGrid {
            batch,
            h,
            w,
            channels: c,
            window,
            heads,
        };
        let scale = ((c / heads) as f64).powf(-0.5) as f32;
        let xf = flex(x)?;
        if batch * h.div_ceil(window) >= 2 * parallel::threads() {
            // Enough strips of windows for every thread: each strip's products on its thread,
            // the weights f32 or quantized.
            let mut out = parallel::zeros(batch * n * c);
            with_attention_layers(c, qkv, proj, |qkv, proj| {
                attention::window_attention_fused(&dense(&xf), qkv, proj, grid, scale, &mut out)
            })?;
            return Some(tensor(out, [batch, n, c]));
        }
        let tokens = x.clone().reshape([batch * n, c]);
        // Either layer may be quantized here (`kernels::apply` picks its kernel).
        let projected = crate::kernels::apply(tokens, qkv, false);
        let projected = flex(&projected)?;
        // A padding token is zero, so its projection is the bias.
        let pad = match qkv.bias {
            Some(b) => dense(&flex(b)?).into_owned(),
            None => vec![0.0; three_c],
        };
        let mut out = parallel::zeros(batch * n * c);
        attention::window_attention(&dense(&projected), &pad, grid, scale, &mut out);
        let out = crate::kernels::apply(tensor(out, [batch * n, c]), proj, false);
        Some(out.reshape([batch, n, c]))
    }

    /// DaViT's channel attention, both projections included, a block of tokens at a time.
    fn channel_attention(
        &self,
        x: &Tensor<3>,
        groups: usize,
        qkv: LinearRef<'_>,
        proj: LinearRef<'_>,
    ) -> Option<Tensor<3>> {
        let [batch, n, c] = x.dims();
        if groups == 0 || !c.is_multiple_of(groups) {
            return None;
        }
        let xf = flex(x)?;
        let grid = channel_attention::ChannelGrid {
            batch,
            tokens: n,
            channels: c,
            groups,
        };
        let scale = (n as f64).powf(-0.5) as f32;
        let mut out = parallel::zeros(batch * n * c);
        with_attention_layers(c, qkv, proj, |qkv, proj| {
            channel_attention::channel_attention_fused(
                &dense(&xf),
                qkv,
                proj,
                grid,
                scale,
                &mut out,
            )
        })?;
        Some(tensor(out, [batch, n, c]))
    }

    /// `x · eᵀ` for `x` `[rows, d]` and `e` `[n, d]` (the tied `lm_head` on the embedding).
    fn matmul_transposed(&self, x: &Tensor<2>, e: &Tensor<2>) -> Option<Tensor<2>> {
        let (xf, ef) = (flex(x)?, flex(e)?);
        let [rows, d] = x.dims();
        let [n, e_d] = e.dims();
        if d != e_d {
            return None;
        }
        if rows <= gemv::GEMV_MAX_ROWS {
            let mut out = vec![0.0f32; rows * n];
            gemv::rows_times_transposed(&dense(&xf), rows, &dense(&ef), n, &mut out);
            return Some(tensor(out, [rows, n]));
        }
        let mut out = vec![0.0f32; rows * n];
        matmul(
            &mut out,
            view(&xf, 0, 0, 1),
            view(&ef, 0, 0, 1).t(),
            1.0,
            Output::Overwrite,
            Split::Pool,
        );
        Some(tensor(out, [rows, n]))
    }

    /// LayerNorm over the last dimension of `x` `[rows, dim]`.
    fn layer_norm(
        &self,
        x: &Tensor<2>,
        w: &Tensor<1>,
        b: &Tensor<1>,
        eps: f64,
    ) -> Option<Tensor<2>> {
        let (xf, wf, bf) = (flex(x)?, flex(w)?, flex(b)?);
        let [rows, dim] = x.dims();
        let xf = if xf.is_contiguous() {
            xf
        } else {
            xf.to_contiguous()
        };
        let x = &xf.storage::<f32>()[xf.layout().start_offset()..][..rows * dim];
        let w = &wf.storage::<f32>()[wf.layout().start_offset()..][..dim];
        let b = &bf.storage::<f32>()[bf.layout().start_offset()..][..dim];
        let mut out = parallel::zeros(rows * dim);
        let rows_per_part = 64;
        parallel::for_each_chunk(
            &mut out,
            rows_per_part * dim,
            || (),
            |_, i, part| {
                let x = &x[i * rows_per_part * dim..][..part.len()];
                simd::layer_norm_rows(x, w, b, eps as f32, part)
            },
        );
        Some(tensor(out, [rows, dim]))
    }

    /// `x + depthwise_conv(x)`: a `k × k` convolution, stride 1, zero padding `padding`, of
    /// channels-last tokens `x` `[b, h·w, c]`, with `weight` `[c, 1, k, k]` (read tap-major,
    /// `[k·k, c]`) and `bias` `[c]`.
    fn conv_pos_enc(
        &self,
        x: &Tensor<3>,
        h: usize,
        w: usize,
        weight: &Tensor<4>,
        bias: &Tensor<1>,
        padding: usize,
    ) -> Option<Tensor<3>> {
        let (xf, wf, bf) = (flex(x)?, flex(weight)?, flex(bias)?);
        let [b, n, c] = x.dims();
        let [wc, one, k, k2] = weight.dims();
        if n != h * w || wc != c || one != 1 || k != k2 || bias.dims() != [c] || padding > k {
            return None;
        }
        let (x, taps, bias) = (dense(&xf), in_order(&wf, &[2, 3, 0, 1]), dense(&bf));
        let filter = conv::DepthwiseFilter {
            taps: &taps,
            bias: &bias,
            k,
            padding,
        };
        let mut out = parallel::zeros(b * n * c);
        for (xi, oi) in x.chunks_exact(n * c).zip(out.chunks_exact_mut(n * c)) {
            conv::conv_pos_enc(xi, h, w, &filter, oi);
        }
        Some(tensor(out, [b, n, c]))
    }

    /// DaViT's patch embedding ([`patch_conv::patch_conv`]): channels-last tokens in and
    /// out, the filters read tap-major (`[c_out, k·k·c_in]`) so that a patch is `k·k`
    /// contiguous runs of the input's channels.
    fn patch_conv(
        &self,
        x: &Tensor<3>,
        [h, w]: [usize; 2],
        weight: &Tensor<4>,
        bias: &Tensor<1>,
        stride: usize,
        padding: usize,
    ) -> Option<Tensor<3>> {
        let (xf, wf, bf) = (flex(x)?, flex(weight)?, flex(bias)?);
        let [batch, n, c_in] = x.dims();
        let [c_out, w_in, k, k2] = weight.dims();
        let g = patch_conv::PatchGeometry {
            h,
            w,
            c_in,
            k,
            stride,
            padding,
        };
        let [ho, wo] = g.out_grid()?;
        if n != h * w || w_in != c_in || k != k2 || bias.dims() != [c_out] {
            return None;
        }
        let filters = in_order(&wf, &[0, 2, 3, 1]);
        let mut out = parallel::zeros(batch * ho * wo * c_out);
        patch_conv::patch_conv(&dense(&xf), batch, g, &filters, &dense(&bf), &mut out);
        Some(tensor(out, [batch, ho * wo, c_out]))
    }

    /// `softmax(scale · q kᵀ [+ causal mask]) v` for `q` `[b, h, tq, d]`, `k` `[b, h, tk, d]`,
    /// `v` `[b, h, tk, dv]`, any (non-negative) strides → `[b, h, tq, dv]`. The causal mask aligns
    /// the last query with the last key.
    fn scaled_dot_product_attention(
        &self,
        q: &Tensor<4>,
        k: &Tensor<4>,
        v: &Tensor<4>,
        scale: f32,
        causal: bool,
    ) -> Option<Tensor<4>> {
        let (qf, kf, vf) = (flex(q)?, flex(k)?, flex(v)?);
        let out = attention::strided_attention(&qf, &kf, &vf, scale, causal)?;
        let [b, h, tq, _] = q.dims();
        let [_, _, _, dv] = v.dims();
        Some(tensor(out, [b, h, tq, dv]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `[c_out, c_in, k, k]` filter read tap-major: copied from PyTorch's layout, borrowed
    /// from a tensor loaded tap-major (as `Weights::tensor_in_order` loads it).
    #[test]
    fn filters_loaded_tap_major_are_read_in_place() {
        let device = burn::tensor::Device::flex();
        let (c_out, c_in, k) = (2, 3, 2);
        let values: Vec<f32> = (0..c_out * c_in * k * k).map(|i| i as f32).collect();
        let tap_major: Vec<f32> = (0..values.len())
            .map(|i| {
                let (co, j) = (i / (k * k * c_in), i % (k * k * c_in));
                values[(co * c_in + j % c_in) * k * k + j / c_in]
            })
            .collect();
        let pytorch: Tensor<4> =
            Tensor::from_data(TensorData::new(values, [c_out, c_in, k, k]), &device);
        let loaded: Tensor<4> = Tensor::from_data(
            TensorData::new(tap_major.clone(), [c_out, k, k, c_in]),
            &device,
        )
        .permute([0, 3, 1, 2]);
        assert_eq!(loaded.dims(), [c_out, c_in, k, k]);
        assert_eq!(
            loaded.clone().into_data().try_to_vec::<f32>().unwrap(),
            pytorch.clone().into_data().try_to_vec::<f32>().unwrap()
        );
        let (pf, lf) = (flex(&pytorch).unwrap(), flex(&loaded).unwrap());
        let copied = in_order(&pf, &[0, 2, 3, 1]);
        assert!(matches!(copied, Cow::Owned(_)));
        assert_eq!(*copied, *tap_major);
        let borrowed = in_order(&lf, &[0, 2, 3, 1]);
        assert!(matches!(borrowed, Cow::Borrowed(_)));
        assert_eq!(*borrowed, *tap_major);
    }
}
