//! Draws a scene on a 2D canvas: masks (filled, translucent), boxes, OCR quads, label tags, the
//! region being selected, and the shape under the pointer on top. One function for the screen,
//! the PNG export and the history's thumbnails, so they all look alike.

use florence2::Region;
use wasm_bindgen::JsValue;
use web_sys::{CanvasRenderingContext2d, CanvasWindingRule};

use crate::scene::{Geometry, Layer, Scene, Shape, View};
use crate::ui::state::Layers;

pub struct DrawOptions {
    pub layers: Layers,
    pub hovered: Option<usize>,
    /// The region a region task is (to be) run with.
    pub selection: Option<Region>,
}

/// Clears the canvas, then paints.
pub fn draw(
    ctx: &CanvasRenderingContext2d,
    view: &View,
    scene: Option<&Scene>,
    options: &DrawOptions,
) {
    ctx.clear_rect(0.0, 0.0, f64::from(view.width), f64::from(view.height));
    paint(ctx, view, scene, options);
}

/// Draws `scene` (if any) and the selection over what the canvas holds (the picture, for
/// exports and thumbnails).
pub fn paint(
    ctx: &CanvasRenderingContext2d,
    view: &View,
    scene: Option<&Scene>,
    options: &DrawOptions,
) {
    ctx.set_line_join("round");
    if let Some(scene) = scene {
        draw_scene(ctx, view, scene, options);
    }
    if let Some(region) = options.selection {
        draw_selection(ctx, view, &region);
    }
}

fn draw_scene(ctx: &CanvasRenderingContext2d, view: &View, scene: &Scene, options: &DrawOptions) {
    let hovered = options.hovered.filter(|&i| i < scene.shapes.len());
    let visible = |s: &Shape| options.layers.shows(s.layer);
    // Masks under outlines, outlines under labels; with a shape hovered, the others fade.
    ctx.set_global_alpha(if hovered.is_some() { 0.3 } else { 1.0 });
    for (i, s) in scene.shapes.iter().enumerate() {
        if visible(s) && Some(i) != hovered {
            fill(ctx, view, s, false);
        }
    }
    for (i, s) in scene.shapes.iter().enumerate() {
        if visible(s) && Some(i) != hovered {
            outline(ctx, view, s, false);
        }
    }
    let mut tags = Tags::new(ctx, view);
    if options.layers.labels {
        for (i, s) in scene.shapes.iter().enumerate() {
            if visible(s) && Some(i) != hovered {
                tags.draw(s, false);
            }
        }
    }
    ctx.set_global_alpha(1.0);
    // The hovered shape is drawn last, on top, with its label even when labels are off.
    if let Some(s) = hovered.map(|i| &scene.shapes[i]) {
        fill(ctx, view, s, true);
        outline(ctx, view, s, true);
        tags.draw(s, true);
    }
}

/// Traces the shape's outline as a path in device pixels.
fn trace(ctx: &CanvasRenderingContext2d, view: &View, shape: &Shape) {
    let (sx, sy) = view.scale();
    ctx.begin_path();
    let ring = |coords: &[f64]| {
        for (k, p) in coords.chunks_exact(2).enumerate() {
            let (x, y) = (p[0] * sx, p[1] * sy);
            if k == 0 {
                ctx.move_to(x, y)
            } else {
                ctx.line_to(x, y)
            }
        }
        ctx.close_path();
    };
    match &shape.geometry {
        Geometry::Box(b) => ring(&[b.x1, b.y1, b.x2, b.y1, b.x2, b.y2, b.x1, b.y2]),
        Geometry::Quad(q) => ring(q),
        Geometry::Polygon(rings) => rings.iter().for_each(|r| ring(r)),
    }
}

fn fill(ctx: &CanvasRenderingContext2d, view: &View, shape: &Shape, hovered: bool) {
    let alpha = match shape.layer {
        Layer::Masks => 0.38,
        Layer::Text => 0.14,
        Layer::Boxes if hovered => 0.16,
        Layer::Boxes => return,
    };
    trace(ctx, view, shape);
    ctx.set_fill_style_str(
        &shape
            .colour
            .rgba(if hovered { alpha + 0.14 } else { alpha }),
    );
    ctx.fill_with_canvas_winding_rule(CanvasWindingRule::Evenodd);
}

fn outline(ctx: &CanvasRenderingContext2d, view: &View, shape: &Shape, hovered: bool) {
    let u = view.unit;
    trace(ctx, view, shape);
    if hovered {
        // A dark halo keeps the outline visible on any picture.
        ctx.set_stroke_style_str("rgba(0, 0, 0, 0.55)");
        ctx.set_line_width(6.0 * u);
        ctx.stroke();
    }
    ctx.set_stroke_style_str(&shape.colour.hex());
    ctx.set_line_width(if hovered {
        3.5 * u
    } else if shape.layer == Layer::Masks {
        1.5 * u
    } else {
        2.0 * u
    });
    ctx.stroke();
}

/// Label tags: the label in a tag of the shape's colour, above its top-left corner (inside
/// when there is no room above). A tag that would cover one already drawn is left out — a
/// crowd of overlapping tags reads as nothing, and the list and hovering name every shape.
/// The font is set once and each label measured once per drawing (both are slow in canvas,
/// and answers repeat their labels).
struct Tags<'a> {
    ctx: &'a CanvasRenderingContext2d,
    view: &'a View,
    font_px: f64,
    widths: Vec<(&'a str, f64)>,
    placed: Vec<Region>,
}

impl<'a> Tags<'a> {
    fn new(ctx: &'a CanvasRenderingContext2d, view: &'a View) -> Tags<'a> {
        let font_px = (12.0 * view.unit).round();
        ctx.set_font(&format!(
            "600 {font_px}px system-ui, -apple-system, 'Segoe UI', sans-serif"
        ));
        ctx.set_text_baseline("middle");
        Tags {
            ctx,
            view,
            font_px,
            widths: Vec::new(),
            placed: Vec::new(),
        }
    }

    fn width(&mut self, name: &'a str) -> f64 {
        if let Some(&(_, w)) = self.widths.iter().find(|(n, _)| *n == name) {
            return w;
        }
        let w = self.ctx.measure_text(name).map_or(0.0, |m| m.width());
        self.widths.push((name, w));
        w
    }

    /// Draws the shape's tag unless it would cover another (`always` draws it regardless).
    fn draw(&mut self, shape: &'a Shape, always: bool) {
        let (ctx, u) = (self.ctx, self.view.unit);
        let (sx, sy) = self.view.scale();
        let width = self.width(&shape.name) + 8.0 * u;
        let height = self.font_px + 6.0 * u;
        let x = (shape.bounds.x1 * sx)
            .min(f64::from(self.view.width) - width)
            .max(0.0);
        let top = shape.bounds.y1 * sy;
        let y = if top >= height { top - height } else { top };
        let rect = Region {
            x1: x,
            y1: y,
            x2: x + width,
            y2: y + height,
        };
        let overlaps =
            |r: &Region| r.x1 < rect.x2 && rect.x1 < r.x2 && r.y1 < rect.y2 && rect.y1 < r.y2;
        if !always && self.placed.iter().any(overlaps) {
            return;
        }
        self.placed.push(rect);
        ctx.set_fill_style_str(&shape.colour.hex());
        ctx.fill_rect(x, y, width, height);
        ctx.set_fill_style_str(&shape.colour.ink().hex());
        ctx.fill_text(&shape.name, x + 4.0 * u, y + height / 2.0 + 0.5 * u)
            .ok();
    }
}

/// The selected region: a dashed white-on-black frame, readable on any picture, with the
/// outside dimmed.
fn draw_selection(ctx: &CanvasRenderingContext2d, view: &View, r: &Region) {
    let u = view.unit;
    let (sx, sy) = view.scale();
    let (x, y, w, h) = (r.x1 * sx, r.y1 * sy, (r.x2 - r.x1) * sx, (r.y2 - r.y1) * sy);
    ctx.set_fill_style_str("rgba(8, 10, 16, 0.45)");
    ctx.begin_path();
    ctx.rect(0.0, 0.0, f64::from(view.width), f64::from(view.height));
    ctx.rect(x, y, w, h);
    ctx.fill_with_canvas_winding_rule(CanvasWindingRule::Evenodd);
    ctx.set_line_width(2.0 * u);
    ctx.set_stroke_style_str("#0b0d12");
    ctx.stroke_rect(x, y, w, h);
    let dash = js_sys::Array::of2(&JsValue::from(6.0 * u), &JsValue::from(4.0 * u));
    ctx.set_line_dash(&dash).ok();
    ctx.set_stroke_style_str("#ffffff");
    ctx.stroke_rect(x, y, w, h);
    ctx.set_line_dash(&js_sys::Array::new()).ok();
}
