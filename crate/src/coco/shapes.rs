//! The shapes of a result, in one list: every box, OCR quad and mask instance with its label,
//! bounds and area. COCO's annotations are made from it, and the demo draws it, so "object 3"
//! is the same thing in the picture and in the exported file.

use crate::coco::geometry::{bounds, rect_area, ring_area, union};
use crate::region::Region;
use crate::result::Entities;

#[derive(Debug, Clone, PartialEq)]
pub enum ShapeKind {
    /// A bounding box (detection, grounding, proposals), normalised so `x1 <= x2`, `y1 <= y2`.
    Box(Region),
    /// An OCR quadrilateral `[x1, y1, …, x4, y4]`, clockwise from the top left.
    Quad([f64; 8]),
    /// The rings `[x, y, x, y, …]` of one mask instance (several when it is in pieces), each
    /// with at least three points.
    Polygon(Vec<Vec<f64>>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub kind: ShapeKind,
    /// The label as the model gave it, trimmed (may be empty: region proposals have none).
    pub label: String,
    pub bounds: Region,
    /// Enclosed area in square pixels.
    pub area: f64,
}

/// The shapes of `e`: boxes first, then OCR quads, then mask instances, each in the model's
/// order. Boxes pair with `bboxes_labels` (open-vocabulary detection) or else `labels`, masks
/// with `polygons_labels` or else `labels`. A mask instance without a ring that encloses
/// anything is left out (nothing to draw, no area to record).
pub fn shapes(e: &Entities) -> Vec<Shape> {
    let mut out = Vec::new();
    let box_labels = e.bboxes_labels.as_ref().or(e.labels.as_ref());
    for (i, b) in e.bboxes.iter().flatten().enumerate() {
        let region = Region {
            x1: b[0].min(b[2]),
            y1: b[1].min(b[3]),
            x2: b[0].max(b[2]),
            y2: b[1].max(b[3]),
        };
        out.push(Shape {
            kind: ShapeKind::Box(region),
            label: label_at(box_labels, i),
            bounds: region,
            area: rect_area(&region),
        });
    }
    for (i, q) in e.quad_boxes.iter().flatten().enumerate() {
        if let Some(b) = bounds(q) {
            out.push(Shape {
                kind: ShapeKind::Quad(*q),
                label: label_at(e.labels.as_ref(), i),
                bounds: b,
                area: ring_area(q),
            });
        }
    }
    let polygon_labels = e.polygons_labels.as_ref().or(e.labels.as_ref());
    for (i, instance) in e.polygons.iter().flatten().enumerate() {
        // A ring needs three points to enclose anything.
        let rings: Vec<Vec<f64>> = instance.iter().filter(|r| r.len() >= 6).cloned().collect();
        let Some(b) = rings.iter().filter_map(|r| bounds(r)).reduce(union) else {
            continue;
        };
        let area = rings.iter().map(|r| ring_area(r)).sum();
        out.push(Shape {
            kind: ShapeKind::Polygon(rings),
            label: label_at(polygon_labels, i),
            bounds: b,
            area,
        });
    }
    out
}

fn label_at(labels: Option<&Vec<String>>, i: usize) -> String {
    labels
        .and_then(|l| l.get(i))
        .map_or_else(String::new, |l| l.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn kinds_come_in_order_with_their_own_labels() {
        let e = Entities {
            bboxes: Some(vec![[50.0, 40.0, 10.0, 20.0]]),
            bboxes_labels: strings(&[" cat "]),
            quad_boxes: Some(vec![[0.0, 0.0, 40.0, 0.0, 40.0, 10.0, 0.0, 10.0]]),
            labels: strings(&["EXIT"]),
            polygons: Some(vec![
                vec![
                    vec![0.0, 0.0, 10.0, 0.0, 0.0, 10.0],
                    vec![20.0, 20.0, 30.0, 30.0],
                ],
                vec![vec![1.0, 1.0]],
            ]),
            polygons_labels: strings(&["dog", "ghost"]),
        };
        let s = shapes(&e);
        assert_eq!(s.len(), 3, "the instance without a usable ring is left out");
        assert_eq!(
            s[0].kind,
            ShapeKind::Box(Region {
                x1: 10.0,
                y1: 20.0,
                x2: 50.0,
                y2: 40.0
            }),
            "inverted boxes are normalised"
        );
        assert_eq!((s[0].label.as_str(), s[0].area), ("cat", 800.0));
        assert_eq!((s[1].label.as_str(), s[1].area), ("EXIT", 400.0));
        assert_eq!(
            s[2].kind,
            ShapeKind::Polygon(vec![vec![0.0, 0.0, 10.0, 0.0, 0.0, 10.0]]),
            "a two-point ring is dropped from its instance"
        );
        assert_eq!((s[2].label.as_str(), s[2].area), ("dog", 50.0));
    }

    #[test]
    fn missing_labels_are_empty() {
        let e = Entities {
            bboxes: Some(vec![[0.0, 0.0, 1.0, 1.0]; 2]),
            labels: strings(&["only one"]),
            ..Default::default()
        };
        let s = shapes(&e);
        assert_eq!(s[0].label, "only one");
        assert_eq!(s[1].label, "");
    }
}
