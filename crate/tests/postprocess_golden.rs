//! Post-processing against transformers' own answers: the cases in
//! `tokenizer/tokenizer_golden.json` and every case of `*/golden_e2e.json` in the reference
//! folder (`FLORENCE2_REFERENCE_DIR`, default `../shared/reference` beside the workspace).
#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;

use florence2::{ImageSize, Task, post_process};
use serde_json::Value;

fn reference_dir() -> PathBuf {
    florence2_reference::dir(env!("CARGO_MANIFEST_DIR"), "")
}

fn read_json(path: PathBuf) -> Value {
    serde_json::from_slice(
        &std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// Compares transformers' truncated integers with ours truncated toward zero.
fn check(task: &str, text: &str, wh: &Value, expected: &Value) {
    let size = ImageSize::new(
        wh[0].as_u64().unwrap() as u32,
        wh[1].as_u64().unwrap() as u32,
    );
    let answer = post_process(Task::from_token(task).unwrap(), text, size).unwrap();
    assert_eq!(
        &answer.to_transformers_value(true),
        expected,
        "task {task}, text {text:?}"
    );
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn tokenizer_golden_post_processing() {
    let dir = reference_dir();
    let golden = read_json(dir.join("tokenizer/tokenizer_golden.json"));
    let cases = golden["post_process"].as_object().unwrap();
    assert!(!cases.is_empty());
    for (task, case) in cases {
        check(
            task,
            case["text"].as_str().unwrap(),
            &case["image_size_wh"],
            &case["result"],
        );
    }
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn e2e_golden_post_processing() {
    let dir = reference_dir();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path().join("golden_e2e.json");
        if !path.is_file() {
            continue;
        }
        let golden = read_json(path);
        for (key, case) in golden["cases"].as_object().unwrap() {
            let task = Task::split_prompt(key)
                .map(|(t, _)| t.token())
                .unwrap_or(key.as_str());
            check(
                task,
                case["decoded"].as_str().unwrap(),
                &golden["image_size_wh"],
                &case["post_processed"],
            );
            checked += 1;
        }
    }
    assert!(
        checked > 0,
        "no golden_e2e.json found under {}",
        dir.display()
    );
}
