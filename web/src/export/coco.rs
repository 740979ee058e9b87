//! COCO-style annotations of one result, made by the one COCO conversion of crate `florence2`
//! (`florence2::coco`, which `florence2 label` uses too) from the same shape list the viewer
//! draws, so what a person sees is what a tool reads. Boxes become `bbox` annotations, masks
//! and OCR quads also carry their outline as `segmentation`, OCR text travels as `utf8_string`
//! (as COCO-Text does), and a text answer (caption, region description, plain OCR) becomes a
//! COCO-captions annotation.

use florence2::Florence2Result;
use serde_json::Value;

/// The COCO document for `result`, about the picture `file_name`. A `Value` (keys sorted when
/// serialised), as this export has always been.
pub fn coco(result: &Florence2Result, file_name: &str) -> Value {
    // A document of numbers and strings always converts.
    serde_json::to_value(florence2::coco::single_image(result, file_name)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use florence2::{Entities, ImageSize, Source};
    use serde_json::json;

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
        coco(r, "street.jpg")
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

    #[test]
    fn the_exported_bytes_are_pinned() {
        let r = result(
            "<OD>",
            "",
            Entities {
                bboxes: Some(vec![[10.0, 20.5, 110.0, 70.0]]),
                labels: Some(vec!["car".into()]),
                ..Default::default()
            },
        );
        // What the download holds, byte for byte (keys sorted, as a serde_json Value writes).
        assert_eq!(
            serde_json::to_string(&export(&r)).unwrap(),
            r#"{"annotations":[{"area":4950.0,"bbox":[10.0,20.5,100.0,49.5],"category_id":1,"id":1,"image_id":1,"iscrowd":0}],"categories":[{"id":1,"name":"car"}],"images":[{"file_name":"street.jpg","height":480,"id":1,"width":640}],"info":{"description":"Florence-2 <OD> answer (NVIDIA's endpoint), exported by florence2-web"}}"#
        );
    }
}
