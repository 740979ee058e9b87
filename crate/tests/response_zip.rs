//! The endpoint's ZIP answer: well-formed archives, tolerated variations and hostile ones.
#![cfg(not(target_arch = "wasm32"))]

use std::io::Write;

use florence2::response::{ResponseContext, ZipLimits, parse_zip};
use florence2::{ErrorCode, ImageSize, Task};
use zip::write::SimpleFileOptions;

fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    zip_with(entries, zip::CompressionMethod::Deflated)
}

fn zip_with(entries: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, data) in entries {
        w.start_file(
            *name,
            SimpleFileOptions::default().compression_method(method),
        )
        .unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

const OD: &str = r#"{"id":"abc","choices":[{"index":0,"message":{"role":"assistant","content":"<OD>","entities":{"bboxes":[[10,20,30,40.5]],"quad_boxes":null,"labels":["dog"],"bboxes_labels":null,"polygons":null}}}],"usage":{"completion_tokens":0,"prompt_tokens":0,"total_tokens":0},"extra":"ignored"}"#;

fn ctx(w: u32, h: u32) -> ResponseContext {
    ResponseContext::same_size(ImageSize::new(w, h))
}

#[test]
fn reads_the_response_and_the_overlay() {
    let png = b"\x89PNG\r\n\x1a\nnot really";
    let zip = zip_of(&[("abc.response", OD.as_bytes()), ("abc.png", png)]);
    let parsed = parse_zip(&zip, ctx(100, 100), ZipLimits::default()).unwrap();
    let r = parsed.result;
    assert_eq!(r.task, "<OD>");
    assert_eq!(r.entities.bboxes.unwrap(), [[10.0, 20.0, 30.0, 40.5]]);
    assert_eq!(r.entities.labels.unwrap(), ["dog"]);
    assert!(r.entities.polygons.is_none());
    assert_eq!(r.usage.unwrap()["total_tokens"], 0);
    let overlay = parsed.overlay.unwrap();
    assert_eq!(
        (overlay.name.as_str(), overlay.mime, &*overlay.bytes),
        ("abc.png", "image/png", &png[..])
    );
}

#[test]
fn stored_overlays_are_borrowed_not_copied() {
    let png = vec![7u8; 4096];
    let zip = zip_with(
        &[("abc.response", OD.as_bytes()), ("abc.png", &png)],
        zip::CompressionMethod::Stored,
    );
    let overlay = parse_zip(&zip, ctx(100, 100), ZipLimits::default())
        .unwrap()
        .overlay
        .unwrap();
    assert!(matches!(overlay.bytes, std::borrow::Cow::Borrowed(_)));
    assert_eq!(&*overlay.bytes, &png[..]);
    // A lying size cannot reach past the archive.
    let mut patched = zip.clone();
    let cd = patched
        .windows(4)
        .rposition(|w| w == b"PK\x01\x02")
        .unwrap();
    patched[cd + 24..cd + 28].copy_from_slice(&u32::MAX.to_le_bytes());
    patched[cd + 20..cd + 24].copy_from_slice(&u32::MAX.to_le_bytes());
    let result = parse_zip(&patched, ctx(100, 100), ZipLimits::default());
    assert!(
        matches!(
            result.as_ref().map_err(|e| e.code),
            Err(ErrorCode::ZipInvalid) | Err(ErrorCode::ZipTooLarge)
        ),
        "{result:?}"
    );
}

#[test]
fn coordinates_map_back_to_the_original_image() {
    let zip = zip_of(&[("x.response", OD.as_bytes())]);
    let ctx = ResponseContext {
        original: ImageSize::new(400, 200),
        sent: ImageSize::new(100, 50),
        task: Some(Task::ObjectDetection),
    };
    let r = parse_zip(&zip, ctx, ZipLimits::default()).unwrap().result;
    assert_eq!(r.entities.bboxes.unwrap(), [[40.0, 80.0, 120.0, 162.0]]);
    assert_eq!(r.image, ImageSize::new(400, 200));
}

#[test]
fn captions_carry_text_and_no_entities() {
    let json = r#"{"choices":[{"message":{"content":"<CAPTION>A black and brown dog in a grass field"}}]}"#;
    let r = parse_zip(
        &zip_of(&[("1.response", json.as_bytes())]),
        ctx(10, 10),
        ZipLimits::default(),
    )
    .unwrap()
    .result;
    assert_eq!(
        (r.task.as_str(), r.text.as_str()),
        ("<CAPTION>", "A black and brown dog in a grass field")
    );
    assert_eq!(r.entities, Default::default());
    assert!(r.usage.is_none());
}

#[test]
fn missing_entities_fall_back_to_the_loc_tokens_in_the_text() {
    let json = r#"{"choices":[{"message":{"content":"<OD>car<loc_0><loc_0><loc_499><loc_999>"}}]}"#;
    let r = parse_zip(
        &zip_of(&[("1.response", json.as_bytes())]),
        ctx(1000, 1000),
        ZipLimits::default(),
    )
    .unwrap()
    .result;
    assert_eq!(r.entities.bboxes.unwrap(), [[0.5, 0.5, 499.5, 999.5]]);
}

#[test]
fn the_asked_task_must_match_the_answer() {
    let zip = zip_of(&[("x.response", OD.as_bytes())]);
    let ctx = ResponseContext {
        task: Some(Task::Caption),
        ..ctx(10, 10)
    };
    assert_eq!(
        parse_zip(&zip, ctx, ZipLimits::default()).unwrap_err().code,
        ErrorCode::ResponseInvalid
    );
}

#[test]
fn bad_archives_and_documents_are_typed_errors() {
    let limits = ZipLimits::default();
    let cases: Vec<(Vec<u8>, ErrorCode)> = vec![
        (Vec::new(), ErrorCode::ZipInvalid),
        (b"PK\x03\x04 truncated".to_vec(), ErrorCode::ZipInvalid),
        (br#"{"status":500}"#.to_vec(), ErrorCode::ZipInvalid),
        (zip_of(&[("a.png", b"x")]), ErrorCode::ResponseInvalid),
        (zip_of(&[("a.response", b"not json")]), ErrorCode::ResponseInvalid),
        (zip_of(&[("a.response", br#"{"choices":[]}"#)]), ErrorCode::ResponseInvalid),
        (zip_of(&[("a.response", br#"{"choices":"x"}"#)]), ErrorCode::ResponseInvalid),
        (zip_of(&[("a.response", br#"{"choices":[{"message":{"content":"<OD>","entities":{"bboxes":[[1,2,3]]}}}]}"#)]), ErrorCode::ResponseInvalid),
        (zip_of(&[("a.response", br#"{"choices":[{"message":{"content":"<OD>","entities":{"bboxes":"x"}}}]}"#)]), ErrorCode::ResponseInvalid),
        (zip_of(&[("a.response", br#"{"choices":[{"message":{"content":"<OD>","entities":{"labels":[1]}}}]}"#)]), ErrorCode::ResponseInvalid),
        (zip_of(&[("a.response", br#"{"choices":[{"message":{"content":"no task"}}]}"#)]), ErrorCode::ResponseInvalid),
        (zip_of(&[("a.response", br#"{"choices":[{"message":{"content":"<OD>","entities":{"polygons":[[[1,2,3]]]}}}]}"#)]), ErrorCode::ResponseInvalid),
    ];
    for (i, (bytes, code)) in cases.iter().enumerate() {
        assert_eq!(
            parse_zip(bytes, ctx(10, 10), limits).unwrap_err().code,
            *code,
            "case {i}"
        );
    }
    // A truncated copy of a good archive.
    let good = zip_of(&[("x.response", OD.as_bytes())]);
    for cut in [1, good.len() / 2, good.len() - 1] {
        assert_eq!(
            parse_zip(&good[..cut], ctx(10, 10), limits)
                .unwrap_err()
                .code,
            ErrorCode::ZipInvalid,
            "cut {cut}"
        );
    }
}

#[test]
fn too_many_entries_are_refused() {
    let names: Vec<String> = (0..100_000).map(|i| format!("{i}")).collect();
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for name in &names {
        w.start_file(
            name.as_str(),
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored),
        )
        .unwrap();
    }
    let zip = w.finish().unwrap().into_inner();
    let started = std::time::Instant::now();
    let e = parse_zip(&zip, ctx(10, 10), ZipLimits::default()).unwrap_err();
    assert_eq!(e.code, ErrorCode::ZipTooLarge, "{e}");
    eprintln!(
        "100,000-entry archive ({} bytes) refused in {:?}",
        zip.len(),
        started.elapsed()
    );
}

#[test]
fn compression_bombs_stop_early() {
    // 8 MiB of zeros deflate to ~8 KB: far past the allowed ratio.
    let zeros = vec![0u8; 8 << 20];
    let zip = zip_of(&[("a.response", &zeros)]);
    assert!(zip.len() < 16 << 10, "{}", zip.len());
    let e = parse_zip(&zip, ctx(10, 10), ZipLimits::default()).unwrap_err();
    assert_eq!(e.code, ErrorCode::ZipTooLarge, "{e}");
    // And the total budget holds even for entries of ordinary ratio.
    let limits = ZipLimits {
        max_total_bytes: 1 << 20,
        ..ZipLimits::default()
    };
    let noise: Vec<u8> = (0..(2u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let zip = zip_of(&[("a.response", &noise)]);
    assert_eq!(
        parse_zip(&zip, ctx(10, 10), limits).unwrap_err().code,
        ErrorCode::ZipTooLarge
    );
}

#[test]
fn lying_headers_do_not_bypass_the_limits() {
    // A stored entry whose central directory claims 4 GiB: the header is not trusted.
    let zip = zip_of(&[("a.response", OD.as_bytes())]);
    let mut patched = zip.clone();
    // Central directory header signature PK\x01\x02; uncompressed size at offset 24.
    let cd = patched.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    patched[cd + 24..cd + 28].copy_from_slice(&u32::MAX.to_le_bytes());
    let result = parse_zip(&patched, ctx(10, 10), ZipLimits::default());
    assert!(
        matches!(
            result.as_ref().map_err(|e| e.code),
            Ok(_) | Err(ErrorCode::ZipInvalid)
        ),
        "{result:?}"
    );
}
