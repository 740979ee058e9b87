//! Ways to bring a picture: file picker, drag and drop, paste, an image URL, the camera, the
//! sample. All end in `load`, which checks the picture and shows it.

mod camera;
mod load;
mod paste;
mod picker;
mod sample;

pub use load::open_data_transfer;
pub use paste::listen_for_paste;
pub use picker::Sources;
pub use sample::open_sample;
