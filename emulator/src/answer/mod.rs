//! The emulator's "model": for each task, the text Florence-2 would generate (task answers with
//! `<loc_…>` tokens), made up from the coarse scene of the image, then post-processed by the
//! same code as the real result path (`florence2::post_process`) into NVCF's `entities`.
//! Coordinates therefore follow the model's rules and always lie inside the submitted image.

mod colour;
mod scene;

use florence2::region::{ImageSize, quantize};
use florence2::{Entities, Prompt, PromptInput, Task, post_process};
use image::RgbImage;
use serde::Serialize;

use self::colour::{Colour, position};
use self::scene::{Region, Scene, mean_rgb};

/// The image part of the prompt: 577 positions of the model's encoder output.
const IMAGE_TOKENS: u64 = 577;

/// One answer: what goes into `choices[0].message` and `usage`.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `<TASK>` followed by the answer text, as NVCF's `content`.
    pub content: String,
    pub entities: Entities,
    pub usage: Usage,
    /// Whether the task draws (and so the archive carries an overlay).
    pub draws: bool,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Usage {
    pub completion_tokens: u64,
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}

/// Answers `prompt` about `image`. Fails only for a task the endpoint does not offer.
pub fn answer(prompt: &Prompt, image: &RgbImage) -> Result<Answer, String> {
    let task = prompt.task;
    if !task.on_endpoint() {
        return Err(format!("{task} is not offered by this function"));
    }
    let scene = Scene::analyse(image);
    let generated = format!("</s><s>{}</s>", generate(prompt, &scene, image));
    let size = ImageSize::new(scene.width, scene.height);
    let processed = post_process(task, &generated, size).map_err(|e| e.to_string())?;
    let completion_tokens = token_count(&generated);
    let prompt_tokens = IMAGE_TOKENS + token_count(&prompt.model_prompt());
    Ok(Answer {
        content: format!("{}{}", task.token(), processed.text),
        entities: processed.entities,
        usage: Usage {
            completion_tokens,
            prompt_tokens,
            total_tokens: completion_tokens + prompt_tokens,
        },
        draws: florence2::answer_archive::draws_overlay(task),
    })
}

/// A rough token count: words and location tokens.
fn token_count(text: &str) -> u64 {
    let locs = text.matches("<loc_").count();
    let words = text
        .split(|c: char| c.is_whitespace() || c == '<')
        .filter(|w| !w.is_empty() && !w.starts_with("loc_"))
        .count();
    (locs + words) as u64
}

fn generate(prompt: &Prompt, scene: &Scene, image: &RgbImage) -> String {
    let regions = &scene.regions;
    let (w, h) = (scene.width, scene.height);
    let locs = |bounds: [u32; 4]| loc_tokens(&bins(bounds, w, h));
    let text = match &prompt.input {
        PromptInput::Text(t) => t.replace(['<', '>'], ""),
        _ => String::new(),
    };
    let named = |r: &Region| format!("{} {}", r.colour.word(), r.colour.thing());
    match prompt.task {
        Task::Caption => caption(scene),
        Task::DetailedCaption => detailed_caption(scene),
        Task::MoreDetailedCaption => more_detailed_caption(scene),
        Task::ObjectDetection => regions
            .iter()
            .map(|r| format!("{}{}", r.colour.thing(), locs(r.bounds)))
            .collect(),
        Task::DenseRegionCaption => regions
            .iter()
            .map(|r| format!("{}{}", named(r), locs(r.bounds)))
            .collect(),
        Task::RegionProposal => regions.iter().map(|r| locs(r.bounds)).collect(),
        Task::CaptionToPhraseGrounding => phrases(&text)
            .iter()
            .enumerate()
            .map(|(i, p)| {
                format!(
                    "{p}{}",
                    locs(scene.find(p).unwrap_or(&regions[i % regions.len()]).bounds)
                )
            })
            .collect(),
        Task::ReferringExpressionSegmentation => {
            let region = scene.find(&text).unwrap_or(&regions[0]);
            octagon(bins(region.bounds, w, h))
        }
        Task::RegionToSegmentation => octagon(bins(input_box(prompt, w, h), w, h)),
        Task::OpenVocabularyDetection => {
            let matches: Vec<&Region> = regions
                .iter()
                .filter(|r| scene_mentions(&text, r))
                .collect();
            let matches = if matches.is_empty() {
                vec![&regions[0]]
            } else {
                matches
            };
            matches
                .iter()
                .map(|r| format!("{text}{}", locs(r.bounds)))
                .collect()
        }
        Task::RegionToCategory => {
            let bounds = input_box(prompt, w, h);
            format!(
                "{}{}",
                Colour::name(mean_rgb(image, bounds)).thing(),
                locs(bounds)
            )
        }
        Task::RegionToDescription => {
            let bounds = input_box(prompt, w, h);
            let colour = Colour::name(mean_rgb(image, bounds));
            format!("{} {}{}", colour.word(), colour.thing(), locs(bounds))
        }
        Task::Ocr => {
            let words: Vec<String> = regions
                .iter()
                .map(|r| r.colour.thing().to_ascii_uppercase())
                .collect();
            format!("{} {w}X{h}", words.join(" "))
        }
        Task::OcrWithRegion => regions
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let label = r.colour.thing().to_ascii_uppercase();
                let label = if i == 0 {
                    format!("{label} {w}X{h}")
                } else {
                    label
                };
                let [x0, y0, x1, y1] = bins(r.bounds, w, h);
                format!("{label}{}", loc_tokens(&[x0, y0, x1, y0, x1, y1, x0, y1]))
            })
            .collect(),
        // Refused by answer() before generating.
        Task::RegionToOcr => String::new(),
    }
}

fn scene_mentions(text: &str, region: &Region) -> bool {
    let text = text.to_ascii_lowercase();
    text.split(|c: char| !c.is_ascii_alphabetic())
        .any(|w| w == region.colour.word() || w == region.colour.thing())
}

fn caption(scene: &Scene) -> String {
    match &scene.regions[..] {
        [] => "An empty picture.".to_owned(),
        [only] => format!(
            "A picture of a {} {}.",
            only.colour.word(),
            only.colour.thing()
        ),
        [first, second, ..] => format!(
            "A {} {} next to a {} {}.",
            first.colour.word(),
            first.colour.thing(),
            second.colour.word(),
            second.colour.thing()
        ),
    }
}

fn detailed_caption(scene: &Scene) -> String {
    let mut sentences = vec![format!("The image is mostly {}.", scene.dominant().word())];
    for r in scene.regions.iter().take(3) {
        sentences.push(format!(
            "There is a {} {} in the {} of the image.",
            r.colour.word(),
            r.colour.thing(),
            position(r.bounds, scene.width, scene.height)
        ));
    }
    sentences.join(" ")
}

fn more_detailed_caption(scene: &Scene) -> String {
    let mut sentences = vec![format!(
        "The image is {} pixels wide and {} pixels tall.",
        scene.width, scene.height
    )];
    for r in &scene.regions {
        let [x0, y0, x1, y1] = r.bounds;
        sentences.push(format!(
            "A {} {} fills the {} part, {} by {} pixels.",
            r.colour.word(),
            r.colour.thing(),
            position(r.bounds, scene.width, scene.height),
            x1 - x0,
            y1 - y0
        ));
    }
    sentences.push(format!(
        "Overall the picture looks {}.",
        scene.dominant().word()
    ));
    sentences.join(" ")
}

/// The phrases of a caption: split at commas and "and", at most six.
fn phrases(text: &str) -> Vec<String> {
    text.split([',', ';', '.'])
        .flat_map(|part| part.split(" and "))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .take(6)
        .map(str::to_owned)
        .collect()
}

/// Pixel bounds (x1, y1 exclusive) to the model's location bins.
fn bins([x0, y0, x1, y1]: [u32; 4], w: u32, h: u32) -> [u32; 4] {
    let q = |v: u32, side: u32| quantize(f64::from(v), side);
    [q(x0, w), q(y0, h), q(x1, w), q(y1, h)]
}

/// The region a region task was given, back in pixels by the endpoint's rule (bin / 999).
fn input_box(prompt: &Prompt, w: u32, h: u32) -> [u32; 4] {
    let PromptInput::Region([a, b, c, d]) = prompt.input else {
        return [0, 0, w, h];
    };
    let px =
        |bin: u32, side: u32| ((f64::from(bin) / 999.0 * f64::from(side)).round() as u32).min(side);
    let (x0, y0) = (px(a, w).min(w - 1), px(b, h).min(h - 1));
    [x0, y0, px(c, w).max(x0 + 1), px(d, h).max(y0 + 1)]
}

/// An octagon inside a box of bins, as the location tokens of one polygon.
fn octagon([x0, y0, x1, y1]: [u32; 4]) -> String {
    let (qx, qy) = ((x1 - x0) / 4, (y1 - y0) / 4);
    loc_tokens(&[
        x0 + qx,
        y0,
        x1 - qx,
        y0,
        x1,
        y0 + qy,
        x1,
        y1 - qy,
        x1 - qx,
        y1,
        x0 + qx,
        y1,
        x0,
        y1 - qy,
        x0,
        y0 + qy,
    ])
}

fn loc_tokens(bins: &[u32]) -> String {
    florence2::region::loc_tokens(bins)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    fn two_halves() -> RgbImage {
        RgbImage::from_fn(200, 100, |x, _| {
            if x < 100 {
                Rgb([20, 40, 220])
            } else {
                Rgb([30, 200, 40])
            }
        })
    }

    fn inside(coords: &[f64], w: f64, h: f64) -> bool {
        coords
            .chunks(2)
            .all(|p| p[0] >= 0.0 && p[0] <= w && p[1] >= 0.0 && p[1] <= h)
    }

    #[test]
    fn every_endpoint_task_answers_inside_the_image() {
        let img = two_halves();
        for &task in Task::ENDPOINT {
            let text = match task.text_kind() {
                florence2::TextKind::None => None,
                florence2::TextKind::Required => Some("a blue sky and a green tree"),
                florence2::TextKind::Region => Some("<loc_100><loc_100><loc_600><loc_900>"),
            };
            let prompt = Prompt::new(task, text).unwrap();
            let a = answer(&prompt, &img).unwrap();
            assert!(a.content.starts_with(task.token()), "{task}: {}", a.content);
            let e = &a.entities;
            for b in e.bboxes.iter().flatten() {
                assert!(
                    inside(b, 200.0, 100.0) && b[0] < b[2] && b[1] < b[3],
                    "{task}: {b:?}"
                );
            }
            for q in e.quad_boxes.iter().flatten() {
                assert!(inside(q, 200.0, 100.0), "{task}: {q:?}");
            }
            for ring in e.polygons.iter().flatten().flatten() {
                assert!(
                    ring.len() >= 6 && inside(ring, 200.0, 100.0),
                    "{task}: {ring:?}"
                );
            }
            assert_eq!(a.draws, !e.is_empty(), "{task}");
            assert_eq!(
                a.usage.total_tokens,
                a.usage.prompt_tokens + a.usage.completion_tokens
            );
        }
    }

    #[test]
    fn answers_follow_the_image() {
        let img = two_halves();
        let od = answer(&Prompt::new(Task::ObjectDetection, None).unwrap(), &img).unwrap();
        let mut labels = od.entities.labels.clone().unwrap();
        labels.sort();
        assert_eq!(labels, ["sky", "tree"]);
        let ovd = answer(
            &Prompt::new(Task::OpenVocabularyDetection, Some("green tree")).unwrap(),
            &img,
        )
        .unwrap();
        let boxes = ovd.entities.bboxes.unwrap();
        assert_eq!(boxes.len(), 1);
        assert!(
            boxes[0][0] >= 99.0,
            "the green half is on the right: {boxes:?}"
        );
        assert_eq!(ovd.entities.bboxes_labels.unwrap(), ["green tree"]);
        let cat = answer(
            &Prompt::new(
                Task::RegionToCategory,
                Some("<loc_0><loc_0><loc_400><loc_999>"),
            )
            .unwrap(),
            &img,
        )
        .unwrap();
        assert!(
            cat.content.starts_with("<REGION_TO_CATEGORY>sky<loc_"),
            "{}",
            cat.content
        );
        let more = answer(&Prompt::new(Task::MoreDetailedCaption, None).unwrap(), &img).unwrap();
        assert!(
            more.content.contains("200 pixels wide and 100 pixels tall"),
            "{}",
            more.content
        );
    }

    #[test]
    fn region_to_ocr_is_refused() {
        let p = Prompt::new(Task::RegionToOcr, Some("<loc_1><loc_1><loc_5><loc_5>")).unwrap();
        assert!(answer(&p, &two_halves()).is_err());
    }
}
