//! Every case of the reference folder's `golden_e2e.json`, sent through HTTP to the local
//! backend, comes back as transformers answered it: the decoded text of the exact ids (so the
//! exact ids), the token count, and the post-processed result. Nothing here knows the
//! numbers: any folder of this layout must pass.

use florence2::{Answer, ImageSize, Task};
use serde_json::Value;

use crate::support::{LocalProxy, body, data_url, parsed};

/// The number after `key` in the golden's description, e.g. `max_new_tokens=24`.
fn setting(description: &str, key: &str) -> Option<u32> {
    let rest = &description[description.find(key)? + key.len()..];
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
async fn every_golden_case_comes_back_over_http_as_transformers_answered() {
    let proxy = LocalProxy::start(&[]).await;
    let golden: Value = serde_json::from_slice(
        &std::fs::read(proxy.model_dir.join("golden_e2e.json")).expect("golden_e2e.json"),
    )
    .expect("golden JSON");
    let description = golden["generation"].as_str().unwrap_or_default();
    // The golden's budget of new tokens, asked for as NVIDIA's body asks: `max_tokens`.
    let max_tokens = setting(description, "max_new_tokens=").expect("the golden's token budget");
    let image_name = golden["image"].as_str().expect("the golden's image");
    let image = std::fs::read(proxy.model_dir.join(image_name)).expect("the golden's image file");
    let decoded_size = image::load_from_memory(&image).expect("a readable image");
    let size = ImageSize::new(decoded_size.width(), decoded_size.height());
    let src = data_url(&image, "image/png");
    let cases = golden["cases"].as_object().expect("cases");
    assert!(!cases.is_empty());
    for (token, case) in cases {
        let task = Task::from_token(token).expect("a known task");
        let text = case["text_input"].as_str().filter(|t| !t.is_empty());
        let response = proxy
            .invoke(&body(token, text, &src, Some(max_tokens)))
            .await;
        assert_eq!(response.headers()["x-florence2-backend"], "local");
        let (answer, document) = parsed(response, task, size).await;
        let result = answer.result;

        // The golden's decoded ids, as an answer carries them (special tokens dropped).
        let decoded = case["decoded"].as_str().expect("decoded");
        let expected_text = florence2::post_process(task, decoded, size)
            .expect("the golden text post-processes")
            .text;
        let content = document["choices"][0]["message"]["content"]
            .as_str()
            .expect("content");
        assert_eq!(
            content,
            format!("{token}{expected_text}"),
            "{token}: content"
        );
        assert_eq!(result.text, expected_text, "{token}: text");
        let ids = case["beam3_ids"].as_array().expect("beam3_ids");
        assert_eq!(
            document["usage"]["completion_tokens"],
            ids.len() - 1,
            "{token}: new tokens"
        );
        let prompt_ids = case["prompt_ids_after_image_tokens"]
            .as_array()
            .expect("prompt ids");
        let image_tokens = case["n_image_tokens"].as_u64().expect("image tokens");
        assert_eq!(
            document["usage"]["prompt_tokens"],
            image_tokens + prompt_ids.len() as u64,
            "{token}: prompt tokens"
        );

        // transformers truncates coordinates to integers; ours are floats (compared
        // truncated, as the model's own e2e check does).
        let ours = Answer {
            task,
            text: result.text.clone(),
            entities: result.entities.clone(),
        }
        .to_transformers_value(true);
        assert_eq!(ours, case["post_processed"], "{token}: post-processed");

        let draws = florence2::answer_archive::draws_overlay(task);
        let overlay = answer.overlay.as_ref();
        assert_eq!(overlay.is_some(), draws, "{token}: overlay");
        if let Some(overlay) = overlay {
            assert_eq!(overlay.mime, "image/png");
            let drawn = image::load_from_memory(&overlay.bytes).expect("the overlay is a PNG");
            assert_eq!((drawn.width(), drawn.height()), (size.width, size.height));
        }
    }
    // One picture for every case: the vision tower saw it once, and the answers above are
    // still transformers' own.
    let reused = &proxy.health().await["queue"]["picturesReused"];
    assert_eq!(reused.as_u64(), Some(cases.len() as u64 - 1), "{reused}");
}
