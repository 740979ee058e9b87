//! The servers the tests talk to, started in the background on loopback (each is killed when
//! its [`Server`] is dropped): the fixtures and the proxy double, `florence2-proxy` in front of
//! `nvcf-emulator`, and `florence2-proxy --backend local` on the reference data's tiny model.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bins::{EMULATOR, FIXTURES, PROXY, PROXY_DOUBLE};
use crate::util::{Result, Server, root, run_step, start_server, target_dir};

/// Writes the test fixtures (pictures, answers) into the target directory; returns where.
pub fn fixtures() -> Result<PathBuf> {
    let fixtures = target_dir().join("fixtures");
    run_step(FIXTURES.command()?.arg(&fixtures))?;
    Ok(fixtures)
}

/// The proxy double, serving `fixtures` (from [`fixtures`]).
pub fn proxy_double(fixtures: &Path) -> Result<Server> {
    start_server(PROXY_DOUBLE.command()?.arg("--fixtures").arg(fixtures))
}

/// The key the test proxy holds: the emulator accepts any.
const EMULATOR_KEY: &str = "emulator-accepts-any-key";

/// Starts `nvcf-emulator` and `florence2-proxy` in front of it, both on loopback; the proxy
/// serves `site` as its static files, if given.
pub fn emulator_and_proxy(site: Option<&Path>) -> Result<(Server, Server)> {
    let emulator = start_server(EMULATOR.command()?.args(["--listen", "127.0.0.1:0"]))?;
    let mut proxy = proxy_to_emulator(&emulator)?;
    if let Some(site) = site {
        proxy.arg("--static").arg(site);
    }
    let proxy = start_server(&mut proxy)?;
    Ok((emulator, proxy))
}

/// The debug florence2-proxy's command in front of `emulator`: loopback, any port, the
/// emulator for both upstreams with a key it accepts, no rate limit (add the rest).
pub fn proxy_to_emulator(emulator: &Server) -> Result<Command> {
    let mut proxy = PROXY.command()?;
    proxy
        .args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &emulator.url,
            "--assets-upstream",
            &emulator.url,
            "--rate-limit",
            "0",
        ])
        .env("NVIDIA_API_KEY", EMULATOR_KEY)
        .env("RUST_LOG", "warn");
    Ok(proxy)
}

/// An upstream where nothing listens (the discard port), for the "NVIDIA cannot be reached" paths.
const DEAD_UPSTREAM: &str = "http://127.0.0.1:9";

/// florence2-proxy with no key and an unreachable upstream, serving `site`: what a person
/// without a key or internet meets.
pub fn keyless_proxy(site: &Path) -> Result<Server> {
    start_server(
        PROXY
            .command()?
            .args([
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                DEAD_UPSTREAM,
                "--assets-upstream",
                DEAD_UPSTREAM,
                "--rate-limit",
                "0",
                "--static",
            ])
            .arg(site)
            .env_remove("NVIDIA_API_KEY")
            .env("RUST_LOG", "error"),
    )
}

/// The reference data's tiny end-to-end model folder (`FLORENCE2_REFERENCE_DIR`, by default
/// `../shared/reference` beside the workspace). Absent, it is an error under `CI` (the tests
/// that need it must not pass silently there) and a note elsewhere, saying which tests
/// (`what`) will not run.
pub fn tiny_e2e_model(what: &str) -> Result<Option<PathBuf>> {
    let model = florence2_reference::location(&root()).join("florence2-tiny-e2e");
    if model.join("config.json").is_file() {
        Ok(Some(model))
    } else if std::env::var_os("CI").is_some() {
        Err(format!(
            "{} is missing: CI needs the reference data (FLORENCE2_REFERENCE_DIR)",
            model.display()
        ))
    } else {
        eprintln!("note: {} not found: {what} will not run", model.display());
        Ok(None)
    }
}

/// `florence2-proxy --backend local` on the tiny end-to-end model, also serving that folder as
/// its static files (the browser tests read the goldens and the picture from it).
pub fn local_proxy() -> Result<Option<Server>> {
    let Some(model) = tiny_e2e_model("the local backend's browser tests")? else {
        return Ok(None);
    };
    let mut proxy = PROXY.command()?;
    proxy
        .args(["--listen", "127.0.0.1:0", "--backend", "local", "--model"])
        .arg(&model)
        .arg("--static")
        .arg(&model)
        .args(["--rate-limit", "0"])
        .env("RUST_LOG", "warn");
    start_server(&mut proxy).map(Some)
}
