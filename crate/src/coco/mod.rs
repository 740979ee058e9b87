//! COCO: the one conversion of results into COCO documents, used by the demo's export (one
//! answer) and by `florence2 label` (a dataset of many pictures), and the merge of documents.

mod build;
mod document;
pub mod geometry;
mod merge;
mod shapes;

pub use build::{CocoBuilder, CocoStyle, single_image, source_name};
pub use document::{Annotation, Category, Coco, Image, Info};
pub use merge::{CocoError, merge};
pub use shapes::{Shape, ShapeKind, shapes};
