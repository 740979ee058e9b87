//! The rectangle a person selects for the region tasks — by dragging on the picture, with the
//! arrow keys, or by typing `<loc_…>` tokens — and its tokens by the endpoint's rule.
//!
//! The text field is the one source of truth: a drag or a key writes tokens into it, and the
//! rectangle drawn on the picture is read back from them, so what is shown is what is sent.

use florence2::region::parse_loc_box;
use florence2::{ImageSize, Region};

/// A drag smaller than this (image pixels, either side) is a click, not a selection.
const MIN_DRAG: f64 = 2.0;

/// The rectangle between where a drag started and where it is now (any direction), clamped
/// into the image; `None` while it is still a click.
pub fn from_drag(start: (f64, f64), end: (f64, f64), size: ImageSize) -> Option<Region> {
    let (w, h) = (f64::from(size.width), f64::from(size.height));
    let region = Region {
        x1: start.0.min(end.0).clamp(0.0, w),
        y1: start.1.min(end.1).clamp(0.0, h),
        x2: start.0.max(end.0).clamp(0.0, w),
        y2: start.1.max(end.1).clamp(0.0, h),
    };
    (region.x2 - region.x1 >= MIN_DRAG && region.y2 - region.y1 >= MIN_DRAG).then_some(region)
}

/// The rectangle that tokens stand for (the middle of each bin of the endpoint's rule, so
/// converting it back gives the same tokens); `None` unless the text is exactly four tokens.
pub fn from_tokens(text: &str, size: ImageSize) -> Option<Region> {
    let [x1, y1, x2, y2] = parse_loc_box(text).ok()?;
    let at = |bin: u32, side: u32| {
        ((f64::from(bin) + 0.5) / 999.0 * f64::from(side)).min(f64::from(side))
    };
    Some(Region {
        x1: at(x1, size.width),
        y1: at(y1, size.height),
        x2: at(x2, size.width),
        y2: at(y2, size.height),
    })
}

/// What an arrow key does to the selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nudge {
    /// Moves the rectangle (arrow keys).
    Move { dx: i8, dy: i8 },
    /// Moves the bottom-right corner (Shift + arrow keys).
    Resize { dx: i8, dy: i8 },
}

impl Nudge {
    /// The nudge of a `KeyboardEvent.key`, if it is an arrow key.
    pub fn from_key(key: &str, shift: bool) -> Option<Nudge> {
        let (dx, dy) = match key {
            "ArrowLeft" => (-1, 0),
            "ArrowRight" => (1, 0),
            "ArrowUp" => (0, -1),
            "ArrowDown" => (0, 1),
            _ => return None,
        };
        Some(if shift {
            Nudge::Resize { dx, dy }
        } else {
            Nudge::Move { dx, dy }
        })
    }
}

/// A starting selection for keyboard users: the middle half of the picture.
pub fn centred(size: ImageSize) -> Region {
    let (w, h) = (f64::from(size.width), f64::from(size.height));
    Region {
        x1: w / 4.0,
        y1: h / 4.0,
        x2: w * 3.0 / 4.0,
        y2: h * 3.0 / 4.0,
    }
}

/// The selection after an arrow key: steps of 2% of the picture, kept inside it, never
/// smaller than one step.
pub fn nudge(region: Region, nudge: Nudge, size: ImageSize) -> Region {
    let (w, h) = (f64::from(size.width), f64::from(size.height));
    let (step_x, step_y) = ((w * 0.02).max(1.0), (h * 0.02).max(1.0));
    match nudge {
        Nudge::Move { dx, dy } => {
            let (rw, rh) = (region.x2 - region.x1, region.y2 - region.y1);
            let x1 = (region.x1 + f64::from(dx) * step_x).clamp(0.0, (w - rw).max(0.0));
            let y1 = (region.y1 + f64::from(dy) * step_y).clamp(0.0, (h - rh).max(0.0));
            Region {
                x1,
                y1,
                x2: x1 + rw,
                y2: y1 + rh,
            }
        }
        Nudge::Resize { dx, dy } => Region {
            x2: (region.x2 + f64::from(dx) * step_x).clamp((region.x1 + step_x).min(w), w),
            y2: (region.y2 + f64::from(dy) * step_y).clamp((region.y1 + step_y).min(h), h),
            ..region
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VGA: ImageSize = ImageSize {
        width: 640,
        height: 480,
    };

    #[test]
    fn drags_in_any_direction_make_the_same_rectangle() {
        let r = Region {
            x1: 33.0,
            y1: 159.0,
            x2: 596.0,
            y2: 371.0,
        };
        assert_eq!(from_drag((33.0, 159.0), (596.0, 371.0), VGA), Some(r));
        assert_eq!(from_drag((596.0, 371.0), (33.0, 159.0), VGA), Some(r));
        assert_eq!(from_drag((33.0, 371.0), (596.0, 159.0), VGA), Some(r));
        // The endpoint's rule, as florence2 documents it: 33/640*999 = 51.5 → 51, …
        assert_eq!(
            r.to_endpoint_loc(VGA).unwrap(),
            "<loc_51><loc_330><loc_930><loc_772>"
        );
    }

    #[test]
    fn clicks_are_not_selections_and_drags_stay_inside() {
        assert_eq!(from_drag((10.0, 10.0), (11.0, 30.0), VGA), None);
        assert_eq!(from_drag((10.0, 10.0), (10.0, 10.0), VGA), None);
        let r = from_drag((600.0, 400.0), (900.0, 900.0), VGA).unwrap();
        assert_eq!(
            r,
            Region {
                x1: 600.0,
                y1: 400.0,
                x2: 640.0,
                y2: 480.0
            }
        );
        assert_eq!(
            r.to_endpoint_loc(VGA).unwrap(),
            "<loc_936><loc_832><loc_999><loc_999>"
        );
    }

    #[test]
    fn tokens_round_trip_through_the_drawn_rectangle() {
        for size in [VGA, ImageSize::new(4000, 3000), ImageSize::new(9, 7)] {
            for bin in [0u32, 1, 7, 498, 500, 998] {
                for text in [
                    format!("<loc_{bin}><loc_{bin}><loc_999><loc_999>"),
                    format!("<loc_0><loc_0><loc_{}><loc_{}>", bin + 1, bin + 1),
                ] {
                    let region = from_tokens(&text, size).unwrap();
                    assert_eq!(
                        region.to_endpoint_loc(size).unwrap(),
                        text,
                        "{size:?} {bin}"
                    );
                }
            }
        }
        assert_eq!(from_tokens("a cat", VGA), None);
        assert_eq!(from_tokens("<loc_5><loc_5><loc_1><loc_1>", VGA), None);
    }

    #[test]
    fn keys_move_and_resize_inside_the_picture() {
        assert_eq!(
            Nudge::from_key("ArrowLeft", false),
            Some(Nudge::Move { dx: -1, dy: 0 })
        );
        assert_eq!(
            Nudge::from_key("ArrowDown", true),
            Some(Nudge::Resize { dx: 0, dy: 1 })
        );
        assert_eq!(Nudge::from_key("Enter", false), None);
        let start = centred(VGA);
        assert_eq!(
            start,
            Region {
                x1: 160.0,
                y1: 120.0,
                x2: 480.0,
                y2: 360.0
            }
        );
        let moved = nudge(start, Nudge::Move { dx: 1, dy: -1 }, VGA);
        assert_eq!(
            moved,
            Region {
                x1: 172.8,
                y1: 110.4,
                x2: 492.8,
                y2: 350.4
            }
        );
        let mut r = start;
        for _ in 0..100 {
            r = nudge(r, Nudge::Move { dx: -1, dy: -1 }, VGA);
        }
        assert_eq!((r.x1, r.y1), (0.0, 0.0), "stops at the edge");
        assert!(
            (r.x2 - 320.0).abs() < 1e-9 && (r.y2 - 240.0).abs() < 1e-9,
            "keeps its size: {r:?}"
        );
        for _ in 0..100 {
            r = nudge(r, Nudge::Resize { dx: -1, dy: 1 }, VGA);
        }
        assert_eq!(
            (r.x1, r.y1, r.x2, r.y2),
            (0.0, 0.0, 12.8, 480.0),
            "never thinner than a step, never past the edge"
        );
        assert!(r.to_endpoint_loc(VGA).is_ok());
    }
}
