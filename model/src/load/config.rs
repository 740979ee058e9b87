//! `config.json`, `generation_config.json` and the image processor's config, mirroring the
//! Hugging Face files. Both dialects are read: the native transformers one
//! (florence-community: `embed_dim`, `max_position_embeddings`, `image_token_id`) and the
//! original microsoft one (`dim_embed`, `image_pos_embed.max_pos_embeddings`,
//! `visual_temporal_embedding.max_temporal_embeddings`, no image token).

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

/// The model's `config.json`.
#[derive(Debug, Clone, PartialEq)]
pub struct Florence2Config {
    pub vision_config: VisionConfig,
    pub text_config: TextConfig,
    /// The `<image>` placeholder id of the native layout; `None` for the original layout,
    /// whose image features are simply put in front of the prompt's embeddings.
    pub image_token_id: Option<u32>,
}

/// DaViT and the multi-modal projector (`vision_config`).
#[derive(Debug, Clone, PartialEq)]
pub struct VisionConfig {
    pub in_channels: usize,
    pub depths: Vec<usize>,
    pub embed_dim: Vec<usize>,
    pub num_heads: Vec<usize>,
    pub num_groups: Vec<usize>,
    pub patch_size: Vec<usize>,
    pub patch_stride: Vec<usize>,
    pub patch_padding: Vec<usize>,
    pub patch_prenorm: Vec<bool>,
    pub window_size: usize,
    pub mlp_ratio: f64,
    pub qkv_bias: bool,
    pub projection_dim: usize,
    /// Rows/columns of the learned 2-D position table.
    pub max_position_embeddings: usize,
    /// Rows of the cosine temporal table.
    pub max_temporal_embeddings: usize,
}

/// The BART language model (`text_config`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub max_position_embeddings: usize,
    #[serde(default = "default_gelu")]
    pub activation_function: String,
    #[serde(default)]
    pub scale_embedding: bool,
    #[serde(default = "default_bos")]
    pub bos_token_id: u32,
    #[serde(default = "default_pad")]
    pub pad_token_id: u32,
    #[serde(default = "default_eos")]
    pub eos_token_id: u32,
    #[serde(default = "default_eos")]
    pub decoder_start_token_id: u32,
}

fn default_gelu() -> String {
    "gelu".into()
}
fn default_bos() -> u32 {
    0
}
fn default_pad() -> u32 {
    1
}
fn default_eos() -> u32 {
    2
}

/// LayerNorm epsilon of every norm in Florence-2 (PyTorch's default, used by both parts).
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// BART's learned positions start at row 2 (fairseq's padding offset).
pub const BART_POSITION_OFFSET: usize = 2;

impl Florence2Config {
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        const FILE: &str = "config.json";
        let root: Value =
            serde_json::from_slice(bytes).map_err(|e| Error::config(FILE, e.to_string()))?;
        let vision = root
            .get("vision_config")
            .ok_or_else(|| Error::config(FILE, "no `vision_config`"))?;
        let text = root
            .get("text_config")
            .ok_or_else(|| Error::config(FILE, "no `text_config`"))?;
        let text_config: TextConfig = serde_json::from_value(text.clone())
            .map_err(|e| Error::config(FILE, format!("text_config: {e}")))?;
        let vision_config = VisionConfig::from_value(vision, root.get("projection_dim"))?;
        let image_token_id =
            match root.get("image_token_id") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().and_then(|v| u32::try_from(v).ok()).ok_or_else(
                    || Error::config(FILE, format!("image_token_id {v} is not a token id")),
                )?),
            };
        let config = Florence2Config {
            vision_config,
            text_config,
            image_token_id,
        };
        config.validate()?;
        Ok(config)
    }

    /// Rejects configs the model cannot be built from (instead of panicking later on a
    /// division by zero or an impossible reshape).
    fn validate(&self) -> Result<()> {
        const FILE: &str = "config.json";
        let v = &self.vision_config;
        let stages = v.embed_dim.len();
        if stages == 0 {
            return Err(Error::config(FILE, "vision_config.embed_dim is empty"));
        }
        for (name, len) in [
            ("depths", v.depths.len()),
            ("num_heads", v.num_heads.len()),
            ("num_groups", v.num_groups.len()),
            ("patch_size", v.patch_size.len()),
            ("patch_stride", v.patch_stride.len()),
            ("patch_padding", v.patch_padding.len()),
            ("patch_prenorm", v.patch_prenorm.len()),
        ] {
            if len != stages {
                return Err(Error::config(
                    FILE,
                    format!("vision_config.{name} has {len} stages, embed_dim has {stages}"),
                ));
            }
        }
        for s in 0..stages {
            let dim = v.embed_dim[s];
            if dim == 0 || v.num_heads[s] == 0 || !dim.is_multiple_of(v.num_heads[s]) {
                return Err(Error::config(
                    FILE,
                    format!(
                        "stage {s}: embed_dim {dim} is not divisible by num_heads {}",
                        v.num_heads[s]
                    ),
                ));
            }
            if v.num_groups[s] == 0 || !dim.is_multiple_of(v.num_groups[s]) {
                return Err(Error::config(
                    FILE,
                    format!(
                        "stage {s}: embed_dim {dim} is not divisible by num_groups {}",
                        v.num_groups[s]
                    ),
                ));
            }
            if v.patch_size[s] == 0 || v.patch_stride[s] == 0 {
                return Err(Error::config(
                    FILE,
                    format!("stage {s}: patch size and stride must be positive"),
                ));
            }
        }
        if v.window_size == 0 || v.projection_dim == 0 || v.in_channels == 0 {
            return Err(Error::config(
                FILE,
                "window_size, projection_dim and in_channels must be positive",
            ));
        }
        if !(v.mlp_ratio > 0.0 && v.mlp_ratio.is_finite()) {
            return Err(Error::config(
                FILE,
                format!("mlp_ratio {} is not a positive number", v.mlp_ratio),
            ));
        }
        let t = &self.text_config;
        if t.activation_function != "gelu" {
            return Err(Error::config(
                FILE,
                format!(
                    "text_config.activation_function {:?} is not supported (only \"gelu\")",
                    t.activation_function
                ),
            ));
        }
        for (name, heads, ffn) in [
            ("encoder", t.encoder_attention_heads, t.encoder_ffn_dim),
            ("decoder", t.decoder_attention_heads, t.decoder_ffn_dim),
        ] {
            if heads == 0 || !t.d_model.is_multiple_of(heads) || ffn == 0 {
                return Err(Error::config(
                    FILE,
                    format!(
                        "text_config: d_model {} does not split into {heads} {name} heads (ffn {ffn})",
                        t.d_model
                    ),
                ));
            }
        }
        if t.vocab_size == 0 || t.d_model == 0 || t.max_position_embeddings == 0 {
            return Err(Error::config(
                FILE,
                "text_config: vocab_size, d_model and max_position_embeddings must be positive",
            ));
        }
        if v.projection_dim != t.d_model {
            return Err(Error::config(
                FILE,
                format!(
                    "vision projection_dim {} differs from text d_model {}",
                    v.projection_dim, t.d_model
                ),
            ));
        }
        for (name, id) in [
            ("bos_token_id", t.bos_token_id),
            ("eos_token_id", t.eos_token_id),
            ("pad_token_id", t.pad_token_id),
            ("decoder_start_token_id", t.decoder_start_token_id),
        ] {
            if id as usize >= t.vocab_size {
                return Err(Error::config(
                    FILE,
                    format!(
                        "text_config.{name} {id} is outside the vocabulary ({})",
                        t.vocab_size
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl VisionConfig {
    fn from_value(v: &Value, top_level_projection: Option<&Value>) -> Result<Self> {
        const FILE: &str = "config.json";
        let usizes = |keys: &[&str]| -> Result<Vec<usize>> {
            let (key, value) = first_of(v, keys).ok_or_else(|| {
                Error::config(FILE, format!("vision_config.{} is missing", keys[0]))
            })?;
            value
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|x| x.as_u64().and_then(|x| usize::try_from(x).ok()))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| {
                    Error::config(FILE, format!("vision_config.{key} is not a list of sizes"))
                })
        };
        let usize_or = |keys: &[&str], default: Option<usize>| -> Result<usize> {
            match first_of(v, keys) {
                Some((key, value)) => value
                    .as_u64()
                    .and_then(|x| usize::try_from(x).ok())
                    .ok_or_else(|| {
                        Error::config(FILE, format!("vision_config.{key} is not a size"))
                    }),
                None => default.ok_or_else(|| {
                    Error::config(FILE, format!("vision_config.{} is missing", keys[0]))
                }),
            }
        };
        let prenorm = match v.get("patch_prenorm") {
            Some(p) => p
                .as_array()
                .and_then(|a| a.iter().map(Value::as_bool).collect::<Option<Vec<_>>>())
                .ok_or_else(|| {
                    Error::config(
                        FILE,
                        "vision_config.patch_prenorm is not a list of booleans",
                    )
                })?,
            None => {
                return Err(Error::config(
                    FILE,
                    "vision_config.patch_prenorm is missing",
                ));
            }
        };
        let projection_dim = match (v.get("projection_dim"), top_level_projection) {
            (Some(p), _) | (None, Some(p)) => p
                .as_u64()
                .and_then(|x| usize::try_from(x).ok())
                .ok_or_else(|| Error::config(FILE, "projection_dim is not a size"))?,
            (None, None) => {
                return Err(Error::config(
                    FILE,
                    "vision_config.projection_dim is missing",
                ));
            }
        };
        Ok(VisionConfig {
            in_channels: usize_or(&["in_channels", "in_chans"], Some(3))?,
            depths: usizes(&["depths"])?,
            embed_dim: usizes(&["embed_dim", "dim_embed"])?,
            num_heads: usizes(&["num_heads"])?,
            num_groups: usizes(&["num_groups"])?,
            patch_size: usizes(&["patch_size"])?,
            patch_stride: usizes(&["patch_stride"])?,
            patch_padding: usizes(&["patch_padding"])?,
            patch_prenorm: prenorm,
            window_size: usize_or(&["window_size"], None)?,
            mlp_ratio: match v.get("mlp_ratio") {
                Some(r) => r.as_f64().ok_or_else(|| {
                    Error::config(FILE, "vision_config.mlp_ratio is not a number")
                })?,
                None => 4.0,
            },
            qkv_bias: match v.get("qkv_bias") {
                Some(b) => b.as_bool().ok_or_else(|| {
                    Error::config(FILE, "vision_config.qkv_bias is not a boolean")
                })?,
                None => true,
            },
            projection_dim,
            max_position_embeddings: usize_or(
                &[
                    "max_position_embeddings",
                    "image_pos_embed.max_pos_embeddings",
                ],
                Some(50),
            )?,
            max_temporal_embeddings: usize_or(
                &[
                    "max_temporal_embeddings",
                    "visual_temporal_embedding.max_temporal_embeddings",
                ],
                Some(100),
            )?,
        })
    }

    pub fn num_stages(&self) -> usize {
        self.embed_dim.len()
    }

    /// Hidden size of a stage's MLP (`int(dim * mlp_ratio)` as in Python).
    pub fn mlp_hidden(&self, stage: usize) -> usize {
        (self.embed_dim[stage] as f64 * self.mlp_ratio) as usize
    }
}

/// Looks a key up, where `a.b` means `v["a"]["b"]`; the first key present wins.
fn first_of<'a>(v: &'a Value, keys: &[&'a str]) -> Option<(&'a str, &'a Value)> {
    keys.iter().find_map(|key| {
        let mut node = v;
        for part in key.split('.') {
            node = node.get(part)?;
        }
        (!node.is_null()).then_some((*key, node))
    })
}

/// When beam search may stop: transformers' `early_stopping` (`true`, `false` or `"never"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EarlyStopping {
    /// Stop as soon as `num_beams` finished hypotheses exist.
    True,
    /// Stop when the best running beam can no longer beat the worst finished one at the
    /// current length (transformers' default).
    False,
    /// Like `False`, but with a positive length penalty assume the longest possible length.
    Never,
}

/// Decoding settings: the subset of transformers' `GenerationConfig` Florence-2 uses.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    pub decoder_start_token_id: u32,
    /// Stops a hypothesis; `None` generates exactly `max_new_tokens`.
    pub eos_token_id: Option<u32>,
    pub pad_token_id: u32,
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Option<u32>,
    pub max_new_tokens: usize,
    pub min_new_tokens: usize,
    pub num_beams: usize,
    pub no_repeat_ngram_size: usize,
    pub length_penalty: f32,
    pub early_stopping: EarlyStopping,
}

#[derive(Deserialize)]
struct GenerationConfigFile {
    decoder_start_token_id: Option<u32>,
    eos_token_id: Option<Value>,
    pad_token_id: Option<u32>,
    forced_bos_token_id: Option<u32>,
    forced_eos_token_id: Option<Value>,
    max_new_tokens: Option<usize>,
    min_new_tokens: Option<usize>,
    num_beams: Option<usize>,
    no_repeat_ngram_size: Option<usize>,
    length_penalty: Option<f32>,
    early_stopping: Option<Value>,
}

/// The most beams a search may keep, as the browser's runtime allows (`local/`): a beam search
/// holds a decoder cache and a copy of the sequence per beam, so an unbounded count is
/// unbounded memory and time. Checked by [`GenerationConfig::validate`], so it holds for
/// `generation_config.json`, `RunOptions` and every caller of the search alike.
pub const MAX_BEAMS: usize = 16;

impl GenerationConfig {
    /// transformers' defaults for a model with this text config and no generation config.
    pub fn defaults_for(text: &TextConfig) -> Self {
        GenerationConfig {
            decoder_start_token_id: text.decoder_start_token_id,
            eos_token_id: Some(text.eos_token_id),
            pad_token_id: text.pad_token_id,
            forced_bos_token_id: None,
            forced_eos_token_id: None,
            max_new_tokens: 20,
            min_new_tokens: 0,
            num_beams: 1,
            no_repeat_ngram_size: 0,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::False,
        }
    }

    /// Reads `generation_config.json` on top of [`GenerationConfig::defaults_for`].
    pub fn from_json(bytes: &[u8], text: &TextConfig) -> Result<Self> {
        const FILE: &str = "generation_config.json";
        let f: GenerationConfigFile =
            serde_json::from_slice(bytes).map_err(|e| Error::config(FILE, e.to_string()))?;
        let mut g = Self::defaults_for(text);
        // A list of ids (several EOS tokens) is valid in transformers; Florence-2 has one.
        let single_id = |v: &Value, key: &str| -> Result<Option<u32>> {
            match v {
                Value::Null => Ok(None),
                Value::Array(a) if a.len() == 1 => {
                    Ok(a[0].as_u64().and_then(|x| u32::try_from(x).ok()))
                }
                v => match v.as_u64().and_then(|x| u32::try_from(x).ok()) {
                    Some(id) => Ok(Some(id)),
                    None => Err(Error::config(
                        FILE,
                        format!("{key} {v} is not one token id"),
                    )),
                },
            }
        };
        if let Some(id) = f.decoder_start_token_id {
            g.decoder_start_token_id = id;
        }
        if let Some(v) = &f.eos_token_id {
            g.eos_token_id = single_id(v, "eos_token_id")?;
        }
        if let Some(id) = f.pad_token_id {
            g.pad_token_id = id;
        }
        g.forced_bos_token_id = f.forced_bos_token_id;
        if let Some(v) = &f.forced_eos_token_id {
            g.forced_eos_token_id = single_id(v, "forced_eos_token_id")?;
        }
        if let Some(n) = f.max_new_tokens {
            g.max_new_tokens = n;
        }
        if let Some(n) = f.min_new_tokens {
            g.min_new_tokens = n;
        }
        if let Some(n) = f.num_beams {
            g.num_beams = n;
        }
        if let Some(n) = f.no_repeat_ngram_size {
            g.no_repeat_ngram_size = n;
        }
        if let Some(p) = f.length_penalty {
            g.length_penalty = p;
        }
        if let Some(e) = &f.early_stopping {
            g.early_stopping = match e {
                Value::Bool(true) => EarlyStopping::True,
                Value::Bool(false) => EarlyStopping::False,
                Value::String(s) if s == "never" => EarlyStopping::Never,
                v => {
                    return Err(Error::config(
                        FILE,
                        format!("early_stopping {v} is not true, false or \"never\""),
                    ));
                }
            };
        }
        g.validate(text.vocab_size)?;
        Ok(g)
    }

    /// Checks the settings against the vocabulary before a generation starts.
    pub fn validate(&self, vocab_size: usize) -> Result<()> {
        const FILE: &str = "generation settings";
        if self.num_beams == 0 {
            return Err(Error::config(FILE, "num_beams must be at least 1"));
        }
        if self.num_beams > MAX_BEAMS {
            return Err(Error::config(
                FILE,
                format!("num_beams {} is more than {MAX_BEAMS}", self.num_beams),
            ));
        }
        if self.max_new_tokens == 0 {
            return Err(Error::config(FILE, "max_new_tokens must be at least 1"));
        }
        if !self.length_penalty.is_finite() {
            return Err(Error::config(FILE, "length_penalty must be finite"));
        }
        let ids = [
            ("decoder_start_token_id", Some(self.decoder_start_token_id)),
            ("eos_token_id", self.eos_token_id),
            ("pad_token_id", Some(self.pad_token_id)),
            ("forced_bos_token_id", self.forced_bos_token_id),
            ("forced_eos_token_id", self.forced_eos_token_id),
        ];
        for (name, id) in ids {
            if let Some(id) = id
                && id as usize >= vocab_size
            {
                return Err(Error::config(
                    FILE,
                    format!("{name} {id} is outside the vocabulary ({vocab_size})"),
                ));
            }
        }
        Ok(())
    }
}

/// The image processor's settings (`processor_config.json` → `image_processor`, or
/// `preprocessor_config.json`): CLIPImageProcessor without center crop.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessorConfig {
    pub height: u32,
    pub width: u32,
    pub do_resize: bool,
    pub rescale_factor: f32,
    pub image_mean: [f32; 3],
    pub image_std: [f32; 3],
}

impl Default for ImageProcessorConfig {
    /// Florence-2's: 768×768 bicubic, 1/255, ImageNet mean and std.
    fn default() -> Self {
        ImageProcessorConfig {
            height: 768,
            width: 768,
            do_resize: true,
            rescale_factor: 1.0 / 255.0,
            image_mean: [0.485, 0.456, 0.406],
            image_std: [0.229, 0.224, 0.225],
        }
    }
}

impl ImageProcessorConfig {
    /// Reads either file: `processor_config.json` nests the settings under `image_processor`.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        const FILE: &str = "processor config";
        let root: Value =
            serde_json::from_slice(bytes).map_err(|e| Error::config(FILE, e.to_string()))?;
        let v = root.get("image_processor").unwrap_or(&root);
        let mut c = ImageProcessorConfig::default();
        if let Some(size) = v.get("size") {
            let dim = |k: &str| {
                size.get(k)
                    .and_then(Value::as_u64)
                    .and_then(|x| u32::try_from(x).ok())
            };
            match (dim("height"), dim("width")) {
                (Some(h), Some(w)) if h > 0 && w > 0 => (c.height, c.width) = (h, w),
                _ => {
                    return Err(Error::config(
                        FILE,
                        format!("size {size} is not {{height, width}}"),
                    ));
                }
            }
        }
        if v.get("do_center_crop").and_then(Value::as_bool) == Some(true) {
            return Err(Error::config(
                FILE,
                "do_center_crop is not supported (Florence-2 does not crop)",
            ));
        }
        if let Some(r) = v.get("resample").and_then(Value::as_u64)
            && r != 3
        {
            return Err(Error::config(
                FILE,
                format!("resample {r} is not supported (only 3, bicubic)"),
            ));
        }
        if let Some(b) = v.get("do_resize").and_then(Value::as_bool) {
            c.do_resize = b;
        }
        if let Some(f) = v.get("rescale_factor").and_then(Value::as_f64) {
            c.rescale_factor = f as f32;
        }
        let triple = |k: &str| -> Result<Option<[f32; 3]>> {
            match v.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(a) => a
                    .as_array()
                    .filter(|a| a.len() == 3)
                    .and_then(|a| {
                        Some([
                            a[0].as_f64()? as f32,
                            a[1].as_f64()? as f32,
                            a[2].as_f64()? as f32,
                        ])
                    })
                    .map(Some)
                    .ok_or_else(|| Error::config(FILE, format!("{k} is not three numbers"))),
            }
        };
        if let Some(m) = triple("image_mean")? {
            c.image_mean = m;
        }
        if let Some(s) = triple("image_std")? {
            if s.contains(&0.0) {
                return Err(Error::config(FILE, "image_std has a zero"));
            }
            c.image_std = s;
        }
        Ok(c)
    }
}
