//! `--client-tokens` on the real binary: who gets in, revocation by editing the file and
//! sending SIGHUP, and no token (nor the key) in anything the process prints, at TRACE level.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use florence2::Task;
use serde_json::Value;

use crate::nim::{Failure, NimClient, TOKEN_A, TOKEN_B, token_file};
use crate::support::{self, body, data_url, png};

const BIN: &str = env!("CARGO_BIN_EXE_florence2-proxy");
const KEY: &str = "nvapi-TOKENS-PROCESS-7e21";
const WRONG: &str = "tok-wrong-77a1c0de5511aa";

/// The running binary, everything it prints collected.
struct Proxy {
    child: Child,
    url: String,
    output: Arc<Mutex<String>>,
}

impl Proxy {
    fn spawn(args: &[&str], key: Option<&str>) -> Proxy {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_remove("NVIDIA_API_KEY")
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(key) = key {
            command.env("NVIDIA_API_KEY", key);
        }
        let mut child = command.spawn().expect("start florence2-proxy");
        let output = Arc::new(Mutex::new(String::new()));
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("first line");
        let url = line
            .trim_end()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_owned();
        output.lock().expect("lock").push_str(&line);
        let stderr = child.stderr.take().expect("stderr");
        for mut stream in [Box::new(stdout) as Box<dyn Read + Send>, Box::new(stderr)] {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = stream.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .expect("lock")
                        .push_str(&String::from_utf8_lossy(&chunk[..n]));
                }
            });
        }
        Proxy { child, url, output }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn output(&self) -> String {
        self.output.lock().expect("lock").clone()
    }

    /// Waits until the output holds `text` (or `within` passes).
    fn wait_for(&self, text: &str, within: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < within {
            if self.output().contains(text) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// SIGTERM, and everything it printed once it has exited.
    fn stop(mut self) -> String {
        self.signal("TERM");
        let started = Instant::now();
        while self.child.try_wait().expect("wait").is_none() {
            if started.elapsed() > Duration::from_secs(10) {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.wait();
        // The reader threads drain what is left in the pipes.
        std::thread::sleep(Duration::from_millis(200));
        self.output()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn invoke(proxy: &str, bearer: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{proxy}/v1/vlm/microsoft/florence-2"))
        .json(&body(Task::Caption, &data_url(&png(16, 16, 1))));
    if let Some(token) = bearer {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    request.send().await.expect("answer")
}

/// 401, in NVIDIA's shape with ours beside it, asking for a bearer token.
async fn assert_refused(response: reqwest::Response, kind: &str) {
    assert_eq!(
        response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer realm=\"florence2-proxy\"")
    );
    let f = Failure::of(response).await;
    assert_eq!(f.status, 401, "{}", f.body);
    assert_eq!(f.body["status"], 401);
    assert_eq!(f.body["title"], "Unauthorized");
    assert_eq!(
        f.body["type"].as_str(),
        Some(&*format!("urn:florence2-proxy:problem-details:{kind}"))
    );
    assert_eq!(f.body["error"]["code"], "UNAUTHORIZED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_let_in_who_is_listed_until_revoked_by_sighup_and_never_reach_the_logs() {
    let stack = support::start(&[], &[], Some("nvapi-unused")).await;
    let (_dir, file) = token_file("binary", &[TOKEN_A, TOKEN_B]);
    let proxy = Proxy::spawn(
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &stack.emulator_url,
            "--assets-upstream",
            &stack.emulator_url,
            "--rate-limit",
            "0",
            "--client-tokens",
            file.to_str().expect("path"),
        ],
        Some(KEY),
    );
    let url = proxy.url.clone();
    let health: Value = reqwest::get(format!("{url}/healthz"))
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(health["clientTokensRequired"], true, "{health}");

    assert_refused(invoke(&url, None).await, "client-token-required").await;
    assert_refused(invoke(&url, Some(WRONG)).await, "client-token-refused").await;
    // The caller's NVIDIA key in Authorization is not a client token either.
    assert_refused(
        invoke(&url, Some("nvapi-fake-key-0123")).await,
        "client-token-refused",
    )
    .await;
    let nim_wrong = NimClient::new(&url, WRONG);
    let f = nim_wrong.create_asset("image/png", "x").await.unwrap_err();
    assert_eq!(f.status, 401);
    let f = reqwest::Client::new()
        .post(format!("{url}/v1/assets"))
        .header("content-type", "image/png")
        .body(png(8, 8, 1))
        .send()
        .await
        .expect("answer");
    assert_eq!(f.status(), 401);

    assert_eq!(invoke(&url, Some(TOKEN_A)).await.status(), 200);
    assert_eq!(invoke(&url, Some(TOKEN_B)).await.status(), 200);
    let nim_b = NimClient::new(&url, TOKEN_B);
    nim_b
        .run(Task::ObjectDetection, png(40, 30, 2), "image/png")
        .await
        .expect("B's NIM flow");

    // B is taken out of the file; SIGHUP makes it so.
    std::fs::write(&file, format!("# B revoked\n{TOKEN_A}\n")).expect("rewrite tokens");
    proxy.signal("HUP");
    assert!(
        proxy.wait_for("client tokens reloaded", Duration::from_secs(10)),
        "{}",
        proxy.output()
    );
    assert_refused(invoke(&url, Some(TOKEN_B)).await, "client-token-refused").await;
    assert_eq!(
        nim_b
            .create_asset("image/png", "x")
            .await
            .unwrap_err()
            .status,
        401
    );
    assert_eq!(invoke(&url, Some(TOKEN_A)).await.status(), 200);

    // A file that no longer parses keeps the tokens in force.
    std::fs::write(&file, "tiny-revoked-x\n").expect("rewrite tokens");
    proxy.signal("HUP");
    assert!(proxy.wait_for("not reloaded", Duration::from_secs(10)));
    assert_eq!(invoke(&url, Some(TOKEN_A)).await.status(), 200);

    let output = proxy.stop();
    assert!(
        output.contains("client-token") || output.contains("refused"),
        "{output}"
    );
    for secret in [
        TOKEN_A,
        TOKEN_B,
        WRONG,
        KEY,
        "nvapi-fake-key-0123",
        "tiny-revoked-x",
    ] {
        assert!(
            !output.contains(secret),
            "{secret} is in the proxy's output"
        );
    }
    // The emulator saw the proxy's key only.
    for seen in stack.seen("/v") {
        assert_eq!(
            seen.authorization.as_deref(),
            Some(&*format!("Bearer {KEY}")),
            "{}",
            seen.path
        );
    }
}

#[test]
fn a_public_listener_with_a_key_and_no_tokens_is_warned_about() {
    let args = [
        "--listen",
        "0.0.0.0:0",
        "--upstream",
        "http://127.0.0.1:9",
        "--assets-upstream",
        "http://127.0.0.1:9",
    ];
    let open = Proxy::spawn(&args, Some(KEY));
    assert!(
        open.wait_for("no --client-tokens", Duration::from_secs(10)),
        "{}",
        open.output()
    );
    let output = open.stop();
    assert!(!output.contains(KEY));

    let (_dir, file) = token_file("warn", &[TOKEN_A]);
    let mut guarded_args = args.to_vec();
    guarded_args.extend(["--client-tokens", file.to_str().expect("path")]);
    let guarded = Proxy::spawn(&guarded_args, Some(KEY));
    assert!(guarded.wait_for("client tokens required", Duration::from_secs(10)));
    assert!(!guarded.stop().contains("no --client-tokens"));
}

#[test]
fn an_unreadable_or_invalid_token_file_stops_startup_without_quoting_it() {
    let (_dir, file) = token_file("invalid", &["ok-token-1234567890abcdef", "tiny-secret"]);
    let output = Command::new(BIN)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--client-tokens",
            file.to_str().expect("path"),
        ])
        .env_remove("NVIDIA_API_KEY")
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("line 4"), "{stderr}");
    assert!(
        !stderr.contains("tiny-secret") && !stderr.contains("ok-token"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "no listening line");
}
