//! The top of the page: the title, the settings, and what the proxy's health means.

mod bar;
mod health;
mod settings;

pub use bar::Header;
pub use health::{HealthBanner, watch_health};
pub use settings::keep_settings;
