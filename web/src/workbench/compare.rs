//! The same picture and task through the endpoint and in this browser: what differs — the
//! text, the number of shapes, and how well the shapes agree (each remote shape matched to at
//! most one local one, best overlap first, by the IoU of their bounds).

use florence2::Florence2Result;
use florence2::coco::shapes;
use florence2::region::Region;

/// Two rectangles' intersection over union (0 when they do not meet or are empty).
pub fn iou(a: &Region, b: &Region) -> f64 {
    let w = (a.x2.min(b.x2) - a.x1.max(b.x1)).max(0.0);
    let h = (a.y2.min(b.y2) - a.y1.max(b.y1)).max(0.0);
    let inter = w * h;
    let area = |r: &Region| (r.x2 - r.x1).max(0.0) * (r.y2 - r.y1).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// A remote shape and the local one it was matched to.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub remote: usize,
    pub local: usize,
    pub iou: f64,
    pub same_label: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub same_text: bool,
    pub remote_shapes: usize,
    pub local_shapes: usize,
    /// Greedy one-to-one matches (highest IoU first; pairs that do not overlap never match).
    pub matches: Vec<Match>,
}

impl Comparison {
    pub fn mean_iou(&self) -> Option<f64> {
        (!self.matches.is_empty())
            .then(|| self.matches.iter().map(|m| m.iou).sum::<f64>() / self.matches.len() as f64)
    }

    /// Whether the two answers are the same in text and shapes (every shape matched exactly,
    /// with its label).
    pub fn identical(&self) -> bool {
        self.same_text
            && self.remote_shapes == self.local_shapes
            && self.matches.len() == self.remote_shapes
            && self
                .matches
                .iter()
                .all(|m| m.same_label && (m.iou - 1.0).abs() < 1e-9)
    }

    /// What differs, in a line.
    pub fn line(&self) -> String {
        if self.identical() {
            return "Both answers are the same.".to_owned();
        }
        let mut parts = vec![if self.same_text {
            "the same text".to_owned()
        } else {
            "different text".to_owned()
        }];
        if self.remote_shapes + self.local_shapes > 0 {
            parts.push(format!(
                "{} shapes remote, {} local",
                self.remote_shapes, self.local_shapes
            ));
            match self.mean_iou() {
                Some(mean) => parts.push(format!(
                    "{} matched (mean IoU {mean:.2}, {} with the same label)",
                    self.matches.len(),
                    self.matches.iter().filter(|m| m.same_label).count()
                )),
                None => parts.push("none overlap".to_owned()),
            }
        }
        let mut line = parts.join("; ");
        if let Some(first) = line.get(..1) {
            line = first.to_uppercase() + &line[1..];
        }
        line + "."
    }
}

pub fn compare(remote: &Florence2Result, local: &Florence2Result) -> Comparison {
    let a = shapes(&remote.entities);
    let b = shapes(&local.entities);
    let mut pairs: Vec<(usize, usize, f64)> = Vec::new();
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            let v = iou(&x.bounds, &y.bounds);
            if v > 0.0 {
                pairs.push((i, j, v));
            }
        }
    }
    // Highest first; ties in index order, so the outcome never depends on the sort.
    pairs.sort_by(|p, q| q.2.total_cmp(&p.2).then(p.0.cmp(&q.0)).then(p.1.cmp(&q.1)));
    let (mut used_a, mut used_b) = (vec![false; a.len()], vec![false; b.len()]);
    let mut matches = Vec::new();
    for (i, j, v) in pairs {
        if !used_a[i] && !used_b[j] {
            used_a[i] = true;
            used_b[j] = true;
            matches.push(Match {
                remote: i,
                local: j,
                iou: v,
                same_label: a[i].label == b[j].label,
            });
        }
    }
    matches.sort_by_key(|m| m.remote);
    Comparison {
        same_text: remote.text.trim() == local.text.trim(),
        remote_shapes: a.len(),
        local_shapes: b.len(),
        matches,
    }
}

#[cfg(test)]
mod tests {
    use florence2::{Entities, ImageSize, Source};

    use super::*;

    fn boxes(text: &str, b: &[[f64; 4]], labels: &[&str]) -> Florence2Result {
        Florence2Result {
            task: "<OD>".into(),
            text: text.into(),
            entities: Entities {
                bboxes: Some(b.to_vec()),
                labels: Some(labels.iter().map(|l| (*l).to_owned()).collect()),
                ..Default::default()
            },
            image: ImageSize::new(100, 100),
            source: Source::Endpoint,
            usage: None,
        }
    }

    fn r(x1: f64, y1: f64, x2: f64, y2: f64) -> Region {
        Region { x1, y1, x2, y2 }
    }

    #[test]
    fn iou_of_rectangles() {
        assert_eq!(iou(&r(0.0, 0.0, 10.0, 10.0), &r(0.0, 0.0, 10.0, 10.0)), 1.0);
        assert_eq!(
            iou(&r(0.0, 0.0, 10.0, 10.0), &r(5.0, 0.0, 15.0, 10.0)),
            50.0 / 150.0
        );
        assert_eq!(
            iou(&r(0.0, 0.0, 10.0, 10.0), &r(20.0, 20.0, 30.0, 30.0)),
            0.0
        );
        assert_eq!(iou(&r(0.0, 0.0, 0.0, 0.0), &r(0.0, 0.0, 0.0, 0.0)), 0.0);
    }

    #[test]
    fn the_same_answer_is_identical() {
        let a = boxes(
            "",
            &[[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]],
            &["car", "dog"],
        );
        let c = compare(&a, &a);
        assert!(c.identical());
        assert_eq!(c.line(), "Both answers are the same.");
    }

    #[test]
    fn boxes_match_one_to_one_best_first() {
        let remote = boxes(
            "",
            &[[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 12.0, 10.0]],
            &["car", "car"],
        );
        // One local box overlaps both remote ones: it goes to the better (the first), the
        // second remote box matches nothing; a far local box matches nothing either.
        let local = boxes(
            "",
            &[[0.0, 0.0, 10.0, 10.0], [50.0, 50.0, 60.0, 60.0]],
            &["car", "cat"],
        );
        let c = compare(&remote, &local);
        assert_eq!(
            c.matches,
            vec![Match {
                remote: 0,
                local: 0,
                iou: 1.0,
                same_label: true
            }]
        );
        assert!(!c.identical());
        assert_eq!(
            c.line(),
            "The same text; 2 shapes remote, 2 local; 1 matched (mean IoU 1.00, 1 with the same label)."
        );
    }

    #[test]
    fn text_answers_compare_their_words() {
        let a = boxes("A car.", &[], &[]);
        let b = boxes("A dog.", &[], &[]);
        assert_eq!(compare(&a, &b).line(), "Different text.");
        assert!(compare(&a, &a).identical());
        let none = boxes("", &[[0.0, 0.0, 1.0, 1.0]], &[""]);
        let far = boxes("", &[[5.0, 5.0, 6.0, 6.0]], &[""]);
        assert_eq!(
            compare(&none, &far).line(),
            "The same text; 1 shapes remote, 1 local; none overlap."
        );
    }
}
