//! The binary with `--backend local`: a model folder that does not load stops it at start,
//! with a message that says what is wrong, and no port line.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_florence2-proxy");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("FLORENCE2_BACKEND")
        .env_remove("FLORENCE2_MODEL")
        .output()
        .expect("run florence2-proxy")
}

fn assert_refused(output: &Output, says: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stdout.is_empty(), "no port line: {stdout}");
    for part in says {
        assert!(stderr.contains(part), "{part:?} missing from: {stderr}");
    }
}

#[test]
fn a_model_folder_that_does_not_load_stops_the_proxy() {
    let dir = std::env::temp_dir().join(format!("florence2-bad-model-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");

    // Missing folder.
    let missing = dir.join("absent");
    assert_refused(
        &run(&[
            "--backend",
            "local",
            "--model",
            &missing.display().to_string(),
        ]),
        &["cannot load the model in", "is not a directory"],
    );

    // A folder without its files.
    assert_refused(
        &run(&["--backend", "local", "--model", &dir.display().to_string()]),
        &["cannot load the model in", "config.json"],
    );

    // A config that is not one, beside the other files.
    std::fs::write(
        dir.join("config.json"),
        b"{\"not\": \"a florence-2 config\"}",
    )
    .expect("write");
    std::fs::write(dir.join("tokenizer.json"), b"{}").expect("write");
    std::fs::write(dir.join("model.safetensors"), b"\x08\0\0\0\0\0\0\0{}      ").expect("write");
    assert_refused(
        &run(&["--backend", "local", "--model", &dir.display().to_string()]),
        &["cannot load the model in", "config"],
    );
    let _ = std::fs::remove_dir_all(&dir);

    // --backend local without a folder at all.
    assert_refused(
        &run(&["--backend", "local"]),
        &["--backend local needs --model"],
    );
}
