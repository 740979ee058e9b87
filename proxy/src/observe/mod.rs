//! Structured logs: a request id and span per request, one line per answer, headers only
//! after the sensitive and hop-by-hop ones are taken out.

pub mod access_log;
pub mod headers;
pub mod model_timing;
