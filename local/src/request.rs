//! What a local run asks for (`Florence2Local.run`'s options, less the image and the signal),
//! checked and turned into the model's task, prompt text and generation config.

use florence2::region::{Region, loc_tokens};
use florence2::task::TextKind;
use florence2::{Error, ErrorCode, ImageSize, Result, Task};
use florence2_burn::GenerationConfig;
use serde::Deserialize;

/// `{ task, text?, region?, beams?, maxNewTokens?, minNewTokens?, noRepeatNgramSize? }`, as the worker
/// passes it on (JSON).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunRequest {
    pub task: String,
    #[serde(default)]
    pub text: Option<String>,
    /// Pixels of the image, as `regionToLoc` takes them.
    #[serde(default)]
    pub region: Option<Region>,
    #[serde(default)]
    pub beams: Option<f64>,
    #[serde(default)]
    pub max_new_tokens: Option<f64>,
    #[serde(default)]
    pub min_new_tokens: Option<f64>,
    #[serde(default)]
    pub no_repeat_ngram_size: Option<f64>,
}

/// A request checked against its image: the task, the text the model sees (a region turned
/// into four `<loc_…>` tokens by the model's own quantisation) and the generation config.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub task: Task,
    pub text: Option<String>,
    pub generation: GenerationConfig,
}

impl RunRequest {
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json)
            .map_err(|e| Error::new(ErrorCode::BadOption, format!("run options: {e}")))
    }

    /// Checks the request for an image of `size` against the model's `defaults` (the
    /// checkpoint's generation config) and decoder positions.
    pub fn plan(
        &self,
        size: ImageSize,
        defaults: &GenerationConfig,
        max_positions: usize,
    ) -> Result<Plan> {
        let task = Task::from_token(&self.task)?;
        let text = match (&self.region, self.text.as_deref()) {
            (Some(_), Some(_)) => {
                return Err(Error::new(
                    ErrorCode::BadOption,
                    "give either region or text, not both",
                ));
            }
            (Some(region), None) => {
                if task.text_kind() != TextKind::Region {
                    return Err(Error::new(
                        ErrorCode::TextNotAllowed,
                        format!("{} takes no region", task.token()),
                    ));
                }
                Some(loc_tokens(&region.to_model_bins(size)?))
            }
            (None, text) => text.filter(|t| !t.is_empty()).map(str::to_owned),
        };
        let mut generation = defaults.clone();
        if let Some(beams) = self.beams {
            generation.num_beams = count(beams, "beams", 1, 16)?;
        }
        if let Some(n) = self.max_new_tokens {
            generation.max_new_tokens = count(n, "maxNewTokens", 1, max_positions)?;
        }
        if let Some(n) = self.min_new_tokens {
            generation.min_new_tokens = count(n, "minNewTokens", 0, max_positions)?;
        }
        if let Some(n) = self.no_repeat_ngram_size {
            generation.no_repeat_ngram_size = count(n, "noRepeatNgramSize", 0, 16)?;
        }
        Ok(Plan {
            task,
            text,
            generation,
        })
    }
}

/// A whole number in `min..=max`, or a typed error naming the option.
fn count(value: f64, name: &str, min: usize, max: usize) -> Result<usize> {
    if value.fract() == 0.0 && value >= min as f64 && value <= max as f64 {
        Ok(value as usize)
    } else {
        Err(Error::new(
            ErrorCode::BadOption,
            format!("{name} must be a whole number from {min} to {max}, not {value}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> GenerationConfig {
        GenerationConfig {
            decoder_start_token_id: 2,
            eos_token_id: Some(2),
            pad_token_id: 1,
            forced_bos_token_id: Some(0),
            forced_eos_token_id: Some(2),
            max_new_tokens: 1024,
            min_new_tokens: 0,
            num_beams: 3,
            no_repeat_ngram_size: 3,
            length_penalty: 1.0,
            early_stopping: florence2_burn::EarlyStopping::True,
        }
    }

    fn plan(json: &str) -> Result<Plan> {
        RunRequest::from_json(json)?.plan(ImageSize::new(640, 480), &defaults(), 1024)
    }

    #[test]
    fn the_checkpoint_config_is_the_default_and_options_override_it() {
        let p = plan(r#"{"task":"<OD>"}"#).unwrap();
        assert_eq!(
            (p.task, p.text, p.generation),
            (Task::ObjectDetection, None, defaults())
        );
        let p =
            plan(r#"{"task":"<OD>","beams":1,"maxNewTokens":20,"minNewTokens":20,"noRepeatNgramSize":0}"#).unwrap();
        assert_eq!(p.generation.num_beams, 1);
        assert_eq!(p.generation.max_new_tokens, 20);
        assert_eq!(p.generation.no_repeat_ngram_size, 0);
        assert_eq!(p.generation.min_new_tokens, 20);
    }

    #[test]
    fn a_region_becomes_the_model_s_loc_tokens() {
        let p = plan(
            r#"{"task":"<REGION_TO_DESCRIPTION>","region":{"x1":64,"y1":48,"x2":320,"y2":240}}"#,
        )
        .unwrap();
        assert_eq!(
            p.text.as_deref(),
            Some("<loc_100><loc_100><loc_500><loc_500>")
        );
        let p = plan(r#"{"task":"<REGION_TO_DESCRIPTION>","text":"<loc_1><loc_2><loc_3><loc_4>"}"#)
            .unwrap();
        assert_eq!(p.text.as_deref(), Some("<loc_1><loc_2><loc_3><loc_4>"));
    }

    #[test]
    fn bad_options_get_typed_codes() {
        let code = |json: &str| plan(json).unwrap_err().code;
        assert_eq!(code(r#"{"task":"<NOPE>"}"#), ErrorCode::UnknownTask);
        assert_eq!(code(r#"{"task":"<OD>","beams":0}"#), ErrorCode::BadOption);
        assert_eq!(code(r#"{"task":"<OD>","beams":1.5}"#), ErrorCode::BadOption);
        assert_eq!(
            code(r#"{"task":"<OD>","maxNewTokens":5000}"#),
            ErrorCode::BadOption
        );
        assert_eq!(
            code(r#"{"task":"<OD>","colour":"red"}"#),
            ErrorCode::BadOption
        );
        assert_eq!(
            code(r#"{"task":"<OD>","region":{"x1":0,"y1":0,"x2":9,"y2":9}}"#),
            ErrorCode::TextNotAllowed
        );
        assert_eq!(
            code(r#"{"task":"<REGION_TO_CATEGORY>","region":{"x1":9,"y1":0,"x2":1,"y2":9}}"#),
            ErrorCode::BadRegion
        );
        assert_eq!(
            code(
                r#"{"task":"<REGION_TO_CATEGORY>","region":{"x1":0,"y1":0,"x2":9,"y2":9},"text":"a"}"#
            ),
            ErrorCode::BadOption
        );
    }
}
