//! `cargo xtask demo`: builds the demo (`web/dist`) and serves it through the real proxy, on
//! http://127.0.0.1:8080 unless `--listen` says otherwise. By default NVIDIA answers (key from
//! `NVIDIA_API_KEY`); with `--model DIR` the proxy runs that Florence-2 folder itself
//! (`--backend local`, no key needed).

use std::path::PathBuf;

use crate::util::{Result, cargo, run_step};

const USAGE: &str = "usage: cargo xtask demo [--listen ADDR] [--model DIR]";

pub fn run(args: &[String]) -> Result {
    let mut listen = "127.0.0.1:8080".to_owned();
    let mut model: Option<PathBuf> = None;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest.next().ok_or_else(|| USAGE.to_owned())?;
        match flag.as_str() {
            "--listen" => listen = value.clone(),
            "--model" => model = Some(PathBuf::from(value)),
            _ => return Err(USAGE.into()),
        }
    }
    if let Some(dir) = &model
        && !dir.join("config.json").is_file()
    {
        return Err(format!(
            "--model {}: not a Florence-2 folder (config.json, model.safetensors, tokenizer.json)",
            dir.display()
        ));
    }
    eprintln!("{}", crate::site::build()?);
    let site = crate::site::dist();
    let mut proxy = cargo();
    // Not --release: that profile aborts on a panic (for wasm size); the proxy must unwind so
    // that a panic costs one request, not the server. release-native also gives the local
    // model opt-level 3.
    proxy.args([
        "run",
        "--profile",
        "release-native",
        "-p",
        "florence2-proxy",
        "--",
        "--listen",
        &listen,
        "--static",
    ]);
    proxy.arg(&site);
    match &model {
        Some(dir) => {
            // The page's own tasks run on this machine: no key, <REGION_TO_OCR> offered.
            proxy.args(["--backend", "local", "--model"]).arg(dir);
        }
        None if std::env::var_os("NVIDIA_API_KEY").is_none() => eprintln!(
            "note: NVIDIA_API_KEY is not set: the page can still send a key of your own (X-Api-Key), or run a model here with --model DIR"
        ),
        None => {}
    }
    run_step(&mut proxy)
}
