//! The multi-modal projector (`model.multi_modal_projector`): DaViT's last feature map plus a
//! learned 2-D position embedding and the first row of the cosine temporal table, pooled
//! into one spatial-average token followed by the H×W tokens, projected to the language
//! model's width (no bias) and LayerNormed.

use std::io::{Read, Seek};

use burn::tensor::{Tensor, s};

use crate::error::{Error, Result};
use crate::load::config::VisionConfig;
use crate::load::weights::Weights;
use crate::network::nn::{Bias, LayerNorm, Linear};

pub struct Projector {
    row_embeddings: Tensor<2>,
    column_embeddings: Tensor<2>,
    temporal: Tensor<2>,
    image_projection: Linear,
    image_proj_norm: LayerNorm,
    table_len: usize,
}

impl Projector {
    pub fn load<R: Read + Seek>(w: &mut Weights<R>, c: &VisionConfig) -> Result<Self> {
        let dim = c.embed_dim[c.num_stages() - 1];
        let p = "model.multi_modal_projector";
        let rows = c.max_position_embeddings;
        Ok(Projector {
            row_embeddings: w.tensor(
                &format!("{p}.image_position_embed.row_embeddings.weight"),
                [rows, dim / 2],
            )?,
            column_embeddings: w.tensor(
                &format!("{p}.image_position_embed.column_embeddings.weight"),
                [rows, dim - dim / 2],
            )?,
            temporal: w.tensor(
                &format!("{p}.visual_temporal_embed.pos_idx_to_embed"),
                [c.max_temporal_embeddings, dim],
            )?,
            image_projection: Linear::load(
                w,
                &format!("{p}.image_projection"),
                dim,
                c.projection_dim,
                Bias::Absent,
            )?,
            image_proj_norm: LayerNorm::load(w, &format!("{p}.image_proj_norm"), c.projection_dim)?,
            table_len: rows,
        })
    }

    /// `[b, C, h, w]` → image features `[b, 1 + h*w, projection_dim]`.
    pub fn forward(&self, features: Tensor<4>) -> Result<Tensor<3>> {
        let [_, c, h, w] = features.dims();
        if h > self.table_len || w > self.table_len {
            return Err(Error::Input(format!(
                "the image gives a {h}x{w} feature grid, the position table has only {} rows and columns",
                self.table_len
            )));
        }
        // pos[y, x] = [column_embedding(x), row_embedding(y)]
        let columns = self
            .column_embeddings
            .clone()
            .slice(s![0..w])
            .unsqueeze_dim::<3>(0)
            .expand([h, w, c - c / 2]);
        let rows = self
            .row_embeddings
            .clone()
            .slice(s![0..h])
            .unsqueeze_dim::<3>(1)
            .expand([h, w, c / 2]);
        let pos = Tensor::cat(vec![columns, rows], 2).reshape([1, h * w, c]);
        let temporal = self.temporal.clone().slice(s![0..1]).unsqueeze_dim::<3>(0);
        let tokens = features.flatten::<3>(2, 3).swap_dims(1, 2) + pos + temporal;
        let spatial = tokens.clone().mean_dim(1);
        let pooled = Tensor::cat(vec![spatial, tokens], 1);
        Ok(self
            .image_proj_norm
            .forward(self.image_projection.forward(pooled)))
    }
}
