//! `cargo xtask bench browser`: florence2-web against transformers.js in one headless Chromium
//! (tests/bench/browser.mjs), on the same weights, picture, task and token count. Builds the
//! package, installs the benchmark's own npm folder (tests/bench: transformers.js and
//! playwright-core, never the package's dependencies), exports the model to ONNX for
//! transformers.js when that folder is missing (model/tools/export_onnx.py), then runs the
//! script, which prints the table. Not part of `test` or CI.

use std::path::PathBuf;
use std::process::Command;

use crate::bins::CLI;
use crate::util::{Result, cargo, root, run_step, target_dir};
use crate::{package, setup};

const USAGE: &str = "usage: cargo xtask bench browser --model DIR [--onnx DIR] [--python PY] \
[--rounds 2] [--warm-runs 2] [--new-tokens 20]
  [--rows ours-f32,ours-f32-threads,ours-mixed,ours-mixed-threads,tjs-fp32,tjs-mix]
  DIR: a Florence-2 folder in transformers' layout with test_image.png (model/tools/make_base_model.py
  makes a base-shaped one: OUT/native); --onnx: its ONNX export for transformers.js (default: DIR-onnx
  beside it, made with PY, which needs torch, transformers, onnx and onnxruntime, when missing).
  The ours-mixed rows load DIR-mixed beside DIR (`florence2 quantize --scheme mixed`, made when
  missing); the -threads rows run on every core (the page is cross-origin isolated), the others
  on one; tjs-q4 and tjs-fp16 are rows too.
  FLORENCE2_PROXY_BIN=… uses that florence2-proxy instead of building it (release).";

pub fn run(args: &[String]) -> Result {
    let mut model = None;
    let mut onnx = None;
    let mut python = "python3".to_string();
    let mut env: Vec<(&str, String)> = Vec::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?
            .clone();
        match flag.as_str() {
            "--model" => model = Some(PathBuf::from(value)),
            "--onnx" => onnx = Some(PathBuf::from(value)),
            "--python" => python = value,
            "--rounds" => env.push(("FLORENCE2_ROUNDS", value)),
            "--warm-runs" => env.push(("FLORENCE2_WARM_RUNS", value)),
            "--new-tokens" => env.push(("FLORENCE2_MAX_NEW_TOKENS", value)),
            "--rows" => env.push(("FLORENCE2_ROWS", value)),
            _ => return Err(format!("unknown flag {flag}\n{USAGE}")),
        }
    }
    let model = std::path::absolute(model.ok_or(USAGE)?).map_err(|e| e.to_string())?;
    let onnx = match onnx {
        Some(dir) => std::path::absolute(dir).map_err(|e| e.to_string())?,
        None => sibling(&model, "onnx")?,
    };
    if !onnx.join("onnx/decoder_model_merged.onnx").exists() {
        run_step(
            Command::new(&python)
                .arg(root().join("model/tools/export_onnx.py"))
                .arg(&model)
                .arg(&onnx),
        )?;
    }
    let mixed = sibling(&model, "mixed")?;
    if !mixed.join("model.safetensors").exists() {
        run_step(
            CLI.command()?
                .args(["quantize", "--scheme", "mixed", "--model"])
                .arg(&model)
                .arg("--out")
                .arg(&mixed),
        )?;
    }
    eprintln!("{}", package::build()?);
    let proxy = match std::env::var_os("FLORENCE2_PROXY_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => {
            run_step(cargo().args(["build", "--release", "-p", "florence2-proxy"]))?;
            target_dir().join("release/florence2-proxy")
        }
    };
    setup::node_tools()?;
    setup::chromium()?;
    let bench = root().join("tests/bench");
    if !bench
        .join("node_modules/@huggingface/transformers")
        .exists()
    {
        // --ignore-scripts: transformers.js' Node backend (onnxruntime-node) downloads its
        // native libraries in a script; the browser does not use it.
        run_step(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
                .current_dir(&bench),
        )?;
    }
    run_step(
        Command::new("node")
            .arg(bench.join("browser.mjs"))
            .env("FLORENCE2_PKG", root().join("pkg"))
            .env("FLORENCE2_PROXY_BIN", proxy)
            .env("FLORENCE2_BENCH_MODEL", &model)
            .env("FLORENCE2_BENCH_ONNX", &onnx)
            .envs(env),
    )
}

/// `DIR-suffix` beside the model folder `DIR`.
fn sibling(model: &std::path::Path, suffix: &str) -> Result<PathBuf> {
    let name = model
        .file_name()
        .ok_or("--model names no folder")?
        .to_string_lossy();
    Ok(model.with_file_name(format!("{name}-{suffix}")))
}
