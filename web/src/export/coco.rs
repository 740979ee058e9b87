//! COCO-style annotations of one result: the shapes as drawn (same labels, same pairing), so
//! what a person sees is what a tool reads. Boxes become `bbox` annotations, masks and OCR
//! quads also carry their outline as `segmentation`, OCR text travels as `utf8_string` (as
//! COCO-Text does), and a text answer (caption, region description, plain OCR) becomes a
//! COCO-captions annotation.

use florence2::Florence2Result;
use serde_json::{Value, json};

use crate::scene::{Geometry, Layer, Scene};

/// The COCO document for `result`, drawn as `scene`, about the picture `file_name`.
pub fn coco(result: &Florence2Result, scene: &Scene, file_name: &str) -> Value {
    let mut categories: Vec<String> = Vec::new();
    let mut annotations = Vec::new();
    for shape in &scene.shapes {
        let category = match shape.layer {
            Layer::Text => "text".to_owned(),
            _ if shape.label.is_empty() => "region".to_owned(),
            _ => shape.label.clone(),
        };
        let category_id = match categories.iter().position(|c| *c == category) {
            Some(i) => i + 1,
            None => {
                categories.push(category);
                categories.len()
            }
        };
        let b = shape.bounds;
        let mut annotation = json!({
            "id": annotations.len() + 1,
            "image_id": 1,
            "category_id": category_id,
            "bbox": [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1],
            "area": shape.area,
            "iscrowd": 0,
        });
        match &shape.geometry {
            Geometry::Box(_) => {}
            Geometry::Quad(q) => annotation["segmentation"] = json!([q]),
            Geometry::Polygon(rings) => annotation["segmentation"] = json!(rings),
        }
        if shape.layer == Layer::Text {
            annotation["utf8_string"] = json!(shape.label);
        }
        annotations.push(annotation);
    }
    if annotations.is_empty() && !result.text.is_empty() {
        annotations.push(json!({ "id": 1, "image_id": 1, "caption": result.text }));
    }
    let categories: Vec<Value> = categories
        .iter()
        .enumerate()
        .map(|(i, name)| json!({ "id": i + 1, "name": name }))
        .collect();
    json!({
        "info": { "description": format!("Florence-2 {} answer ({}), exported by florence2-web", result.task, source_name(result)) },
        "images": [{ "id": 1, "file_name": file_name, "width": result.image.width, "height": result.image.height }],
        "categories": categories,
        "annotations": annotations,
    })
}

fn source_name(result: &Florence2Result) -> &'static str {
    match result.source {
        florence2::Source::Endpoint => "NVIDIA's endpoint",
        florence2::Source::Local => "local model",
    }
}

#[cfg(test)]
mod tests {
    use florence2::{Entities, ImageSize, Source};

    use super::*;

    fn result(task: &str, text: &str, entities: Entities) -> Florence2Result {
        Florence2Result {
            task: task.into(),
            text: text.into(),
            entities,
            image: ImageSize::new(640, 480),
            source: Source::Endpoint,
            usage: None,
        }
    }

    fn export(r: &Florence2Result) -> Value {
        coco(r, &Scene::from_entities(&r.entities, None), "street.jpg")
    }

    #[test]
    fn detections_become_bbox_annotations_with_shared_categories() {
        let r = result(
            "<OD>",
            "",
            Entities {
                bboxes: Some(vec![
                    [10.0, 20.0, 110.0, 70.0],
                    [0.0, 0.0, 5.0, 5.0],
                    [1.0, 1.0, 3.0, 4.0],
                ]),
                labels: Some(vec!["car".into(), "dog".into(), "car".into()]),
                ..Default::default()
            },
        );
        let doc = export(&r);
        assert_eq!(
            doc["images"],
            json!([{ "id": 1, "file_name": "street.jpg", "width": 640, "height": 480 }])
        );
        assert_eq!(
            doc["categories"],
            json!([{ "id": 1, "name": "car" }, { "id": 2, "name": "dog" }])
        );
        let a = &doc["annotations"];
        assert_eq!(a.as_array().unwrap().len(), 3);
        assert_eq!(
            a[0],
            json!({ "id": 1, "image_id": 1, "category_id": 1, "bbox": [10.0, 20.0, 100.0, 50.0], "area": 5000.0, "iscrowd": 0 })
        );
        assert_eq!(a[2]["category_id"], 1);
        assert_eq!(a[1]["category_id"], 2);
        assert!(
            doc["info"]["description"]
                .as_str()
                .unwrap()
                .contains("<OD>")
        );
    }

    #[test]
    fn masks_and_ocr_carry_their_outlines() {
        let r = result(
            "<OCR_WITH_REGION>",
            "",
            Entities {
                quad_boxes: Some(vec![[0.0, 0.0, 40.0, 0.0, 40.0, 10.0, 0.0, 10.0]]),
                labels: Some(vec!["EXIT".into()]),
                ..Default::default()
            },
        );
        let a = &export(&r)["annotations"][0];
        assert_eq!(
            a["segmentation"],
            json!([[0.0, 0.0, 40.0, 0.0, 40.0, 10.0, 0.0, 10.0]])
        );
        assert_eq!(a["utf8_string"], "EXIT");
        assert_eq!(a["bbox"], json!([0.0, 0.0, 40.0, 10.0]));
        assert_eq!(a["area"], 400.0);
        let r = result(
            "<REFERRING_EXPRESSION_SEGMENTATION>",
            "",
            Entities {
                polygons: Some(vec![vec![vec![0.0, 0.0, 10.0, 0.0, 0.0, 10.0]]]),
                labels: Some(vec![String::new()]),
                ..Default::default()
            },
        );
        let doc = export(&r);
        assert_eq!(doc["categories"], json!([{ "id": 1, "name": "region" }]));
        assert_eq!(
            doc["annotations"][0]["segmentation"],
            json!([[0.0, 0.0, 10.0, 0.0, 0.0, 10.0]])
        );
        assert_eq!(doc["annotations"][0]["area"], 50.0);
    }

    #[test]
    fn text_answers_become_captions() {
        let doc = export(&result(
            "<CAPTION>",
            "A dog in a field.",
            Entities::default(),
        ));
        assert_eq!(
            doc["annotations"],
            json!([{ "id": 1, "image_id": 1, "caption": "A dog in a field." }])
        );
        assert_eq!(doc["categories"], json!([]));
        let doc = export(&result("<OD>", "", Entities::default()));
        assert_eq!(
            doc["annotations"],
            json!([]),
            "nothing found, nothing made up"
        );
    }
}
