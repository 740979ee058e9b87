//! From results to a COCO document. Boxes become `bbox` annotations; masks and OCR quads also
//! carry their outline as `segmentation`; OCR text travels as `utf8_string` (as COCO-Text
//! does); categories are the labels, shared by name, numbered in order of first appearance
//! (OCR regions are category `text`, unlabelled shapes `region`).

use std::collections::HashMap;

use serde_json::{Map, json};

use crate::coco::document::{Annotation, Category, Coco, Image, Info};
use crate::coco::shapes::{ShapeKind, shapes};
use crate::result::{Florence2Result, Source};

/// The two places a COCO document goes, which differ in two points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CocoStyle {
    /// The demo's export of one answer: a text answer becomes a COCO-captions annotation
    /// (`{id, image_id, caption}`), boxes carry no `segmentation`.
    Export,
    /// A dataset of many pictures (`florence2 label`), for training tools: every annotation is
    /// an object annotation with a `segmentation` (a box's is its rectangle, as COCO's own
    /// files have), and a text answer goes on its image entry as `caption`, so a tool that
    /// indexes annotations by `category_id` never meets one without.
    Dataset,
}

/// Builds one document image by image; ids count from 1 in the order images are added.
#[derive(Debug, Clone)]
pub struct CocoBuilder {
    style: CocoStyle,
    doc: Coco,
    category_ids: HashMap<String, u64>,
}

impl CocoBuilder {
    pub fn new(info: Info, style: CocoStyle) -> CocoBuilder {
        CocoBuilder {
            style,
            doc: Coco {
                info,
                ..Coco::default()
            },
            category_ids: HashMap::new(),
        }
    }

    /// Adds the picture `file_name` and the annotations of its `result`; returns its image id.
    pub fn add(&mut self, file_name: &str, result: &Florence2Result) -> u64 {
        let image_id = self.doc.images.len() as u64 + 1;
        let mut image = Image {
            id: image_id,
            file_name: file_name.to_owned(),
            width: result.image.width,
            height: result.image.height,
            caption: None,
            extra: Map::new(),
        };
        let found = shapes(&result.entities);
        for shape in &found {
            let category = match shape.kind {
                ShapeKind::Quad(_) => "text",
                _ if shape.label.is_empty() => "region",
                _ => shape.label.as_str(),
            };
            let category_id = self.category(category);
            let b = shape.bounds;
            let mut a = Annotation::new(self.doc.annotations.len() as u64 + 1, image_id);
            a.category_id = Some(category_id);
            a.bbox = Some([b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1]);
            a.area = Some(shape.area);
            a.iscrowd = Some(0);
            a.segmentation = match &shape.kind {
                ShapeKind::Box(r) if self.style == CocoStyle::Dataset => {
                    Some(json!([[r.x1, r.y1, r.x2, r.y1, r.x2, r.y2, r.x1, r.y2]]))
                }
                ShapeKind::Box(_) => None,
                ShapeKind::Quad(q) => Some(json!([q])),
                ShapeKind::Polygon(rings) => Some(json!(rings)),
            };
            if matches!(shape.kind, ShapeKind::Quad(_)) {
                a.utf8_string = Some(shape.label.clone());
            }
            self.doc.annotations.push(a);
        }
        if found.is_empty() && !result.text.is_empty() {
            match self.style {
                CocoStyle::Export => {
                    let mut a = Annotation::new(self.doc.annotations.len() as u64 + 1, image_id);
                    a.caption = Some(result.text.clone());
                    self.doc.annotations.push(a);
                }
                CocoStyle::Dataset => image.caption = Some(result.text.clone()),
            }
        }
        self.doc.images.push(image);
        image_id
    }

    fn category(&mut self, name: &str) -> u64 {
        if let Some(&id) = self.category_ids.get(name) {
            return id;
        }
        let id = self.doc.categories.len() as u64 + 1;
        self.doc.categories.push(Category {
            id,
            name: name.to_owned(),
            extra: Map::new(),
        });
        self.category_ids.insert(name.to_owned(), id);
        id
    }

    pub fn finish(self) -> Coco {
        self.doc
    }
}

/// The demo's export: the document of one answer about the picture `file_name`.
pub fn single_image(result: &Florence2Result, file_name: &str) -> Coco {
    let info = Info {
        description: format!(
            "Florence-2 {} answer ({}), exported by florence2-web",
            result.task,
            source_name(result.source)
        ),
        extra: Map::new(),
    };
    let mut builder = CocoBuilder::new(info, CocoStyle::Export);
    builder.add(file_name, result);
    builder.finish()
}

/// How a source is named in a document's description.
pub fn source_name(source: Source) -> &'static str {
    match source {
        Source::Endpoint => "NVIDIA's endpoint",
        Source::Local => "local model",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::region::ImageSize;
    use crate::result::Entities;

    fn result(task: &str, text: &str, entities: Entities) -> Florence2Result {
        Florence2Result {
            task: task.into(),
            text: text.into(),
            entities,
            image: ImageSize::new(640, 480),
            source: Source::Local,
            usage: None,
        }
    }

    fn od(labels: &[&str]) -> Florence2Result {
        result(
            "<OD>",
            "",
            Entities {
                bboxes: Some(vec![[10.0, 20.0, 110.0, 70.0]; labels.len()]),
                labels: Some(labels.iter().map(|l| l.to_string()).collect()),
                ..Default::default()
            },
        )
    }

    #[test]
    fn the_export_of_one_answer_keeps_its_shape() {
        let doc = serde_json::to_value(single_image(&od(&["car"]), "street.jpg")).unwrap();
        assert_eq!(
            doc,
            json!({
                "info": { "description": "Florence-2 <OD> answer (local model), exported by florence2-web" },
                "images": [{ "id": 1, "file_name": "street.jpg", "width": 640, "height": 480 }],
                "categories": [{ "id": 1, "name": "car" }],
                "annotations": [{ "id": 1, "image_id": 1, "category_id": 1,
                                  "bbox": [10.0, 20.0, 100.0, 50.0], "area": 5000.0, "iscrowd": 0 }],
            })
        );
    }

    #[test]
    fn a_dataset_shares_categories_across_images_and_outlines_every_box() {
        let mut b = CocoBuilder::new(Info::default(), CocoStyle::Dataset);
        assert_eq!(b.add("a.jpg", &od(&["car", "dog"])), 1);
        assert_eq!(b.add("b.jpg", &od(&["dog", "cat"])), 2);
        let doc = b.finish();
        let names: Vec<_> = doc
            .categories
            .iter()
            .map(|c| (c.id, c.name.as_str()))
            .collect();
        assert_eq!(names, [(1, "car"), (2, "dog"), (3, "cat")]);
        let refs: Vec<_> = doc
            .annotations
            .iter()
            .map(|a| (a.id, a.image_id, a.category_id))
            .collect();
        assert_eq!(
            refs,
            [
                (1, 1, Some(1)),
                (2, 1, Some(2)),
                (3, 2, Some(2)),
                (4, 2, Some(3))
            ]
        );
        assert_eq!(
            doc.annotations[0].segmentation,
            Some(json!([[10.0, 20.0, 110.0, 20.0, 110.0, 70.0, 10.0, 70.0]]))
        );
    }

    #[test]
    fn text_answers_go_where_the_style_says() {
        let caption = result("<CAPTION>", "A dog in a field.", Entities::default());
        let doc = serde_json::to_value(single_image(&caption, "x.png")).unwrap();
        assert_eq!(
            doc["annotations"],
            json!([{ "id": 1, "image_id": 1, "caption": "A dog in a field." }])
        );
        let mut b = CocoBuilder::new(Info::default(), CocoStyle::Dataset);
        b.add("x.png", &caption);
        let doc = b.finish();
        assert!(doc.annotations.is_empty());
        assert_eq!(doc.images[0].caption.as_deref(), Some("A dog in a field."));
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["images"][0]["caption"], "A dog in a field.");
        let nothing = serde_json::to_value(single_image(&od(&[]), "x.png")).unwrap();
        assert_eq!(
            nothing["annotations"],
            json!([]),
            "nothing found, nothing made up"
        );
        assert_eq!(nothing["images"][0].get("caption"), None::<&Value>);
    }

    #[test]
    fn ocr_regions_are_text_with_their_string() {
        let r = result(
            "<OCR_WITH_REGION>",
            "",
            Entities {
                quad_boxes: Some(vec![[0.0, 0.0, 40.0, 0.0, 40.0, 10.0, 0.0, 10.0]]),
                labels: Some(vec!["EXIT".into()]),
                ..Default::default()
            },
        );
        let doc = single_image(&r, "sign.png");
        assert_eq!(doc.categories[0].name, "text");
        let a = &doc.annotations[0];
        assert_eq!(a.utf8_string.as_deref(), Some("EXIT"));
        assert_eq!(a.bbox, Some([0.0, 0.0, 40.0, 10.0]));
        assert_eq!(
            a.segmentation,
            Some(json!([[0.0, 0.0, 40.0, 0.0, 40.0, 10.0, 0.0, 10.0]]))
        );
    }
}
