//! The demo as a workbench: the pure logic of its flows — chaining a caption into a grounding,
//! labelling a batch of pictures (its progress, its retries, its one COCO file), comparing the
//! endpoint's answer with the local model's, and each answer's timings in words. Plain Rust,
//! tested natively; the components are in `ui::workbench`.

pub mod batch;
pub mod chain;
pub mod compare;
pub mod timings;
