//! What the app remembers: this session's runs and the person's settings.

pub mod history;
pub mod settings;

pub use history::History;
pub use settings::Settings;
