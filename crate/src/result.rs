//! The result every path produces (endpoint through the proxy, local model): a contract,
//! byte for byte the same JSON whichever path made it.

use serde::{Deserialize, Serialize};

pub use crate::region::ImageSize;

/// Which path produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Endpoint,
    Local,
}

/// Boxes, quads, polygons and their labels, in pixels of `Florence2Result::image`.
/// A kind the task does not produce is `None` (JSON `null`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entities {
    pub bboxes: Option<Vec<[f64; 4]>>,
    pub labels: Option<Vec<String>>,
    pub quad_boxes: Option<Vec<[f64; 8]>>,
    /// Per instance, per ring: `[x, y, x, y, …]`.
    pub polygons: Option<Vec<Vec<Vec<f64>>>>,
    pub bboxes_labels: Option<Vec<String>>,
    pub polygons_labels: Option<Vec<String>>,
}

impl Entities {
    /// Multiplies every x by `sx` and every y by `sy` (from the sent image to the original).
    pub fn scale(&mut self, sx: f64, sy: f64) {
        for b in self.bboxes.iter_mut().flatten() {
            scale_xy(b, sx, sy);
        }
        for q in self.quad_boxes.iter_mut().flatten() {
            scale_xy(q, sx, sy);
        }
        for ring in self.polygons.iter_mut().flatten().flatten() {
            scale_xy(ring, sx, sy);
        }
    }

    /// How many drawable things there are (boxes + quads + polygon instances).
    pub fn len(&self) -> usize {
        self.bboxes.as_ref().map_or(0, Vec::len)
            + self.quad_boxes.as_ref().map_or(0, Vec::len)
            + self.polygons.as_ref().map_or(0, Vec::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn scale_xy(coords: &mut [f64], sx: f64, sy: f64) {
    for (i, v) in coords.iter_mut().enumerate() {
        *v *= if i % 2 == 0 { sx } else { sy };
    }
}

/// The result of one Florence-2 run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Florence2Result {
    /// The task token, e.g. `<OD>`.
    pub task: String,
    /// The answer without the task token (captions, OCR, region answers; for the other tasks
    /// the raw generated text).
    pub text: String,
    pub entities: Entities,
    /// The image the coordinates refer to (the one the user gave).
    pub image: ImageSize,
    pub source: Source,
    pub usage: Option<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_the_contract() {
        let r = Florence2Result {
            task: "<OD>".into(),
            text: String::new(),
            entities: Entities {
                bboxes: Some(vec![[1.0, 2.0, 3.5, 4.0]]),
                labels: Some(vec!["car".into()]),
                ..Default::default()
            },
            image: ImageSize::new(640, 480),
            source: Source::Endpoint,
            usage: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"task":"<OD>","text":"","entities":{"bboxes":[[1.0,2.0,3.5,4.0]],"labels":["car"],"quad_boxes":null,"polygons":null,"bboxes_labels":null,"polygons_labels":null},"image":{"width":640,"height":480},"source":"endpoint","usage":null}"#
        );
    }

    #[test]
    fn scaling_touches_x_and_y_separately() {
        let mut e = Entities {
            bboxes: Some(vec![[1.0, 1.0, 2.0, 2.0]]),
            quad_boxes: Some(vec![[1.0, 1.0, 2.0, 1.0, 2.0, 2.0, 1.0, 2.0]]),
            polygons: Some(vec![vec![vec![1.0, 1.0, 3.0, 3.0]]]),
            ..Default::default()
        };
        e.scale(2.0, 10.0);
        assert_eq!(e.bboxes.unwrap()[0], [2.0, 10.0, 4.0, 20.0]);
        assert_eq!(
            e.quad_boxes.unwrap()[0],
            [2.0, 10.0, 4.0, 10.0, 4.0, 20.0, 2.0, 20.0]
        );
        assert_eq!(e.polygons.unwrap()[0][0], vec![2.0, 10.0, 6.0, 30.0]);
    }
}
