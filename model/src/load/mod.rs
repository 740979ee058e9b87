//! From bytes to tensors: `.safetensors` files read tensor by tensor, the weights loader (both
//! checkpoint layouts, typed errors naming the culprit), the configs, and what a model needs in
//! memory before anything is allocated.

pub mod config;
pub mod memory;
pub mod quantized;
pub mod safetensors_file;
pub mod weights;
