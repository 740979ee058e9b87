//! `florence2 e2e`: each case of a folder like `florence2-tiny-e2e/` (made by `gen_e2e.py`
//! from transformers' processor, `generate` and post-processing) run through the whole local
//! pipeline — image file, preprocessing, prompt, beam and greedy generation, decoding,
//! post-processing — and compared step by step.

use std::io::Cursor;

use florence2::Task;
use serde::Deserialize;
use serde_json::Value;

use crate::parity::{Outcome, Report, compare};
use florence2_burn::decode::image::RgbImage;
use florence2_burn::decode::pipeline::{Florence2, RunOptions};
use florence2_burn::error::{Error, Result};
use florence2_burn::load::config::{EarlyStopping, ImageProcessorConfig};
use florence2_burn::safetensors_file::SafetensorsFile;

#[derive(Deserialize)]
struct GoldenFile {
    image: String,
    #[serde(default)]
    generation: String,
    cases: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct Case {
    text_input: String,
    prompt_ids_after_image_tokens: Vec<u32>,
    n_image_tokens: usize,
    beam3_ids: Vec<u32>,
    greedy_ids: Vec<u32>,
    decoded: String,
    post_processed: Value,
}

/// Runs every case of `golden_e2e.json`; `read` returns a file of the folder by name.
pub fn run(model: &Florence2, read: &dyn Fn(&str) -> Result<Vec<u8>>) -> Result<Report> {
    let golden: GoldenFile = serde_json::from_slice(&read("golden_e2e.json")?)
        .map_err(|e| Error::Input(format!("golden_e2e.json: {e}")))?;
    let image = RgbImage::decode(&read(&golden.image)?)?;
    let mut report = Report::default();

    // Preprocessing against the processor's own pixel values, when the folder has them: the
    // bar is one intensity step (what the ids are known to be stable under).
    if let Ok(bytes) = read("golden_e2e.safetensors") {
        let mut file = SafetensorsFile::open(Cursor::new(bytes))?;
        let g = file.read_f32("pixel_values")?;
        let c = &model.image_processor;
        let ours = image.pixel_values(c)?;
        let shape = [1, 3, c.height as usize, c.width as usize];
        let outcome = match compare(&ours, &shape, &g.values, &g.shape) {
            Outcome::Values {
                max_abs_err,
                max_rel_err,
                ..
            } => Outcome::Values {
                max_abs_err,
                max_rel_err,
                ok: max_abs_err <= one_intensity_step(c),
            },
            other => other,
        };
        report.push("pixel_values (≤ one intensity step)", outcome);
    }

    // The generation settings gen_e2e.py passed to `generate` (on top of the folder's
    // generation_config.json): beams and n-gram size for beam search, the new-token budget.
    let setting =
        |key: &str, default: usize| number_after(&golden.generation, key).unwrap_or(default);
    let max_new_tokens = setting("max_new_tokens=", 24);
    let beam = RunOptions {
        num_beams: Some(setting("num_beams=", 3)),
        max_new_tokens: Some(max_new_tokens),
    };
    let greedy = RunOptions {
        num_beams: Some(1),
        max_new_tokens: Some(max_new_tokens),
    };

    for (task_token, case) in &golden.cases {
        let case: Case = serde_json::from_value(case.clone())
            .map_err(|e| Error::Input(format!("case {task_token}: {e}")))?;
        let task = Task::from_token(task_token)?;
        let text = (!case.text_input.is_empty()).then_some(case.text_input.as_str());
        let golden_ids = |ids: &[u32]| ids.iter().map(|&i| i as i64).collect::<Vec<_>>();

        let beam_out = {
            let mut with_ngram = model.generation_config(beam);
            with_ngram.no_repeat_ngram_size = setting("no_repeat_ngram_size=", 3);
            with_ngram.early_stopping = EarlyStopping::True;
            model.run_with(&image, task, text, with_ngram)?
        };
        report.push(
            format!("{task_token} prompt ids"),
            Outcome::Ids {
                ours: golden_ids(&beam_out.prompt_ids),
                golden: golden_ids(&case.prompt_ids_after_image_tokens),
            },
        );
        report.push(
            format!("{task_token} image tokens"),
            Outcome::Ids {
                ours: vec![beam_out.image_tokens as i64],
                golden: vec![case.n_image_tokens as i64],
            },
        );
        report.push(
            format!("{task_token} beam ids"),
            Outcome::Ids {
                ours: golden_ids(&beam_out.generated_ids),
                golden: golden_ids(&case.beam3_ids),
            },
        );
        report.push(
            format!("{task_token} decoded"),
            if beam_out.decoded == case.decoded {
                Outcome::Ids {
                    ours: vec![],
                    golden: vec![],
                }
            } else {
                Outcome::Failed(format!(
                    "decoded {:?}, golden {:?}",
                    beam_out.decoded, case.decoded
                ))
            },
        );
        // transformers truncates coordinates to integers; ours are floats (compare truncated).
        let ours = beam_out.answer.to_transformers_value(true);
        report.push(
            format!("{task_token} post-processed"),
            if ours == case.post_processed {
                Outcome::Ids {
                    ours: vec![],
                    golden: vec![],
                }
            } else {
                Outcome::Failed(format!("ours {ours}, golden {}", case.post_processed))
            },
        );

        let mut greedy_cfg = model.generation_config(greedy);
        greedy_cfg.no_repeat_ngram_size = 0;
        let greedy_out = model.run_with(&image, task, text, greedy_cfg)?;
        report.push(
            format!("{task_token} greedy ids"),
            Outcome::Ids {
                ours: golden_ids(&greedy_out.generated_ids),
                golden: golden_ids(&case.greedy_ids),
            },
        );
    }
    Ok(report)
}

/// 1/255 of the smallest std: one 8-bit step after normalisation.
fn one_intensity_step(c: &ImageProcessorConfig) -> f32 {
    c.rescale_factor / c.image_std.iter().copied().fold(f32::INFINITY, f32::min)
}

/// The number after `key` in a description like `num_beams=3, max_new_tokens=24`.
fn number_after(text: &str, key: &str) -> Option<usize> {
    let rest = &text[text.find(key)? + key.len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
