//! Plane geometry on flat coordinate lists `[x, y, x, y, …]`, as Florence-2 gives them:
//! hit-testing here, bounds and areas from crate `florence2`.

use florence2::Region;

// Bounds and areas are what COCO records too: they live with the COCO conversion in crate
// `florence2`, so the picture and the exported file measure shapes alike.
pub use florence2::coco::geometry::{bounds, rect_area, ring_area, union};

pub fn rect_contains(r: &Region, x: f64, y: f64) -> bool {
    x >= r.x1 && x <= r.x2 && y >= r.y1 && y <= r.y2
}

/// Whether `(x, y)` lies inside the ring (even-odd rule; a ring is closed implicitly).
pub fn ring_contains(ring: &[f64], x: f64, y: f64) -> bool {
    let n = ring.len() / 2;
    let mut inside = false;
    let mut j = n.wrapping_sub(1);
    for i in 0..n {
        let (xi, yi, xj, yj) = (ring[2 * i], ring[2 * i + 1], ring[2 * j], ring[2 * j + 1]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQUARE: [f64; 8] = [0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0, 10.0];
    // An L shape: the square without its top-right quarter.
    const ELL: [f64; 12] = [
        0.0, 0.0, 5.0, 0.0, 5.0, 5.0, 10.0, 5.0, 10.0, 10.0, 0.0, 10.0,
    ];

    #[test]
    fn point_in_ring_follows_the_outline() {
        assert!(ring_contains(&SQUARE, 5.0, 5.0));
        assert!(!ring_contains(&SQUARE, 11.0, 5.0));
        assert!(ring_contains(&ELL, 2.0, 2.0));
        assert!(!ring_contains(&ELL, 8.0, 2.0), "the missing quarter");
        assert!(ring_contains(&ELL, 8.0, 8.0));
        assert!(
            !ring_contains(&[0.0, 0.0, 1.0, 1.0], 0.5, 0.5),
            "a segment has no inside"
        );
        assert!(!ring_contains(&[], 0.0, 0.0));
    }
}
