//! Reading a `.safetensors` file tensor by tensor from any `Read + Seek` source (a file
//! natively, an in-memory buffer in the browser), so that loading a model never holds the
//! whole file and all its converted tensors at the same time.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Seek, SeekFrom};

use safetensors::tensor::{Dtype, Metadata, TensorInfo};

use crate::error::{Error, Result};

/// Headers larger than this are refused (the safetensors crate's own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// An open safetensors file: its validated header, and the source to read tensors from.
pub struct SafetensorsFile<R> {
    reader: R,
    data_start: u64,
    infos: BTreeMap<String, TensorInfo>,
    metadata: HashMap<String, String>,
}

/// A tensor's values as f32, row-major, with its shape.
#[derive(Debug, Clone, PartialEq)]
pub struct F32Tensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

impl<R: Read + Seek> SafetensorsFile<R> {
    /// Reads and validates the header: offsets must tile the data section exactly and the
    /// source must be long enough to hold it (a truncated download fails here, not later).
    pub fn open(mut reader: R) -> Result<Self> {
        let total = reader
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io("reading the checkpoint", e))?;
        reader
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("reading the checkpoint", e))?;
        let mut len_bytes = [0u8; 8];
        reader.read_exact(&mut len_bytes).map_err(|_| {
            Error::Checkpoint(format!(
                "file of {total} bytes is too short for a safetensors header"
            ))
        })?;
        let header_len = u64::from_le_bytes(len_bytes);
        if header_len > MAX_HEADER_BYTES || header_len > total.saturating_sub(8) {
            return Err(Error::Checkpoint(format!(
                "header length {header_len} does not fit a file of {total} bytes"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        reader
            .read_exact(&mut header)
            .map_err(|e| Error::io("reading the safetensors header", e))?;
        let metadata: Metadata = serde_json::from_slice(&header)
            .map_err(|e| Error::Checkpoint(format!("invalid safetensors header: {e}")))?;
        let data_start = 8 + header_len;
        let data_len = metadata.data_len() as u64;
        if data_start + data_len > total {
            return Err(Error::Checkpoint(format!(
                "file is truncated: the header describes {} bytes of data, only {} are there",
                data_len,
                total - data_start
            )));
        }
        let extra = metadata.metadata().clone().unwrap_or_default();
        let infos = metadata
            .tensors()
            .into_iter()
            .map(|(name, info)| (name, info.clone()))
            .collect();
        Ok(SafetensorsFile {
            reader,
            data_start,
            infos,
            metadata: extra,
        })
    }

    /// The header's `__metadata__` (string to string; empty when there is none).
    pub fn metadata(&self) -> &HashMap<String, String> {
        &self.metadata
    }

    /// A tensor's stored dtype.
    pub fn dtype(&self, name: &str) -> Option<Dtype> {
        self.infos.get(name).map(|i| i.dtype)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.infos.keys().map(String::as_str)
    }

    /// Elements over all tensors (a tied matrix is stored, and counted, once).
    pub fn parameter_count(&self) -> u64 {
        self.infos
            .values()
            .map(|i| i.shape.iter().map(|&d| d as u64).product::<u64>())
            .sum()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.infos.contains_key(name)
    }

    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.infos.get(name).map(|i| i.shape.as_slice())
    }

    /// The raw little-endian bytes of a tensor, with its dtype and shape.
    pub fn read_raw(&mut self, name: &str) -> Result<(Dtype, Vec<usize>, Vec<u8>)> {
        let info = self.infos.get(name).ok_or_else(|| Error::MissingTensor {
            name: name.to_owned(),
        })?;
        let (begin, end) = info.data_offsets;
        let mut bytes = vec![0u8; end - begin];
        self.reader
            .seek(SeekFrom::Start(self.data_start + begin as u64))
            .and_then(|_| self.reader.read_exact(&mut bytes))
            .map_err(|e| Error::io(format!("reading tensor `{name}`"), e))?;
        Ok((info.dtype, info.shape.clone(), bytes))
    }

    /// A floating-point tensor converted to f32 (F16, BF16 and F64 checkpoints are converted
    /// on load; integer tensors are refused).
    pub fn read_f32(&mut self, name: &str) -> Result<F32Tensor> {
        let (dtype, shape, bytes) = self.read_raw(name)?;
        let values = floats_to_f32(name, dtype, &bytes)?;
        Ok(F32Tensor { shape, values })
    }

    /// An integer tensor (I64, I32 or U8) as i64, e.g. the token ids of a golden file.
    pub fn read_i64(&mut self, name: &str) -> Result<(Vec<usize>, Vec<i64>)> {
        let (dtype, shape, bytes) = self.read_raw(name)?;
        // `chunks_exact(n)` yields slices of exactly n bytes, so the array conversions cannot fail.
        let values = match dtype {
            Dtype::I64 => bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8")))
                .collect(),
            Dtype::I32 => bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes(c.try_into().expect("chunks of 4")) as i64)
                .collect(),
            Dtype::U8 => bytes.iter().map(|&b| b as i64).collect(),
            other => {
                return Err(Error::TensorDtype {
                    name: name.to_owned(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        Ok((shape, values))
    }
}

fn floats_to_f32(name: &str, dtype: Dtype, bytes: &[u8]) -> Result<Vec<f32>> {
    // `chunks_exact(n)` yields slices of exactly n bytes, so the array conversions cannot fail.
    Ok(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes(c.try_into().expect("2 bytes")).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes(c.try_into().expect("2 bytes")).to_f32())
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        other => {
            return Err(Error::TensorDtype {
                name: name.to_owned(),
                dtype: format!("{other:?}"),
            });
        }
    })
}

/// `values` `[rows, cols]` row-major → `[cols, rows]` row-major.
pub(crate) fn transpose_values(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows * cols];
    for (r, row) in values.chunks_exact(cols.max(1)).take(rows).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            out[c * rows + r] = v;
        }
    }
    out
}
