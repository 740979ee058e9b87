//! The endpoint's ZIP answer: any bytes must give a result or a typed error, never a panic.
#![no_main]

use florence2::response::{ResponseContext, ZipLimits, parse_zip};
use florence2::{ImageSize, Task};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let ctx = ResponseContext {
        original: ImageSize::new(640, 480),
        sent: ImageSize::new(320, 240),
        task: None,
    };
    let _ = parse_zip(data, ctx, ZipLimits::default());
    let _ = florence2::response::parse_response_json(
        data,
        ResponseContext {
            task: Some(Task::ObjectDetection),
            ..ctx
        },
    );
});
