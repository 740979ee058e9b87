//! Joins COCO documents (the parts of a sharded `florence2 label` run, or any COCO files) into
//! one: images and annotations renumbered from 1 in the order of the parts, categories unified
//! by name (numbered in order of first appearance), every reference checked on the way.

use std::collections::HashMap;

use serde_json::Value;

use crate::coco::document::{Category, Coco};

/// A document that cannot be merged: a reference to an image or category it does not have,
/// or an id it uses twice. `code` is stable (`COCO_INVALID`).
#[derive(Debug, Clone, PartialEq)]
pub struct CocoError {
    /// Which part (0-based) is at fault.
    pub part: usize,
    pub message: String,
}

impl CocoError {
    pub const CODE: &'static str = "COCO_INVALID";

    pub fn code(&self) -> &'static str {
        Self::CODE
    }
}

impl std::fmt::Display for CocoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: part {}: {}",
            Self::CODE,
            self.part + 1,
            self.message
        )
    }
}

impl std::error::Error for CocoError {}

/// The parts as one document. `info` is the first part's, with `merged_parts` (the count)
/// added.
pub fn merge(parts: &[Coco]) -> Result<Coco, CocoError> {
    let mut out = Coco {
        info: parts.first().map(|p| p.info.clone()).unwrap_or_default(),
        ..Coco::default()
    };
    out.info
        .extra
        .insert("merged_parts".into(), Value::from(parts.len()));
    let mut category_by_name: HashMap<String, u64> = HashMap::new();
    for (part, doc) in parts.iter().enumerate() {
        let bad = |message: String| CocoError { part, message };
        let mut images = HashMap::with_capacity(doc.images.len());
        for image in &doc.images {
            let id = out.images.len() as u64 + 1;
            if images.insert(image.id, id).is_some() {
                return Err(bad(format!("image id {} is used twice", image.id)));
            }
            out.images.push(crate::coco::document::Image {
                id,
                ..image.clone()
            });
        }
        let mut categories = HashMap::with_capacity(doc.categories.len());
        for category in &doc.categories {
            let id = match category_by_name.get(&category.name) {
                Some(&id) => id,
                None => {
                    let id = out.categories.len() as u64 + 1;
                    out.categories.push(Category {
                        id,
                        ..category.clone()
                    });
                    category_by_name.insert(category.name.clone(), id);
                    id
                }
            };
            if categories.insert(category.id, id).is_some() {
                return Err(bad(format!("category id {} is used twice", category.id)));
            }
        }
        let mut seen = std::collections::HashSet::with_capacity(doc.annotations.len());
        for a in &doc.annotations {
            if !seen.insert(a.id) {
                return Err(bad(format!("annotation id {} is used twice", a.id)));
            }
            let image_id = *images.get(&a.image_id).ok_or_else(|| {
                bad(format!(
                    "annotation {} refers to image {}, which the part does not have",
                    a.id, a.image_id
                ))
            })?;
            let category_id = match a.category_id {
                None => None,
                Some(c) => Some(*categories.get(&c).ok_or_else(|| {
                    bad(format!(
                        "annotation {} refers to category {c}, which the part does not have",
                        a.id
                    ))
                })?),
            };
            out.annotations.push(crate::coco::document::Annotation {
                id: out.annotations.len() as u64 + 1,
                image_id,
                category_id,
                ..a.clone()
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coco::build::{CocoBuilder, CocoStyle};
    use crate::coco::document::Info;
    use crate::region::ImageSize;
    use crate::result::{Entities, Florence2Result, Source};

    fn part(pictures: &[(&str, &[&str])]) -> Coco {
        let mut b = CocoBuilder::new(Info::default(), CocoStyle::Dataset);
        for (name, labels) in pictures {
            let r = Florence2Result {
                task: "<OD>".into(),
                text: String::new(),
                entities: Entities {
                    bboxes: Some(vec![[1.0, 2.0, 3.0, 4.0]; labels.len()]),
                    labels: Some(labels.iter().map(|l| l.to_string()).collect()),
                    ..Default::default()
                },
                image: ImageSize::new(8, 8),
                source: Source::Local,
                usage: None,
            };
            b.add(name, &r);
        }
        b.finish()
    }

    #[test]
    fn ids_are_renumbered_and_categories_unified_by_name() {
        let a = part(&[("a.jpg", &["cat", "dog"]), ("b.jpg", &[])]);
        let b = part(&[("c.jpg", &["dog", "bird"]), ("d.jpg", &["cat"])]);
        let m = merge(&[a, b]).unwrap();
        let images: Vec<_> = m
            .images
            .iter()
            .map(|i| (i.id, i.file_name.as_str()))
            .collect();
        assert_eq!(
            images,
            [(1, "a.jpg"), (2, "b.jpg"), (3, "c.jpg"), (4, "d.jpg")]
        );
        let cats: Vec<_> = m
            .categories
            .iter()
            .map(|c| (c.id, c.name.as_str()))
            .collect();
        assert_eq!(cats, [(1, "cat"), (2, "dog"), (3, "bird")]);
        let anns: Vec<_> = m
            .annotations
            .iter()
            .map(|a| (a.id, a.image_id, a.category_id))
            .collect();
        // c.jpg's dog was category 1 in its part, d.jpg's cat category 2.
        assert_eq!(
            anns,
            [
                (1, 1, Some(1)),
                (2, 1, Some(2)),
                (3, 3, Some(2)),
                (4, 3, Some(3)),
                (5, 4, Some(1))
            ]
        );
        assert_eq!(m.info.extra["merged_parts"], 2);
    }

    #[test]
    fn dangling_references_and_duplicate_ids_are_typed_errors() {
        let mut broken = part(&[("a.jpg", &["cat"])]);
        broken.annotations[0].image_id = 9;
        let e = merge(&[part(&[]), broken]).unwrap_err();
        assert_eq!((e.code(), e.part), ("COCO_INVALID", 1));
        assert!(e.message.contains("image 9"), "{e}");
        let mut broken = part(&[("a.jpg", &["cat"])]);
        broken.annotations[0].category_id = Some(5);
        assert!(merge(&[broken]).unwrap_err().message.contains("category 5"));
        let mut twice = part(&[("a.jpg", &[]), ("b.jpg", &[])]);
        twice.images[1].id = 1;
        assert!(merge(&[twice]).unwrap_err().message.contains("used twice"));
    }

    #[test]
    fn foreign_fields_survive_a_merge() {
        let json = r#"{"info":{"description":"d","year":2026},
            "images":[{"id":7,"file_name":"x.jpg","width":4,"height":3,"license":2}],
            "categories":[{"id":3,"name":"cat","supercategory":"animal"}],
            "annotations":[{"id":5,"image_id":7,"category_id":3,"bbox":[0,0,1,1],"area":1,
                            "iscrowd":1,"segmentation":{"counts":"abc","size":[3,4]}}]}"#;
        let doc: Coco = serde_json::from_str(json).unwrap();
        let m = serde_json::to_value(merge(&[doc]).unwrap()).unwrap();
        assert_eq!(m["info"]["year"], 2026);
        assert_eq!(m["images"][0]["license"], 2);
        assert_eq!(m["images"][0]["id"], 1);
        assert_eq!(m["categories"][0]["supercategory"], "animal");
        assert_eq!(m["annotations"][0]["segmentation"]["counts"], "abc");
        assert_eq!(
            (
                &m["annotations"][0]["image_id"],
                &m["annotations"][0]["category_id"]
            ),
            (&serde_json::json!(1), &serde_json::json!(1))
        );
    }
}
