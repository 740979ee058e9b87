//! Between image pixels (the result's coordinates), the canvas's device pixels and the CSS
//! pixels a pointer reports.

use florence2::ImageSize;

/// A surface the scene is drawn on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct View {
    /// The picture the coordinates refer to.
    pub image: ImageSize,
    /// The canvas's backing store, in device pixels.
    pub width: u32,
    pub height: u32,
    /// Device pixels per CSS pixel: line widths and text sizes are multiples of it, so they
    /// look the same on every screen.
    pub unit: f64,
}

impl View {
    /// A canvas laid out at `css_width`×`css_height` on a screen with `dpr` device pixels per
    /// CSS pixel: its backing store matches the device pixels, so it is crisp on HiDPI.
    pub fn screen(image: ImageSize, css_width: f64, css_height: f64, dpr: f64) -> View {
        let dpr = if dpr.is_finite() && dpr > 0.0 {
            dpr
        } else {
            1.0
        };
        let px = |css: f64| {
            if css.is_finite() {
                (css * dpr).round().clamp(1.0, 16384.0) as u32
            } else {
                1
            }
        };
        View {
            image,
            width: px(css_width),
            height: px(css_height),
            unit: dpr,
        }
    }

    /// The picture at full size (at most `max_side` on its longer side) for the PNG export,
    /// with lines and labels as prominent as on a screen about 1000 CSS pixels wide.
    pub fn export(image: ImageSize, max_side: u32) -> View {
        let long = image.width.max(image.height).max(1);
        let shrink = (f64::from(max_side) / f64::from(long)).min(1.0);
        let side = |v: u32| ((f64::from(v) * shrink).round() as u32).max(1);
        let (width, height) = (side(image.width), side(image.height));
        View {
            image,
            width,
            height,
            unit: (f64::from(width.max(height)) / 1000.0).max(1.0),
        }
    }

    /// Image pixels to device pixels, per axis.
    pub fn scale(&self) -> (f64, f64) {
        (
            f64::from(self.width) / f64::from(self.image.width.max(1)),
            f64::from(self.height) / f64::from(self.image.height.max(1)),
        )
    }
}

/// A pointer at `(x, y)` CSS pixels over an element laid out at `css_size` showing `image`, in
/// image pixels, clamped into the image. (From the exact layout size, not the canvas's rounded
/// backing store, so a drag gives the tokens its pixels say.)
pub fn pointer_to_image(image: ImageSize, css_size: (f64, f64), (x, y): (f64, f64)) -> (f64, f64) {
    let map = |v: f64, css: f64, side: u32| {
        let px = v / css * f64::from(side);
        if px.is_finite() {
            px.clamp(0.0, f64::from(side))
        } else {
            0.0
        }
    };
    (
        map(x, css_size.0, image.width),
        map(y, css_size.1, image.height),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHOTO: ImageSize = ImageSize {
        width: 4000,
        height: 3000,
    };

    #[test]
    fn hidpi_backing_store_matches_device_pixels() {
        let v = View::screen(PHOTO, 800.0, 600.0, 2.0);
        assert_eq!((v.width, v.height, v.unit), (1600, 1200, 2.0));
        assert_eq!(v.scale(), (0.4, 0.4));
        let v = View::screen(PHOTO, 333.3, 250.0, 1.5);
        assert_eq!((v.width, v.height), (500, 375));
    }

    #[test]
    fn pointer_positions_map_to_image_pixels() {
        assert_eq!(
            pointer_to_image(PHOTO, (800.0, 600.0), (400.0, 300.0)),
            (2000.0, 1500.0)
        );
        assert_eq!(
            pointer_to_image(PHOTO, (800.0, 600.0), (-5.0, 700.0)),
            (0.0, 3000.0),
            "clamped into the image"
        );
        assert_eq!(
            pointer_to_image(PHOTO, (800.0, 600.0), (f64::NAN, 0.0)),
            (0.0, 0.0)
        );
        assert_eq!(
            pointer_to_image(PHOTO, (0.0, 600.0), (10.0, 0.0)),
            (0.0, 0.0),
            "a collapsed layout"
        );
        // Fractional layouts are used as they are: 333.3 px wide, 100 px in is 30% of the image.
        let (x, _) = pointer_to_image(ImageSize::new(1000, 10), (333.3, 10.0), (99.99, 0.0));
        assert!((x - 300.0).abs() < 1e-9, "{x}");
    }

    #[test]
    fn odd_layouts_never_make_an_empty_canvas() {
        let v = View::screen(PHOTO, 0.0, f64::NAN, f64::INFINITY);
        assert_eq!((v.width, v.height, v.unit), (1, 1, 1.0));
    }

    #[test]
    fn exports_keep_the_full_size_up_to_a_cap() {
        let v = View::export(ImageSize::new(640, 480), 8192);
        assert_eq!((v.width, v.height, v.unit), (640, 480, 1.0));
        let v = View::export(ImageSize::new(20000, 5000), 8192);
        assert_eq!((v.width, v.height), (8192, 2048));
        assert!((v.unit - 8.192).abs() < 1e-9);
    }
}
