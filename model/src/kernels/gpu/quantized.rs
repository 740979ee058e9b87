//! Quantized matrices (`florence2-blockwise`, model/README.md) kept quantized on a cubecl
//! device: the codes as one `u32` buffer (the stored bytes, little-endian, padded to a whole
//! word), the scales as one `f32` buffer. The kernels dequantize each weight where they read
//! it (`w = f32(code) × scale`, then `acc += x × w`: the reference's values, exactly), so no
//! f32 copy of a matrix is ever made on the device or the host.
//!
//! - [`linear`]: `out[r, o] = Σ_k x[r, k] · w(o, k) (+ bias[o])`, one invocation per output
//!   column and group of up to [`GROUP_ROWS`] rows of `x` (their sums in registers, so a
//!   decoder step reads each weight once).
//! - [`select`]: rows of `W` as f32, one invocation per output value.

use std::sync::Arc;

use burn::backend::Wgpu;
use burn::backend::wgpu::CubeTensor;
use burn::tensor::{DType, Device, Shape, Tensor as BurnTensor, activation};
use burn_cubecl::CubeDevice;
use burn_cubecl::ops::numeric::empty_device_dtype;
use cubecl::prelude::*;

use super::cube;
use crate::kernels::QuantizedMatrix;
use crate::load::quantized::{BLOCK, Bits, QuantizedValues};

// The kernels spell the format's block (64 weights a scale) as a literal.
const _: () = assert!(BLOCK == 64);

/// Invocations per cube.
const CUBE_SIZE: u32 = 64;
/// The most rows of `x` one invocation of [`linear`] sums for (a compile-time count).
pub const GROUP_ROWS: usize = 8;

/// Weight `(o, k)`'s code, from the packed bytes: 8-bit codes are the row's bytes in order;
/// 4-bit, in each block of `len` weights, byte `i < len / 2` holds weight `i` (low nibble) and
/// `i + len / 2` (high nibble), each as code + 8.
// `code` is assigned in one arm of a compile-time branch.
#[allow(unused_assignments)]
#[cube]
fn code_at(codes: &Tensor<u32>, o: usize, k: usize, cols: usize, #[comptime] q4: bool) -> i32 {
    let mut code = 0i32;
    if q4 {
        let start = k / 64 * 64;
        let mut len = cols - start;
        if len > 64 {
            len = 64;
        }
        let half = len / 2;
        let i = k - start;
        let mut j = i;
        let mut shift = 0u32;
        if i >= half {
            j = i - half;
            shift = 4u32;
        }
        let at = o * (cols / 2) + start / 2 + j;
        let word = codes[at / 4];
        let byte = (word >> u32::cast_from((at % 4) * 8)) & 255u32;
        code = i32::cast_from((byte >> shift) & 15u32) - 8i32;
    } else {
        let at = o * cols + k;
        let word = codes[at / 4];
        let byte = (word >> u32::cast_from((at % 4) * 8)) & 255u32;
        code = i32::cast_from(byte ^ 128u32) - 128i32;
    }
    code
}

/// `out[r, o]` for `x` `[rows, cols]` (any strides), the codes and scales of `W` `[n, cols]`,
/// `out` `[rows, n]` contiguous. Invocation `p` owns column `o = p % n` of the rows
/// `p / n × group ..`, of which those past the last row are read as the last row and not
/// written.
// Ceiling divisions spelled out: plain integer ops in the kernel.
#[allow(clippy::manual_div_ceil)]
#[cube(launch_unchecked)]
fn quantized_linear_kernel(
    x: &Tensor<f32>,
    codes: &Tensor<u32>,
    scales: &Tensor<f32>,
    bias: &Tensor<f32>,
    out: &mut Tensor<f32>,
    #[comptime] group: usize,
    #[comptime] q4: bool,
    #[comptime] has_bias: bool,
) {
    let rows = out.shape(0);
    let n = out.shape(1);
    let cols = x.shape(1);
    let groups = (rows + group - 1) / group;
    if ABSOLUTE_POS >= n * groups {
        terminate!();
    }
    let o = ABSOLUTE_POS % n;
    let first = ABSOLUTE_POS / n * group;
    let (x_row, x_k) = (x.stride(0), x.stride(1));
    let blocks = (cols + 63) / 64;

    let mut start = 0.0f32;
    if has_bias {
        start = bias[o * bias.stride(0)];
    }
    let mut sums = Array::<f32>::new(group);
    let mut x_at = Array::<usize>::new(group);
    #[unroll]
    for i in 0..group {
        sums[i] = start;
        let mut r = first + i;
        if r >= rows {
            r = rows - 1;
        }
        x_at[i] = r * x_row;
    }

    for b in 0..blocks {
        let scale = scales[o * blocks + b];
        let k0 = b * 64;
        let mut len = cols - k0;
        if len > 64 {
            len = 64;
        }
        if q4 {
            let half = len / 2;
            let base = o * (cols / 2) + k0 / 2;
            for j in 0..half {
                let at = base + j;
                let word = codes[at / 4];
                let byte = (word >> u32::cast_from((at % 4) * 8)) & 255u32;
                let low = f32::cast_from(i32::cast_from(byte & 15u32) - 8i32) * scale;
                let high = f32::cast_from(i32::cast_from(byte >> 4u32) - 8i32) * scale;
                let (kl, kh) = ((k0 + j) * x_k, (k0 + half + j) * x_k);
                #[unroll]
                for i in 0..group {
                    sums[i] += x[x_at[i] + kl] * low;
                    sums[i] += x[x_at[i] + kh] * high;
                }
            }
        } else {
            let base = o * cols + k0;
            for j in 0..len {
                let at = base + j;
                let word = codes[at / 4];
                let byte = (word >> u32::cast_from((at % 4) * 8)) & 255u32;
                let w = f32::cast_from(i32::cast_from(byte ^ 128u32) - 128i32) * scale;
                let k = (k0 + j) * x_k;
                #[unroll]
                for i in 0..group {
                    sums[i] += x[x_at[i] + k] * w;
                }
            }
        }
    }

    #[unroll]
    for i in 0..group {
        let r = first + i;
        if r < rows {
            out[r * n + o] = sums[i];
        }
    }
}

/// `out[i, k]` = weight `(ids[i], k)` for `out` `[ids, cols]`; zeros for an id past the last
/// row of `W` (`rows` of them).
// Ceiling divisions spelled out: plain integer ops in the kernel.
#[allow(clippy::manual_div_ceil)]
#[cube(launch_unchecked)]
fn quantized_select_kernel(
    codes: &Tensor<u32>,
    scales: &Tensor<f32>,
    ids: &Tensor<u32>,
    out: &mut Tensor<f32>,
    rows: u32,
    #[comptime] q4: bool,
) {
    let cols = out.shape(1);
    if ABSOLUTE_POS >= out.shape(0) * cols {
        terminate!();
    }
    let i = ABSOLUTE_POS / cols;
    let k = ABSOLUTE_POS % cols;
    let id = ids[i];
    let mut w = 0.0f32;
    if id < rows {
        let o = usize::cast_from(id);
        let blocks = (cols + 63) / 64;
        let scale = scales[o * blocks + k / 64];
        w = f32::cast_from(code_at(codes, o, k, cols, q4)) * scale;
    }
    out[ABSOLUTE_POS] = w;
}

/// A quantized matrix `W` `[rows, cols]` on a cubecl device.
pub struct CubeQuantized {
    bits: Bits,
    rows: usize,
    cols: usize,
    /// The code bytes as words, `[⌈bytes / 4⌉]`.
    codes: CubeTensor,
    /// `[rows × ⌈cols / 64⌉]`.
    scales: CubeTensor,
    code_bytes: usize,
    device: Device,
}

/// A 1-d tensor of `len` elements of `dtype` holding `bytes`.
fn upload(device: &CubeDevice, bytes: &[u8], len: usize, dtype: DType) -> CubeTensor {
    let client = device.client();
    let handle = client.create_from_slice(bytes);
    CubeTensor::new_contiguous(client, device.clone(), Shape::new([len]), handle, dtype)
}

impl CubeQuantized {
    /// Uploads `values` to `device` (a cubecl device), or hands them back: another device, an
    /// empty matrix, or more than a 32-bit index can address.
    pub fn new(values: QuantizedValues, device: &Device) -> Result<Self, QuantizedValues> {
        let burn::backend::DispatchDevice::Cube(cube_device) = device.as_dispatch() else {
            return Err(values);
        };
        let fits = |n: usize| n > 0 && n <= u32::MAX as usize;
        let weights = values.rows.checked_mul(values.cols);
        if !weights.is_some_and(fits) || !fits(values.codes.len()) || !fits(values.scales.len()) {
            return Err(values);
        }
        let code_bytes = values.codes.len();
        let words = code_bytes.div_ceil(4);
        let mut padded = values.codes;
        padded.resize(words * 4, 0);
        let codes = upload(cube_device, &padded, words, DType::U32);
        let scales = upload(
            cube_device,
            bytemuck::cast_slice(&values.scales),
            values.scales.len(),
            DType::F32,
        );
        Ok(CubeQuantized {
            bits: values.bits,
            rows: values.rows,
            cols: values.cols,
            codes,
            scales,
            code_bytes,
            device: device.clone(),
        })
    }

    /// The codes and scales read back to the host, for the reference composition (inputs this
    /// set does not take): a copy for that call only.
    fn host_values(&self) -> Option<QuantizedValues> {
        let client = &self.codes.client;
        let codes = client.read_one(self.codes.handle.clone()).ok()?;
        let scales = client.read_one(self.scales.handle.clone()).ok()?;
        let mut codes = codes.to_vec();
        codes.truncate(self.code_bytes);
        let scales: Vec<f32> = scales
            .chunks_exact(4)
            .map(|s| f32::from_le_bytes([s[0], s[1], s[2], s[3]]))
            .collect();
        QuantizedValues::new(self.bits, self.rows, self.cols, codes, scales).ok()
    }

    fn reference(
        &self,
        x: &BurnTensor<2>,
        bias: Option<&BurnTensor<1>>,
        gelu: bool,
    ) -> BurnTensor<2> {
        match self.host_values() {
            Some(w) => super::super::quantized::reference_linear(&w, &x.device(), x, bias, gelu),
            // The device lost its buffers: nothing to multiply with, and no panic.
            None => BurnTensor::zeros([x.dims()[0], self.rows], &x.device()),
        }
    }
}

impl QuantizedMatrix for CubeQuantized {
    fn dims(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn linear(&self, x: &BurnTensor<2>, bias: Option<&BurnTensor<1>>, gelu: bool) -> BurnTensor<2> {
        let [rows, d_in] = x.dims();
        let n = self.rows;
        let agree = d_in == self.cols && bias.is_none_or(|b| b.dims() == [n]);
        let cube_bias = match bias {
            Some(b) => cube(b).map(Some),
            None => Some(None),
        };
        let (true, Some(xc), Some(cube_bias)) = (agree, cube(x), cube_bias) else {
            // Not ours to take (shapes that disagree, another device): the reference
            // composition, whose burn ops report the disagreement.
            return self.reference(x, bias, gelu);
        };
        if xc.device != self.codes.device
            || rows.checked_mul(n).is_none_or(|e| e > u32::MAX as usize)
        {
            return self.reference(x, bias, gelu);
        }
        if rows == 0 {
            return BurnTensor::zeros([0, n], &self.device);
        }
        let client = xc.client.clone();
        let out = empty_device_dtype(
            client.clone(),
            xc.device.clone(),
            Shape::new([rows, n]),
            DType::F32,
        );
        let group = rows.min(GROUP_ROWS);
        let units = n * rows.div_ceil(group);
        let has_bias = cube_bias.is_some();
        // Without a bias the kernel never reads its bias argument: the scales stand in
        // (read-only, f32; WebGPU refuses `out` bound both read-only and writable).
        let bias = cube_bias.unwrap_or_else(|| self.scales.clone());
        // SAFETY: every index the kernel forms is inside its tensor: `o < n`, rows clamped to
        // `< rows`, `k < cols` with `x` `[rows, cols]` and its own strides, code words
        // `< ⌈rows · row bytes / 4⌉` and scales `< rows · ⌈cols / 64⌉` (both checked by
        // `QuantizedValues::new`), the bias `[n]`.
        unsafe {
            quantized_linear_kernel::launch_unchecked(
                &client,
                CubeCount::new_1d(units.div_ceil(CUBE_SIZE as usize) as u32),
                CubeDim::new_1d(CUBE_SIZE),
                xc.into_tensor_arg(),
                self.codes.clone().into_tensor_arg(),
                self.scales.clone().into_tensor_arg(),
                bias.into_tensor_arg(),
                out.clone().into_tensor_arg(),
                group,
                self.bits == Bits::Q4,
                has_bias,
            );
        }
        let y = BurnTensor::from_primitive::<Wgpu>(out);
        if gelu { activation::gelu(y) } else { y }
    }

    fn select(&self, ids: &[u32]) -> BurnTensor<2> {
        let cols = self.cols;
        let values = ids.len() * cols;
        if values == 0 || values > u32::MAX as usize {
            return BurnTensor::zeros([ids.len(), cols], &self.device);
        }
        let client = self.codes.client.clone();
        let device = self.codes.device.clone();
        let ids_t = upload(&device, bytemuck::cast_slice(ids), ids.len(), DType::U32);
        let out = empty_device_dtype(
            client.clone(),
            device,
            Shape::new([ids.len(), cols]),
            DType::F32,
        );
        // SAFETY: `i < ids`, `k < cols`, and a row is read only for an id `< rows`: inside
        // the code words and scales as in `linear`.
        unsafe {
            quantized_select_kernel::launch_unchecked(
                &client,
                CubeCount::new_1d(values.div_ceil(CUBE_SIZE as usize) as u32),
                CubeDim::new_1d(CUBE_SIZE),
                self.codes.clone().into_tensor_arg(),
                self.scales.clone().into_tensor_arg(),
                ids_t.into_tensor_arg(),
                out.clone().into_tensor_arg(),
                self.rows as u32,
                self.bits == Bits::Q4,
            );
        }
        BurnTensor::from_primitive::<Wgpu>(out)
    }
}

/// Keeps `values` on `device` when it is a cubecl device.
pub fn keep(
    values: QuantizedValues,
    device: &Device,
) -> Result<Arc<dyn QuantizedMatrix>, QuantizedValues> {
    Ok(Arc::new(CubeQuantized::new(values, device)?))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor, TensorData};

    use super::CubeQuantized;
    use crate::kernels::QuantizedMatrix;
    use crate::load::quantized::{Bits, QuantizedValues};

    /// The default wgpu adapter (lavapipe where no GPU), or `None` (the test then passes
    /// vacuously, saying so) where this machine has none.
    fn device() -> Option<Device> {
        let init = std::panic::catch_unwind(|| Device::wgpu_options().init());
        match init {
            Ok(Ok(device)) => Some(device),
            _ => {
                eprintln!("no wgpu adapter: quantized GPU kernels not tested");
                None
            }
        }
    }

    /// Deterministic values in about [-1, 1).
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn read(t: Tensor<2>) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().expect("f32 values")
    }

    /// `|got - want| ≤ 1e-4 × (Σ_k |x·w| + |bias|)`, the scale of each sum's terms.
    fn assert_close(got: &[f32], want: &[f32], scale: &[f32], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}: lengths");
        for (i, ((g, w), s)) in got.iter().zip(want).zip(scale).enumerate() {
            assert!(
                (g - w).abs() <= 1e-4 * s.max(1e-6),
                "{what}: value {i}: {g} against {w} (scale {s})"
            );
        }
    }

    #[test]
    fn gpu_quantized_linear_and_select_match_the_dequantized_products() {
        let Some(device) = device() else { return };
        for bits in [Bits::Q8, Bits::Q4] {
            for (n, d_in) in [(70, 150), (5, 8), (33, 128), (3, 64)] {
                let w = values(n * d_in, (n * 1000 + d_in) as u64);
                let q = QuantizedValues::quantize(&w, n, d_in, bits).expect("quantizes");
                let dense = q.dequantize();
                let kept = CubeQuantized::new(q.clone(), &device)
                    .unwrap_or_else(|_| panic!("a wgpu device takes the matrix"));
                assert_eq!(kept.dims(), [n, d_in]);
                let bias_v = values(n, 7);
                for rows in [1, 3, 40] {
                    let xv = values(rows * d_in, (rows + d_in) as u64);
                    for (with_bias, transposed) in [(false, false), (true, false), (true, true)] {
                        let what = format!(
                            "{} {n}x{d_in}, {rows} rows, bias {with_bias}, x transposed {transposed}",
                            bits.name()
                        );
                        let x = if transposed {
                            let xt: Vec<f32> = (0..d_in * rows)
                                .map(|i| xv[(i % rows) * d_in + i / rows])
                                .collect();
                            Tensor::<2>::from_data(TensorData::new(xt, [d_in, rows]), &device)
                                .transpose()
                        } else {
                            Tensor::<2>::from_data(
                                TensorData::new(xv.clone(), [rows, d_in]),
                                &device,
                            )
                        };
                        let bias = with_bias.then(|| {
                            Tensor::<1>::from_data(TensorData::new(bias_v.clone(), [n]), &device)
                        });
                        let got = read(kept.linear(&x, bias.as_ref(), false));
                        let mut want = vec![0.0f32; rows * n];
                        let mut scale = vec![0.0f32; rows * n];
                        for r in 0..rows {
                            for o in 0..n {
                                let (mut acc, mut mag) = (0.0f64, 0.0f64);
                                for k in 0..d_in {
                                    let p = xv[r * d_in + k] as f64 * dense[o * d_in + k] as f64;
                                    acc += p;
                                    mag += p.abs();
                                }
                                if with_bias {
                                    acc += bias_v[o] as f64;
                                    mag += (bias_v[o] as f64).abs();
                                }
                                want[r * n + o] = acc as f32;
                                scale[r * n + o] = mag as f32;
                            }
                        }
                        assert_close(&got, &want, &scale, &what);
                    }
                }
                // GELU: burn's, on the device, after the same product.
                let x = Tensor::<2>::from_data(
                    TensorData::new(values(3 * d_in, 11), [3, d_in]),
                    &device,
                );
                let got = read(kept.linear(&x, None, true));
                let want = read(crate::kernels::quantized::reference_linear(
                    &q, &device, &x, None, true,
                ));
                let scale: Vec<f32> = want.iter().map(|w| w.abs().max(1.0)).collect();
                assert_close(
                    &got,
                    &want,
                    &scale,
                    &format!("{} {n}x{d_in} gelu", bits.name()),
                );

                let ids = [0, n as u32 - 1, (n / 2) as u32, 0];
                let got = read(kept.select(&ids));
                let mut want = vec![0.0f32; ids.len() * d_in];
                for (&id, row) in ids.iter().zip(want.chunks_exact_mut(d_in)) {
                    q.dequantize_row(id as usize, row);
                }
                assert_eq!(got, want, "{} {n}x{d_in} select", bits.name());
            }
        }
    }
}
