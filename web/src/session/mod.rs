//! What the app remembers: this session's runs, the person's settings, and the model loaded
//! in this browser.

pub mod history;
pub mod local_model;
pub mod settings;

pub use history::History;
pub use settings::Settings;
