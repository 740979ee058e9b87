//! `florence2 quantize` on the tiny end-to-end reference folder, and the quantized folders it
//! writes run end to end against transformers' goldens on their dequantized twins
//! (`tests/fixtures/quantized/SCHEME/golden_e2e.json`, made by model/tools/golden_quantized.py).

#[path = "../../model/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
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

fn fixture(scheme: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/quantized")
        .join(scheme)
        .join("golden_e2e.json")
}

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("florence2-quantized-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Quantizes the tiny e2e folder to `scheme` into `dir/q` (and `dir/deq`), with the scheme's
/// goldens and the reference picture copied beside the weights.
fn quantized_folder(dir: &Path, scheme: &str) -> (PathBuf, PathBuf) {
    let src = reference("florence2-tiny-e2e");
    let (q, deq) = (dir.join("q"), dir.join("deq"));
    let out = florence2(&[
        "quantize",
        "--model",
        src.to_str().unwrap(),
        "--out",
        q.to_str().unwrap(),
        "--scheme",
        scheme,
        "--dequantized",
        deq.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "quantize {scheme} failed");
    for folder in [&q, &deq] {
        for file in ["test_image.png", "golden_e2e.safetensors"] {
            std::fs::copy(src.join(file), folder.join(file)).unwrap();
        }
        std::fs::copy(fixture(scheme), folder.join("golden_e2e.json")).unwrap();
    }
    (q, deq)
}

fn e2e_passes(dir: &Path, threads: &str) {
    let out = florence2(&["--threads", threads, "e2e", dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "e2e failed on {} ({threads} threads)",
        dir.display()
    );
    assert!(
        stdout.contains("<OD> post-processed")
            && stdout.contains("<REGION_TO_DESCRIPTION> beam ids")
    );
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn every_scheme_gives_transformers_ids_on_its_dequantized_twin() {
    for scheme in ["q8", "q4", "mixed"] {
        let dir = scratch(scheme);
        let (q, deq) = quantized_folder(&dir, scheme);
        // The quantized kernels, on one thread and on several.
        for threads in ["1", "3"] {
            e2e_passes(&q, threads);
        }
        // The twin itself (plain f32) gives the same ids: it is what transformers ran.
        e2e_passes(&deq, "2");
        let size = |d: &Path| {
            std::fs::metadata(d.join("model.safetensors"))
                .unwrap()
                .len()
        };
        assert!(
            size(&q) * 3 < size(&deq),
            "{scheme}: {} vs {} bytes",
            size(&q),
            size(&deq)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[test]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
fn bad_input_is_refused_with_exit_2_naming_the_file_and_nothing_half_written() {
    let src = reference("florence2-tiny-e2e");
    let dir = scratch("bad");
    let run = |model: &Path, out: &Path, scheme: &str| {
        florence2(&[
            "quantize",
            "--model",
            model.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--scheme",
            scheme,
        ])
    };
    let stderr = |o: &Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let listing = |d: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };

    // Unknown scheme.
    let out = run(&src, &dir.join("x"), "q3");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("q3"), "{}", stderr(&out));

    // A folder that is already quantized.
    let q = dir.join("q");
    assert!(run(&src, &q, "q8").status.success());
    let out = run(&q, &dir.join("again"), "q4");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("model.safetensors") && stderr(&out).contains("already quantized")
    );

    // An existing output folder is never written over.
    let out = run(&src, &q, "q4");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already exists"));

    // A missing file, and a truncated checkpoint: named, and no output folder (nor a hidden
    // partial one) left behind.
    let broken = dir.join("broken");
    std::fs::create_dir(&broken).unwrap();
    for file in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(file), broken.join(file)).unwrap();
    }
    let out = run(&broken, &dir.join("from-broken"), "q8");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("model.safetensors"),
        "{}",
        stderr(&out)
    );
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    std::fs::write(broken.join("model.safetensors"), &bytes[..bytes.len() / 2]).unwrap();
    let out = run(&broken, &dir.join("from-broken"), "q8");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("model.safetensors") && stderr(&out).contains("truncated"));
    std::fs::remove_file(broken.join("tokenizer.json")).unwrap();
    let out = run(&broken, &dir.join("from-broken"), "q8");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("tokenizer.json"), "{}", stderr(&out));
    assert_eq!(listing(&dir), ["broken", "q"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
