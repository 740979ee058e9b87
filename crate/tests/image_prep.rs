//! Native image preparation on real encoded images (the browser path has its own tests in
//! `tests/browser.rs`, run in headless Chromium).
#![cfg(not(target_arch = "wasm32"))]

use florence2::ErrorCode;
use florence2::image_prep::{PrepareOptions, base64_len, native};
use florence2_fixtures as fx;
use image::GenericImageView;

fn default() -> PrepareOptions {
    PrepareOptions::default()
}

#[test]
fn a_12_megapixel_photo_fits_the_inline_budget() {
    let jpeg = fx::jpeg(&fx::photo(4000, 3000, 1), 90);
    let started = std::time::Instant::now();
    let prepared = native::prepare(&jpeg, &default()).unwrap();
    eprintln!(
        "12 MP ({} bytes) -> {}x{} q{:?}, {} bytes, {} encodes, {:?} (debug build)",
        jpeg.len(),
        prepared.sent_width,
        prepared.sent_height,
        prepared.quality,
        prepared.bytes.len(),
        prepared.encodes,
        started.elapsed()
    );
    assert_eq!((prepared.width, prepared.height), (4000, 3000));
    assert!(base64_len(prepared.bytes.len()) <= 180_000);
    assert_eq!(prepared.base64().len(), base64_len(prepared.bytes.len()));
    assert!(
        prepared
            .data_url()
            .starts_with("data:image/jpeg;base64,/9j/")
    );
    // The aspect ratio survives and the model still gets a useful size.
    let aspect = f64::from(prepared.sent_width) / f64::from(prepared.sent_height);
    assert!((aspect - 4.0 / 3.0).abs() < 0.01, "{aspect}");
    assert!(prepared.sent_height >= 384, "{}", prepared.sent_height);
    assert!(prepared.encodes <= 4);
    let decoded = image::load_from_memory(&prepared.bytes).unwrap();
    assert_eq!(
        decoded.dimensions(),
        (prepared.sent_width, prepared.sent_height)
    );
}

#[test]
fn a_small_clean_jpeg_is_sent_unchanged() {
    let jpeg = fx::jpeg(&fx::photo(640, 480, 2), 80);
    let prepared = native::prepare(&jpeg, &default()).unwrap();
    assert_eq!(prepared.bytes, jpeg);
    assert_eq!((prepared.encodes, prepared.quality), (0, None));
}

#[test]
fn exif_orientation_is_applied() {
    let jpeg = fx::exif_rotated_jpeg(400, 300);
    let prepared = native::prepare(&jpeg, &default()).unwrap();
    // Stored 400x300, shown rotated: 300x400, and re-encoded (EXIF is never passed on).
    assert_eq!((prepared.width, prepared.height), (300, 400));
    assert!(prepared.encodes >= 1);
    let img = image::load_from_memory(&prepared.bytes).unwrap().to_rgb8();
    let top_right = img.get_pixel(300 - 20, 20);
    let top_left = img.get_pixel(20, 20);
    assert!(
        top_right[0] > 150 && top_right[2] < 100,
        "top right {top_right:?}"
    );
    assert!(
        top_left[2] > 150 && top_left[0] < 100,
        "top left {top_left:?}"
    );
}

#[test]
fn sniff_reads_the_exif_orientation_of_a_jpeg() {
    let info = |bytes: &[u8]| florence2::image_prep::sniff(bytes, &default()).unwrap();
    let rotated = info(&fx::exif_rotated_jpeg(400, 300));
    assert_eq!(
        (
            rotated.stored_width,
            rotated.stored_height,
            rotated.has_exif,
            rotated.jpeg_orientation
        ),
        (400, 300, true, 6)
    );
    assert_eq!(
        info(&fx::jpeg(&fx::photo(640, 480, 1), 90)).jpeg_orientation,
        1
    );
}

#[test]
fn transparency_becomes_white() {
    let prepared = native::prepare(&fx::transparent_png(300, 200), &default()).unwrap();
    let img = image::load_from_memory(&prepared.bytes).unwrap().to_rgb8();
    let corner = img.get_pixel(5, 5);
    let centre = img.get_pixel(150, 100);
    assert!(corner.0.iter().all(|&c| c > 240), "{corner:?}");
    assert!(centre[1] > 150 && centre[0] < 60, "{centre:?}");
}

#[test]
fn every_supported_format_prepares() {
    let img = image::DynamicImage::ImageRgb8(fx::photo(320, 240, 3));
    for format in [
        image::ImageFormat::Png,
        image::ImageFormat::WebP,
        image::ImageFormat::Gif,
        image::ImageFormat::Bmp,
    ] {
        let prepared = native::prepare(&fx::encode(&img, format), &default())
            .unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!(
            (prepared.sent_width, prepared.sent_height),
            (320, 240),
            "{format:?}"
        );
        assert_eq!(prepared.mime, "image/jpeg");
    }
}

#[test]
fn bad_images_are_typed_errors() {
    let photo = fx::jpeg(&fx::photo(640, 480, 4), 90);
    let cases: Vec<(&str, Vec<u8>, ErrorCode)> = vec![
        ("empty", Vec::new(), ErrorCode::ImageDecode),
        (
            "truncated JPEG",
            photo[..photo.len() / 2].to_vec(),
            ErrorCode::ImageDecode,
        ),
        (
            "JPEG header only",
            photo[..600].to_vec(),
            ErrorCode::ImageDecode,
        ),
        ("PDF", b"%PDF-1.7\n%%EOF\n".to_vec(), ErrorCode::ImageDecode),
        ("text", b"hello".to_vec(), ErrorCode::ImageDecode),
        (
            "80 MP PNG",
            fx::flat_png(10_000, 8_000),
            ErrorCode::ImageTooLarge,
        ),
    ];
    for (what, bytes, code) in cases {
        let err = native::prepare(&bytes, &default()).unwrap_err();
        assert_eq!(err.code, code, "{what}: {err}");
        assert!(!err.message.is_empty());
    }
    let tight = PrepareOptions {
        max_base64_chars: Some(200),
        ..default()
    };
    assert_eq!(
        native::prepare(&photo, &tight).unwrap_err().code,
        ErrorCode::ImageBudget
    );
}

#[test]
fn tiny_pictures_and_thin_strips_are_pictures() {
    // The model resizes every picture to 768x768: a 1x1 PNG or a 1000x5 strip of text is sent
    // as it is, never refused for its size.
    for (width, height) in [(1, 1), (1000, 5), (5, 1000), (7, 7)] {
        let png = fx::flat_png(width, height);
        let prepared =
            native::prepare(&png, &default()).unwrap_or_else(|e| panic!("{width}x{height}: {e}"));
        assert_eq!(
            (
                prepared.width,
                prepared.height,
                prepared.sent_width,
                prepared.sent_height
            ),
            (width, height, width, height),
            "{width}x{height}"
        );
        let decoded = image::load_from_memory(&prepared.bytes).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (width, height));
    }
}

#[test]
fn without_a_budget_the_full_size_is_kept() {
    let jpeg = fx::jpeg(&fx::photo(4000, 3000, 5), 90);
    let prepared = native::prepare(
        &jpeg,
        &PrepareOptions {
            max_base64_chars: None,
            ..default()
        },
    )
    .unwrap();
    assert_eq!(
        (prepared.sent_width, prepared.sent_height, prepared.encodes),
        (1024, 768, 1)
    );
}
