//! Post-processing of generated text, for every task: never a panic.
#![no_main]

use florence2::{ImageSize, Task, post_process};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let task = Task::ALL[usize::from(selector) % Task::ALL.len()];
    let size = ImageSize::new(1 + u32::from(selector), 480);
    if let Ok(answer) = post_process(task, text, size) {
        let _ = answer.to_transformers_value(true);
    }
});
