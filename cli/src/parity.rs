//! `florence2 parity`: every golden tensor of a folder like `florence2-tiny/` (made by
//! `gen_golden.py` from transformers) that this crate knows how to produce, recomputed from
//! the folder's own checkpoint and compared: for values, max absolute error ≤ 1e-4 or, for
//! tensors with large values, ≤ 5e-6 of the golden's largest magnitude; equality for ids.

use std::collections::BTreeMap;
use std::io::{Read, Seek};

use burn::tensor::{Device, Tensor, TensorData};

use florence2_burn::decode::image::RgbImage;
use florence2_burn::error::{Error, Result};
use florence2_burn::load::config::{
    EarlyStopping, Florence2Config, GenerationConfig, ImageProcessorConfig,
};
use florence2_burn::safetensors_file::SafetensorsFile;
use florence2_burn::{Florence2Model, values};

/// The absolute bar for every golden value tensor (f32 vs f64 logits differ by ~2e-5 here).
pub const TOLERANCE: f32 = 1e-4;

/// The relative bar: the error over the golden's largest magnitude. Deeper stacks than the
/// tiny model reach |x| ≈ 250, where f32 rounding alone (a few ulp of 250 ≈ 1.5e-5 each)
/// passes 1e-4 after summation in another order; 5e-6 of the largest value is still far
/// below anything a wrong kernel produces.
pub const RELATIVE_TOLERANCE: f32 = 5e-6;

/// One compared item.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Max absolute error of a value tensor, the same over the golden's largest magnitude,
    /// and whether either is within its bar.
    Values {
        max_abs_err: f32,
        max_rel_err: f32,
        ok: bool,
    },
    /// Token ids: equal or not (with both sides for the message).
    Ids { ours: Vec<i64>, golden: Vec<i64> },
    /// A failure with its reason (shape mismatch, missing input, …).
    Failed(String),
    /// Present in the golden file but not something this crate produces.
    Skipped(String),
}

impl Outcome {
    pub fn ok(&self) -> bool {
        match self {
            Outcome::Values { ok, .. } => *ok,
            Outcome::Ids { ours, golden } => ours == golden,
            Outcome::Failed(_) => false,
            Outcome::Skipped(_) => true,
        }
    }
}

/// Named outcomes, in the order they were checked.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub items: Vec<(String, Outcome)>,
}

impl Report {
    pub fn passed(&self) -> bool {
        !self.items.is_empty() && self.items.iter().all(|(_, o)| o.ok())
    }

    pub fn push(&mut self, name: impl Into<String>, outcome: Outcome) {
        self.items.push((name.into(), outcome));
    }

    /// One line per item: name, measure, verdict.
    pub fn lines(&self) -> Vec<String> {
        self.items
            .iter()
            .map(|(name, o)| {
                let verdict = if o.ok() { "ok" } else { "FAIL" };
                match o {
                    Outcome::Values {
                        max_abs_err,
                        max_rel_err,
                        ..
                    } => format!(
                        "{name:<40} max_abs_err {max_abs_err:.3e}  rel {max_rel_err:.3e}  {verdict}"
                    ),
                    Outcome::Ids { ours, golden } if ours == golden => {
                        format!("{name:<40} ids identical ({})  {verdict}", ours.len())
                    }
                    Outcome::Ids { ours, golden } => {
                        format!("{name:<40} ids differ: ours {ours:?} golden {golden:?}  {verdict}")
                    }
                    Outcome::Failed(why) => format!("{name:<40} {why}  {verdict}"),
                    Outcome::Skipped(why) => format!("{name:<40} skipped: {why}"),
                }
            })
            .collect()
    }
}

/// Compares `ours` with `golden` (same shape required): within [`TOLERANCE`] absolute or
/// [`RELATIVE_TOLERANCE`] of the golden's largest magnitude.
pub fn compare(
    ours: &[f32],
    our_shape: &[usize],
    golden: &[f32],
    golden_shape: &[usize],
) -> Outcome {
    if our_shape != golden_shape {
        return Outcome::Failed(format!("shape {our_shape:?}, golden {golden_shape:?}"));
    }
    let max_abs_err = ours
        .iter()
        .zip(golden)
        .map(|(a, b)| (a - b).abs())
        // A NaN anywhere is kept (`max` would drop it at the next element).
        .fold(0.0f32, |m, e| {
            if m.is_nan() || e.is_nan() {
                f32::NAN
            } else {
                m.max(e)
            }
        });
    let largest = golden.iter().fold(0.0f32, |m, g| m.max(g.abs()));
    let max_rel_err = if largest > 0.0 {
        max_abs_err / largest
    } else {
        max_abs_err
    };
    Outcome::Values {
        max_abs_err,
        max_rel_err,
        // NaN compares false, so a NaN anywhere fails both.
        ok: max_abs_err <= TOLERANCE || max_rel_err <= RELATIVE_TOLERANCE,
    }
}

/// The golden tensors, read on demand.
struct Golden<R> {
    file: SafetensorsFile<R>,
}

impl<R: Read + Seek> Golden<R> {
    fn f32(&mut self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = self.file.read_f32(name)?;
        Ok((t.shape, t.values))
    }

    fn ids(&mut self, name: &str) -> Result<Vec<i64>> {
        Ok(self.file.read_i64(name)?.1)
    }
}

/// Runs every check of a golden folder. `config`, `checkpoint` and `golden` are the folder's
/// `config.json`, `model.safetensors` and `golden.safetensors`.
pub fn run<R: Read + Seek, G: Read + Seek>(
    config: &[u8],
    checkpoint: R,
    golden: G,
    device: &Device,
) -> Result<Report> {
    let config = Florence2Config::from_json(config)?;
    let model = Florence2Model::load(config.clone(), checkpoint, device)?;
    let mut golden = Golden {
        file: SafetensorsFile::open(golden)?,
    };
    let mut report = Report::default();
    // What each golden tensor is, for the ones produced below.
    let mut produced: BTreeMap<String, (Vec<usize>, Vec<f32>)> = BTreeMap::new();

    // Preprocessing: the golden image is already the model's input size (no resize).
    let (img_shape, img) = golden.file.read_i64("image_u8_hwc")?;
    let [h, w, 3] = img_shape[..] else {
        return Err(Error::Input(format!(
            "image_u8_hwc has shape {img_shape:?}, expected [H, W, 3]"
        )));
    };
    let rgb = RgbImage::new(
        w as u32,
        h as u32,
        img.iter().map(|&v| v.clamp(0, 255) as u8).collect(),
    )?;
    let no_resize = ImageProcessorConfig {
        do_resize: false,
        ..ImageProcessorConfig::default()
    };
    let ours = rgb.pixel_values(&no_resize)?;
    produced.insert("pixel_values".into(), (vec![1, 3, h, w], ours));

    // Vision tower on the golden pixel values, with every intermediate.
    let (pv_shape, pv) = golden.f32("pixel_values")?;
    let pixel_values: Tensor<4> = tensor(pv, &pv_shape, device)?;
    let mut recorded: Vec<(String, Tensor<4>)> = Vec::new();
    let mut record = |name: String, t: &Tensor<4>| recorded.push((name, t.clone()));
    let vision = model.vision_features(pixel_values, Some(&mut record))?;
    for (name, t) in recorded {
        produced.insert(name, grab(&t)?);
    }
    produced.insert("vision.last_hidden_state".into(), grab(&vision)?);
    let image_features = model.image_features(vision)?;
    produced.insert("image_features".into(), grab(&image_features)?);

    // Encoder input: the native layout's placeholders, or (original layout) features first.
    let inputs_embeds = match config.image_token_id {
        Some(_) => model
            .inputs_embeds_with_placeholders(image_features, &to_u32(&golden.ids("input_ids")?)?)?,
        None => model.inputs_embeds(
            image_features,
            &to_u32(&golden.ids("text_only_input_ids")?)?,
        )?,
    };
    if golden.file.contains("attention_mask")
        && golden.ids("attention_mask")?.iter().any(|&m| m != 1)
    {
        report.push(
            "attention_mask",
            Outcome::Failed("padding (a mask with zeros) is not supported".into()),
        );
    }
    produced.insert("inputs_embeds".into(), grab(&inputs_embeds)?);
    let mut enc_states: Vec<Tensor<3>> = Vec::new();
    let mut record_enc = |_: usize, t: &Tensor<3>| enc_states.push(t.clone());
    let encoder_hidden = model.encode(inputs_embeds, Some(&mut record_enc))?;
    for (i, t) in enc_states.into_iter().enumerate() {
        produced.insert(format!("encoder.hidden_states.{i}"), grab(&t)?);
    }
    produced.insert("encoder.last_hidden_state".into(), grab(&encoder_hidden)?);

    // Decoder on the golden decoder input (one causal pass, no cache reuse).
    let decoder_ids = to_u32(&golden.ids("decoder_input_ids")?)?;
    let mut cache = model.decoder_cache(&encoder_hidden);
    let mut dec_states: Vec<Tensor<3>> = Vec::new();
    let mut record_dec = |_: usize, t: &Tensor<3>| dec_states.push(t.clone());
    let decoder_hidden = model.decode(&decoder_ids, 1, &mut cache, Some(&mut record_dec))?;
    for (i, t) in dec_states.into_iter().enumerate() {
        produced.insert(format!("decoder.hidden_states.{i}"), grab(&t)?);
    }
    produced.insert("decoder.last_hidden_state".into(), grab(&decoder_hidden)?);
    let logits = model.logits(decoder_hidden);
    produced.insert("logits".into(), grab(&logits)?);

    // Generation, with the settings gen_golden.py used for each golden.
    let text = &config.text_config;
    let base = GenerationConfig::defaults_for(text);
    let vocab = text.vocab_size;
    let mut id_checks: Vec<(&str, GenerationConfig)> = Vec::new();
    if golden.file.contains("greedy_ids") {
        let n = golden.ids("greedy_ids")?.len().saturating_sub(1);
        // Plain argmax for exactly n steps: no processors, no stop at EOS.
        id_checks.push((
            "greedy_ids",
            GenerationConfig {
                eos_token_id: None,
                max_new_tokens: n,
                ..base.clone()
            },
        ));
    }
    if golden.file.contains("generate_ids") {
        let n = golden.ids("generate_ids")?.len().saturating_sub(1);
        id_checks.push((
            "generate_ids",
            GenerationConfig {
                max_new_tokens: n,
                min_new_tokens: n,
                ..base.clone()
            },
        ));
    }
    if golden.file.contains("beam3_ngram3_ids") {
        let n = golden.ids("beam3_ngram3_ids")?.len().saturating_sub(1);
        id_checks.push((
            "beam3_ngram3_ids",
            GenerationConfig {
                max_new_tokens: n,
                min_new_tokens: n,
                num_beams: 3,
                no_repeat_ngram_size: 3,
                length_penalty: 1.0,
                early_stopping: EarlyStopping::True,
                ..base.clone()
            },
        ));
    }
    for (name, cfg) in id_checks {
        let mut step_logits: Vec<f32> = Vec::new();
        let mut on_logits = |l: &[f32]| step_logits.extend_from_slice(l);
        let ids = model.generate(&encoder_hidden, &cfg, Some(&mut on_logits))?;
        report.push(
            name,
            Outcome::Ids {
                ours: ids.iter().map(|&i| i as i64).collect(),
                golden: golden.ids(name)?,
            },
        );
        if name == "greedy_ids" {
            let steps = step_logits.len() / vocab;
            produced.insert(
                "greedy_step_logits".into(),
                (vec![1, steps, vocab], step_logits),
            );
        }
    }

    // Compare everything produced with its golden, in the golden file's order of names.
    let inputs = [
        "image_u8_hwc",
        "input_ids",
        "text_only_input_ids",
        "attention_mask",
        "decoder_input_ids",
    ];
    let names: Vec<String> = golden.file.names().map(str::to_owned).collect();
    for name in names {
        if inputs.contains(&name.as_str()) || report.items.iter().any(|(n, _)| *n == name) {
            continue;
        }
        match produced.get(&name) {
            Some((shape, ours)) => {
                let (gshape, g) = golden.f32(&name)?;
                report.push(name, compare(ours, shape, &g, &gshape));
            }
            None => report.push(name, Outcome::Skipped("not produced by this crate".into())),
        }
    }
    Ok(report)
}

fn grab<const D: usize>(t: &Tensor<D>) -> Result<(Vec<usize>, Vec<f32>)> {
    Ok((t.dims().to_vec(), values(t.clone())?))
}

fn tensor<const D: usize>(values: Vec<f32>, shape: &[usize], device: &Device) -> Result<Tensor<D>> {
    if shape.len() != D {
        return Err(Error::Input(format!(
            "golden tensor has shape {shape:?}, expected rank {D}"
        )));
    }
    Ok(Tensor::from_data(
        TensorData::new(values, shape.to_vec()),
        device,
    ))
}

fn to_u32(ids: &[i64]) -> Result<Vec<u32>> {
    ids.iter()
        .map(|&i| {
            u32::try_from(i)
                .map_err(|_| Error::Input(format!("token id {i} is negative or too large")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_pass_on_absolute_or_relative_error() {
        let shape = [3];
        // Small values: only the absolute bar can pass them.
        assert!(compare(&[0.5, 1.0, -2.0], &shape, &[0.5, 1.00009, -2.0], &shape).ok());
        assert!(!compare(&[0.5, 1.0, -2.0], &shape, &[0.5, 1.0002, -2.0], &shape).ok());
        // Largest magnitude 250: 1e-3 is 4e-6 of it (passes), 1e-2 is 4e-5 (fails).
        assert!(compare(&[250.001, 1.0, 0.0], &shape, &[250.0, 1.0, 0.0], &shape).ok());
        assert!(compare(&[250.0, 1.001, 0.0], &shape, &[250.0, 1.0, 0.0], &shape).ok());
        let Outcome::Values {
            max_abs_err,
            max_rel_err,
            ok,
        } = compare(&[250.0, 1.01, 0.0], &shape, &[250.0, 1.0, 0.0], &shape)
        else {
            panic!("values expected");
        };
        assert!(!ok);
        assert!((max_abs_err - 0.01).abs() < 1e-4);
        assert!((max_rel_err - 4e-5).abs() < 1e-6);
        // NaN and shape mismatches fail.
        assert!(!compare(&[f32::NAN, 1.0, 0.0], &shape, &[250.0, 1.0, 0.0], &shape).ok());
        assert!(!compare(&[250.0, f32::NAN, 0.0], &shape, &[250.0, 1.0, 0.0], &shape).ok());
        assert!(!compare(&[1.0, 1.0], &[2], &[1.0, 1.0, 1.0], &shape).ok());
    }
}
