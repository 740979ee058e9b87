//! `Florence2Client` in a real browser against `florence2-proxy --backend local`, the model
//! being the reference data's tiny end-to-end folder (which the proxy also serves as its
//! static files, so the page can read `golden_e2e.json` and `test_image.png`).
//!
//! `cargo xtask test` builds these with `FLORENCE2_TEST_LOCAL_PROXY` set when the reference
//! data is there; built without it, they are reported as ignored (crate/build.rs), and
//! `cargo xtask test` fails under `CI` when the reference data is missing.
#![cfg(target_arch = "wasm32")]

use florence2::js;
use florence2::{Answer, Entities, Task};
use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use serde_json::Value;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const LOCAL_PROXY: Option<&str> = option_env!("FLORENCE2_TEST_LOCAL_PROXY");

/// The proxy on the local backend; the tests that call this carry
/// `#[cfg_attr(no_test_local_proxy, ignore = …)]`, so it is set when they run.
fn local_proxy() -> &'static str {
    LOCAL_PROXY.unwrap_or_default()
}

fn obj(pairs: &[(&str, JsValue)]) -> JsValue {
    let o = Object::new();
    for (k, v) in pairs {
        Reflect::set(&o, &(*k).into(), v).unwrap();
    }
    o.into()
}

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

async fn fetch(base: &str, name: &str) -> Vec<u8> {
    let url = format!("{base}/{name}");
    let response = gloo_net::http::Request::get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    response.binary().await.unwrap()
}

async fn settle(p: Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

/// The number after `key` in the golden's description, e.g. `max_new_tokens=24`.
fn setting(description: &str, key: &str) -> Option<u32> {
    let rest = &description[description.find(key)? + key.len()..];
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

#[wasm_bindgen_test]
#[cfg_attr(
    no_test_local_proxy,
    ignore = "needs FLORENCE2_TEST_LOCAL_PROXY at build time: `cargo xtask test` starts it"
)]
async fn the_client_offers_region_to_ocr_on_the_local_backend() {
    let base = local_proxy();
    let client = js::Florence2Client::new(obj(&[("baseUrl", base.into())])).unwrap();
    let health = settle(client.health(None)).await.unwrap();
    assert_eq!(get(&health, "backend").as_string().unwrap(), "local");
    let tasks: Array = settle(client.tasks(None))
        .await
        .unwrap()
        .dyn_into()
        .unwrap();
    let tokens: Vec<String> = tasks
        .iter()
        .map(|t| get(&t, "token").as_string().unwrap())
        .collect();
    assert_eq!(tokens.len(), 15);
    assert!(tokens.iter().any(|t| t == "<REGION_TO_OCR>"), "{tokens:?}");
}

/// Every golden case through `Florence2Client.run`. The client sends what `prepareImage`
/// makes of the picture (a JPEG: the browser re-encodes a PNG), so the exact golden ids are
/// checked on the answer to the exact golden PNG sent with the JS API's own request builder
/// and answer parser, and the client's run is checked to be the local model's well-formed
/// answer to the same prompt.
#[wasm_bindgen_test]
#[cfg_attr(
    no_test_local_proxy,
    ignore = "needs FLORENCE2_TEST_LOCAL_PROXY at build time: `cargo xtask test` starts it"
)]
async fn every_golden_case_through_the_js_client() {
    let base = local_proxy();
    let golden: Value = serde_json::from_slice(&fetch(base, "golden_e2e.json").await).unwrap();
    let max_tokens = setting(
        golden["generation"].as_str().unwrap_or_default(),
        "max_new_tokens=",
    )
    .expect("the golden's token budget");
    let image_name = golden["image"].as_str().unwrap();
    let png = fetch(base, image_name).await;
    let size = golden["image_size_wh"].as_array().unwrap();
    let (width, height) = (
        size[0].as_u64().unwrap() as u32,
        size[1].as_u64().unwrap() as u32,
    );
    let data_url = format!("data:image/png;base64,{}", base64(&png));
    let client = js::Florence2Client::new(obj(&[("baseUrl", base.into())])).unwrap();
    for (token, case) in golden["cases"].as_object().unwrap() {
        let task = Task::from_token(token).unwrap();
        let text = case["text_input"].as_str().filter(|t| !t.is_empty());

        // The golden PNG itself, built and parsed by the JS API.
        let content = js::build_content(token, text.map(str::to_owned), &data_url)
            .unwrap_or_else(|e| panic!("{token}: {e:?}"));
        let body = serde_json::json!({
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens,
        })
        .to_string();
        let response =
            gloo_net::http::Request::post(&format!("{base}/v1/vlm/microsoft/florence-2"))
                .header("content-type", "application/json")
                .body(body)
                .unwrap()
                .send()
                .await
                .unwrap();
        assert_eq!(response.status(), 200, "{token}");
        assert_eq!(
            response.headers().get("x-florence2-backend").as_deref(),
            Some("local")
        );
        let zip = response.binary().await.unwrap();
        let parsed = js::parse_response(
            Uint8Array::from(&zip[..]).into(),
            obj(&[("width", width.into()), ("height", height.into())]),
        )
        .unwrap_or_else(|e| panic!("{token}: {e:?}"));
        let result: Value = serde_wasm(&get(&parsed, "result"));
        let entities: Entities = serde_json::from_value(result["entities"].clone()).unwrap();
        let ours = Answer {
            task,
            text: result["text"].as_str().unwrap().to_owned(),
            entities,
        }
        .to_transformers_value(true);
        assert_eq!(ours, case["post_processed"], "{token}: post-processed");

        // The same case through Florence2Client.run.
        let mut pairs = vec![
            ("image", Uint8Array::from(&png[..]).into()),
            ("task", JsValue::from_str(token)),
            ("maxTokens", max_tokens.into()),
        ];
        if let Some(t) = text {
            pairs.push(("text", t.into()));
        }
        let out = settle(client.run(obj(&pairs)))
            .await
            .unwrap_or_else(|e| panic!("{token}: {e:?}"));
        let result: Value = serde_wasm(&get(&out, "result"));
        assert_eq!(result["source"], "local", "{token}");
        assert_eq!(result["task"], token.as_str());
        assert_eq!(result["image"]["width"], width);
        let usage = &result["usage"];
        assert!(
            usage["completion_tokens"]
                .as_u64()
                .is_some_and(|n| n <= u64::from(max_tokens)),
            "{token}: {usage}"
        );
    }
}

fn serde_wasm(v: &JsValue) -> Value {
    let text = js_sys::JSON::stringify(v).unwrap().as_string().unwrap();
    serde_json::from_str(&text).unwrap()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
