//! The local backend's request path without the model (`--backend local`): the body as the
//! proxy validates it, the picture's bytes out of its data URL, what decoding will hold (read
//! from the header), the decoding to one RGB copy, and the run's token limit. Never a panic;
//! a picture the memory budget would take is decoded to the size its header said, within the
//! memory reserved for it. The proxy's own files, included as they are.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../proxy/src/routes/invoke_body.rs"]
mod invoke_body;
#[path = "../../proxy/src/backend/local/plan.rs"]
mod plan;

/// What one request may hold under the default `--memory-budget` (256 MB): a quarter.
const REQUEST_LIMIT: u64 = 64 << 20;

fuzz_target!(|data: &[u8]| {
    match invoke_body::parse(data, true) {
        Ok(invocation) => {
            let _ = invocation.prompt.input_text();
            let _ = plan::max_new_tokens(invocation.max_tokens, 1024, 1024);
            if let Ok(bytes) = plan::image_bytes(&invocation.image) {
                picture(&bytes);
            }
        }
        // Most inputs are no body: read them as the picture itself, so that the image
        // decoders get the mutations a base64 string inside JSON would hide.
        Err(_) => picture(data),
    }
});

fn picture(bytes: &[u8]) {
    let Ok(measured) = plan::measure(bytes) else {
        return;
    };
    if measured.peak_bytes > REQUEST_LIMIT {
        // Refused (IMAGE_TOO_LARGE) before decoding.
        return;
    }
    let Ok(rgb) = plan::decode_rgb(bytes) else {
        return;
    };
    let (w, h) = rgb.dimensions();
    let stored = (measured.width, measured.height);
    assert!(
        (w, h) == stored || (h, w) == stored,
        "decoded {w}x{h}, the header said {stored:?}"
    );
    assert!(rgb.as_raw().len() as u64 <= measured.peak_bytes);
}
