//! A coarse reading of the image: an up-to-8×8 grid of cells, each named by its mean colour,
//! grouped into connected regions of one colour. Everything the emulator "sees" comes from
//! here, so answers are deterministic and lie inside the real image.

use image::RgbImage;

use super::colour::Colour;

/// The grid has at most this many cells per side.
const GRID: u32 = 8;
/// At most this many regions are reported (largest first).
pub const MAX_REGIONS: usize = 6;
/// Pixels sampled per cell side at most (large images are subsampled).
const SAMPLES_PER_CELL_SIDE: u32 = 24;

/// A connected group of grid cells of one colour, with its bounds in pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub colour: Colour,
    /// `[x0, y0, x1, y1]`, x1 and y1 exclusive, inside the image.
    pub bounds: [u32; 4],
    pub cells: usize,
}

#[derive(Debug, Clone)]
pub struct Scene {
    pub width: u32,
    pub height: u32,
    /// Largest first; never empty for a non-empty image.
    pub regions: Vec<Region>,
}

impl Scene {
    pub fn analyse(image: &RgbImage) -> Scene {
        let (width, height) = image.dimensions();
        let cols = GRID.min(width);
        let rows = GRID.min(height);
        let edge =
            |i: u32, n: u32, side: u32| (u64::from(i) * u64::from(side) / u64::from(n)) as u32;
        let cell_bounds = |c: u32, r: u32| {
            [
                edge(c, cols, width),
                edge(r, rows, height),
                edge(c + 1, cols, width),
                edge(r + 1, rows, height),
            ]
        };

        let colours: Vec<Colour> = (0..rows)
            .flat_map(|r| (0..cols).map(move |c| (c, r)))
            .map(|(c, r)| Colour::name(mean_rgb(image, cell_bounds(c, r))))
            .collect();

        let mut seen = vec![false; colours.len()];
        let mut regions = Vec::new();
        for start in 0..colours.len() {
            if seen[start] {
                continue;
            }
            let colour = colours[start];
            let mut stack = vec![start];
            seen[start] = true;
            let mut bounds = [u32::MAX, u32::MAX, 0, 0];
            let mut cells = 0;
            while let Some(i) = stack.pop() {
                let (c, r) = (i as u32 % cols, i as u32 / cols);
                let b = cell_bounds(c, r);
                bounds = [
                    bounds[0].min(b[0]),
                    bounds[1].min(b[1]),
                    bounds[2].max(b[2]),
                    bounds[3].max(b[3]),
                ];
                cells += 1;
                let neighbours = [
                    (c > 0).then(|| i - 1),
                    (c + 1 < cols).then(|| i + 1),
                    (r > 0).then(|| i - cols as usize),
                    (r + 1 < rows).then(|| i + cols as usize),
                ];
                for n in neighbours.into_iter().flatten() {
                    if !seen[n] && colours[n] == colour {
                        seen[n] = true;
                        stack.push(n);
                    }
                }
            }
            regions.push(Region {
                colour,
                bounds,
                cells,
            });
        }
        // Largest first; ties by position, so the order is deterministic.
        regions.sort_by_key(|r| (std::cmp::Reverse(r.cells), r.bounds[1], r.bounds[0]));
        regions.truncate(MAX_REGIONS);
        Scene {
            width,
            height,
            regions,
        }
    }

    /// The colour covering most of the image.
    pub fn dominant(&self) -> Colour {
        self.regions.first().map_or(Colour::Gray, |r| r.colour)
    }

    /// The region a phrase talks about: the first whose colour or thing is named in it.
    pub fn find(&self, phrase: &str) -> Option<&Region> {
        let phrase = phrase.to_ascii_lowercase();
        let words: Vec<&str> = phrase.split(|c: char| !c.is_ascii_alphabetic()).collect();
        self.regions.iter().find(|r| {
            words
                .iter()
                .any(|w| *w == r.colour.word() || *w == r.colour.thing())
        })
    }
}

/// The mean colour of the pixels of `[x0, y0, x1, y1]` (subsampled on a regular lattice).
pub fn mean_rgb(image: &RgbImage, [x0, y0, x1, y1]: [u32; 4]) -> [u8; 3] {
    let step_x = ((x1 - x0) / SAMPLES_PER_CELL_SIDE).max(1);
    let step_y = ((y1 - y0) / SAMPLES_PER_CELL_SIDE).max(1);
    let mut sum = [0u64; 3];
    let mut n = 0u64;
    for y in (y0..y1).step_by(step_y as usize) {
        for x in (x0..x1).step_by(step_x as usize) {
            let p = image.get_pixel(x, y).0;
            for (s, v) in sum.iter_mut().zip(p) {
                *s += u64::from(v);
            }
            n += 1;
        }
    }
    if n == 0 {
        return [128, 128, 128];
    }
    sum.map(|s| (s / n) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn halves_become_two_regions_inside_the_image() {
        let img = RgbImage::from_fn(64, 30, |x, _| {
            if x < 32 {
                Rgb([20, 40, 220])
            } else {
                Rgb([30, 200, 40])
            }
        });
        let scene = Scene::analyse(&img);
        assert_eq!(scene.regions.len(), 2);
        let colours: Vec<_> = scene.regions.iter().map(|r| r.colour).collect();
        assert!(
            colours.contains(&Colour::Blue) && colours.contains(&Colour::Green),
            "{colours:?}"
        );
        for r in &scene.regions {
            assert!(
                r.bounds[2] <= 64
                    && r.bounds[3] <= 30
                    && r.bounds[0] < r.bounds[2]
                    && r.bounds[1] < r.bounds[3]
            );
        }
        assert_eq!(scene.find("the green tree").unwrap().colour, Colour::Green);
        assert!(scene.find("a purple thing").is_none());
    }

    #[test]
    fn one_pixel_images_work() {
        let img = RgbImage::from_pixel(1, 1, Rgb([255, 255, 255]));
        let scene = Scene::analyse(&img);
        assert_eq!(
            scene.regions,
            vec![Region {
                colour: Colour::White,
                bounds: [0, 0, 1, 1],
                cells: 1
            }]
        );
    }
}
