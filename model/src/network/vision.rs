//! DaViT, Florence-2's image encoder (`model.vision_tower`): per stage a convolutional patch
//! embedding, then blocks of a spatial block (window attention) and a channel block (channel
//! group attention), each with depthwise-convolution position encodings and an MLP.
//!
//! From the first patch embedding to the last block, tensors travel as channels-last tokens
//! `[batch, height·width, channels]` (with their grid `[height, width]` beside them); only the
//! pixels coming in, the recorder's intermediates and the output are images
//! `[batch, channels, height, width]` (NCHW), as transformers and the goldens have them.

use std::io::{Read, Seek};

use burn::tensor::{Tensor, s};

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

    /// A kernel set's window attention when one takes these tensors, else
    /// [`Self::window_attention_composed`].
    fn window_attention(&self, x: Tensor<3>, h: usize, w: usize) -> Tensor<3> {
        let (qkv, proj) = (self.qkv.weights(), self.proj.weights());
        kernels::specialised(|set| {
            set.window_attention(&x, [h, w], self.window, self.num_heads, qkv, proj)
        })
        .unwrap_or_else(|| self.window_attention_composed(x, [h, w]))
    }

    /// Window attention in burn's ops, on normed tokens `x` `[b, h·w, c]`: the tokens cut
    /// into windows ([`window_partition`]), the `qkv` projection, multi-head attention inside
    /// each window (scale `head_dim^-0.5`), the `proj` projection, and the windows put back
    /// in raster order ([`window_reverse`]).
    fn window_attention_composed(&self, x: Tensor<3>, grid: [usize; 2]) -> Tensor<3> {
        let [b, _, c] = x.dims();
        let (heads, ws) = (self.num_heads, self.window);
        let (windows, [nh, nw]) = window_partition(x, grid, ws);
        // n windows of t tokens, each token's projection q, k and v of every head in turn.
        let (n, t, hd) = (b * nh * nw, ws * ws, c / heads);
        let projected = self
            .qkv
            .forward(windows)
            .reshape([n, t, 3 * heads, hd])
            .permute([0, 2, 1, 3]);
        let (q, k, v) = kernels::split_qkv(projected, heads);
        let out = kernels::scaled_dot_product_attention(q, k, v, (hd as f64).powf(-0.5), false)
            .swap_dims(1, 2)
            .reshape([n * t, c]);
        window_reverse(self.proj.forward(out), b, grid, ws)
    }
}

/// Tokens `[b, h·w, c]` on the grid `[h, w]` → the tokens window by window
/// `[b·nh·nw·ws·ws, c]` (the windows in raster order, each window's tokens in raster order)
/// and the window grid `[nh, nw]`. The grid is padded to whole `ws × ws` windows with zero
/// tokens at the right and bottom, which take part in attention as transformers' code has it.
fn window_partition(x: Tensor<3>, [h, w]: [usize; 2], ws: usize) -> (Tensor<2>, [usize; 2]) {
    let [b, _, c] = x.dims();
    let (hp, wp) = (h.div_ceil(ws) * ws, w.div_ceil(ws) * ws);
    let mut x = x.reshape([b, h, w, c]);
    if (hp, wp) != (h, w) {
        x = x.pad(
            [(0, 0), (0, hp - h), (0, wp - w), (0, 0)],
            burn::tensor::ops::PadMode::Constant(0.0),
        );
    }
    let (nh, nw) = (hp / ws, wp / ws);
    let windows = x
        .reshape([b, nh, ws, nw, ws, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b * nh * nw * ws * ws, c]);
    (windows, [nh, nw])
}

/// [`window_partition`] undone: tokens window by window `[b·nh·nw·ws·ws, c]` → tokens in
/// raster order `[b, h·w, c]`, the padding dropped.
fn window_reverse(windows: Tensor<2>, b: usize, [h, w]: [usize; 2], ws: usize) -> Tensor<3> {
    let [_, c] = windows.dims();
    let (nh, nw) = (h.div_ceil(ws), w.div_ceil(ws));
    let (hp, wp) = (nh * ws, nw * ws);
    let x = windows
        .reshape([b, nh, nw, ws, ws, c])
        .permute([0, 1, 3, 2, 4, 5])
        .reshape([b, hp, wp, c]);
    let x = if (hp, wp) != (h, w) {
        x.slice(s![.., 0..h, 0..w, ..])
    } else {
        x
    };
    x.reshape([b, h * w, c])
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

    /// A kernel set's channel attention when one takes these tensors, else
    /// [`Self::channel_attention_composed`].
    fn channel_attention(&self, x: Tensor<3>) -> Tensor<3> {
        let (qkv, proj) = (self.qkv.weights(), self.proj.weights());
        kernels::specialised(|set| set.channel_attention(&x, self.groups, qkv, proj))
            .unwrap_or_else(|| self.channel_attention_composed(x))
    }

    /// Channel attention in burn's ops, on normed tokens `x` `[b, n, c]`: the `qkv`
    /// projection, attention within each group of `c / groups` channels with the channels as
    /// the sequence and the `n` tokens as the features (scale `n^-0.5`), and the `proj`
    /// projection.
    fn channel_attention_composed(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, n, c] = x.dims();
        let g = self.groups;
        // [b·n, 3c] → [b, n, 3·g, c/g] → [b, 3·g, c/g, n]
        let projected = self
            .qkv
            .forward(x.reshape([b * n, c]))
            .reshape([b, n, 3 * g, c / g])
            .permute([0, 2, 3, 1]);
        let (q, k, v) = kernels::split_qkv(projected, g);
        // [b, g, c/g, n] → [b, n, g, c/g] → [b·n, c]
        let out = kernels::scaled_dot_product_attention(q, k, v, (n as f64).powf(-0.5), false)
            .permute([0, 3, 1, 2])
            .reshape([b * n, c]);
        self.proj.forward(out).reshape([b, n, c])
    }
}
