//! Protection for a shared key and for the proxy itself: what requests may look like, how
//! often a client may call, how many calls run at once, how large bodies are, how long
//! anything may take.

pub mod body;
pub mod client;
pub mod client_tokens;
pub mod concurrency;
pub mod connections;
pub mod cors;
pub mod deadline;
pub mod host;
pub mod ignored_key;
pub mod memory;
pub mod pace;
pub mod panic;
pub mod rate_limit;
pub mod request_target;
pub mod response_headers;
pub mod shutdown;
