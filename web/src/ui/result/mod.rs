//! The answer beside the picture: its words (with a copy button), its objects (hover-linked
//! with the drawing), the layer switches, the exports and the result JSON.

mod entities;
mod exports;
mod layers;
mod panel;
mod words;

pub use panel::ResultPanel;
