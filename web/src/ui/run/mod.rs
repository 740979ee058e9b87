//! Running a task: the buttons, the visible state (preparing → uploading → waiting → done), and
//! the run itself through florence2's browser client.

mod action;
mod controls;
mod keep;
pub mod paths;

pub use action::{listen_for_shortcut, start_run};
pub use controls::RunControls;
pub use keep::{Answered, THUMBNAIL, answer_of, selection_of, thumbnail};
