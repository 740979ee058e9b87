//! The overlay image NVCF returns beside the answer: the submitted image with the entities
//! drawn on it, as PNG.
//!
//! Lines are rasterised here by hand: the only crate that draws them (imageproc) would bring
//! nalgebra and rayon into every server build for a dozen lines of Bresenham.

use std::io::Cursor;

use crate::result::Entities;
use image::{ImageFormat, Rgb, RgbImage};

const PALETTE: [[u8; 3]; 6] = [
    [255, 64, 64],
    [64, 220, 64],
    [64, 128, 255],
    [255, 200, 0],
    [255, 0, 255],
    [0, 230, 230],
];

/// Draws boxes, quads and polygon rings on a copy of `image` and encodes it as PNG.
pub fn draw(image: &RgbImage, entities: &Entities) -> Result<Vec<u8>, image::ImageError> {
    draw_on(image.clone(), entities)
}

/// [`draw`] on `canvas` itself, for a caller done with the picture: no copy of its pixels.
pub fn draw_on(mut canvas: RgbImage, entities: &Entities) -> Result<Vec<u8>, image::ImageError> {
    let mut shapes: Vec<Vec<(f64, f64)>> = Vec::new();
    for [x1, y1, x2, y2] in entities.bboxes.iter().flatten() {
        shapes.push(vec![(*x1, *y1), (*x2, *y1), (*x2, *y2), (*x1, *y2)]);
    }
    for q in entities.quad_boxes.iter().flatten() {
        shapes.push(q.chunks(2).map(|p| (p[0], p[1])).collect());
    }
    for ring in entities.polygons.iter().flatten().flatten() {
        shapes.push(ring.chunks_exact(2).map(|p| (p[0], p[1])).collect());
    }
    for (i, shape) in shapes.iter().enumerate() {
        let colour = Rgb(PALETTE[i % PALETTE.len()]);
        for (j, &from) in shape.iter().enumerate() {
            let to = shape[(j + 1) % shape.len()];
            line(&mut canvas, from, to, colour);
        }
    }
    let mut png = Vec::new();
    canvas.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)?;
    Ok(png)
}

/// A two-pixel-wide line, clipped to the canvas.
fn line(canvas: &mut RgbImage, (x0, y0): (f64, f64), (x1, y1): (f64, f64), colour: Rgb<u8>) {
    let (w, h) = (i64::from(canvas.width()), i64::from(canvas.height()));
    let (mut x, mut y) = (x0.round() as i64, y0.round() as i64);
    let (xe, ye) = (x1.round() as i64, y1.round() as i64);
    let (dx, dy) = ((xe - x).abs(), -(ye - y).abs());
    let (sx, sy) = (if x < xe { 1 } else { -1 }, if y < ye { 1 } else { -1 });
    let mut err = dx + dy;
    loop {
        for (px, py) in [(x, y), (x + 1, y), (x, y + 1)] {
            if (0..w).contains(&px) && (0..h).contains(&py) {
                canvas.put_pixel(px as u32, py as u32, colour);
            }
        }
        if x == xe && y == ye {
            break;
        }
        let e2 = 2 * err;
        if e2 >= dy {
            err += dy;
            x += sx;
        }
        if e2 <= dx {
            err += dx;
            y += sy;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_are_drawn_and_clipped() {
        let img = RgbImage::from_pixel(20, 10, Rgb([0, 0, 0]));
        let entities = Entities {
            bboxes: Some(vec![[2.0, 2.0, 30.0, 8.0]]),
            ..Default::default()
        };
        let png = draw(&img, &entities).unwrap();
        let back = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (20, 10));
        assert_eq!(back.get_pixel(5, 2).0, PALETTE[0]);
        assert_eq!(back.get_pixel(10, 5).0, [0, 0, 0]);
    }
}
