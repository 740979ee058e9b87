//! What a person can take away: COCO annotations and well-named files (the result JSON is
//! florence2's own serialisation; the PNG is drawn by the viewer).

pub mod coco;
pub mod file_name;

pub use coco::coco;
pub use file_name::download_name;
