//! The `florence2` binary on the reference folders, as CI runs it: `parity` on
//! florence2-tiny, `e2e` on florence2-tiny-e2e, and the debugging commands.

#[path = "../../model/tests/common/mod.rs"]
mod common;

use std::process::{Command, Output};

use common::reference;

fn florence2(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_florence2"))
        .args(args)
        .output()
        .expect("running florence2");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn parity_passes_on_the_tiny_reference_model() {
    let dir = reference("florence2-tiny");
    // On one thread and on several: the kernels split work by thread count, the goldens
    // must not notice (three threads split the 2-, 4- and 8-head layers unevenly).
    for threads in ["1", "3"] {
        parity_passes_on(&dir, threads);
    }
    let out = florence2(&["--threads", "0", "parity", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "--threads 0 accepted");
}

fn parity_passes_on(dir: &std::path::Path, threads: &str) {
    let out = florence2(&["--threads", threads, "parity", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "parity failed on {threads} threads");
    // Every golden named in the reference README is compared, none skipped.
    for name in [
        "pixel_values",
        "vision.stage3.block0.channel",
        "image_features",
        "encoder.hidden_states.0",
        "logits",
        "greedy_step_logits",
        "beam3_ngram3_ids",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(name) && l.ends_with("ok")),
            "{name} not checked"
        );
    }
    assert!(!stdout.contains("skipped"));
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn e2e_passes_on_the_tiny_e2e_reference_folder() {
    let dir = reference("florence2-tiny-e2e");
    for threads in ["1", "3"] {
        let out = florence2(&["--threads", threads, "e2e", dir.to_str().unwrap()]);
        assert!(out.status.success(), "e2e failed on {threads} threads");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("<OD> post-processed")
                && stdout.contains("<REGION_TO_DESCRIPTION> beam ids")
        );
    }
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn parity_fails_when_a_golden_is_off() {
    let dir = reference("florence2-tiny");
    // Same folder, one golden tensor perturbed by more than the tolerance.
    let tmp = std::env::temp_dir().join(format!("florence2-parity-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(dir.join(f), tmp.join(f)).unwrap();
    }
    let mut golden = common::Tensors::read(&dir.join("golden.safetensors"));
    let mut logits = golden.f32_values("logits");
    logits[17] += 1e-3;
    let shape = golden.map["logits"].1.clone();
    golden.set_f32("logits", shape, &logits);
    std::fs::write(tmp.join("golden.safetensors"), golden.to_bytes()).unwrap();
    let out = florence2(&["parity", tmp.to_str().unwrap()]);
    std::fs::remove_dir_all(&tmp).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.starts_with("logits") && l.ends_with("FAIL"))
    );
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn run_prints_the_result_json() {
    let dir = reference("florence2-tiny-e2e");
    let image = dir.join("test_image.png");
    let out = florence2(&[
        "run",
        "--model",
        dir.to_str().unwrap(),
        "--image",
        image.to_str().unwrap(),
        "--task",
        "<OD>",
        "--max-new-tokens",
        "8",
    ]);
    assert!(out.status.success());
    let result: florence2::Florence2Result =
        serde_json::from_slice(&out.stdout).expect("the result JSON of DESIGN.md");
    assert_eq!(
        (
            result.task.as_str(),
            result.image.width,
            result.image.height
        ),
        ("<OD>", 640, 480)
    );
    assert_eq!(result.source, florence2::Source::Local);
    assert!(result.entities.bboxes.is_some());
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn run_rejects_bad_input_with_an_error_not_a_panic() {
    let dir = reference("florence2-tiny-e2e");
    let image = dir.join("test_image.png");
    let model = dir.to_str().unwrap();
    let not_an_image = dir.join("config.json");
    for args in [
        vec![
            "run",
            "--model",
            model,
            "--image",
            not_an_image.to_str().unwrap(),
            "--task",
            "<OD>",
        ],
        vec![
            "run",
            "--model",
            model,
            "--image",
            image.to_str().unwrap(),
            "--task",
            "<NOPE>",
        ],
        vec![
            "run",
            "--model",
            model,
            "--image",
            image.to_str().unwrap(),
            "--task",
            "<CAPTION_TO_PHRASE_GROUNDING>",
        ],
        vec![
            "run",
            "--model",
            "/nonexistent",
            "--image",
            image.to_str().unwrap(),
            "--task",
            "<OD>",
        ],
    ] {
        let out = florence2(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).starts_with("error: "));
    }
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn tokenize_expands_task_prompts() {
    let dir = reference("tokenizer");
    let tokenizer = dir.join("tokenizer.json");
    let out = florence2(&[
        "tokenize",
        "--tokenizer",
        tokenizer.to_str().unwrap(),
        "<OD>",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["prompt"],
        "Locate the objects with category name in the image."
    );
    assert_eq!(
        v["ids"],
        serde_json::json!([0, 574, 22486, 5, 8720, 19, 4120, 766, 11, 5, 2274, 4, 2])
    );
}

#[test]
fn postprocess_prints_the_result_json() {
    let out = florence2(&[
        "postprocess",
        "--task",
        "<OD>",
        "--width",
        "640",
        "--height",
        "480",
        "</s><s>car<loc_52><loc_332><loc_932><loc_774></s>",
    ]);
    assert!(out.status.success());
    let r: florence2::Florence2Result = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r.entities.labels, Some(vec!["car".to_string()]));
    let b = r.entities.bboxes.unwrap()[0];
    assert_eq!(b.map(|c| c.trunc()), [33.0, 159.0, 596.0, 371.0]);
}
