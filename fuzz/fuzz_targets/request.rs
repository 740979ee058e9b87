//! The invocation body as the proxy validates it, and the prompt rules: never a panic.
#![no_main]

use florence2::request::parse_invoke_body;
use florence2::{Prompt, region};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_invoke_body(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Prompt::parse(text);
        let _ = region::parse_loc_box(text);
        let _ = florence2::http_error::error_from_http(
            429,
            Some(text),
            data,
            std::time::SystemTime::UNIX_EPOCH,
        );
    }
});
