//! Colour names, and the thing the emulator pretends a region of that colour is (so answers
//! read like Florence-2's: "sky", "tree", not "blue region").

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Colour {
    Black,
    White,
    Gray,
    Red,
    Orange,
    Brown,
    Yellow,
    Green,
    Cyan,
    Blue,
    Purple,
    Pink,
}

impl Colour {
    /// Names an RGB colour by hue, saturation and value.
    pub fn name([r, g, b]: [u8; 3]) -> Colour {
        let (r, g, b) = (
            f64::from(r) / 255.0,
            f64::from(g) / 255.0,
            f64::from(b) / 255.0,
        );
        let max = r.max(g).max(b);
        let min = r.min(g).min(b);
        let value = max;
        let saturation = if max == 0.0 { 0.0 } else { (max - min) / max };
        if value < 0.2 {
            return Colour::Black;
        }
        if saturation < 0.18 {
            return if value > 0.85 {
                Colour::White
            } else {
                Colour::Gray
            };
        }
        let delta = max - min;
        let hue = if max == r {
            60.0 * ((g - b) / delta).rem_euclid(6.0)
        } else if max == g {
            60.0 * ((b - r) / delta + 2.0)
        } else {
            60.0 * ((r - g) / delta + 4.0)
        };
        match hue {
            h if !(15.0..345.0).contains(&h) => Colour::Red,
            h if h < 45.0 => {
                if value < 0.6 {
                    Colour::Brown
                } else {
                    Colour::Orange
                }
            }
            h if h < 70.0 => Colour::Yellow,
            h if h < 165.0 => Colour::Green,
            h if h < 200.0 => Colour::Cyan,
            h if h < 260.0 => Colour::Blue,
            h if h < 300.0 => Colour::Purple,
            _ => Colour::Pink,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Colour::Black => "black",
            Colour::White => "white",
            Colour::Gray => "gray",
            Colour::Red => "red",
            Colour::Orange => "orange",
            Colour::Brown => "brown",
            Colour::Yellow => "yellow",
            Colour::Green => "green",
            Colour::Cyan => "cyan",
            Colour::Blue => "blue",
            Colour::Purple => "purple",
            Colour::Pink => "pink",
        }
    }

    /// The object category the emulator names a region of this colour.
    pub fn thing(self) -> &'static str {
        match self {
            Colour::Black => "shadow",
            Colour::White => "cloud",
            Colour::Gray => "building",
            Colour::Red => "car",
            Colour::Orange => "ball",
            Colour::Brown => "dog",
            Colour::Yellow => "sign",
            Colour::Green => "tree",
            Colour::Cyan => "water",
            Colour::Blue => "sky",
            Colour::Purple => "flower",
            Colour::Pink => "umbrella",
        }
    }
}

/// Where a box sits in the image, in words ("top left", "center", …).
pub fn position(bounds: [u32; 4], width: u32, height: u32) -> &'static str {
    let cx = f64::from(bounds[0] + bounds[2]) / 2.0 / f64::from(width.max(1));
    let cy = f64::from(bounds[1] + bounds[3]) / 2.0 / f64::from(height.max(1));
    let column = if cx < 1.0 / 3.0 {
        0
    } else if cx < 2.0 / 3.0 {
        1
    } else {
        2
    };
    let row = if cy < 1.0 / 3.0 {
        0
    } else if cy < 2.0 / 3.0 {
        1
    } else {
        2
    };
    [
        ["top left", "top", "top right"],
        ["left", "center", "right"],
        ["bottom left", "bottom", "bottom right"],
    ][row][column]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_named_sensibly() {
        assert_eq!(Colour::name([0, 0, 0]), Colour::Black);
        assert_eq!(Colour::name([255, 255, 255]), Colour::White);
        assert_eq!(Colour::name([128, 128, 128]), Colour::Gray);
        assert_eq!(Colour::name([230, 20, 20]), Colour::Red);
        assert_eq!(Colour::name([250, 150, 20]), Colour::Orange);
        assert_eq!(Colour::name([120, 70, 20]), Colour::Brown);
        assert_eq!(Colour::name([240, 230, 30]), Colour::Yellow);
        assert_eq!(Colour::name([30, 200, 40]), Colour::Green);
        assert_eq!(Colour::name([20, 200, 210]), Colour::Cyan);
        assert_eq!(Colour::name([20, 40, 220]), Colour::Blue);
        assert_eq!(Colour::name([150, 30, 220]), Colour::Purple);
        assert_eq!(Colour::name([240, 60, 180]), Colour::Pink);
    }

    #[test]
    fn positions_cover_the_grid() {
        assert_eq!(position([0, 0, 10, 10], 90, 90), "top left");
        assert_eq!(position([40, 40, 50, 50], 90, 90), "center");
        assert_eq!(position([80, 80, 90, 90], 90, 90), "bottom right");
    }
}
