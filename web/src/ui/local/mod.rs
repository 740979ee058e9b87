//! Florence-2 in this browser (`Florence2Local`): the Remote / Local switch, loading a model
//! folder with its progress, and the model itself behind one thin JS module (`js`).

mod js;
mod panel;
mod state;

pub use js::{LocalModel, OnToken};
pub use panel::ModelPanel;
pub use state::LocalState;
