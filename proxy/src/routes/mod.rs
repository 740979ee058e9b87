//! The proxy's routes.

pub mod assets;
mod caller_key;
pub mod healthz;
pub mod invoke;
mod invoke_body;
pub mod not_found;
pub mod nvcf_assets;
pub mod static_files;
