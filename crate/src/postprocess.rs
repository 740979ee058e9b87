//! Post-processing of the model's generated text into entities, exactly as transformers'
//! `Florence2Processor.post_process_generation` does it — with one deliberate difference:
//! coordinates stay floats, `(bin + 0.5) * size / 1000`, as the hosted endpoint returns them
//! (transformers truncates them to integers).
//!
//! transformers works with Python regular expressions including look-aheads; the look-ahead
//! parts are written out by hand here (`phrase_before`), the rest uses `regex-lite`.
//! Known deviation: Python's `\d` also matches non-ASCII digits; here `<loc_N>` takes ASCII
//! digits only (the tokenizer's location tokens are ASCII).

use std::sync::OnceLock;

use regex_lite::Regex;
use serde_json::{Value, json};

use crate::error::{Error, ErrorCode, Result};
use crate::region::{ImageSize, dequantize};
use crate::result::Entities;
use crate::task::{AnswerKind, Task};

/// Phrases that phrase grounding drops: the list of transformers' Florence-2 conversion
/// script (`processor_config.json`, `phrase_grounding.banned_grounding_tokens`).
pub const BANNED_GROUNDING_PHRASES: &[&str] = &[
    "it",
    "I",
    "me",
    "mine",
    "you",
    "your",
    "yours",
    "he",
    "him",
    "his",
    "she",
    "her",
    "hers",
    "they",
    "them",
    "their",
    "theirs",
    "one",
    "oneself",
    "we",
    "us",
    "our",
    "ours",
    "its",
    "myself",
    "yourself",
    "himself",
    "herself",
    "itself",
    "ourselves",
    "yourselves",
    "themselves",
    "this",
    "that",
    "these",
    "those",
    "who",
    "whom",
    "whose",
    "which",
    "what",
    "all",
    "another",
    "any",
    "anybody",
    "anyone",
    "anything",
    "each",
    "everybody",
    "everyone",
    "everything",
    "few",
    "many",
    "nobody",
    "none",
    "several",
    "some",
    "somebody",
    "someone",
    "something",
    "each other",
    "one another",
    "the image",
    "image",
    "images",
    "the",
    "a",
    "an",
    "a group",
    "other objects",
    "lots",
    "a set",
];

/// The post-processed answer of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub task: Task,
    /// For text tasks the answer itself; for the others the generated text without
    /// `<s>`, `</s>` and `<pad>`.
    pub text: String,
    pub entities: Entities,
}

/// Parses `generated` (decoded with special tokens kept) for `task` on an image of `size`
/// (the size the coordinates should refer to).
pub fn post_process(task: Task, generated: &str, size: ImageSize) -> Result<Answer> {
    if size.width == 0 || size.height == 0 {
        return Err(Error::new(
            ErrorCode::PostProcess,
            format!(
                "cannot place coordinates on a {}x{} image",
                size.width, size.height
            ),
        ));
    }
    let cleaned = without_sentence_tokens(generated);
    let mut entities = Entities::default();
    let text = match task.answer_kind() {
        AnswerKind::PureText => generated
            .replace("<s>", "")
            .replace("</s>", "")
            .trim_matches(py_isspace)
            .to_owned(),
        kind => {
            match kind {
                AnswerKind::DescriptionWithBboxes
                | AnswerKind::Bboxes
                | AnswerKind::PhraseGrounding => {
                    let mode = match kind {
                        AnswerKind::Bboxes => BoxMode::EmptyPhrase,
                        AnswerKind::PhraseGrounding => BoxMode::Grounding,
                        _ => BoxMode::Description,
                    };
                    let (bboxes, labels) = description_with_bboxes(&cleaned, size, mode)
                        .into_iter()
                        .unzip();
                    entities.bboxes = Some(bboxes);
                    entities.labels = Some(labels);
                }
                AnswerKind::Ocr => {
                    let (quads, labels) = ocr(&cleaned, size).into_iter().unzip();
                    entities.quad_boxes = Some(quads);
                    entities.labels = Some(labels);
                }
                AnswerKind::Polygons => {
                    let (polygons, labels) = description_with_polygons(&cleaned, size, true)
                        .into_iter()
                        .unzip();
                    entities.polygons = Some(polygons);
                    entities.labels = Some(labels);
                }
                AnswerKind::DescriptionWithBboxesOrPolygons => {
                    if generated.contains("<poly>") {
                        let (polygons, labels) = description_with_polygons(&cleaned, size, false)
                            .into_iter()
                            .unzip();
                        entities.polygons = Some(polygons);
                        entities.polygons_labels = Some(labels);
                        entities.bboxes = Some(Vec::new());
                        entities.bboxes_labels = Some(Vec::new());
                    } else {
                        let (bboxes, labels) =
                            description_with_bboxes(&cleaned, size, BoxMode::Description)
                                .into_iter()
                                .unzip();
                        entities.bboxes = Some(bboxes);
                        entities.bboxes_labels = Some(labels);
                        entities.polygons = Some(Vec::new());
                        entities.polygons_labels = Some(Vec::new());
                    }
                }
                AnswerKind::PureText => unreachable!("handled by the outer match"),
            }
            cleaned.trim_matches(py_isspace).to_owned()
        }
    };
    Ok(Answer {
        task,
        text,
        entities,
    })
}

impl Answer {
    /// The dictionary transformers' `post_process_generation` returns, `{task: answer}`; with
    /// `truncate` coordinates are cut to integers as native transformers does.
    pub fn to_transformers_value(&self, truncate: bool) -> Value {
        let coords = |v: &[f64]| -> Value {
            if truncate {
                json!(v.iter().map(|c| c.trunc() as i64).collect::<Vec<_>>())
            } else {
                json!(v)
            }
        };
        let e = &self.entities;
        let mut map = serde_json::Map::new();
        if let Some(b) = &e.bboxes {
            map.insert(
                "bboxes".into(),
                Value::Array(b.iter().map(|b| coords(b)).collect()),
            );
        }
        if let Some(l) = &e.bboxes_labels {
            map.insert("bboxes_labels".into(), json!(l));
        }
        if let Some(q) = &e.quad_boxes {
            map.insert(
                "quad_boxes".into(),
                Value::Array(q.iter().map(|q| coords(q)).collect()),
            );
        }
        if let Some(p) = &e.polygons {
            let polys = p
                .iter()
                .map(|inst| Value::Array(inst.iter().map(|ring| coords(ring)).collect()))
                .collect();
            map.insert("polygons".into(), Value::Array(polys));
        }
        if let Some(l) = &e.polygons_labels {
            map.insert("polygons_labels".into(), json!(l));
        }
        if let Some(l) = &e.labels {
            map.insert("labels".into(), json!(l));
        }
        let answer = if self.task.answer_kind() == AnswerKind::PureText {
            Value::String(self.text.clone())
        } else {
            Value::Object(map)
        };
        json!({ self.task.token(): answer })
    }
}

#[derive(Clone, Copy, PartialEq)]
enum BoxMode {
    /// `<OD>`, `<DENSE_REGION_CAPTION>`: a phrase before each group of boxes.
    Description,
    /// `<REGION_PROPOSAL>`: boxes without phrases.
    EmptyPhrase,
    /// Phrase grounding: like `Description`, dropping banned phrases.
    Grounding,
}

const BOX_STOPS: &[&str] = &[
    "<od>", "</od>", "<box>", "</box>", "<bbox>", "</bbox>", "<loc_",
];
const POLYGON_STOPS: &[&str] = &[
    "<od>", "</od>", "<box>", "</box>", "<bbox>", "</bbox>", "<loc_", "<poly>",
];

fn regex(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    // The patterns are constants of this file, checked by the tests: compiling cannot fail.
    cell.get_or_init(|| Regex::new(pattern).expect("constant pattern"))
}

fn description_with_bboxes(text: &str, size: ImageSize, mode: BoxMode) -> Vec<([f64; 4], String)> {
    static WITH_PHRASE: OnceLock<Regex> = OnceLock::new();
    static WITHOUT_PHRASE: OnceLock<Regex> = OnceLock::new();
    static BOX: OnceLock<Regex> = OnceLock::new();
    let phrases = match mode {
        BoxMode::EmptyPhrase => regex(&WITHOUT_PHRASE, r"(?:<loc_[0-9]+>){4,}"),
        _ => regex(&WITH_PHRASE, r"[^<]+(?:<loc_[0-9]+>){4,}"),
    };
    let box_re = regex(
        &BOX,
        r"<loc_([0-9]+)><loc_([0-9]+)><loc_([0-9]+)><loc_([0-9]+)>",
    );
    let mut out = Vec::new();
    for m in phrases.find_iter(text) {
        let phrase_text = m
            .as_str()
            .replacen("<ground>", "", 1)
            .replacen("<obj>", "", 1);
        let Some(phrase) = phrase_before(&phrase_text, BOX_STOPS) else {
            continue;
        };
        let phrase = phrase.trim_matches(py_isspace);
        if mode == BoxMode::Grounding && BANNED_GROUNDING_PHRASES.contains(&phrase) {
            continue;
        }
        let label: String = phrase.chars().filter(char::is_ascii).collect();
        for c in box_re.captures_iter(&phrase_text) {
            let bin = |i: usize| parse_bin(&c[i]);
            let bbox = [
                dequantize(bin(1), size.width),
                dequantize(bin(2), size.height),
                dequantize(bin(3), size.width),
                dequantize(bin(4), size.height),
            ];
            out.push((bbox, label.clone()));
        }
    }
    out
}

fn ocr(text: &str, size: ImageSize) -> Vec<([f64; 8], String)> {
    static OCR: OnceLock<Regex> = OnceLock::new();
    let re = regex(
        &OCR,
        r"(.+?)<loc_([0-9]+)><loc_([0-9]+)><loc_([0-9]+)><loc_([0-9]+)><loc_([0-9]+)><loc_([0-9]+)><loc_([0-9]+)><loc_([0-9]+)>",
    );
    re.captures_iter(text)
        .map(|c| {
            let mut quad = [0.0; 8];
            for (i, q) in quad.iter_mut().enumerate() {
                let side = if i % 2 == 0 { size.width } else { size.height };
                *q = dequantize(parse_bin(&c[i + 2]), side);
            }
            (quad, c[1].trim_matches(py_isspace).to_owned())
        })
        .collect()
}

fn description_with_polygons(
    text: &str,
    size: ImageSize,
    allow_empty_phrase: bool,
) -> Vec<(Vec<Vec<f64>>, String)> {
    static WITH_PHRASE: OnceLock<Regex> = OnceLock::new();
    static WITHOUT_PHRASE: OnceLock<Regex> = OnceLock::new();
    static LEADING_LOC: OnceLock<Regex> = OnceLock::new();
    static POLY_INSTANCE: OnceLock<Regex> = OnceLock::new();
    static RING: OnceLock<Regex> = OnceLock::new();
    static LOC: OnceLock<Regex> = OnceLock::new();
    let phrases = if allow_empty_phrase {
        regex(
            &WITHOUT_PHRASE,
            r"(?:<loc_[0-9]+>|<sep>|<poly>|</poly>){4,}",
        )
    } else {
        regex(
            &WITH_PHRASE,
            r"[^<]+(?:<loc_[0-9]+>|<sep>|<poly>|</poly>){4,}",
        )
    };
    let leading_loc = regex(&LEADING_LOC, r"^<loc_[0-9]+>");
    let poly_instance = regex(&POLY_INSTANCE, r"<poly>(.*?)</poly>");
    let ring_re = regex(&RING, r"((?:<loc_[0-9]+>)+)(?:<sep>|$)");
    let loc_re = regex(&LOC, r"<loc_([0-9]+)>");

    let mut out = Vec::new();
    for m in phrases.find_iter(text) {
        let phrase_text = m.as_str();
        let stripped = leading_loc.replace(phrase_text, "");
        if stripped.is_empty() && !allow_empty_phrase {
            continue;
        }
        let Some(phrase) = phrase_before(&stripped, POLYGON_STOPS) else {
            continue;
        };
        let phrase = phrase.trim_matches(py_isspace).to_owned();
        let instances: Vec<&str> =
            if phrase_text.contains("<poly>") && phrase_text.contains("</poly>") {
                poly_instance
                    .captures_iter(phrase_text)
                    .filter_map(|c| c.get(1).map(|g| g.as_str()))
                    .collect()
            } else {
                vec![phrase_text]
            };
        for instance in instances {
            let rings: Vec<Vec<f64>> = ring_re
                .captures_iter(instance)
                .map(|c| {
                    let mut bins: Vec<u64> = loc_re
                        .captures_iter(&c[1])
                        .map(|l| parse_bin(&l[1]))
                        .collect();
                    if bins.len() % 2 == 1 {
                        bins.pop();
                    }
                    bins.iter()
                        .enumerate()
                        .map(|(i, &b)| {
                            dequantize(b, if i % 2 == 0 { size.width } else { size.height })
                        })
                        .collect()
                })
                .collect();
            if !rings.is_empty() {
                out.push((rings, phrase.clone()));
            }
        }
    }
    out
}

/// Python's `re.search(r"^\s*(.*?)(?=STOP1|STOP2|…)", s).group()`: leading whitespace plus
/// everything up to the first stop token, or `None` when no stop token follows on the same
/// line (`.` does not match a newline).
fn phrase_before<'a>(s: &'a str, stops: &[&str]) -> Option<&'a str> {
    let start = s.find(|c: char| !py_isspace(c)).unwrap_or(s.len());
    let rest = &s[start..];
    let stop = stops.iter().filter_map(|t| rest.find(t)).min()?;
    if rest[..stop].contains('\n') {
        return None;
    }
    Some(&s[..start + stop])
}

/// Python's `str.isspace()` for one character (also what `\s` and `strip()` use).
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

/// A bin as Python's `int()` reads it; absurdly long digit strings saturate instead of
/// overflowing (they only come from a broken model and land far outside the image either way).
fn parse_bin(digits: &str) -> u64 {
    digits.parse().unwrap_or(u64::MAX)
}

fn without_sentence_tokens(text: &str) -> String {
    text.replace("<s>", "")
        .replace("</s>", "")
        .replace("<pad>", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    const VGA: ImageSize = ImageSize {
        width: 640,
        height: 480,
    };

    fn pp(task: &str, text: &str) -> Value {
        post_process(Task::from_token(task).unwrap(), text, VGA)
            .unwrap()
            .to_transformers_value(true)
    }

    #[test]
    fn od_keeps_float_coordinates() {
        let a = post_process(
            Task::ObjectDetection,
            "</s><s>car<loc_52><loc_332><loc_932><loc_774></s>",
            VGA,
        )
        .unwrap();
        let b = a.entities.bboxes.unwrap()[0];
        let expect = [52.5 * 0.64, 332.5 * 0.48, 932.5 * 0.64, 774.5 * 0.48];
        for (x, y) in b.iter().zip(expect) {
            assert!((x - y).abs() < 1e-9, "{b:?}");
        }
        assert_eq!(a.entities.labels.unwrap(), ["car"]);
        assert!(a.entities.quad_boxes.is_none() && a.entities.polygons.is_none());
        assert_eq!(a.text, "car<loc_52><loc_332><loc_932><loc_774>");
    }

    #[test]
    fn grounding_drops_banned_phrases_and_repeats_labels() {
        let v = pp(
            "<CAPTION_TO_PHRASE_GROUNDING>",
            "</s><s>the<loc_1><loc_2><loc_3><loc_4>A dog<loc_1><loc_2><loc_3><loc_4><loc_5><loc_6><loc_7><loc_8></s>",
        );
        assert_eq!(
            v["<CAPTION_TO_PHRASE_GROUNDING>"]["labels"],
            json!(["A dog", "A dog"])
        );
        assert_eq!(
            v["<CAPTION_TO_PHRASE_GROUNDING>"]["bboxes"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn phrases_need_a_stop_token_on_the_same_line() {
        assert_eq!(phrase_before("  cat<loc_1>", BOX_STOPS), Some("  cat"));
        assert_eq!(phrase_before("\n cat<loc_1>", BOX_STOPS), Some("\n cat"));
        assert_eq!(phrase_before("ca\nt<loc_1>", BOX_STOPS), None);
        assert_eq!(phrase_before("cat", BOX_STOPS), None);
        assert_eq!(phrase_before("<poly>x", POLYGON_STOPS), Some(""));
    }

    #[test]
    fn labels_lose_non_ascii_characters_like_transformers() {
        let v = pp("<OD>", "café 東京<loc_1><loc_2><loc_3><loc_4>");
        assert_eq!(v["<OD>"]["labels"], json!(["caf "]));
    }

    #[test]
    fn polygons_split_on_sep_and_drop_odd_coordinates() {
        let v = pp(
            "<REFERRING_EXPRESSION_SEGMENTATION>",
            "<loc_100><loc_100><loc_200><loc_100><loc_200><sep><loc_10><loc_20><loc_30><loc_40></s>",
        );
        let polys = &v["<REFERRING_EXPRESSION_SEGMENTATION>"]["polygons"];
        assert_eq!(polys, &json!([[[64, 48, 128, 48], [6, 9, 19, 19]]]));
    }

    #[test]
    fn open_vocabulary_fills_both_kinds() {
        let v = pp(
            "<OPEN_VOCABULARY_DETECTION>",
            "car<loc_1><loc_2><loc_3><loc_4>",
        );
        assert_eq!(
            v,
            json!({"<OPEN_VOCABULARY_DETECTION>": {"bboxes": [[0, 1, 2, 2]], "bboxes_labels": ["car"], "polygons": [], "polygons_labels": []}})
        );
        let v = pp(
            "<OPEN_VOCABULARY_DETECTION>",
            "car<poly><loc_1><loc_2><loc_3><loc_4><loc_5><loc_6></poly>",
        );
        assert_eq!(
            v["<OPEN_VOCABULARY_DETECTION>"]["polygons_labels"],
            json!(["car"])
        );
        assert_eq!(v["<OPEN_VOCABULARY_DETECTION>"]["bboxes"], json!([]));
    }

    #[test]
    fn zero_sized_images_are_typed_errors() {
        let e = post_process(Task::ObjectDetection, "x", ImageSize::new(0, 5)).unwrap_err();
        assert_eq!(e.code, ErrorCode::PostProcess);
    }

    #[test]
    fn huge_bins_do_not_panic() {
        let v = pp(
            "<OD>",
            "x<loc_99999999999999999999999><loc_2><loc_3><loc_4>",
        );
        assert!(v["<OD>"]["bboxes"][0][0].as_i64().unwrap() > 0);
    }
}
