//! The `[vocab, d_model]` token matrix — the embedding, and the tied (or stored) `lm_head` —
//! kept as blocks of whole rows, so that no buffer is larger than the device can bind.
//! WebGPU guarantees only 128 MiB per storage binding, and Florence-2-base's matrix is
//! 51289 × 768 f32 = 150 MiB. Where there is no limit (the CPU) it is one block, and the
//! lookups and the product are the plain ones.
//!
//! Where the kernels read `[d, vocab]` better ([`crate::kernels::vocab_by_columns`]: the GPU
//! kernels), each block is stored transposed: `lm_head` is then a plain product with it, and a
//! lookup selects columns.

use burn::tensor::{Device, Int, Tensor, TensorData};

use std::sync::Arc;

use crate::kernels::{QuantizedMatrix, TokenMatrix};
use crate::load::safetensors_file::transpose_values;

pub enum VocabMatrix {
    /// In a kernel set's own form (the CPU's), which answers lookups and products itself.
    Kept {
        matrix: Box<dyn TokenMatrix>,
        rows: usize,
    },
    /// As tensors on the device, in blocks of whole rows.
    Blocks(Blocks),
    /// Quantized (a quantized checkpoint's), kept by the device's kernels; one matrix: base's
    /// is 20-40 MB, far below any buffer limit.
    Quantized(Arc<dyn QuantizedMatrix>),
}

/// The token matrix as tensors: one block, or blocks no larger than a buffer limit.
pub struct Blocks {
    blocks: Vec<Tensor<2>>,
    /// Rows per block (the last may have fewer).
    block_rows: usize,
    rows: usize,
    /// Blocks are `[cols, block rows]` rather than `[block rows, cols]`.
    by_columns: bool,
    device: Device,
}

impl VocabMatrix {
    /// `values` is `rows × cols`, row-major; `max_block_bytes` bounds each block's f32 bytes
    /// (`None`: one block). The layout is the one the device's kernels read best; with no
    /// bound, a kernel set may keep the matrix in its own form.
    pub fn new(
        values: Vec<f32>,
        shape: [usize; 2],
        max_block_bytes: Option<usize>,
        device: &Device,
    ) -> Self {
        let values = if max_block_bytes.is_none() {
            match crate::kernels::token_matrix(values, shape, device) {
                Ok(matrix) => {
                    return VocabMatrix::Kept {
                        matrix,
                        rows: shape[0],
                    };
                }
                Err(values) => values,
            }
        } else {
            values
        };
        let by_columns = crate::kernels::vocab_by_columns(device);
        VocabMatrix::Blocks(Blocks::new(
            values,
            shape,
            max_block_bytes,
            by_columns,
            device,
        ))
    }

    pub fn rows(&self) -> usize {
        match self {
            VocabMatrix::Kept { rows, .. } => *rows,
            VocabMatrix::Blocks(b) => b.rows,
            VocabMatrix::Quantized(q) => q.dims()[0],
        }
    }

    /// How many buffers hold the matrix.
    pub fn block_count(&self) -> usize {
        match self {
            VocabMatrix::Kept { .. } | VocabMatrix::Quantized(_) => 1,
            VocabMatrix::Blocks(b) => b.blocks.len().max(1),
        }
    }

    /// Whether [`VocabMatrix::greedy_candidates`] can answer (the matrix is in a form that
    /// screens greedy steps).
    pub fn screens(&self) -> bool {
        matches!(self, VocabMatrix::Kept { .. })
    }

    /// For one row `x`: the tokens not in `banned` that can hold the largest logit, with their
    /// exact logits (see [`TokenMatrix::greedy_candidates`]); `None`: take the full product.
    pub fn greedy_candidates(&self, x: &[f32], banned: &[u32]) -> Option<Vec<(u32, f32)>> {
        match self {
            VocabMatrix::Kept { matrix, .. } => matrix.greedy_candidates(x, banned),
            VocabMatrix::Blocks(_) | VocabMatrix::Quantized(_) => None,
        }
    }

    /// The rows `ids` (each `< rows`), in order: `[ids.len(), cols]`.
    pub fn select(&self, ids: &[u32]) -> Tensor<2> {
        match self {
            VocabMatrix::Kept { matrix, .. } => matrix.select(ids),
            VocabMatrix::Blocks(b) => b.select(ids),
            VocabMatrix::Quantized(q) => q.select(ids),
        }
    }

    /// `x · Mᵀ`: `[n, cols]` → `[n, rows]` (the logits, for `lm_head`).
    pub fn matmul_transposed(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            VocabMatrix::Kept { matrix, .. } => matrix.matmul_transposed(&x),
            VocabMatrix::Blocks(b) => b.matmul_transposed(x),
            // `x · Mᵀ` is a linear layer whose weight `[out, in]` is the matrix itself.
            VocabMatrix::Quantized(q) => q.linear(&x, None, false),
        }
    }
}

impl Blocks {
    fn new(
        values: Vec<f32>,
        [rows, cols]: [usize; 2],
        max_block_bytes: Option<usize>,
        by_columns: bool,
        device: &Device,
    ) -> Self {
        let row_bytes = cols.max(1) * size_of::<f32>();
        let mut block_rows = match max_block_bytes {
            Some(max) => (max / row_bytes).clamp(1, rows.max(1)),
            None => rows.max(1),
        };
        // Split blocks of a multiple of 4 rows: stored by columns, they are what the GPU
        // kernel reads 4 at a time (`gpu::skinny`), and only the last one may not divide.
        if block_rows < rows && block_rows >= 4 {
            block_rows -= block_rows % 4;
        }
        // A block by columns is transposed straight from its slice of `values`, so loading
        // holds at most one block's extra copy.
        let block = |values: &[f32]| {
            let n = values.len() / cols.max(1);
            let data = if by_columns {
                TensorData::new(transpose_values(values, n, cols), [cols, n])
            } else {
                TensorData::new(values.to_vec(), [n, cols])
            };
            Tensor::from_data(data, device)
        };
        let blocks = if block_rows < rows {
            values.chunks(block_rows * cols).map(block).collect()
        } else if by_columns {
            vec![block(&values)]
        } else {
            vec![Tensor::from_data(
                TensorData::new(values, [rows, cols]),
                device,
            )]
        };
        Blocks {
            blocks,
            block_rows,
            rows,
            by_columns,
            device: device.clone(),
        }
    }

    fn select(&self, ids: &[u32]) -> Tensor<2> {
        let index = |v: Vec<i64>| {
            let n = v.len();
            Tensor::<1, Int>::from_data(TensorData::new(v, [n]), &self.device)
        };
        let rows_of = |block: &Tensor<2>, local: Vec<i64>| {
            if self.by_columns {
                block.clone().select(1, index(local)).transpose()
            } else {
                block.clone().select(0, index(local))
            }
        };
        if let [only] = self.blocks.as_slice() {
            return rows_of(only, ids.iter().map(|&i| i64::from(i)).collect());
        }
        // Each block gives its own rows; `order[k]` is where the k-th of those belongs.
        let mut parts = Vec::new();
        let mut order = Vec::with_capacity(ids.len());
        for (b, block) in self.blocks.iter().enumerate() {
            let start = b * self.block_rows;
            let mut local = Vec::new();
            for (at, &id) in ids.iter().enumerate() {
                let id = id as usize;
                if (start..start + self.block_rows).contains(&id) {
                    local.push((id - start) as i64);
                    order.push(at);
                }
            }
            if !local.is_empty() {
                parts.push(rows_of(block, local));
            }
        }
        if parts.is_empty() {
            return rows_of(&self.blocks[0], Vec::new());
        }
        let mut back = vec![0i64; order.len()];
        for (k, &at) in order.iter().enumerate() {
            back[at] = k as i64;
        }
        Tensor::cat(parts, 0).select(0, index(back))
    }

    fn matmul_transposed(&self, x: Tensor<2>) -> Tensor<2> {
        let products: Vec<Tensor<2>> = self
            .blocks
            .iter()
            .map(|block| {
                if self.by_columns {
                    crate::kernels::linear(x.clone(), block, None, false)
                } else {
                    crate::kernels::matmul_transposed(x.clone(), block)
                }
            })
            .collect();
        match <[_; 1]>::try_from(products) {
            Ok([only]) => only,
            Err(products) => Tensor::cat(products, 1),
        }
    }
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;

    fn matrix(rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols).map(|i| (i as f32 * 0.37).sin()).collect()
    }

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        crate::readback::values(t).unwrap()
    }

    #[test]
    fn blocks_give_the_same_rows_and_products_as_one_matrix_in_either_layout() {
        let device = Device::flex();
        let (rows, cols) = (23, 5);
        let whole = VocabMatrix::new(matrix(rows, cols), [rows, cols], None, &device);
        assert!(
            !crate::kernels::vocab_by_columns(&device),
            "flex reads the rows"
        );
        let ids = [22, 0, 7, 3, 7, 19, 4, 12];
        let expected: Vec<f32> = ids
            .iter()
            .flat_map(|&id| matrix(rows, cols)[id as usize * cols..][..cols].to_vec())
            .collect();
        let x = Tensor::<2>::from_data(TensorData::new(matrix(3, cols), [3, cols]), &device);
        let product = values(whole.matmul_transposed(x.clone()));
        assert_eq!(product.len(), 3 * rows);
        assert_eq!(values(whole.select(&ids)), expected);
        for by_columns in [false, true] {
            // 4 rows of 5 f32 per block (80 bytes): six blocks, the last with 3 rows.
            for (limit, count) in [(None, 1), (Some(80), 6)] {
                let m = VocabMatrix::Blocks(Blocks::new(
                    matrix(rows, cols),
                    [rows, cols],
                    limit,
                    by_columns,
                    &device,
                ));
                assert_eq!(m.block_count(), count);
                assert_eq!(values(m.select(&ids)), expected, "{by_columns} {limit:?}");
                let got = values(m.matmul_transposed(x.clone()));
                for (p, q) in product.iter().zip(&got) {
                    assert!((p - q).abs() <= 1e-6, "{p} vs {q} ({by_columns} {limit:?})");
                }
            }
        }
    }

    #[test]
    fn split_blocks_hold_a_multiple_of_four_rows() {
        let device = Device::flex();
        // Room for 7 rows of 5 f32 (140 bytes): blocks of 4, the last with the 3 left over.
        let split = VocabMatrix::new(matrix(23, 5), [23, 5], Some(140), &device);
        let VocabMatrix::Blocks(blocks) = &split else {
            panic!("a split matrix is kept as tensors");
        };
        assert_eq!((blocks.block_rows, split.block_count()), (4, 6));
        assert_eq!(
            values(split.select(&[22])),
            matrix(23, 5)[110..115].to_vec()
        );
    }

    #[test]
    fn a_limit_smaller_than_one_row_still_holds_a_row_per_block() {
        let device = Device::flex();
        let split = VocabMatrix::new(matrix(4, 3), [4, 3], Some(1), &device);
        assert_eq!(split.block_count(), 4);
        assert_eq!(values(split.select(&[2])), matrix(4, 3)[6..9].to_vec());
    }
}
