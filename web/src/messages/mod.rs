//! What the page says when something is wrong (or about to be).

pub mod health;
pub mod problem;
pub mod units;

pub use problem::{Problem, Situation};
