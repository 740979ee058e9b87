//! The checkpoint as the model parts see it: tensors asked for by their native transformers
//! name (florence-community layout) and shape, whichever layout the file has. The original
//! microsoft layout is mapped name by name (the key map of transformers' conversion script,
//! `../shared/reference/florence2-tiny/orig_key_map.json`), with its transposed
//! `image_projection`. Every tensor of the file must be used, every tensor asked for must be
//! there with the expected shape, else a typed error names it.

use std::collections::BTreeSet;
use std::io::{Read, Seek};

use burn::tensor::{Device, Tensor, TensorData};
use safetensors::Dtype;

use crate::error::{Error, Result};
use crate::kernels::{self, Matrix};
use crate::load::quantized::{Bits, Quantization, QuantizedValues, SCALES_SUFFIX, Scheme};
use crate::load::safetensors_file::{F32Tensor, SafetensorsFile, transpose_values};
use crate::network::vocab::VocabMatrix;

/// How the tensors of a checkpoint are named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// transformers' native `Florence2ForConditionalGeneration` (`model.vision_tower.…`).
    Native,
    /// The original microsoft remote-code checkpoints (`vision_tower.…`, `language_model.model.…`).
    Original,
}

/// The token embedding under all the names it may be stored as (it is tied to the encoder's
/// and decoder's `embed_tokens` and to `lm_head`; safetensors keeps one copy of tied tensors,
/// under whichever name the writer chose).
const EMBED_ALIASES: [&str; 3] = [
    "model.language_model.shared.weight",
    "model.language_model.encoder.embed_tokens.weight",
    "model.language_model.decoder.embed_tokens.weight",
];
const LM_HEAD: &str = "lm_head.weight";

/// Tensors of the original checkpoints that the model does not use, and that transformers'
/// conversion script drops: DaViT's classification-era final norm, and BART's zero
/// `final_logits_bias` (checked to be zero: a non-zero one would change the logits).
const ORIGINAL_UNUSED: [&str; 2] = ["vision_tower.norms.weight", "vision_tower.norms.bias"];
const ORIGINAL_FINAL_LOGITS_BIAS: &str = "language_model.final_logits_bias";

/// A checkpoint being turned into model tensors.
pub struct Weights<R> {
    file: SafetensorsFile<R>,
    layout: Layout,
    quantization: Option<Quantization>,
    device: Device,
    used: BTreeSet<String>,
}

/// A weight matrix `[out, in]` as read from the file, before it goes to the device.
pub enum StoredMatrix {
    /// f32 values, row-major `[out, in]`.
    Dense(Vec<f32>),
    Quantized(QuantizedValues),
}

impl<R: Read + Seek> Weights<R> {
    pub fn new(file: SafetensorsFile<R>, device: &Device) -> Result<Self> {
        let layout = detect_layout(&file)?;
        let quantization = Quantization::from_metadata(file.metadata())?;
        Ok(Weights {
            file,
            layout,
            quantization,
            device: device.clone(),
            used: BTreeSet::new(),
        })
    }

    /// The file's quantization scheme (`None`: a plain checkpoint).
    pub fn scheme(&self) -> Option<Scheme> {
        self.quantization.as_ref().map(|q| q.scheme)
    }

    /// The matrix of native name `name` and shape `[out, in]`, as stored: f32, or quantized
    /// when the file's metadata lists it.
    pub fn matrix(&mut self, name: &str, shape: [usize; 2]) -> Result<StoredMatrix> {
        let stored = self.stored_name(name);
        match self.bits(&stored) {
            Some(bits) => self
                .quantized(&stored, bits, shape)
                .map(StoredMatrix::Quantized),
            None => Ok(StoredMatrix::Dense(self.f32(name, &shape)?.values)),
        }
    }

    /// A stored matrix on the device: f32 ones transposed (`[in, out]`), quantized ones kept
    /// quantized by the device's kernels.
    pub fn upload_matrix(&self, m: StoredMatrix, [out, inp]: [usize; 2]) -> Matrix {
        match m {
            StoredMatrix::Dense(values) => Matrix::Dense(Tensor::from_data(
                TensorData::new(transpose_values(&values, out, inp), [inp, out]),
                &self.device,
            )),
            StoredMatrix::Quantized(q) => Matrix::Quantized(kernels::quantized(q, &self.device)),
        }
    }

    fn bits(&self, stored: &str) -> Option<Bits> {
        self.quantization.as_ref()?.tensors.get(stored).copied()
    }

    /// The codes (`stored`) and scales (`{stored}.scales`) of a quantized matrix `[out, in]`.
    fn quantized(
        &mut self,
        stored: &str,
        bits: Bits,
        [out, inp]: [usize; 2],
    ) -> Result<QuantizedValues> {
        let (want_dtype, code_cols) = match bits {
            Bits::Q8 => (Dtype::I8, inp),
            Bits::Q4 => (Dtype::U8, inp / 2),
        };
        let scales_name = format!("{stored}{SCALES_SUFFIX}");
        let blocks = QuantizedValues::blocks_per_row(inp);
        for (name, shape) in [
            (stored, [out, code_cols]),
            (scales_name.as_str(), [out, blocks]),
        ] {
            let found = self.file.shape(name).ok_or_else(|| Error::MissingTensor {
                name: name.to_owned(),
            })?;
            if found != shape {
                return Err(Error::TensorShape {
                    name: name.to_owned(),
                    expected: shape.to_vec(),
                    found: found.to_vec(),
                });
            }
        }
        let (dtype, _, codes) = self.file.read_raw(stored)?;
        if dtype != want_dtype {
            return Err(Error::TensorDtype {
                name: stored.to_owned(),
                dtype: format!(
                    "{dtype:?} (a {} matrix is stored as {want_dtype:?})",
                    bits.name()
                ),
            });
        }
        let scales = self.file.read_f32(&scales_name)?.values;
        if scales.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite { name: scales_name });
        }
        self.used.insert(stored.to_owned());
        self.used.insert(scales_name);
        QuantizedValues::new(bits, out, inp, codes, scales)
    }

    /// The token matrix of native name `name`, quantized when the file lists it.
    fn vocab_matrix(
        &mut self,
        name: &str,
        shape: [usize; 2],
        max_block_bytes: Option<usize>,
    ) -> Result<VocabMatrix> {
        let stored = self.stored_name(name);
        if let Some(bits) = self.bits(&stored) {
            let q = self.quantized(&stored, bits, shape)?;
            return Ok(VocabMatrix::Quantized(kernels::quantized(q, &self.device)));
        }
        let t = self.f32(name, &shape)?;
        Ok(VocabMatrix::new(
            t.values,
            shape,
            max_block_bytes,
            &self.device,
        ))
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The tensor of native name `name`, which must have shape `shape`.
    pub fn tensor<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Result<Tensor<D>> {
        let t = self.f32(name, &shape)?;
        Ok(self.upload(t))
    }

    /// A `[out, in]` matrix (PyTorch's `nn.Linear` layout) uploaded transposed, `[in, out]`,
    /// so that `x @ W` is a plain row-major product.
    pub fn transposed(&mut self, name: &str, shape: [usize; 2]) -> Result<Tensor<2>> {
        let t = self.f32(name, &shape)?;
        Ok(self.upload(transpose(&t)))
    }

    /// The tensor of native name `name` and shape `shape`, its values laid out in memory in
    /// the order of the dimensions `order` (outermost first): a permuted view of a contiguous
    /// buffer, which burn's ops take as the tensor it is, and a kernel can read as it lies.
    pub fn tensor_in_order<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        order: [usize; D],
    ) -> Result<Tensor<D>> {
        let t = self.f32(name, &shape)?;
        let stored = order.map(|d| shape[d]);
        let values = permute_values(&t.values, &shape, &order);
        let mut back = [0; D];
        for (i, &d) in order.iter().enumerate() {
            back[d] = i;
        }
        let t: Tensor<D> = Tensor::from_data(TensorData::new(values, stored), &self.device);
        Ok(t.permute(back))
    }

    /// Like [`Weights::tensor`], for a tensor that may be absent (an optional bias).
    pub fn optional<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
    ) -> Result<Option<Tensor<D>>> {
        if self.file.contains(&self.stored_name(name)) {
            self.tensor(name, shape).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The token embedding table `[vocab, d_model]`, under any of its tied names, in blocks of
    /// at most `max_block_bytes`.
    pub fn embedding(
        &mut self,
        shape: [usize; 2],
        max_block_bytes: Option<usize>,
    ) -> Result<VocabMatrix> {
        let stored: Vec<&str> = EMBED_ALIASES
            .iter()
            .copied()
            .filter(|n| self.file.contains(&self.stored_name(n)))
            .collect();
        let Some(first) = stored.first() else {
            return Err(Error::MissingTensor {
                name: self.stored_name(EMBED_ALIASES[0]),
            });
        };
        let matrix = self.vocab_matrix(first, shape, max_block_bytes)?;
        for alias in &stored[1..] {
            self.check_alias(alias, &shape)?;
        }
        Ok(matrix)
    }

    /// `lm_head.weight` when it is stored on its own (in blocks, as the embedding), else
    /// `None` (tied to the embedding).
    pub fn lm_head(
        &mut self,
        shape: [usize; 2],
        max_block_bytes: Option<usize>,
    ) -> Result<Option<VocabMatrix>> {
        if !self.file.contains(&self.stored_name(LM_HEAD)) {
            return Ok(None);
        }
        self.vocab_matrix(LM_HEAD, shape, max_block_bytes).map(Some)
    }

    /// Fails on tensors nobody asked for: a checkpoint of another architecture or size must
    /// not load silently.
    pub fn finish(mut self) -> Result<()> {
        if self.layout == Layout::Original {
            for name in ORIGINAL_UNUSED {
                if self.file.contains(name) {
                    self.used.insert(name.to_owned());
                }
            }
            if self.file.contains(ORIGINAL_FINAL_LOGITS_BIAS) {
                let bias = self.file.read_f32(ORIGINAL_FINAL_LOGITS_BIAS)?;
                if bias.values.iter().any(|v| *v != 0.0) {
                    return Err(Error::Checkpoint(format!(
                        "`{ORIGINAL_FINAL_LOGITS_BIAS}` is not zero; such checkpoints are not supported"
                    )));
                }
                self.used.insert(ORIGINAL_FINAL_LOGITS_BIAS.to_owned());
            }
        }
        let extra: Vec<&str> = self
            .file
            .names()
            .filter(|n| !self.used.contains(*n))
            .collect();
        match extra.first() {
            None => Ok(()),
            Some(first) => Err(Error::UnexpectedTensors {
                count: extra.len(),
                first: first.to_string(),
            }),
        }
    }

    /// The name under which the file stores the native tensor `name`.
    fn stored_name(&self, name: &str) -> String {
        stored_name(self.layout, name)
    }

    fn f32(&mut self, name: &str, shape: &[usize]) -> Result<F32Tensor> {
        let stored = self.stored_name(name);
        let transposed = self.layout == Layout::Original && stored == ORIGINAL_IMAGE_PROJECTION;
        // The original `image_projection` is a bare `[in, out]` parameter used as `x @ W`.
        let expected: Vec<usize> = if transposed {
            vec![shape[1], shape[0]]
        } else {
            shape.to_vec()
        };
        let found = self
            .file
            .shape(&stored)
            .ok_or_else(|| Error::MissingTensor {
                name: stored.clone(),
            })?;
        if found != expected.as_slice() {
            return Err(Error::TensorShape {
                name: stored,
                expected,
                found: found.to_vec(),
            });
        }
        let mut t = self.file.read_f32(&stored)?;
        if t.values.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite { name: stored });
        }
        if transposed {
            t = transpose(&t);
        }
        self.used.insert(stored);
        Ok(t)
    }

    fn check_alias(&mut self, name: &str, shape: &[usize]) -> Result<()> {
        let stored = self.stored_name(name);
        if self.bits(&stored).is_some() {
            return Err(Error::Checkpoint(format!(
                "`{stored}` is a second quantized copy of the tied token matrix"
            )));
        }
        let found = self.file.shape(&stored).unwrap_or_default();
        if found != shape {
            return Err(Error::TensorShape {
                name: stored,
                expected: shape.to_vec(),
                found: found.to_vec(),
            });
        }
        self.used.insert(stored);
        Ok(())
    }

    fn upload<const D: usize>(&self, t: F32Tensor) -> Tensor<D> {
        Tensor::from_data(TensorData::new(t.values, t.shape), &self.device)
    }
}

const ORIGINAL_IMAGE_PROJECTION: &str = "image_projection";

fn transpose(t: &F32Tensor) -> F32Tensor {
    let (rows, cols) = (t.shape[0], t.shape[1]);
    F32Tensor {
        shape: vec![cols, rows],
        values: transpose_values(&t.values, rows, cols),
    }
}

/// Row-major `values` of `shape` → the same values with the dimensions in the order `order`
/// (outermost first), row-major.
fn permute_values(values: &[f32], shape: &[usize], order: &[usize]) -> Vec<f32> {
    let mut strides = vec![1; shape.len()];
    for d in (1..shape.len()).rev() {
        strides[d - 1] = strides[d] * shape[d];
    }
    let dims: Vec<usize> = order.iter().map(|&d| shape[d]).collect();
    let steps: Vec<usize> = order.iter().map(|&d| strides[d]).collect();
    let mut index = vec![0; dims.len()];
    let mut out = Vec::with_capacity(values.len());
    for _ in 0..values.len() {
        out.push(values[index.iter().zip(&steps).map(|(i, s)| i * s).sum::<usize>()]);
        for d in (0..dims.len()).rev() {
            index[d] += 1;
            if index[d] < dims[d] {
                break;
            }
            index[d] = 0;
        }
    }
    out
}

fn stored_name(layout: Layout, name: &str) -> String {
    match layout {
        Layout::Native => name.to_owned(),
        Layout::Original => native_to_original(name),
    }
}

/// What a model holds from a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// Weights: every stored tensor's elements (a quantized matrix's weights, not its codes'
    /// bytes; its scales not at all), the token embedding once however many of its tied names
    /// are stored ([`Weights::embedding`] reads one and only checks the others' shapes).
    pub parameters: u64,
    /// Bytes in memory: 4 a weight for plain tensors (held as f32), the codes plus 4 bytes a
    /// scale for quantized matrices (held as stored).
    pub bytes: u64,
}

pub fn held<R: Read + Seek>(file: &SafetensorsFile<R>) -> Result<Held> {
    let layout = detect_layout(file)?;
    let quantization = Quantization::from_metadata(file.metadata())?;
    let bits = |name: &str| quantization.as_ref()?.tensors.get(name).copied();
    let elements = |shape: &[usize]| shape.iter().map(|&d| d as u64).product::<u64>();
    let aliases: Vec<String> = EMBED_ALIASES
        .iter()
        .map(|name| stored_name(layout, name))
        .filter(|name| file.contains(name))
        .skip(1)
        .collect();
    let mut held = Held {
        parameters: 0,
        bytes: 0,
    };
    for name in file.names() {
        if aliases.iter().any(|a| a == name) {
            continue;
        }
        let n = file.shape(name).map(elements).unwrap_or(0);
        if let Some(b) = bits(name) {
            held.parameters += if b == Bits::Q4 { 2 * n } else { n };
            held.bytes += n;
        } else if name
            .strip_suffix(SCALES_SUFFIX)
            .is_some_and(|base| bits(base).is_some())
        {
            held.bytes += 4 * n;
        } else {
            held.parameters += n;
            held.bytes += 4 * n;
        }
    }
    Ok(held)
}

fn detect_layout<R>(file: &SafetensorsFile<R>) -> Result<Layout>
where
    R: Read + Seek,
{
    let mut native = 0usize;
    let mut original = 0usize;
    for name in file.names() {
        if name.starts_with("model.") || name == LM_HEAD {
            native += 1;
        } else if name.starts_with("vision_tower.")
            || name.starts_with("language_model.")
            || name.starts_with("image_")
        {
            original += 1;
        }
    }
    match (native, original) {
        (n, 0) if n > 0 => Ok(Layout::Native),
        (0, o) if o > 0 => Ok(Layout::Original),
        (0, 0) => Err(Error::UnknownLayout(
            "no Florence-2 tensor names (neither `model.…` nor `vision_tower.…`)".into(),
        )),
        (n, o) => Err(Error::UnknownLayout(format!(
            "{n} native and {o} original tensor names mixed in one file"
        ))),
    }
}

/// Native (transformers) tensor name → original (microsoft) name, per transformers'
/// `convert_florence2_original_pytorch_to_hf.py`.
pub fn native_to_original(name: &str) -> String {
    if let Some(rest) = name.strip_prefix("model.vision_tower.convs.") {
        // convs.{i}.conv.* → convs.{i}.proj.*; convs.{i}.norm.* unchanged.
        return format!(
            "vision_tower.convs.{}",
            rest.replacen(".conv.", ".proj.", 1)
        );
    }
    if let Some(rest) = name.strip_prefix("model.vision_tower.blocks.") {
        // blocks.{s}.{b}.{spatial|channel}_block.{param}
        let mut parts = rest.splitn(4, '.');
        if let (Some(s), Some(b), Some(kind), Some(param)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            let attn = if kind == "spatial_block" {
                "window_attn"
            } else {
                "channel_attn"
            };
            let mapped = match param {
                "conv1.weight" | "conv1.bias" | "conv2.weight" | "conv2.bias" => {
                    let (conv, p) = param.split_once('.').unwrap_or((param, ""));
                    format!("{conv}.fn.dw.{p}")
                }
                "norm1.weight" | "norm1.bias" => format!("{attn}.norm.{}", &param[6..]),
                "norm2.weight" | "norm2.bias" => format!("ffn.norm.{}", &param[6..]),
                p if p.starts_with("ffn.") => format!("ffn.fn.net.{}", &p[4..]),
                p if p.starts_with(attn) => format!("{attn}.fn.{}", &p[attn.len() + 1..]),
                p => p.to_owned(),
            };
            return format!("vision_tower.blocks.{s}.{b}.{kind}.{mapped}");
        }
    }
    if let Some(rest) = name.strip_prefix("model.multi_modal_projector.") {
        return match rest {
            "image_projection.weight" => ORIGINAL_IMAGE_PROJECTION.to_owned(),
            r => r.replacen("image_position_embed.", "image_pos_embed.", 1),
        };
    }
    if name == LM_HEAD {
        return "language_model.lm_head.weight".to_owned();
    }
    if let Some(rest) = name.strip_prefix("model.language_model.") {
        return format!("language_model.model.{rest}");
    }
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_map_matches_the_conversion_script() {
        let cases = [
            (
                "model.vision_tower.convs.0.conv.weight",
                "vision_tower.convs.0.proj.weight",
            ),
            (
                "model.vision_tower.convs.3.norm.bias",
                "vision_tower.convs.3.norm.bias",
            ),
            (
                "model.vision_tower.blocks.2.1.spatial_block.conv1.weight",
                "vision_tower.blocks.2.1.spatial_block.conv1.fn.dw.weight",
            ),
            (
                "model.vision_tower.blocks.2.1.spatial_block.norm1.bias",
                "vision_tower.blocks.2.1.spatial_block.window_attn.norm.bias",
            ),
            (
                "model.vision_tower.blocks.0.0.channel_block.norm2.weight",
                "vision_tower.blocks.0.0.channel_block.ffn.norm.weight",
            ),
            (
                "model.vision_tower.blocks.0.0.channel_block.ffn.fc2.bias",
                "vision_tower.blocks.0.0.channel_block.ffn.fn.net.fc2.bias",
            ),
            (
                "model.vision_tower.blocks.3.0.channel_block.channel_attn.qkv.weight",
                "vision_tower.blocks.3.0.channel_block.channel_attn.fn.qkv.weight",
            ),
            (
                "model.vision_tower.blocks.3.0.spatial_block.window_attn.proj.bias",
                "vision_tower.blocks.3.0.spatial_block.window_attn.fn.proj.bias",
            ),
            (
                "model.multi_modal_projector.image_projection.weight",
                "image_projection",
            ),
            (
                "model.multi_modal_projector.image_position_embed.row_embeddings.weight",
                "image_pos_embed.row_embeddings.weight",
            ),
            (
                "model.multi_modal_projector.visual_temporal_embed.pos_idx_to_embed",
                "visual_temporal_embed.pos_idx_to_embed",
            ),
            (
                "model.multi_modal_projector.image_proj_norm.weight",
                "image_proj_norm.weight",
            ),
            (
                "model.language_model.decoder.layers.1.encoder_attn.k_proj.bias",
                "language_model.model.decoder.layers.1.encoder_attn.k_proj.bias",
            ),
            ("lm_head.weight", "language_model.lm_head.weight"),
        ];
        for (native, original) in cases {
            assert_eq!(native_to_original(native), original, "{native}");
        }
    }
}
