//! The workbench's components: the answer streaming in, the caption grounded in one click, a
//! batch of pictures, the two paths side by side. Their logic is in `crate::workbench`.

mod batch;
mod chain;
mod compare;
mod files;
mod stream;

pub use batch::BatchPanel;
pub use chain::{ChainGrounding, describe_shape, listen_for_follow_ups};
pub use compare::ComparePanel;
pub use stream::StreamText;
