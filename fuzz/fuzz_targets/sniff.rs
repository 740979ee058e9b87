//! Image sniffing (format, header size, completeness, EXIF) on any bytes: never a panic.
#![no_main]

use florence2::image_prep::{PrepareOptions, sniff};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = sniff(data, &PrepareOptions::default());
});
