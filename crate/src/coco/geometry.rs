//! Plane geometry on flat coordinate lists `[x, y, x, y, …]`, as Florence-2 gives them: the
//! bounds and areas COCO records (and the demo draws and hit-tests with).

use crate::region::Region;

/// The smallest rectangle holding every point; `None` without points.
pub fn bounds(coords: &[f64]) -> Option<Region> {
    let mut points = coords.chunks_exact(2);
    let first = points.next()?;
    let start = Region {
        x1: first[0],
        y1: first[1],
        x2: first[0],
        y2: first[1],
    };
    Some(points.fold(start, |r, p| Region {
        x1: r.x1.min(p[0]),
        y1: r.y1.min(p[1]),
        x2: r.x2.max(p[0]),
        y2: r.y2.max(p[1]),
    }))
}

/// The union of two rectangles.
pub fn union(a: Region, b: Region) -> Region {
    Region {
        x1: a.x1.min(b.x1),
        y1: a.y1.min(b.y1),
        x2: a.x2.max(b.x2),
        y2: a.y2.max(b.y2),
    }
}

pub fn rect_area(r: &Region) -> f64 {
    (r.x2 - r.x1).max(0.0) * (r.y2 - r.y1).max(0.0)
}

/// The area a ring encloses (shoelace formula; either winding).
pub fn ring_area(ring: &[f64]) -> f64 {
    let n = ring.len() / 2;
    let twice: f64 = (0..n)
        .map(|i| {
            let j = (i + 1) % n;
            ring[2 * i] * ring[2 * j + 1] - ring[2 * j] * ring[2 * i + 1]
        })
        .sum();
    twice.abs() / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const SQUARE: [f64; 8] = [0.0, 0.0, 10.0, 0.0, 10.0, 10.0, 0.0, 10.0];
    // An L shape: the square without its top-right quarter.
    const ELL: [f64; 12] = [
        0.0, 0.0, 5.0, 0.0, 5.0, 5.0, 10.0, 5.0, 10.0, 10.0, 0.0, 10.0,
    ];

    fn r(x1: f64, y1: f64, x2: f64, y2: f64) -> Region {
        Region { x1, y1, x2, y2 }
    }

    #[test]
    fn bounds_and_union() {
        assert_eq!(bounds(&ELL), Some(r(0.0, 0.0, 10.0, 10.0)));
        assert_eq!(bounds(&[3.0, 4.0]), Some(r(3.0, 4.0, 3.0, 4.0)));
        assert_eq!(bounds(&[]), None);
        assert_eq!(bounds(&[1.0]), None);
        let u = union(r(0.0, 5.0, 2.0, 6.0), r(1.0, 1.0, 3.0, 2.0));
        assert_eq!(u, r(0.0, 1.0, 3.0, 6.0));
    }

    #[test]
    fn areas() {
        assert_eq!(ring_area(&SQUARE), 100.0);
        assert_eq!(ring_area(&ELL), 75.0);
        let reversed: Vec<f64> = SQUARE.chunks(2).rev().flatten().copied().collect();
        assert_eq!(ring_area(&reversed), 100.0);
        assert_eq!(rect_area(&r(1.0, 1.0, 4.0, 3.0)), 6.0);
        assert_eq!(rect_area(&r(4.0, 1.0, 1.0, 3.0)), 0.0, "inverted: nothing");
    }
}
