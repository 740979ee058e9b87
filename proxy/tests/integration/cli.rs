//! The `florence2-proxy` binary: the port line, --help, the key from the environment, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::CommandFactory;
use florence2_proxy::Config;

const BIN: &str = env!("CARGO_BIN_EXE_florence2-proxy");

/// Starts the binary; answers the child and the URL from its first stdout line.
fn spawn(args: &[&str], key: Option<&str>) -> (Child, String) {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env_remove("NVIDIA_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(key) = key {
        command.env("NVIDIA_API_KEY", key);
    }
    let mut child = command.spawn().expect("start florence2-proxy");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .to_owned();
    (child, url)
}

fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < within {
        if let Some(status) = child.try_wait().expect("wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Not left behind when the test fails.
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn prints_its_port_serves_and_stops_on_sigterm() {
    let key = "nvapi-PROCESS-4c1d";
    let (mut child, url) = spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
            "--assets-upstream",
            "http://127.0.0.1:9",
        ],
        Some(key),
    );
    assert!(
        url.starts_with("http://127.0.0.1:") && !url.ends_with(":0"),
        "{url}"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let health: serde_json::Value = runtime.block_on(async {
        florence2_proxy::tls::install_crypto_provider();
        reqwest::Client::new()
            .get(format!("{url}/healthz"))
            .send()
            .await
            .expect("answer")
            .json()
            .await
            .expect("JSON")
    });
    assert_eq!(health["keyConfigured"], true);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = wait_exit(&mut child, Duration::from_secs(10)).expect("exits after SIGTERM");
    assert!(exit.success(), "{exit:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert!(stderr.contains("shutting down"), "{stderr}");
    assert!(!stderr.contains(key), "the key is in the log");
}

#[test]
fn an_unusable_key_in_the_environment_stops_startup_without_echoing_it() {
    let output = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .env("NVIDIA_API_KEY", "nvapi-has spaces-and-\u{e9}")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("NVIDIA_API_KEY"), "{stderr}");
    assert!(!stderr.contains("has spaces"), "{stderr}");
    assert!(output.stdout.is_empty(), "no listening line");
}

#[test]
fn help_documents_every_flag_and_the_key() {
    let output = Command::new(BIN).arg("--help").output().expect("run");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for arg in Config::command().get_arguments() {
        if let Some(long) = arg.get_long() {
            assert!(
                help.contains(&format!("--{long}")),
                "--{long} is not in --help"
            );
            assert!(
                arg.get_long_help().or(arg.get_help()).is_some(),
                "--{long} has no description"
            );
        }
    }
    for needed in [
        "NVIDIA_API_KEY",
        "X-Api-Key",
        "loopback",
        "listening on http://IP:PORT",
        "/v1/assets",
        "/v2/nvcf/assets",
        "/healthz",
        "SIGHUP",
    ] {
        assert!(help.contains(needed), "--help does not mention {needed}");
    }
}

#[test]
fn insecure_upstreams_are_refused_at_startup() {
    let output = Command::new(BIN)
        .args(["--upstream", "http://ai.api.nvidia.com"])
        .env_remove("NVIDIA_API_KEY")
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("loopback"));
}

/// Issue 33, item 8: without --client-tokens nothing listened for SIGHUP, so its default
/// action ended the proxy. Now it is logged and ignored.
#[test]
fn sighup_without_client_tokens_is_ignored() {
    let (mut child, url) = spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            "http://127.0.0.1:9",
            "--assets-upstream",
            "http://127.0.0.1:9",
        ],
        None,
    );
    for _ in 0..2 {
        let status = Command::new("kill")
            .args(["-HUP", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        child.try_wait().expect("wait").is_none(),
        "SIGHUP ended the proxy"
    );
    let addr = url.strip_prefix("http://").expect("http URL");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    std::io::Write::write_all(
        &mut stream,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .expect("request");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let _ = child.kill();
    let _ = child.wait();
}

/// A server must unwind in every profile a user can build, plain `--release` included: with
/// `panic = "abort"` the CatchPanicLayer and the runners' `catch_unwind` catch nothing and one
/// bad request ends the process. (The wasm builds abort by their target's own default.)
#[test]
fn no_workspace_profile_aborts_on_panic() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let text = std::fs::read_to_string(manifest).expect("the workspace's Cargo.toml");
    let mut section = String::new();
    let mut profiles = 0;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
            profiles += usize::from(section.starts_with("[profile."));
        } else if section.starts_with("[profile.")
            && line.split('=').next().map(str::trim) == Some("panic")
        {
            assert!(
                !line.contains("abort"),
                "{section} in {manifest} says {line}: a proxy built with it dies on any panic"
            );
        }
    }
    assert!(profiles > 0, "no [profile.*] section found in {manifest}");
}
