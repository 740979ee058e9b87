//! A distinct colour per label: labels take colours in the order they first appear, so the
//! first ten labels of any answer get ten hand-picked, clearly different colours (readable on
//! dark and light pictures); beyond them, hues step by the golden angle, which never repeats.

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rgb(pub u8, pub u8, pub u8);

const PICKED: [Rgb; 10] = [
    Rgb(0x38, 0xbd, 0xf8), // sky
    Rgb(0xf4, 0x72, 0xb6), // pink
    Rgb(0xfa, 0xcc, 0x15), // yellow
    Rgb(0x4a, 0xde, 0x80), // green
    Rgb(0xfb, 0x92, 0x3c), // orange
    Rgb(0xa7, 0x8b, 0xfa), // violet
    Rgb(0xf8, 0x71, 0x71), // red
    Rgb(0x2d, 0xd4, 0xbf), // teal
    Rgb(0xe8, 0x79, 0xf9), // fuchsia
    Rgb(0xa3, 0xe6, 0x35), // lime
];

impl Rgb {
    /// `#rrggbb`.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    /// `rgba(r, g, b, a)` for translucent fills.
    pub fn rgba(self, alpha: f64) -> String {
        format!("rgba({}, {}, {}, {alpha})", self.0, self.1, self.2)
    }

    /// Relative luminance (WCAG), 0 for black to 1 for white.
    pub fn luminance(self) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * lin(self.0) + 0.7152 * lin(self.1) + 0.0722 * lin(self.2)
    }

    /// Black or white, whichever reads better on this colour (label tags).
    pub fn ink(self) -> Rgb {
        // The luminance where black and white have equal contrast: (L + 0.05)² = 1.05 · 0.05.
        if self.luminance() > 0.179 {
            Rgb(0x0b, 0x0d, 0x12)
        } else {
            Rgb(0xff, 0xff, 0xff)
        }
    }
}

/// The `n`-th colour of the palette.
pub fn nth(n: usize) -> Rgb {
    if let Some(&c) = PICKED.get(n) {
        return c;
    }
    const GOLDEN_ANGLE: f64 = 137.507_764;
    let k = n - PICKED.len();
    let hue = (20.0 + k as f64 * GOLDEN_ANGLE) % 360.0;
    // Three lightness steps keep neighbours apart even where hues come close again.
    let lightness = [0.66, 0.58, 0.74][k % 3];
    hsl(hue, 0.78, lightness)
}

fn hsl(hue: f64, saturation: f64, lightness: f64) -> Rgb {
    let c = (1.0 - (2.0 * lightness - 1.0).abs()) * saturation;
    let h = hue / 60.0;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = lightness - c / 2.0;
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    Rgb(byte(r), byte(g), byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distance(a: Rgb, b: Rgb) -> f64 {
        let d = |x: u8, y: u8| (f64::from(x) - f64::from(y)).powi(2);
        (d(a.0, b.0) + d(a.1, b.1) + d(a.2, b.2)).sqrt()
    }

    #[test]
    fn the_first_colours_are_far_apart() {
        for i in 0..PICKED.len() {
            for j in 0..i {
                assert!(
                    distance(nth(i), nth(j)) > 60.0,
                    "{i} {j}: {} {}",
                    nth(i).hex(),
                    nth(j).hex()
                );
            }
        }
    }

    #[test]
    fn many_labels_never_share_a_colour() {
        let mut seen: Vec<Rgb> = (0..200).map(nth).collect();
        seen.sort_by_key(|c| (c.0, c.1, c.2));
        seen.dedup();
        assert_eq!(seen.len(), 200);
    }

    #[test]
    fn generated_colours_are_bright_enough_to_see_on_photos() {
        for n in 0..200 {
            let l = nth(n).luminance();
            assert!(l > 0.1, "{n}: {} is too dark ({l})", nth(n).hex());
        }
    }

    #[test]
    fn css_forms() {
        assert_eq!(Rgb(0x38, 0xbd, 0xf8).hex(), "#38bdf8");
        assert_eq!(Rgb(1, 2, 3).rgba(0.35), "rgba(1, 2, 3, 0.35)");
        assert_eq!(Rgb(255, 255, 255).ink(), Rgb(0x0b, 0x0d, 0x12));
        assert_eq!(Rgb(0, 0, 80).ink(), Rgb(255, 255, 255));
        assert_eq!(hsl(0.0, 1.0, 0.5), Rgb(255, 0, 0));
        assert_eq!(hsl(240.0, 1.0, 0.5), Rgb(0, 0, 255));
    }
}
