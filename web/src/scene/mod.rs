//! The drawing model of an answer: shapes with labels and colours, their geometry, and the
//! mapping between image pixels and the canvas.

pub mod geometry;
pub mod palette;
pub mod shapes;
pub mod view;

pub use palette::Rgb;
pub use shapes::{Geometry, Layer, LegendEntry, Scene, Shape};
pub use view::{View, pointer_to_image};
