//! florence2-demo: the florence2-web demo, a client-side Leptos app that draws every
//! Florence-2 answer on the picture.
//!
//! The pure logic (what to draw and where, hit-testing, region selection, exports, history,
//! settings, messages) is plain Rust, tested natively; the app (`ui`) exists only in the
//! browser.

pub mod answer_text;
pub mod export;
pub mod messages;
pub mod scene;
pub mod selection;
pub mod session;
pub mod workbench;

#[cfg(target_arch = "wasm32")]
pub mod ui;
