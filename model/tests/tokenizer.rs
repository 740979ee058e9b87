//! The tokenizer and the processor's prompt expansion against tokenizer_golden.json
//! (transformers' BartTokenizer and Florence2Processor).

mod common;

use florence2::Task;
use florence2_burn::Tokenizer;
use serde_json::Value;

fn golden() -> (Tokenizer, Value) {
    let dir = common::reference("tokenizer");
    let tokenizer =
        Tokenizer::from_bytes(&std::fs::read(dir.join("tokenizer.json")).unwrap()).unwrap();
    let golden =
        serde_json::from_slice(&std::fs::read(dir.join("tokenizer_golden.json")).unwrap()).unwrap();
    (tokenizer, golden)
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn encodes_like_transformers() {
    let (tokenizer, golden) = golden();
    let cases = golden["encode"].as_object().unwrap();
    assert!(cases.len() >= 5);
    for (text, want) in cases {
        assert_eq!(
            tokenizer.encode(text, true).unwrap(),
            ids(&want["add_special_tokens"]),
            "{text:?}"
        );
        assert_eq!(
            tokenizer.encode(text, false).unwrap(),
            ids(&want["no_special_tokens"]),
            "{text:?}"
        );
    }
    assert_eq!(
        tokenizer.id_of("<image>"),
        golden["image_token_id"].as_u64().map(|x| x as u32)
    );
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn decodes_like_transformers() {
    let (tokenizer, golden) = golden();
    for (ids_json, want) in golden["decode"].as_object().unwrap() {
        let input: Vec<u32> = serde_json::from_str(ids_json).unwrap();
        assert_eq!(
            tokenizer.decode(&input, false).unwrap(),
            want["skip_special_false"].as_str().unwrap()
        );
        assert_eq!(
            tokenizer.decode(&input, true).unwrap(),
            want["skip_special_true"].as_str().unwrap()
        );
    }
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn task_prompts_expand_to_the_processor_ids() {
    let (tokenizer, golden) = golden();
    for (prompt, want) in golden["processor"].as_object().unwrap() {
        let (task, text) = Task::split_prompt(prompt).unwrap();
        let text = (!text.is_empty()).then_some(text);
        let expanded = florence2::model_prompt(task, text).unwrap();
        assert_eq!(
            tokenizer.encode(&expanded, true).unwrap(),
            ids(&want["ids_after_image_tokens"]),
            "{prompt}"
        );
    }
}
