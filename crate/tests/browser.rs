//! The JS API in a real browser (headless Chromium, through wasm-bindgen-test): image
//! preparation on real encoded images, ZIP parsing, every error code reachable from JS, and
//! `Florence2Client` against a scripted loopback double of the proxy.
//!
//! `cargo xtask test` builds these with `FLORENCE2_TEST_SERVER` pointing at `proxy-double`,
//! which also serves the fixture files; built without it, the tests that need it say so and
//! pass without checking anything.
#![cfg(target_arch = "wasm32")]

use florence2::js;
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const SERVER: Option<&str> = option_env!("FLORENCE2_TEST_SERVER");

/// The fixtures server. Tests that need it carry `#[cfg_attr(no_test_server, ignore = …)]`
/// (build.rs sets the cfg when the variable is absent), so this is only called when it is set.
fn server() -> &'static str {
    SERVER.unwrap_or_default()
}

fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map_or(0.0, |p| p.now())
}

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

fn get(v: &JsValue, path: &str) -> JsValue {
    path.split('.')
        .fold(v.clone(), |acc, key| match key.parse::<u32>() {
            Ok(i) => Reflect::get_u32(&acc, i).unwrap_or(JsValue::UNDEFINED),
            Err(_) => Reflect::get(&acc, &key.into()).unwrap_or(JsValue::UNDEFINED),
        })
}

fn num(v: &JsValue, path: &str) -> f64 {
    get(v, path)
        .as_f64()
        .unwrap_or_else(|| panic!("{path} is not a number in {v:?}"))
}

/// The `code` of a thrown error, checking it is a real `Error` named `Florence2Error`.
fn code_of(e: &JsValue) -> String {
    assert!(e.is_instance_of::<js_sys::Error>(), "not an Error: {e:?}");
    assert_eq!(
        get(e, "name").as_string().as_deref(),
        Some("Florence2Error")
    );
    assert!(!get(e, "message").as_string().unwrap_or_default().is_empty());
    get(e, "code")
        .as_string()
        .unwrap_or_else(|| panic!("no code on {e:?}"))
}

fn expect_code<T: std::fmt::Debug>(r: Result<T, JsValue>, code: &str) {
    match r {
        Ok(v) => panic!("expected {code}, got {v:?}"),
        Err(e) => assert_eq!(code_of(&e), code, "{e:?}"),
    }
}

async fn fixture(name: &str) -> Vec<u8> {
    let url = format!("{}/fixtures/{name}", SERVER.unwrap());
    let response = gloo_net::http::Request::get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.binary().await.unwrap()
}

fn bytes(v: &[u8]) -> JsValue {
    Uint8Array::from(v).into()
}

async fn prepare(image: &[u8], options: JsValue) -> Result<JsValue, JsValue> {
    js::prepare_image(bytes(image), options).await
}

async fn settle(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

// ---- tasks, prompts, regions -------------------------------------------------------------

#[wasm_bindgen_test]
fn tasks_lists_the_fourteen_endpoint_tasks() {
    let tasks: Array = js::tasks().unwrap().dyn_into().unwrap();
    assert_eq!(tasks.length(), 14);
    let first = tasks.get(0);
    assert_eq!(get(&first, "token").as_string().unwrap(), "<CAPTION>");
    assert_eq!(get(&first, "text").as_string().unwrap(), "none");
    let texts: Vec<String> = tasks
        .iter()
        .map(|t| get(&t, "text").as_string().unwrap())
        .collect();
    assert_eq!(texts.iter().filter(|t| *t == "required").count(), 3);
    assert_eq!(texts.iter().filter(|t| *t == "region").count(), 3);
    assert!(
        tasks
            .iter()
            .all(|t| !get(&t, "label").as_string().unwrap().is_empty())
    );
}

#[wasm_bindgen_test]
fn build_content_and_its_errors() {
    let img = "data:image/jpeg;base64,/9j/4AAQ";
    assert_eq!(
        js::build_content("<OD>", None, img).unwrap(),
        format!("<OD><img src=\"{img}\" />")
    );
    assert_eq!(
        js::build_content("<OPEN_VOCABULARY_DETECTION>", Some("a cat".into()), img).unwrap(),
        format!("<OPEN_VOCABULARY_DETECTION>a cat<img src=\"{img}\" />")
    );
    expect_code(
        js::build_content("<OD>", Some("a cat".into()), img),
        "TEXT_NOT_ALLOWED",
    );
    expect_code(
        js::build_content("<CAPTION_TO_PHRASE_GROUNDING>", None, img),
        "TEXT_REQUIRED",
    );
    expect_code(
        js::build_content(
            "<REGION_TO_CATEGORY>",
            Some("<loc_5><loc_1><loc_2><loc_3>".into()),
            img,
        ),
        "BAD_REGION",
    );
    expect_code(
        js::build_content(
            "<CAPTION_TO_PHRASE_GROUNDING>",
            Some("x<img src=y>".into()),
            img,
        ),
        "TEXT_INVALID",
    );
    expect_code(js::build_content("<NOT_A_TASK>", None, img), "UNKNOWN_TASK");
    expect_code(
        js::build_content("<OD>", None, "javascript:alert(1)"),
        "BAD_OPTION",
    );
}

#[wasm_bindgen_test]
fn region_to_loc_and_its_errors() {
    let size = obj(&[("width", 640.into()), ("height", 480.into())]);
    let region = |x1: f64, y1: f64, x2: f64, y2: f64| {
        obj(&[
            ("x1", x1.into()),
            ("y1", y1.into()),
            ("x2", x2.into()),
            ("y2", y2.into()),
        ])
    };
    assert_eq!(
        js::region_to_loc(region(33.0, 159.0, 596.0, 371.0), size.clone()).unwrap(),
        "<loc_51><loc_330><loc_930><loc_772>"
    );
    expect_code(
        js::region_to_loc(region(100.0, 10.0, 50.0, 20.0), size.clone()),
        "BAD_REGION",
    );
    expect_code(
        js::region_to_loc(region(0.0, 0.0, 700.0, 20.0), size.clone()),
        "BAD_REGION",
    );
    expect_code(
        js::region_to_loc(obj(&[("x1", 1.into())]), size.clone()),
        "BAD_REGION",
    );
    expect_code(
        js::region_to_loc(JsValue::from_str("nope"), size),
        "BAD_REGION",
    );
}

// ---- image preparation ---------------------------------------------------------------------

#[wasm_bindgen_test]
#[cfg_attr(
    no_test_server,
    ignore = "needs FLORENCE2_TEST_SERVER at build time: `cargo xtask test` serves the fixtures"
)]
async fn a_12_megapixel_jpeg_fits_the_budget_quickly() {
    let jpeg = fixture("photo-12mp.jpg").await;
    let mut times = Vec::new();
    let mut last = JsValue::UNDEFINED;
    for _ in 0..5 {
        let started = now_ms();
        last = prepare(&jpeg, obj(&[("maxBase64Chars", 180_000.into())]))
            .await
            .unwrap();
        times.push(now_ms() - started);
    }
    times.sort_by(f64::total_cmp);
    let data_url = get(&last, "dataUrl").as_string().unwrap();
    let b64 = data_url.strip_prefix("data:image/jpeg;base64,").unwrap();
    console_log!(
        "BENCH prepareImage 12MP JPEG ({} bytes) -> {}x{} q{:?}, {} base64 chars, {} encodes: median {:.0} ms (runs {:?})",
        jpeg.len(),
        num(&last, "sentWidth"),
        num(&last, "sentHeight"),
        get(&last, "quality").as_f64(),
        b64.len(),
        num(&last, "encodes"),
        times[times.len() / 2],
        times.iter().map(|t| t.round()).collect::<Vec<_>>()
    );
    assert!(b64.len() <= 180_000);
    assert_eq!(
        (num(&last, "width"), num(&last, "height")),
        (4000.0, 3000.0)
    );
    let aspect = num(&last, "sentWidth") / num(&last, "sentHeight");
    assert!((aspect - 4.0 / 3.0).abs() < 0.01);
    assert!(num(&last, "sentHeight") >= 384.0);
    assert_eq!(
        (Uint8Array::new(&get(&last, "bytes")).length() as usize).div_ceil(3) * 4,
        b64.len()
    );
}

/// The pixel at (x, y) of a JPEG, decoded by the browser.
async fn pixel(jpeg: &JsValue, x: f64, y: f64) -> [u8; 3] {
    let blob = web_sys::Blob::new_with_u8_array_sequence(&Array::of1(jpeg)).unwrap();
    let global: JsValue = js_sys::global().into();
    let create: js_sys::Function = get(&global, "createImageBitmap").dyn_into().unwrap();
    let bitmap: web_sys::ImageBitmap = JsFuture::from(
        create
            .call1(&JsValue::NULL, &blob)
            .unwrap()
            .dyn_into::<Promise>()
            .unwrap(),
    )
    .await
    .unwrap()
    .dyn_into()
    .unwrap();
    let canvas = web_sys::OffscreenCanvas::new(bitmap.width(), bitmap.height()).unwrap();
    let ctx: web_sys::OffscreenCanvasRenderingContext2d = canvas
        .get_context("2d")
        .unwrap()
        .unwrap()
        .dyn_into()
        .unwrap();
    ctx.draw_image_with_image_bitmap(&bitmap, 0.0, 0.0).unwrap();
    let data = ctx.get_image_data(x, y, 1.0, 1.0).unwrap().data();
    [data[0], data[1], data[2]]
}

#[wasm_bindgen_test]
#[cfg_attr(
    no_test_server,
    ignore = "needs FLORENCE2_TEST_SERVER at build time: `cargo xtask test` serves the fixtures"
)]
async fn exif_orientation_is_applied() {
    let p = prepare(&fixture("exif-rotated.jpg").await, JsValue::UNDEFINED)
        .await
        .unwrap();
    // Stored 400x300 with "rotate 90° clockwise": shown 300x400, the red quarter top right.
    assert_eq!((num(&p, "width"), num(&p, "height")), (300.0, 400.0));
    assert!(
        num(&p, "encodes") >= 1.0,
        "EXIF images are re-encoded, never passed on"
    );
    let top_right = pixel(&get(&p, "bytes"), 280.0, 20.0).await;
    let top_left = pixel(&get(&p, "bytes"), 20.0, 20.0).await;
    assert!(
        top_right[0] > 150 && top_right[2] < 100,
        "top right {top_right:?}"
    );
    assert!(
        top_left[2] > 150 && top_left[0] < 100,
        "top left {top_left:?}"
    );
}

#[wasm_bindgen_test]
#[cfg_attr(
    no_test_server,
    ignore = "needs FLORENCE2_TEST_SERVER at build time: `cargo xtask test` serves the fixtures"
)]
async fn exif_orientation_is_applied_when_the_jpeg_is_downscaled() {
    // A short side of at most 150 halves the picture: the case where upright JPEGs are decoded
    // scaled (WebCodecs); an oriented one must still come out upright.
    let options = florence2::image_prep::PrepareOptions {
        max_short_side: 150,
        ..Default::default()
    };
    let p = florence2::browser::image::prepare(&fixture("exif-rotated.jpg").await, &options)
        .await
        .unwrap();
    assert_eq!(
        (p.width, p.height, p.sent_width, p.sent_height),
        (300, 400, 150, 200)
    );
    let jpeg = JsValue::from(Uint8Array::from(&p.bytes[..]));
    let top_right = pixel(&jpeg, 140.0, 10.0).await;
    let top_left = pixel(&jpeg, 10.0, 10.0).await;
    let bottom_right = pixel(&jpeg, 140.0, 190.0).await;
    assert!(
        top_right[0] > 150 && top_right[2] < 100,
        "top right {top_right:?}"
    );
    assert!(
        top_left[2] > 150 && top_left[0] < 100,
        "top left {top_left:?}"
    );
    assert!(
        bottom_right[2] > 150 && bottom_right[0] < 100,
        "bottom right {bottom_right:?}"
    );
}

#[wasm_bindgen_test]
#[cfg_attr(
    no_test_server,
    ignore = "needs FLORENCE2_TEST_SERVER at build time: `cargo xtask test` serves the fixtures"
)]
async fn transparency_becomes_white_and_other_formats_work() {
    let p = prepare(&fixture("transparent.png").await, JsValue::UNDEFINED)
        .await
        .unwrap();
    let corner = pixel(&get(&p, "bytes"), 5.0, 5.0).await;
    assert!(corner.iter().all(|&c| c > 240), "{corner:?}");
    for name in ["small.webp", "small.gif", "small.bmp"] {
        let p = prepare(&fixture(name).await, JsValue::UNDEFINED)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(
            (num(&p, "sentWidth"), num(&p, "sentHeight")),
            (320.0, 240.0),
            "{name}"
        );
        assert_eq!(get(&p, "mime").as_string().unwrap(), "image/jpeg");
    }
    // A small clean JPEG is sent as it is.
    let jpeg = fixture("photo-640.jpg").await;
    let p = prepare(&jpeg, JsValue::UNDEFINED).await.unwrap();
    assert_eq!(
        (num(&p, "encodes"), get(&p, "quality")),
        (0.0, JsValue::NULL)
    );
    assert_eq!(Uint8Array::new(&get(&p, "bytes")).to_vec(), jpeg);
}

#[wasm_bindgen_test]
#[cfg_attr(
    no_test_server,
    ignore = "needs FLORENCE2_TEST_SERVER at build time: `cargo xtask test` serves the fixtures"
)]
async fn bad_images_are_typed_errors() {
    expect_code(prepare(&[], JsValue::UNDEFINED).await, "IMAGE_DECODE");
    expect_code(
        prepare(&fixture("truncated.jpg").await, JsValue::UNDEFINED).await,
        "IMAGE_DECODE",
    );
    expect_code(
        prepare(&fixture("document.pdf").await, JsValue::UNDEFINED).await,
        "IMAGE_DECODE",
    );
    expect_code(
        prepare(&fixture("huge-80mp.png").await, JsValue::UNDEFINED).await,
        "IMAGE_TOO_LARGE",
    );
    // Tiny pictures are pictures: the model resizes every one to its input size.
    for (name, width, height) in [
        ("tiny-1x1.png", 1.0, 1.0),
        ("strip-1000x5.png", 1000.0, 5.0),
    ] {
        let tiny = prepare(&fixture(name).await, JsValue::UNDEFINED)
            .await
            .unwrap_or_else(|e| panic!("{name}: {}", code_of(&e)));
        assert_eq!(
            (num(&tiny, "width"), num(&tiny, "height")),
            (width, height),
            "{name}"
        );
        assert_eq!(
            (num(&tiny, "sentWidth"), num(&tiny, "sentHeight")),
            (width, height),
            "{name}"
        );
    }
    let photo = fixture("photo-640.jpg").await;
    expect_code(
        prepare(&photo, obj(&[("maxBase64Chars", 300.into())])).await,
        "IMAGE_BUDGET",
    );
    expect_code(
        prepare(&photo, obj(&[("maxBase64Chars", (-5).into())])).await,
        "BAD_OPTION",
    );
    expect_code(
        prepare(&photo, obj(&[("maxBase64Chars", "lots".into())])).await,
        "BAD_OPTION",
    );
    expect_code(
        js::prepare_image(JsValue::from_str("not bytes"), JsValue::UNDEFINED).await,
        "BAD_OPTION",
    );
    // A Blob works like bytes.
    let blob = web_sys::Blob::new_with_u8_array_sequence(&Array::of1(&bytes(&photo))).unwrap();
    assert!(
        js::prepare_image(blob.into(), JsValue::UNDEFINED)
            .await
            .is_ok()
    );
}

// ---- ZIP answers ----------------------------------------------------------------------------

#[wasm_bindgen_test]
#[cfg_attr(
    no_test_server,
    ignore = "needs FLORENCE2_TEST_SERVER at build time: `cargo xtask test` serves the fixtures"
)]
async fn parse_response_reads_200_boxes_and_a_1_mb_overlay_fast() {
    let zip = fixture("od-200.zip").await;
    let zip_js = bytes(&zip);
    let size = obj(&[("width", 4000.into()), ("height", 3000.into())]);
    let mut times = Vec::new();
    let mut parsed = JsValue::UNDEFINED;
    for _ in 0..3 {
        js::parse_response(zip_js.clone(), size.clone()).unwrap();
    }
    for _ in 0..30 {
        let started = now_ms();
        parsed = js::parse_response(zip_js.clone(), size.clone()).unwrap();
        times.push(now_ms() - started);
    }
    times.sort_by(f64::total_cmp);
    console_log!(
        "BENCH parseResponse 200 boxes + {} byte ZIP: median {:.2} ms, max {:.2} ms",
        zip.len(),
        times[times.len() / 2],
        times[times.len() - 1]
    );
    assert_eq!(
        Array::from(&get(&parsed, "result.entities.bboxes")).length(),
        200
    );
    assert_eq!(get(&parsed, "result.task").as_string().unwrap(), "<OD>");
    assert_eq!(
        get(&parsed, "result.source").as_string().unwrap(),
        "endpoint"
    );
    assert!(get(&parsed, "result.entities.polygons").is_null());
    assert_eq!(
        get(&parsed, "overlay.mime").as_string().unwrap(),
        "image/png"
    );
    assert!(Uint8Array::new(&get(&parsed, "overlay.bytes")).length() > 1_000_000);
    // Scaling from the sent copy to the original.
    let scaled = js::parse_response(
        zip_js,
        obj(&[
            ("width", 8000.into()),
            ("height", 6000.into()),
            ("sentWidth", 4000.into()),
            ("sentHeight", 3000.into()),
        ]),
    )
    .unwrap();
    assert_eq!(
        num(&scaled, "result.entities.bboxes.0.0"),
        2.0 * num(&parsed, "result.entities.bboxes.0.0")
    );
    assert_eq!(num(&scaled, "result.image.width"), 8000.0);
}

#[wasm_bindgen_test]
#[cfg_attr(
    no_test_server,
    ignore = "needs FLORENCE2_TEST_SERVER at build time: `cargo xtask test` serves the fixtures"
)]
async fn hostile_and_broken_answers_are_typed_errors() {
    let size = obj(&[("width", 100.into()), ("height", 100.into())]);
    expect_code(
        js::parse_response(bytes(b"not a zip at all"), size.clone()),
        "ZIP_INVALID",
    );
    expect_code(js::parse_response(bytes(&[]), size.clone()), "ZIP_INVALID");
    expect_code(
        js::parse_response(bytes(&fixture("bomb.zip").await), size.clone()),
        "ZIP_TOO_LARGE",
    );
    expect_code(
        js::parse_response(bytes(&fixture("many-entries.zip").await), size.clone()),
        "ZIP_TOO_LARGE",
    );
    expect_code(
        js::parse_response(bytes(&fixture("not-json.zip").await), size.clone()),
        "RESPONSE_INVALID",
    );
    expect_code(
        js::parse_response(bytes(&fixture("wrong-types.zip").await), size.clone()),
        "RESPONSE_INVALID",
    );
    let od = bytes(&fixture("od-200.zip").await);
    expect_code(
        js::parse_response(
            od.clone(),
            obj(&[("width", 0.into()), ("height", 10.into())]),
        ),
        "BAD_OPTION",
    );
    expect_code(
        js::parse_response(od.clone(), obj(&[("width", "wide".into())])),
        "BAD_OPTION",
    );
    expect_code(
        js::parse_response(
            od.clone(),
            obj(&[
                ("width", 10.into()),
                ("height", 10.into()),
                ("task", "<CAPTION>".into()),
            ]),
        ),
        "RESPONSE_INVALID",
    );
    expect_code(
        js::parse_response(
            od,
            obj(&[
                ("width", 10.into()),
                ("height", 10.into()),
                ("task", "<NOPE>".into()),
            ]),
        ),
        "UNKNOWN_TASK",
    );
    expect_code(js::parse_response(JsValue::from(42), size), "BAD_OPTION");
}

// ---- the client ----------------------------------------------------------------------------

fn client(base: &str, extra: &[(&str, JsValue)]) -> js::Florence2Client {
    let mut pairs = vec![("baseUrl", JsValue::from_str(base))];
    pairs.extend_from_slice(extra);
    js::Florence2Client::new(obj(&pairs)).unwrap()
}

fn run_request(image: &[u8], task: &str, text: Option<&str>) -> JsValue {
    let mut pairs = vec![("image", bytes(image)), ("task", task.into())];
    if let Some(t) = text {
        pairs.push(("text", t.into()));
    }
    obj(&pairs)
}

#[wasm_bindgen_test]
#[cfg_attr(
    no_test_server,
    ignore = "needs FLORENCE2_TEST_SERVER at build time: `cargo xtask test` serves the fixtures"
)]
async fn client_runs_every_task_inline() {
    let base = server();
    let photo = fixture("photo-640.jpg").await;
    let c = client(base, &[]);
    let tasks: Array = js::tasks().unwrap().dyn_into().unwrap();
    for task in tasks.iter() {
        let token = get(&task, "token").as_string().unwrap();
        let text = match get(&task, "text").as_string().unwrap().as_str() {
            "required" => Some("a green thing"),
            "region" => Some("<loc_100><loc_100><loc_500><loc_500>"),
            _ => None,
        };
        let out = settle(c.run(run_request(&photo, &token, text)))
            .await
            .unwrap_or_else(|e| panic!("{token}: {e:?}"));
        assert_eq!(get(&out, "result.task").as_string().unwrap(), token);
        assert_eq!(get(&out, "sent.inline"), JsValue::TRUE, "{token}");
        assert_eq!(get(&out, "overlay.mime").as_string().unwrap(), "image/png");
        let e = get(&out, "result.entities");
        let drawn = ["bboxes", "quad_boxes", "polygons"]
            .iter()
            .find(|k| !get(&e, k).is_null());
        match drawn {
            Some(&"bboxes") => assert_eq!(num(&e, "bboxes.0.0"), 64.0, "{token}: 10% of 640"),
            Some(&"quad_boxes") => {
                assert_eq!(num(&e, "quad_boxes.0.5"), 288.0, "{token}: 60% of 480")
            }
            Some(&"polygons") => {
                assert_eq!(num(&e, "polygons.0.0.2"), 320.0, "{token}: 50% of 640")
            }
            _ => assert!(
                get(&out, "result.text")
                    .as_string()
                    .unwrap()
                    .contains("640x480"),
                "{token}"
            ),
        }
    }
}

#[wasm_bindgen_test]
#[cfg_attr(
    no_test_server,
    ignore = "needs FLORENCE2_TEST_SERVER at build time: `cargo xtask test` serves the fixtures"
)]
async fn client_uploads_large_images_as_assets_and_maps_coordinates_back() {
    let base = server();
    let photo = fixture("photo-12mp.jpg").await;
    let stages = Array::new();
    let on_progress = Closure::<dyn Fn(JsValue)>::new({
        let stages = stages.clone();
        move |e: JsValue| {
            stages.push(&get(&e, "stage"));
        }
    });
    let request = run_request(&photo, "<OD>", None);
    Reflect::set(&request, &"onProgress".into(), on_progress.as_ref()).unwrap();
    let out = settle(client(base, &[]).run(request)).await.unwrap();
    assert_eq!(
        get(&out, "sent.inline"),
        JsValue::FALSE,
        "{:?}",
        get(&out, "sent")
    );
    assert_eq!(
        stages
            .iter()
            .map(|s| s.as_string().unwrap())
            .collect::<Vec<_>>(),
        ["preparing", "uploading", "waiting", "done"]
    );
    assert_eq!(
        get(&out, "result.entities.labels.0").as_string().unwrap(),
        "thing (asset)"
    );
    // The double boxes 10 %-50 % of the sent width: in the 4000 px original, 400-2000.
    let b = get(&out, "result.entities.bboxes.0");
    assert!(
        (num(&b, "0") - 400.0).abs() < 1e-6 && (num(&b, "2") - 2000.0).abs() < 1e-6,
        "{b:?}"
    );
    assert_eq!(num(&out, "result.image.width"), 4000.0);
    // With a bigger inline budget the same image goes inline.
    let out = settle(
        client(base, &[("maxBase64Chars", 5_000_000.into())])
            .run(run_request(&photo, "<OD>", None)),
    )
    .await
    .unwrap();
    assert_eq!(get(&out, "sent.inline"), JsValue::TRUE);
}

#[wasm_bindgen_test]
#[cfg_attr(
    no_test_server,
    ignore = "needs FLORENCE2_TEST_SERVER at build time: `cargo xtask test` serves the fixtures"
)]
async fn client_retries_429_and_reports_faults_with_codes() {
    let base = server();
    let photo = fixture("photo-640.jpg").await;
    let id = (js_sys::Math::random() * 1e9) as u64;
    let scenario = |name: &str| format!("{base}/s/{name}/{id}");

    // One 429 without Retry-After, then an answer.
    let out = settle(client(&scenario("429-then-ok"), &[]).run(run_request(&photo, "<OD>", None)))
        .await
        .unwrap();
    assert_eq!(get(&out, "result.task").as_string().unwrap(), "<OD>");

    let run = |base: String, extra: Vec<(&'static str, JsValue)>| {
        let c = client(&base, &extra);
        let p = c.run(run_request(&photo, "<OD>", None));
        async move { settle(p).await }
    };
    let e = run(scenario("429"), vec![("maxRetries", 2.into())])
        .await
        .unwrap_err();
    assert_eq!(code_of(&e), "RATE_LIMITED");
    assert_eq!(num(&e, "status"), 429.0);
    let e = run(scenario("500"), vec![]).await.unwrap_err();
    assert_eq!(code_of(&e), "UPSTREAM");
    assert!(
        get(&e, "message")
            .as_string()
            .unwrap()
            .contains("Internal error while making inference request")
    );
    expect_code(run(scenario("401"), vec![]).await, "UNAUTHORIZED");
    expect_code(run(scenario("truncated-zip"), vec![]).await, "ZIP_INVALID");
    expect_code(run(scenario("not-zip"), vec![]).await, "ZIP_INVALID");

    let started = now_ms();
    expect_code(
        run(scenario("hang"), vec![("timeoutMs", 700.into())]).await,
        "TIMEOUT",
    );
    let waited = now_ms() - started;
    assert!((600.0..10_000.0).contains(&waited), "{waited} ms");

    // An AbortSignal stops a run that would never end.
    let controller = web_sys::AbortController::new().unwrap();
    let request = run_request(&photo, "<OD>", None);
    Reflect::set(&request, &"signal".into(), &controller.signal()).unwrap();
    let pending = client(&scenario("hang"), &[]).run(request);
    let abort = Closure::once(move || controller.abort());
    web_sys::window()
        .unwrap()
        .set_timeout_with_callback_and_timeout_and_arguments_0(abort.as_ref().unchecked_ref(), 200)
        .unwrap();
    expect_code(settle(pending).await, "ABORTED");
    drop(abort);

    // Nothing listening: a network error. (Port 9 is discard, closed on loopback.)
    expect_code(run("http://127.0.0.1:9".into(), vec![]).await, "NETWORK");
}

#[wasm_bindgen_test]
async fn client_validates_before_sending() {
    let c = client("http://127.0.0.1:9", &[]);
    // These fail before any network access (the address would give NETWORK otherwise).
    expect_code(
        settle(c.run(run_request(&[1, 2, 3], "<OPEN_VOCABULARY_DETECTION>", None))).await,
        "TEXT_REQUIRED",
    );
    expect_code(
        settle(c.run(run_request(&[1, 2, 3], "<OD>", Some("cat")))).await,
        "TEXT_NOT_ALLOWED",
    );
    expect_code(
        settle(c.run(run_request(&[1, 2, 3], "<XYZ>", None))).await,
        "UNKNOWN_TASK",
    );
    expect_code(
        settle(c.run(run_request(&[1, 2, 3], "<OD>", None))).await,
        "IMAGE_DECODE",
    );
    expect_code(settle(c.run(JsValue::from(5))).await, "BAD_OPTION");
    expect_code(
        js::Florence2Client::new(obj(&[("baseUrl", "ftp://x".into())])).map(|_| ()),
        "BAD_OPTION",
    );
    expect_code(
        js::Florence2Client::new(obj(&[("timeoutMs", (-1).into())])).map(|_| ()),
        "BAD_OPTION",
    );
}

// ---- through the real proxy to the endpoint emulator ------------------------------------------

const PROXY: Option<&str> = option_env!("FLORENCE2_TEST_PROXY");

/// Every task through `florence2-proxy` → `nvcf-emulator`, once inline and once through the
/// asset route; the emulator's answers are boxes, quads and polygons inside the image.
#[wasm_bindgen_test]
#[cfg_attr(
    any(no_test_server, no_test_proxy),
    ignore = "needs FLORENCE2_TEST_SERVER and FLORENCE2_TEST_PROXY at build time: `cargo xtask test` starts both"
)]
async fn every_task_through_the_proxy_inline_and_as_asset() {
    let proxy = PROXY.unwrap_or_default();
    let photo = fixture("photo-640.jpg").await;
    let tasks: Array = js::tasks().unwrap().dyn_into().unwrap();
    // A budget of 1000 characters sends everything through the asset route.
    for (budget, inline) in [(180_000, true), (1000, false)] {
        let c = client(proxy, &[("maxBase64Chars", budget.into())]);
        for task in tasks.iter() {
            let token = get(&task, "token").as_string().unwrap();
            let text = match get(&task, "text").as_string().unwrap().as_str() {
                "required" => Some("the largest region"),
                "region" => Some("<loc_100><loc_100><loc_900><loc_900>"),
                _ => None,
            };
            let out = settle(c.run(run_request(&photo, &token, text)))
                .await
                .unwrap_or_else(|e| panic!("{token} (inline {inline}): {e:?}"));
            assert_eq!(get(&out, "result.task").as_string().unwrap(), token);
            assert_eq!(
                get(&out, "sent.inline"),
                JsValue::from_bool(inline),
                "{token}"
            );
            assert_eq!(get(&out, "result.source").as_string().unwrap(), "endpoint");
            let e = get(&out, "result.entities");
            // Entity kinds the task does not produce are null.
            let list = |v: JsValue| {
                if v.is_null() {
                    Vec::new()
                } else {
                    Array::from(&v).to_vec()
                }
            };
            let mut coords = Vec::new();
            for kind in ["bboxes", "quad_boxes"] {
                for shape in list(get(&e, kind)) {
                    coords.extend(list(shape).iter().map(|v| v.as_f64().unwrap()));
                }
            }
            for instance in list(get(&e, "polygons")) {
                for ring in list(instance) {
                    coords.extend(list(ring).iter().map(|v| v.as_f64().unwrap()));
                }
            }
            let text_answer = get(&out, "result.text").as_string().unwrap_or_default();
            assert!(
                !coords.is_empty() || !text_answer.is_empty(),
                "{token}: neither shapes nor text"
            );
            for (i, v) in coords.iter().enumerate() {
                let side = if i % 2 == 0 { 640.0 } else { 480.0 };
                assert!(
                    (0.0..=side).contains(v),
                    "{token}: coordinate {v} outside the 640x480 image"
                );
            }
        }
    }
}
