//! The picture with the answer drawn over it: sizing (crisp on HiDPI), drawing, hovering,
//! region selection by pointer and keyboard, and dropping pictures.

mod draw;
mod interact;
mod stage;

pub use draw::{DrawOptions, paint};
pub use stage::Viewer;
