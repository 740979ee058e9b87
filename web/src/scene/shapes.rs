//! What an answer draws: every box, OCR quad and mask of a result as one list of shapes, each
//! with its label and colour, so drawing, the entity list, hit-testing and the COCO export all
//! agree on what "object 3" is.

use florence2::coco::ShapeKind;
use florence2::{Entities, Region};

use super::geometry::{rect_contains, ring_contains};
use super::palette::{self, Rgb};

/// The layers a person can switch on and off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    /// Bounding boxes (detection, grounding, proposals).
    Boxes,
    /// Filled polygons (segmentation).
    Masks,
    /// OCR quadrilaterals.
    Text,
}

impl Layer {
    pub const ALL: [Layer; 3] = [Layer::Boxes, Layer::Masks, Layer::Text];

    pub fn name(self) -> &'static str {
        match self {
            Layer::Boxes => "Boxes",
            Layer::Masks => "Masks",
            Layer::Text => "Text regions",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Geometry {
    Box(Region),
    /// Four corners `[x1, y1, …, x4, y4]`, clockwise from the top left.
    Quad([f64; 8]),
    /// Rings `[x, y, x, y, …]` of one instance (several when it is in pieces).
    Polygon(Vec<Vec<f64>>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub layer: Layer,
    pub geometry: Geometry,
    /// The label as the model gave it (may be empty: region proposals have none).
    pub label: String,
    /// What people read: the label, or "region N" for unlabelled shapes.
    pub name: String,
    pub colour: Rgb,
    pub bounds: Region,
    /// Enclosed area in square pixels (the smallest shape under the pointer wins a hover).
    pub area: f64,
}

impl Shape {
    pub fn contains(&self, x: f64, y: f64) -> bool {
        if !rect_contains(&self.bounds, x, y) {
            return false;
        }
        match &self.geometry {
            Geometry::Box(_) => true,
            Geometry::Quad(q) => ring_contains(q, x, y),
            Geometry::Polygon(rings) => rings.iter().any(|r| ring_contains(r, x, y)),
        }
    }
}

/// One label of the legend: its colour and how many shapes carry it.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    pub label: String,
    pub colour: Rgb,
    pub count: usize,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scene {
    pub shapes: Vec<Shape>,
    /// Labelled shapes' labels in order of first appearance.
    pub legend: Vec<LegendEntry>,
}

impl Scene {
    /// The scene of `e`. Shapes without a label are named after `query` — what the person
    /// asked for, e.g. the expression a mask was made for — or else by kind and number.
    pub fn from_entities(e: &Entities, query: Option<&str>) -> Scene {
        let query = query.map(str::trim).filter(|q| !q.is_empty());
        let mut builder = Builder {
            query,
            ..Builder::default()
        };
        // Which shapes there are, their labels, bounds and areas: the COCO conversion's list
        // (crate `florence2`), so the export holds exactly what is drawn.
        for shape in florence2::coco::shapes(e) {
            let (layer, geometry) = match shape.kind {
                ShapeKind::Box(region) => (Layer::Boxes, Geometry::Box(region)),
                ShapeKind::Quad(q) => (Layer::Text, Geometry::Quad(q)),
                ShapeKind::Polygon(rings) => (Layer::Masks, Geometry::Polygon(rings)),
            };
            builder.add(layer, geometry, shape.label, shape.bounds, shape.area);
        }
        builder.scene
    }

    /// The layers this scene has shapes on.
    pub fn layers(&self) -> Vec<Layer> {
        Layer::ALL
            .into_iter()
            .filter(|l| self.shapes.iter().any(|s| s.layer == *l))
            .collect()
    }

    /// The shape under `(x, y)` (image pixels) among the visible layers: the smallest that
    /// contains the point, so a small object inside a large one can still be picked.
    pub fn hit(&self, x: f64, y: f64, visible: impl Fn(Layer) -> bool) -> Option<usize> {
        self.shapes
            .iter()
            .enumerate()
            .filter(|(_, s)| visible(s.layer) && s.contains(x, y))
            .min_by(|(_, a), (_, b)| a.area.total_cmp(&b.area))
            .map(|(i, _)| i)
    }
}

#[derive(Default)]
struct Builder<'a> {
    scene: Scene,
    unlabelled: usize,
    query: Option<&'a str>,
}

impl Builder<'_> {
    fn add(&mut self, layer: Layer, geometry: Geometry, label: String, bounds: Region, area: f64) {
        let (name, colour) = if label.is_empty() {
            // Unlabelled shapes (region proposals, masks) each get their own colour, after the labels'.
            self.unlabelled += 1;
            let name = match (self.query, layer) {
                (Some(q), _) if self.unlabelled == 1 => q.to_owned(),
                (Some(q), _) => format!("{q} {}", self.unlabelled),
                (None, Layer::Masks) => format!("mask {}", self.unlabelled),
                (None, _) => format!("region {}", self.unlabelled),
            };
            (
                name,
                palette::nth(self.scene.legend.len() + self.unlabelled - 1),
            )
        } else {
            let legend = &mut self.scene.legend;
            let entry = match legend.iter().position(|e| e.label == label) {
                Some(i) => &mut legend[i],
                None => {
                    let colour = palette::nth(legend.len() + self.unlabelled);
                    legend.push(LegendEntry {
                        label: label.clone(),
                        colour,
                        count: 0,
                    });
                    let last = legend.len() - 1;
                    &mut legend[last]
                }
            };
            entry.count += 1;
            (label.clone(), entry.colour)
        };
        self.scene.shapes.push(Shape {
            layer,
            geometry,
            label,
            name,
            colour,
            bounds,
            area,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn detection_boxes_share_colours_by_label() {
        let e = Entities {
            bboxes: Some(vec![
                [10.0, 10.0, 50.0, 50.0],
                [60.0, 10.0, 90.0, 40.0],
                [0.0, 0.0, 100.0, 100.0],
            ]),
            labels: strings(&["car", "dog", "car"]),
            ..Default::default()
        };
        let scene = Scene::from_entities(&e, None);
        assert_eq!(scene.shapes.len(), 3);
        assert_eq!(scene.shapes[0].colour, scene.shapes[2].colour);
        assert_ne!(scene.shapes[0].colour, scene.shapes[1].colour);
        assert_eq!(
            scene
                .legend
                .iter()
                .map(|l| (l.label.as_str(), l.count))
                .collect::<Vec<_>>(),
            [("car", 2), ("dog", 1)]
        );
        assert_eq!(scene.layers(), [Layer::Boxes]);
        assert_eq!(scene.shapes[1].area, 900.0);
    }

    #[test]
    fn inverted_boxes_are_normalised() {
        let e = Entities {
            bboxes: Some(vec![[50.0, 40.0, 10.0, 20.0]]),
            ..Default::default()
        };
        let scene = Scene::from_entities(&e, None);
        assert_eq!(
            scene.shapes[0].bounds,
            Region {
                x1: 10.0,
                y1: 20.0,
                x2: 50.0,
                y2: 40.0
            }
        );
    }

    #[test]
    fn unlabelled_proposals_are_named_and_coloured_apart() {
        let e = Entities {
            bboxes: Some(vec![[0.0, 0.0, 1.0, 1.0]; 3]),
            labels: strings(&["", "", ""]),
            ..Default::default()
        };
        let scene = Scene::from_entities(&e, None);
        let names: Vec<_> = scene.shapes.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["region 1", "region 2", "region 3"]);
        let asked = Scene::from_entities(&e, Some(" the red car "));
        let names: Vec<_> = asked.shapes.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            ["the red car", "the red car 2", "the red car 3"],
            "named after what was asked"
        );
        assert_eq!(asked.shapes[0].label, "", "the label stays the model's");
        assert!(scene.legend.is_empty());
        assert_ne!(scene.shapes[0].colour, scene.shapes[1].colour);
        assert_ne!(scene.shapes[1].colour, scene.shapes[2].colour);
    }

    #[test]
    fn open_vocabulary_pairs_each_kind_with_its_own_labels() {
        let e = Entities {
            bboxes: Some(vec![[0.0, 0.0, 10.0, 10.0]]),
            bboxes_labels: strings(&["cat"]),
            polygons: Some(vec![vec![vec![0.0, 0.0, 10.0, 0.0, 10.0, 10.0]]]),
            polygons_labels: strings(&["dog"]),
            ..Default::default()
        };
        let scene = Scene::from_entities(&e, None);
        assert_eq!(
            scene
                .shapes
                .iter()
                .map(|s| (s.layer, s.label.as_str()))
                .collect::<Vec<_>>(),
            [(Layer::Boxes, "cat"), (Layer::Masks, "dog")]
        );
        assert_eq!(scene.layers(), [Layer::Boxes, Layer::Masks]);
    }

    #[test]
    fn ocr_quads_and_masks() {
        let e = Entities {
            quad_boxes: Some(vec![[0.0, 0.0, 40.0, 0.0, 40.0, 10.0, 0.0, 10.0]]),
            labels: strings(&["HELLO"]),
            ..Default::default()
        };
        let scene = Scene::from_entities(&e, None);
        assert_eq!(scene.shapes[0].layer, Layer::Text);
        assert_eq!(scene.shapes[0].area, 400.0);
        assert_eq!(
            scene.shapes[0].bounds,
            Region {
                x1: 0.0,
                y1: 0.0,
                x2: 40.0,
                y2: 10.0
            }
        );
        // A mask in two pieces, one of them degenerate (dropped), labels missing entirely.
        let e = Entities {
            polygons: Some(vec![
                vec![
                    vec![0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0, 10.0],
                    vec![20.0, 20.0, 30.0, 30.0],
                ],
                vec![vec![1.0, 1.0]],
            ]),
            ..Default::default()
        };
        let scene = Scene::from_entities(&e, None);
        assert_eq!(
            scene.shapes.len(),
            1,
            "an instance with no usable ring is not drawn"
        );
        assert_eq!(
            scene.shapes[0].geometry,
            Geometry::Polygon(vec![vec![0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0, 10.0]])
        );
        assert_eq!(scene.shapes[0].name, "mask 1");
    }

    #[test]
    fn hits_prefer_the_smallest_visible_shape() {
        let e = Entities {
            bboxes: Some(vec![[0.0, 0.0, 100.0, 100.0], [40.0, 40.0, 60.0, 60.0]]),
            labels: strings(&["table", "cup"]),
            polygons: Some(vec![vec![vec![45.0, 45.0, 55.0, 45.0, 50.0, 55.0]]]),
            polygons_labels: strings(&["handle"]),
            ..Default::default()
        };
        let scene = Scene::from_entities(&e, None);
        assert_eq!(scene.hit(10.0, 10.0, |_| true), Some(0));
        assert_eq!(scene.hit(50.0, 48.0, |_| true), Some(2));
        assert_eq!(
            scene.hit(50.0, 48.0, |l| l == Layer::Boxes),
            Some(1),
            "hidden layers are not hit"
        );
        assert_eq!(
            scene.hit(46.0, 54.0, |_| true),
            Some(1),
            "outside the triangle, inside the cup"
        );
        assert_eq!(scene.hit(150.0, 10.0, |_| true), None);
    }
}
