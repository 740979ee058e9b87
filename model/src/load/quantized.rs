//! Quantized checkpoints: the `florence2-blockwise` format (version 1), and the quantizer that
//! writes it.
//!
//! A quantized folder is an ordinary model folder: its `model.safetensors` holds, for each
//! quantized matrix `W` `[out, in]` (PyTorch's `nn.Linear` layout, and the token matrix
//! `[vocab, d]`), the codes under `W`'s own name and the scales under `{W}.scales`. Every other
//! tensor (norms, biases, position tables, convolutions, `image_projection`) is stored as F16.
//! The file says so itself, in its header's metadata: the key [`METADATA_KEY`] holds
//!
//! ```json
//! {"format":"florence2-blockwise","version":1,"scheme":"mixed","block_size":64,
//!  "q8":["model.vision_tower.…", …],"q4":["model.language_model.…", …]}
//! ```
//!
//! and a loader tells a quantized folder from a plain one by that key alone.
//!
//! The values: the weights of row `r` are cut into blocks of [`BLOCK`] along the input (the
//! last block of a row may be shorter); each block has one F16 scale `s` (`{W}.scales`
//! `[out, ⌈in / 64⌉]`), and weight = code × s, computed in f32 — exact (a code has at most 8
//! significant bits, an F16 scale 11), so a dequantized folder holds exactly the values the
//! kernels multiply with.
//! - `q8`: `W` is I8 `[out, in]`, codes −127..=127.
//! - `q4`: `W` is U8 `[out, in / 2]` (`in` even); in each block of `L` weights, byte `i` of
//!   the block (`i < L / 2`) holds weight `i` in its low nibble and weight `i + L/2` in its
//!   high nibble, each as code + 8 (codes −7..=7; a nibble 0 reads as −8). Halves rather
//!   than neighbours, so that unpacking a block is two contiguous runs (vector-friendly).
//!
//! Why 64: with F16 scales a block costs 16 bits over its codes, 0.25 bit per weight at 64
//! (0.5 at 32). At 32, Florence-2-base all-q4 would be 142 MB (the goal is ≤ 140); at 64 it
//! is 137 MB.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The safetensors metadata key holding the quantization description.
pub const METADATA_KEY: &str = "florence2.quantization";
/// The format's name in that description.
pub const FORMAT: &str = "florence2-blockwise";
/// The format version this crate reads and writes.
pub const VERSION: u32 = 1;
/// Weights per scale, along the input dimension.
pub const BLOCK: usize = 64;
/// The suffix of a quantized matrix's scales tensor.
pub const SCALES_SUFFIX: &str = ".scales";

/// Bits per code of one quantized matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Bits {
    Q8,
    Q4,
}

impl Bits {
    /// The largest code magnitude the quantizer writes.
    pub fn max_code(self) -> i32 {
        match self {
            Bits::Q8 => 127,
            Bits::Q4 => 7,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Bits::Q8 => "q8",
            Bits::Q4 => "q4",
        }
    }
}

/// Which matrices get how many bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Every large matrix 8-bit.
    Q8,
    /// Every large matrix 4-bit.
    Q4,
    /// 8-bit vision tower, 4-bit encoder and decoder layers and token matrix (see
    /// [`Scheme::bits_for`] for why the token matrix is 4-bit).
    Mixed,
}

impl Scheme {
    pub const ALL: [Scheme; 3] = [Scheme::Q8, Scheme::Q4, Scheme::Mixed];

    pub fn name(self) -> &'static str {
        match self {
            Scheme::Q8 => "q8",
            Scheme::Q4 => "q4",
            Scheme::Mixed => "mixed",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Scheme::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The bits of a matrix of `role` under this scheme (`None`: not quantized).
    ///
    /// `mixed` keeps the vision tower's first three stages 8-bit (their products see every
    /// one of thousands of image tokens) and puts the rest at 4 bits: the last stage (the
    /// widest layers, 30% of the tower's weights, over only 576 tokens at 768²), the encoder,
    /// the decoder and the token matrix. Measured (model.safetensors): with the whole tower and
    /// the token matrix 8-bit, base was 196 MB (goal ≤ 180); with the token matrix 4-bit, 179 MB
    /// and large 622 MB (goal ≤ 600); with the last stage 4-bit too, 166 and 572 MB.
    pub fn bits_for(self, role: Role) -> Option<Bits> {
        match (self, role) {
            (_, Role::Small) => None,
            (Scheme::Q8, _) => Some(Bits::Q8),
            (Scheme::Q4, _) => Some(Bits::Q4),
            (Scheme::Mixed, Role::Vision) => Some(Bits::Q8),
            (Scheme::Mixed, Role::VisionLastStage | Role::Language | Role::TokenMatrix) => {
                Some(Bits::Q4)
            }
        }
    }
}

/// What a stored tensor is, for the quantizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A linear layer's weight in the vision tower's first three stages (DaViT's `qkv`,
    /// `proj`, `fc1`, `fc2`).
    Vision,
    /// The same in its fourth and last stage (`blocks.3`: every Florence-2 has four).
    VisionLastStage,
    /// A linear layer's weight in the BART encoder or decoder.
    Language,
    /// The token embedding (tied to `lm_head`), or a stored `lm_head`.
    TokenMatrix,
    /// Everything else: norms, biases, position tables, convolutions, `image_projection`.
    Small,
}

/// The role of the tensor stored as `name` with `shape`, in either checkpoint layout.
pub fn role(name: &str, shape: &[usize]) -> Role {
    if shape.len() != 2 {
        return Role::Small;
    }
    let token_matrix = ["shared.weight", "embed_tokens.weight", "lm_head.weight"];
    if token_matrix.iter().any(|t| name.ends_with(t)) {
        return Role::TokenMatrix;
    }
    // `image_projection` (and the original layout's bare, transposed `image_projection`)
    // does not end in `proj.weight`: it stays as it is (0.8M weights in base).
    let linear = ["qkv.weight", "proj.weight", "fc1.weight", "fc2.weight"];
    if !linear.iter().any(|l| name.ends_with(l)) {
        return Role::Small;
    }
    if name.contains("vision_tower.blocks.3.") {
        Role::VisionLastStage
    } else if name.contains("vision_tower.") {
        Role::Vision
    } else if name.contains("language_model.") {
        Role::Language
    } else {
        Role::Small
    }
}

/// The metadata a quantized file carries under [`METADATA_KEY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Description {
    pub format: String,
    pub version: u32,
    pub scheme: String,
    pub block_size: usize,
    pub q8: Vec<String>,
    pub q4: Vec<String>,
}

/// A file's quantization, as a loader uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantization {
    pub scheme: Scheme,
    /// Bits of each quantized tensor, by stored name.
    pub tensors: BTreeMap<String, Bits>,
}

impl Quantization {
    /// Reads a file's metadata: `Ok(None)` for a plain file (no [`METADATA_KEY`]); a typed
    /// error for a description this crate cannot read (another format, version or block).
    pub fn from_metadata(
        metadata: &std::collections::HashMap<String, String>,
    ) -> Result<Option<Self>> {
        let Some(text) = metadata.get(METADATA_KEY) else {
            return Ok(None);
        };
        let bad = |why: String| Error::Checkpoint(format!("metadata `{METADATA_KEY}`: {why}"));
        let d: Description = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        if d.format != FORMAT {
            return Err(bad(format!(
                "format `{}`, this reader knows `{FORMAT}`",
                d.format
            )));
        }
        if d.version != VERSION {
            return Err(bad(format!(
                "version {}, this reader knows {VERSION}",
                d.version
            )));
        }
        if d.block_size != BLOCK {
            return Err(bad(format!(
                "block size {}, this reader knows {BLOCK}",
                d.block_size
            )));
        }
        let scheme = Scheme::parse(&d.scheme)
            .ok_or_else(|| bad(format!("unknown scheme `{}`", d.scheme)))?;
        let mut tensors = BTreeMap::new();
        for (bits, names) in [(Bits::Q8, &d.q8), (Bits::Q4, &d.q4)] {
            for name in names {
                if tensors.insert(name.clone(), bits).is_some() {
                    return Err(bad(format!("`{name}` is listed twice")));
                }
            }
        }
        Ok(Some(Quantization { scheme, tensors }))
    }

    pub fn description(&self) -> Description {
        let names = |b: Bits| {
            self.tensors
                .iter()
                .filter(|(_, bits)| **bits == b)
                .map(|(n, _)| n.clone())
                .collect()
        };
        Description {
            format: FORMAT.to_owned(),
            version: VERSION,
            scheme: self.scheme.name().to_owned(),
            block_size: BLOCK,
            q8: names(Bits::Q8),
            q4: names(Bits::Q4),
        }
    }
}

/// A quantized `[rows, cols]` matrix (`[out, in]`) as held in memory: the codes as stored
/// (see the module docs for their layout) and one f32 scale per block (row-major,
/// [`QuantizedValues::blocks_per_row`] a row).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedValues {
    pub bits: Bits,
    pub rows: usize,
    pub cols: usize,
    pub codes: Vec<u8>,
    pub scales: Vec<f32>,
}

impl QuantizedValues {
    /// Bytes of codes per row.
    pub fn row_bytes(bits: Bits, cols: usize) -> usize {
        match bits {
            Bits::Q8 => cols,
            Bits::Q4 => cols / 2,
        }
    }

    pub fn blocks_per_row(cols: usize) -> usize {
        cols.div_ceil(BLOCK)
    }

    /// Checks that codes and scales have the sizes `bits`, `rows` and `cols` call for.
    pub fn new(
        bits: Bits,
        rows: usize,
        cols: usize,
        codes: Vec<u8>,
        scales: Vec<f32>,
    ) -> Result<Self> {
        let odd = bits == Bits::Q4 && cols % 2 == 1;
        if odd
            || codes.len() != rows * Self::row_bytes(bits, cols)
            || scales.len() != rows * Self::blocks_per_row(cols)
        {
            return Err(Error::Checkpoint(format!(
                "a {} matrix of {rows}x{cols} needs {} code bytes and {} scales, found {} and {}",
                bits.name(),
                rows * Self::row_bytes(bits, cols),
                rows * Self::blocks_per_row(cols),
                codes.len(),
                scales.len()
            )));
        }
        Ok(QuantizedValues {
            bits,
            rows,
            cols,
            codes,
            scales,
        })
    }

    /// Quantizes `values` (`rows × cols`, row-major, finite) to `bits`: each block's scale is
    /// its largest magnitude over the largest code, rounded to F16; each code the weight over
    /// that scale, rounded to nearest and clamped. Refused: a scale beyond F16, or 4 bits
    /// for an odd number of columns.
    pub fn quantize(values: &[f32], rows: usize, cols: usize, bits: Bits) -> Result<Self, String> {
        if values.len() != rows * cols {
            return Err(format!(
                "{} values for a {rows}x{cols} matrix",
                values.len()
            ));
        }
        if bits == Bits::Q4 && cols % 2 == 1 {
            return Err(format!(
                "4-bit codes need an even number of columns, not {cols}"
            ));
        }
        let max_code = bits.max_code();
        let mut codes = Vec::with_capacity(rows * Self::row_bytes(bits, cols));
        let mut scales = Vec::with_capacity(rows * Self::blocks_per_row(cols));
        let mut block_codes = [0i32; BLOCK];
        for row in values.chunks_exact(cols.max(1)).take(rows) {
            for block in row.chunks(BLOCK) {
                let largest = block.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let scale = half::f16::from_f32(largest / max_code as f32);
                if !scale.is_finite() {
                    return Err(format!(
                        "a block's scale ({largest} / {max_code}) does not fit F16"
                    ));
                }
                let scale = scale.to_f32();
                for (c, &v) in block_codes.iter_mut().zip(block) {
                    *c = if scale == 0.0 {
                        0
                    } else {
                        ((v / scale).round() as i32).clamp(-max_code, max_code)
                    };
                }
                let block_codes = &block_codes[..block.len()];
                match bits {
                    Bits::Q8 => codes.extend(block_codes.iter().map(|&c| c as i8 as u8)),
                    Bits::Q4 => {
                        let (low, high) = block_codes.split_at(block.len() / 2);
                        codes.extend(
                            low.iter()
                                .zip(high)
                                .map(|(&l, &h)| ((l + 8) as u8) | (((h + 8) as u8) << 4)),
                        );
                    }
                }
                scales.push(scale);
            }
        }
        Ok(QuantizedValues {
            bits,
            rows,
            cols,
            codes,
            scales,
        })
    }

    /// Row `row`'s weights as f32 (code × scale) into `out` (`cols` values).
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let row_bytes = Self::row_bytes(self.bits, self.cols);
        let codes = &self.codes[row * row_bytes..][..row_bytes];
        let scales = &self.scales[row * Self::blocks_per_row(self.cols)..];
        for (b, out) in out[..self.cols].chunks_mut(BLOCK).enumerate() {
            dequantize_block(
                self.bits,
                &codes[b * block_bytes(self.bits)..],
                scales[b],
                out,
            );
        }
    }

    /// The rows `ids` (each `< rows`) as f32, one after the other: token lookups.
    pub fn dequantize_rows(&self, ids: &[u32]) -> Vec<f32> {
        let mut out = vec![0.0f32; ids.len() * self.cols];
        for (&id, row) in ids.iter().zip(out.chunks_exact_mut(self.cols.max(1))) {
            self.dequantize_row(id as usize, row);
        }
        out
    }

    /// The whole matrix as f32, row-major: what a dequantized folder stores.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.rows * self.cols];
        for (r, row) in out.chunks_exact_mut(self.cols.max(1)).enumerate() {
            self.dequantize_row(r, row);
        }
        out
    }

    /// The matrices `parts` (same bits and columns) stacked: their rows one after the other.
    pub fn stack(parts: Vec<QuantizedValues>) -> Option<Self> {
        let first = parts.first()?;
        let (bits, cols) = (first.bits, first.cols);
        if parts.iter().any(|p| p.bits != bits || p.cols != cols) {
            return None;
        }
        let rows = parts.iter().map(|p| p.rows).sum();
        let mut codes = Vec::new();
        let mut scales = Vec::new();
        for p in parts {
            codes.extend(p.codes);
            scales.extend(p.scales);
        }
        Some(QuantizedValues {
            bits,
            rows,
            cols,
            codes,
            scales,
        })
    }
}

/// A checkpoint quantized by [`quantize_checkpoint`]: safetensors files' bytes.
pub struct QuantizedCheckpoint {
    /// The quantized `model.safetensors`.
    pub model: Vec<u8>,
    /// The same model as plain f32, holding exactly the values the quantized one multiplies
    /// with (when asked for).
    pub dequantized: Option<Vec<u8>>,
    /// Stored tensors by what became of them: quantized 8-bit, 4-bit, kept as F16, kept as
    /// F32 (values F16 cannot hold).
    pub counts: [usize; 4],
}

/// Quantizes every large matrix of `file` (a plain checkpoint, either layout) to `scheme`:
/// see the module docs for what is written. Refuses a file that is already quantized, and
/// tensors that are not finite floats.
pub fn quantize_checkpoint<R: std::io::Read + std::io::Seek>(
    file: &mut crate::load::safetensors_file::SafetensorsFile<R>,
    scheme: Scheme,
    dequantized: bool,
) -> Result<QuantizedCheckpoint> {
    use safetensors::Dtype;
    if file.metadata().contains_key(METADATA_KEY) {
        return Err(Error::Checkpoint(format!(
            "the checkpoint is already quantized (its metadata has `{METADATA_KEY}`)"
        )));
    }
    let names: Vec<String> = file.names().map(str::to_owned).collect();
    // (name, dtype, shape, bytes) of each output file.
    let mut out: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut plain: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut tensors = BTreeMap::new();
    let mut counts = [0usize; 4];
    let f32_bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    for name in names {
        let t = file.read_f32(&name)?;
        if t.values.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite { name });
        }
        let bits = scheme.bits_for(role(&name, &t.shape));
        if let (Some(mut bits), [rows, cols]) = (bits, t.shape.as_slice()) {
            let (rows, cols) = (*rows, *cols);
            if bits == Bits::Q4 && cols % 2 == 1 {
                bits = Bits::Q8;
            }
            let q = QuantizedValues::quantize(&t.values, rows, cols, bits)
                .map_err(|why| Error::Checkpoint(format!("tensor `{name}`: {why}")))?;
            let (dtype, code_shape) = match bits {
                Bits::Q8 => (Dtype::I8, vec![rows, cols]),
                Bits::Q4 => (Dtype::U8, vec![rows, cols / 2]),
            };
            let scales: Vec<u8> = q
                .scales
                .iter()
                .flat_map(|&s| half::f16::from_f32(s).to_le_bytes())
                .collect();
            if dequantized {
                plain.push((
                    name.clone(),
                    Dtype::F32,
                    t.shape.clone(),
                    f32_bytes(&q.dequantize()),
                ));
            }
            out.push((
                format!("{name}{SCALES_SUFFIX}"),
                Dtype::F16,
                vec![rows, QuantizedValues::blocks_per_row(cols)],
                scales,
            ));
            out.push((name.clone(), dtype, code_shape, q.codes));
            counts[if bits == Bits::Q8 { 0 } else { 1 }] += 1;
            tensors.insert(name, bits);
            continue;
        }
        let halves: Vec<half::f16> = t.values.iter().map(|&v| half::f16::from_f32(v)).collect();
        if halves.iter().all(|h| h.is_finite()) {
            let held: Vec<f32> = halves.iter().map(|h| h.to_f32()).collect();
            if dequantized {
                plain.push((name.clone(), Dtype::F32, t.shape.clone(), f32_bytes(&held)));
            }
            let bytes = halves.iter().flat_map(|h| h.to_le_bytes()).collect();
            out.push((name, Dtype::F16, t.shape, bytes));
            counts[2] += 1;
        } else {
            let bytes = f32_bytes(&t.values);
            if dequantized {
                plain.push((name.clone(), Dtype::F32, t.shape.clone(), bytes.clone()));
            }
            out.push((name, Dtype::F32, t.shape, bytes));
            counts[3] += 1;
        }
    }
    let description = Quantization { scheme, tensors }.description();
    let description = serde_json::to_string(&description)
        .map_err(|e| Error::Checkpoint(format!("describing the quantization: {e}")))?;
    let metadata = |quantized: bool| {
        let mut m = std::collections::HashMap::from([("format".to_owned(), "pt".to_owned())]);
        if quantized {
            m.insert(METADATA_KEY.to_owned(), description.clone());
        }
        Some(m)
    };
    let model = serialize(&out, metadata(true))?;
    let dequantized = if dequantized {
        Some(serialize(&plain, metadata(false))?)
    } else {
        None
    };
    Ok(QuantizedCheckpoint {
        model,
        dequantized,
        counts,
    })
}

fn serialize(
    tensors: &[(String, safetensors::Dtype, Vec<usize>, Vec<u8>)],
    metadata: Option<std::collections::HashMap<String, String>>,
) -> Result<Vec<u8>> {
    let views = tensors
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::Checkpoint(format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, metadata)
        .map_err(|e| Error::Checkpoint(format!("writing the checkpoint: {e}")))
}

/// Bytes of codes a full block takes.
pub fn block_bytes(bits: Bits) -> usize {
    QuantizedValues::row_bytes(bits, BLOCK)
}

/// One block's weights (`out.len()` of them, ≤ [`BLOCK`]) from its codes and scale: the
/// reference the kernels are held to.
#[inline(always)]
pub fn dequantize_block(bits: Bits, codes: &[u8], scale: f32, out: &mut [f32]) {
    match bits {
        Bits::Q8 => {
            for (o, &c) in out.iter_mut().zip(codes) {
                *o = f32::from(c as i8) * scale;
            }
        }
        Bits::Q4 => {
            let half = out.len() / 2;
            let (low, high) = out.split_at_mut(half);
            for ((l, h), &c) in low.iter_mut().zip(high.iter_mut()).zip(&codes[..half]) {
                *l = f32::from((c & 15) as i8 - 8) * scale;
                *h = f32::from((c >> 4) as i8 - 8) * scale;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013)
            .collect()
    }

    #[test]
    fn dequantized_weights_are_within_half_a_step_of_the_originals() {
        // 150 columns: two full blocks and a short one of 22.
        for bits in [Bits::Q8, Bits::Q4] {
            let (rows, cols) = (3, 150);
            let v = values(rows, cols);
            let q = QuantizedValues::quantize(&v, rows, cols, bits).unwrap();
            assert_eq!(q.codes.len(), rows * QuantizedValues::row_bytes(bits, cols));
            assert_eq!(q.scales.len(), rows * 3);
            let d = q.dequantize();
            for (i, (a, b)) in v.iter().zip(&d).enumerate() {
                let scale = q.scales[i / cols * 3 + i % cols / BLOCK];
                assert!(
                    (a - b).abs() <= scale * 0.5 + 1e-6,
                    "{bits:?} {i}: {a} vs {b}"
                );
            }
            // Quantizing the dequantized values again changes nothing.
            let again = QuantizedValues::quantize(&d, rows, cols, bits).unwrap();
            assert_eq!(again, q, "{bits:?}");
        }
    }

    #[test]
    fn q4_packs_the_two_halves_of_a_block_into_one_byte() {
        let mut v = vec![0.0f32; 8];
        v[0] = 7.0; // low nibble of byte 0
        v[4] = -7.0; // high nibble of byte 0
        v[3] = 1.0; // low nibble of byte 3
        let q = QuantizedValues::quantize(&v, 1, 8, Bits::Q4).unwrap();
        assert_eq!(q.scales, vec![1.0]);
        assert_eq!(
            q.codes,
            vec![15 | (1 << 4), 8 | (8 << 4), 8 | (8 << 4), 9 | (8 << 4)]
        );
    }

    #[test]
    fn a_zero_block_has_a_zero_scale_and_an_overflowing_one_is_refused() {
        let q = QuantizedValues::quantize(&[0.0; 4], 1, 4, Bits::Q8).unwrap();
        assert_eq!((q.scales[0], q.dequantize()), (0.0, vec![0.0; 4]));
        assert!(QuantizedValues::quantize(&[1e9, 0.0], 1, 2, Bits::Q8).is_err());
        assert!(QuantizedValues::quantize(&[1.0; 3], 1, 3, Bits::Q4).is_err());
    }

    #[test]
    fn roles_in_both_layouts() {
        let cases = [
            (
                "model.vision_tower.blocks.2.0.spatial_block.window_attn.qkv.weight",
                Role::Vision,
            ),
            (
                "vision_tower.blocks.2.0.spatial_block.window_attn.fn.qkv.weight",
                Role::Vision,
            ),
            (
                "model.vision_tower.blocks.0.0.channel_block.ffn.fc2.weight",
                Role::Vision,
            ),
            (
                "model.language_model.decoder.layers.1.encoder_attn.k_proj.weight",
                Role::Language,
            ),
            (
                "language_model.model.encoder.layers.0.fc1.weight",
                Role::Language,
            ),
            ("model.language_model.shared.weight", Role::TokenMatrix),
            ("language_model.lm_head.weight", Role::TokenMatrix),
            (
                "model.multi_modal_projector.image_projection.weight",
                Role::Small,
            ),
            (
                "model.language_model.encoder.embed_positions.weight",
                Role::Small,
            ),
            (
                "model.language_model.encoder.layers.0.fc1.bias",
                Role::Small,
            ),
        ];
        for (name, want) in cases {
            let shape: &[usize] = if name.ends_with("bias") {
                &[4]
            } else {
                &[4, 4]
            };
            assert_eq!(role(name, shape), want, "{name}");
        }
        assert_eq!(Scheme::Mixed.bits_for(Role::Vision), Some(Bits::Q8));
        assert_eq!(
            Scheme::Mixed.bits_for(Role::VisionLastStage),
            Some(Bits::Q4)
        );
        assert_eq!(Scheme::Mixed.bits_for(Role::TokenMatrix), Some(Bits::Q4));
        assert_eq!(Scheme::Q8.bits_for(Role::Small), None);
    }

    #[test]
    fn descriptions_round_trip_and_foreign_ones_are_refused() {
        let q = Quantization {
            scheme: Scheme::Mixed,
            tensors: [("a".to_owned(), Bits::Q8), ("b".to_owned(), Bits::Q4)].into(),
        };
        let text = serde_json::to_string(&q.description()).unwrap();
        let meta = |t: String| [(METADATA_KEY.to_owned(), t)].into_iter().collect();
        assert_eq!(
            Quantization::from_metadata(&meta(text.clone())).unwrap(),
            Some(q)
        );
        assert_eq!(
            Quantization::from_metadata(&Default::default()).unwrap(),
            None
        );
        for bad in [
            text.replace("florence2-blockwise", "gguf"),
            text.replace("\"version\":1", "\"version\":2"),
            text.replace("\"block_size\":64", "\"block_size\":32"),
            text.replace("mixed", "q3"),
            text.replace("\"q4\":[\"b\"]", "\"q4\":[\"a\"]"),
            "{".to_owned(),
        ] {
            assert!(
                Quantization::from_metadata(&meta(bad.clone())).is_err(),
                "{bad}"
            );
        }
    }
}
