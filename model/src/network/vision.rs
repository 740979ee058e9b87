//! DaViT, Florence-2's image encoder (`model.vision_tower`): per stage a convolutional patch
//! embedding, then blocks of a spatial block (window attention) and a channel block (channel
//! group attention), each with depthwise-convolution position encodings and an MLP.
//!
//! From the first patch embedding to the last block, tensors travel as channels-last tokens
//! `[batch, height·width, channels]` (with their grid `[height, width]` beside them); only the
//! pixels coming in, the recorder's intermediates and the output are images
//! `[batch, channels, height, width]` (NCHW), as transformers and the goldens have them.

use std::io::{Read, Seek};

use burn::tensor::Tensor;

use crate::error::Result;
use crate::kernels;
use crate::load::config::VisionConfig;
use crate::load::weights::Weights;
use crate::network::nn::{Bias, Conv2d, ConvPosEnc, LayerNorm, Linear, Mlp};

/// Receives intermediate vision tensors by golden name (`vision.stage0.conv_embed`, …), for
/// the parity checks.
pub type Recorder<'a> = Option<&'a mut dyn FnMut(String, &Tensor<4>)>;

pub struct DaVit {
    stages: Vec<Stage>,
}

struct Stage {
    conv_embed: ConvEmbed,
    blocks: Vec<(SpatialBlock, ChannelBlock)>,
}

impl DaVit {
    pub fn load<R: Read + Seek>(w: &mut Weights<R>, c: &VisionConfig) -> Result<Self> {
        let mut stages = Vec::with_capacity(c.num_stages());
        for s in 0..c.num_stages() {
            let conv_embed = ConvEmbed::load(w, c, s)?;
            let mut blocks = Vec::with_capacity(c.depths[s]);
            for b in 0..c.depths[s] {
                let prefix = format!("model.vision_tower.blocks.{s}.{b}");
                blocks.push((
                    SpatialBlock::load(w, &format!("{prefix}.spatial_block"), c, s)?,
                    ChannelBlock::load(w, &format!("{prefix}.channel_block"), c, s)?,
                ));
            }
            stages.push(Stage { conv_embed, blocks });
        }
        Ok(DaVit { stages })
    }

    /// `pixel_values` `[batch, 3, H, W]` → last stage features `[batch, C, H/32, W/32]`.
    pub fn forward(&self, pixel_values: Tensor<4>, mut record: Recorder<'_>) -> Tensor<4> {
        // Channels-last tokens from the pixels to the last block (the patch embeddings
        // included); images, as the goldens have them, only for the recorder and the output.
        let [_, _, h, w] = pixel_values.dims();
        let (mut tokens, mut grid) = (to_tokens(pixel_values), [h, w]);
        for (s, stage) in self.stages.iter().enumerate() {
            (tokens, grid) = stage.conv_embed.forward(tokens, grid);
            let [h, w] = grid;
            if let Some(r) = record.as_mut() {
                r(
                    format!("vision.stage{s}.conv_embed"),
                    &to_image(tokens.clone(), h, w),
                );
            }
            for (b, (spatial, channel)) in stage.blocks.iter().enumerate() {
                tokens = spatial.forward(tokens, h, w);
                if let Some(r) = record.as_mut() {
                    r(
                        format!("vision.stage{s}.block{b}.spatial"),
                        &to_image(tokens.clone(), h, w),
                    );
                }
                tokens = channel.forward(tokens, h, w);
                if let Some(r) = record.as_mut() {
                    r(
                        format!("vision.stage{s}.block{b}.channel"),
                        &to_image(tokens.clone(), h, w),
                    );
                }
            }
        }
        to_image(tokens, grid[0], grid[1])
    }
}

/// Patch embedding: a strided convolution with a LayerNorm before (stages 1-3) or after
/// (stage 0) it.
struct ConvEmbed {
    conv: Conv2d,
    norm: LayerNorm,
    pre_norm: bool,
}

impl ConvEmbed {
    fn load<R: Read + Seek>(w: &mut Weights<R>, c: &VisionConfig, s: usize) -> Result<Self> {
        let c_in = if s == 0 {
            c.in_channels
        } else {
            c.embed_dim[s - 1]
        };
        let c_out = c.embed_dim[s];
        let prefix = format!("model.vision_tower.convs.{s}");
        let pre_norm = c.patch_prenorm[s];
        Ok(ConvEmbed {
            conv: Conv2d::load(
                w,
                &format!("{prefix}.conv"),
                c_in,
                c_out,
                c.patch_size[s],
                c.patch_stride[s],
                c.patch_padding[s],
            )?,
            norm: LayerNorm::load(
                w,
                &format!("{prefix}.norm"),
                if pre_norm { c_in } else { c_out },
            )?,
            pre_norm,
        })
    }

    /// Tokens `[b, h·w, c_in]` on `grid` → tokens `[b, ho·wo, c_out]` and their grid; the
    /// LayerNorm normalises each token's channels, in the tokens' own layout.
    fn forward(&self, x: Tensor<3>, grid: [usize; 2]) -> (Tensor<3>, [usize; 2]) {
        if self.pre_norm {
            self.conv.forward(self.norm.forward(x), grid)
        } else {
            let (y, grid) = self.conv.forward(x, grid);
            (self.norm.forward(y), grid)
        }
    }
}

/// `[b, c, h, w]` → `[b, h*w, c]`.
fn to_tokens(x: Tensor<4>) -> Tensor<3> {
    x.flatten::<3>(2, 3).swap_dims(1, 2)
}

/// `[b, h*w, c]` → `[b, c, h, w]`.
fn to_image(x: Tensor<3>, h: usize, w: usize) -> Tensor<4> {
    let [b, _, c] = x.dims();
    x.swap_dims(1, 2).reshape([b, c, h, w])
}

/// Shared shape of both block kinds: depthwise conv + attention, depthwise conv + MLP, each
/// with a residual; only the attention differs.
struct BlockParts {
    conv1: ConvPosEnc,
    norm1: LayerNorm,
    conv2: ConvPosEnc,
    norm2: LayerNorm,
    ffn: Mlp,
}

impl BlockParts {
    fn load<R: Read + Seek>(
        w: &mut Weights<R>,
        prefix: &str,
        c: &VisionConfig,
        s: usize,
    ) -> Result<Self> {
        let dim = c.embed_dim[s];
        let hidden = c.mlp_hidden(s);
        Ok(BlockParts {
            conv1: ConvPosEnc::load(w, &format!("{prefix}.conv1"), dim, 3)?,
            norm1: LayerNorm::load(w, &format!("{prefix}.norm1"), dim)?,
            conv2: ConvPosEnc::load(w, &format!("{prefix}.conv2"), dim, 3)?,
            norm2: LayerNorm::load(w, &format!("{prefix}.norm2"), dim)?,
            ffn: Mlp::new(
                Linear::load(w, &format!("{prefix}.ffn.fc1"), dim, hidden, Bias::Stored)?,
                Linear::load(w, &format!("{prefix}.ffn.fc2"), hidden, dim, Bias::Stored)?,
            ),
        })
    }

    /// Runs the block on tokens `x` `[b, h*w, c]`, with `attn` on the normed tokens.
    fn forward(
        &self,
        x: Tensor<3>,
        h: usize,
        w: usize,
        attn: impl Fn(Tensor<3>, usize, usize) -> Tensor<3>,
    ) -> Tensor<3> {
        let x = self.conv1.forward(x, h, w);
        let x = x.clone() + attn(self.norm1.forward(x), h, w);
        let x = self.conv2.forward(x, h, w);
        self.ffn.forward_residual(self.norm2.forward(x.clone()), x)
    }
}

/// Local self-attention inside non-overlapping `window × window` windows (the grid padded
/// with zero tokens at the right and bottom, which take part in attention as transformers'
/// code has it).
struct SpatialBlock {
    parts: BlockParts,
    qkv: Linear,
    proj: Linear,
    num_heads: usize,
    window: usize,
}

impl SpatialBlock {
    fn load<R: Read + Seek>(
        w: &mut Weights<R>,
        prefix: &str,
        c: &VisionConfig,
        s: usize,
    ) -> Result<Self> {
        let dim = c.embed_dim[s];
        Ok(SpatialBlock {
            parts: BlockParts::load(w, prefix, c, s)?,
            qkv: Linear::load(
                w,
                &format!("{prefix}.window_attn.qkv"),
                dim,
                3 * dim,
                if c.qkv_bias {
                    Bias::Stored
                } else {
                    Bias::Absent
                },
            )?,
            proj: Linear::load(
                w,
                &format!("{prefix}.window_attn.proj"),
                dim,
                dim,
                Bias::Stored,
            )?,
            num_heads: c.num_heads[s],
            window: c.window_size,
        })
    }

    fn forward(&self, x: Tensor<3>, h: usize, w: usize) -> Tensor<3> {
        self.parts
            .forward(x, h, w, |t, h, w| self.window_attention(t, h, w))
    }

    fn window_attention(&self, x: Tensor<3>, h: usize, w: usize) -> Tensor<3> {
        kernels::window_attention(
            x,
            [h, w],
            self.window,
            self.num_heads,
            self.qkv.weights(),
            self.proj.weights(),
        )
    }
}

/// Attention across channels within groups: channels are the sequence, tokens the features,
/// scaled by `tokens^-0.5`.
struct ChannelBlock {
    parts: BlockParts,
    qkv: Linear,
    proj: Linear,
    groups: usize,
}

impl ChannelBlock {
    fn load<R: Read + Seek>(
        w: &mut Weights<R>,
        prefix: &str,
        c: &VisionConfig,
        s: usize,
    ) -> Result<Self> {
        let dim = c.embed_dim[s];
        Ok(ChannelBlock {
            parts: BlockParts::load(w, prefix, c, s)?,
            qkv: Linear::load(
                w,
                &format!("{prefix}.channel_attn.qkv"),
                dim,
                3 * dim,
                if c.qkv_bias {
                    Bias::Stored
                } else {
                    Bias::Absent
                },
            )?,
            proj: Linear::load(
                w,
                &format!("{prefix}.channel_attn.proj"),
                dim,
                dim,
                Bias::Stored,
            )?,
            groups: c.num_groups[s],
        })
    }

    fn forward(&self, x: Tensor<3>, h: usize, w: usize) -> Tensor<3> {
        self.parts
            .forward(x, h, w, |t, _, _| self.channel_attention(t))
    }

    fn channel_attention(&self, x: Tensor<3>) -> Tensor<3> {
        kernels::channel_attention(x, self.groups, self.qkv.weights(), self.proj.weights())
    }
}
