//! florence2: the plain-Rust core of florence2-web.
