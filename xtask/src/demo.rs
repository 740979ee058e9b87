//! `cargo xtask demo`: builds the demo (`web/dist`) and serves it through the real proxy
//! (NVIDIA as the upstream, key from `NVIDIA_API_KEY`), on http://127.0.0.1:8080 unless
//! `--listen` says otherwise.

use crate::util::{Result, cargo, run_step};

pub fn run(args: &[String]) -> Result {
    let listen = match args {
        [] => "127.0.0.1:8080".to_owned(),
        [flag, addr] if flag == "--listen" => addr.clone(),
        _ => return Err("usage: cargo xtask demo [--listen ADDR]".into()),
    };
    eprintln!("{}", crate::web::build()?);
    let site = crate::web::dist();
    if std::env::var_os("NVIDIA_API_KEY").is_none() {
        eprintln!(
            "note: NVIDIA_API_KEY is not set: the page can still send a key of your own (X-Api-Key)"
        );
    }
    run_step(
        cargo()
            .args([
                "run",
                // Not --release: that profile aborts on a panic (for wasm size); the proxy
                // must unwind so that a panic costs one request, not the server.
                "--profile",
                "release-native",
                "-p",
                "florence2-proxy",
                "--",
                "--listen",
                &listen,
                "--static",
            ])
            .arg(&site),
    )
}
