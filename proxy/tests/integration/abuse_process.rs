//! The proxy under abuse, as a process (the `florence2-proxy` binary): its memory under slow
//! uploads, measured from /proc, and how it stops (the shutdown grace, a second signal).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use florence2::Task;
use nvcf_emulator::Fault;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

use crate::support::{self, body, data_url, png};

const BIN: &str = env!("CARGO_BIN_EXE_florence2-proxy");
const KEY: &str = "nvapi-PROCESS-abuse-77";

/// A proxy process in front of `upstream`; killed when dropped.
struct Proxy {
    child: Child,
    addr: SocketAddr,
}

impl Proxy {
    fn start(upstream: &str, args: &[&str]) -> Proxy {
        let mut child = Command::new(BIN)
            .args([
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                upstream,
                "--assets-upstream",
                upstream,
            ])
            .args(args)
            .env("NVIDIA_API_KEY", KEY)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start florence2-proxy");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("first line");
        let addr = line
            .trim_end()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .parse()
            .expect("address");
        Proxy { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`).
    fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let started = Instant::now();
        while started.elapsed() < within {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .local_address(source.parse::<std::net::IpAddr>().expect("address"))
        .build()
        .expect("client")
}

const MB: usize = 1024 * 1024;

/// The budget given to the proxy under test, and how far above its resting RSS the proxy
/// may go: the budget itself plus 32 MB for everything else (hyper's buffers, the other
/// client's requests, allocator slack).
const BUDGET_MB: u64 = 64;
const ALLOWED_GROWTH_KIB: u64 = (BUDGET_MB + 32) * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_uploads_from_one_address_stay_within_the_memory_budget() {
    florence2_proxy::tls::install_crypto_provider();
    let stack = support::start(&[], &[], Some(KEY)).await;
    let proxy = Proxy::start(
        &stack.emulator_url,
        &[
            "--memory-budget",
            &BUDGET_MB.to_string(),
            "--rate-limit",
            "0",
        ],
    );
    let other = client_from("127.0.0.2");
    let request = body(Task::Caption, &data_url(&png(64, 48, 2)));
    let invoke = |client: reqwest::Client| {
        let request = request.clone();
        let url = proxy.url();
        async move {
            client
                .post(format!("{url}/v1/vlm/microsoft/florence-2"))
                .json(&request)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };
    for _ in 0..5 {
        assert_eq!(invoke(other.clone()).await, 200, "warm-up");
    }
    let resting = proxy.memory_kib("VmRSS");
    // 12 uploads from 127.0.0.1, each declaring 25 MB, sending 20 MB at once, then stalling
    // with the connection open: today's proxy would buffer 240 MB of them.
    const UPLOADS: usize = 12;
    const SENT: usize = 20 * MB;
    let mut uploads = Vec::new();
    for _ in 0..UPLOADS {
        let addr = proxy.addr;
        uploads.push(tokio::spawn(async move {
            let socket = TcpSocket::new_v4().expect("socket");
            socket.bind("127.0.0.1:0".parse().expect("address")).expect("bind");
            let mut stream = socket.connect(addr).await.expect("connect");
            let head = format!(
                "POST /v1/assets HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n",
                25 * MB
            );
            if stream.write_all(head.as_bytes()).await.is_err() {
                return stream;
            }
            let chunk = vec![0x55u8; 256 * 1024];
            for _ in 0..SENT / chunk.len() {
                if stream.write_all(&chunk).await.is_err() {
                    break;
                }
            }
            stream
        }));
    }
    // Meanwhile another client is served, for 4 s.
    let started = Instant::now();
    let (mut served, mut refused) = (0, 0);
    while started.elapsed() < Duration::from_secs(4) {
        match invoke(other.clone()).await {
            200 => served += 1,
            _ => refused += 1,
        }
    }
    // Written (or refused) by now; the stalled ones stay open while memory is read.
    let mut streams = Vec::new();
    for upload in uploads {
        if let Ok(Ok(stream)) = tokio::time::timeout(Duration::from_secs(20), upload).await {
            streams.push(stream);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss = proxy.memory_kib("VmRSS");
    let peak = proxy.memory_kib("VmHWM");
    eprintln!(
        "memory under {UPLOADS} slow 25 MB uploads from one address (--memory-budget {BUDGET_MB}): \
         resting RSS {resting} KiB, RSS {rss} KiB, peak (VmHWM) {peak} KiB, growth {} KiB, \
         bound {ALLOWED_GROWTH_KIB} KiB; another client meanwhile: {served} served, {refused} refused",
        peak.saturating_sub(resting)
    );
    assert!(
        peak.saturating_sub(resting) <= ALLOWED_GROWTH_KIB,
        "the proxy grew by {} KiB (peak {peak} KiB, resting {resting} KiB)",
        peak - resting
    );
    assert!(
        served >= 10 && refused == 0,
        "served {served}, refused {refused}"
    );
    assert!(
        stack.seen("/s3/assets/").is_empty(),
        "no stalled upload went upstream"
    );
    drop(streams);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_requests_finish_within_the_grace_then_get_503_and_the_process_exits() {
    florence2_proxy::tls::install_crypto_provider();
    let stack = support::start(&[], &[], Some(KEY)).await;
    let request = body(Task::Caption, &data_url(&png(16, 16, 1)));
    // Within the grace: a 1.5 s request finishes after the signal.
    let mut proxy = Proxy::start(&stack.emulator_url, &["--shutdown-grace", "5"]);
    stack
        .emulator
        .push_faults([Fault::parse("delay-ms=1500").expect("fault")]);
    let pending = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{}/v1/vlm/microsoft/florence-2", proxy.url()))
            .json(&request)
            .send(),
    );
    wait_for_upstream(&stack, 1).await;
    proxy.signal("TERM");
    let answer = pending.await.expect("task").expect("answer");
    assert_eq!(answer.status(), 200, "finished within the grace");
    let exit = proxy
        .wait_exit(Duration::from_secs(5))
        .expect("exits once idle");
    assert!(exit.success(), "{exit:?}");
    // Past the grace: a 30 s request is answered 503 after 1 s, and the process exits.
    let mut proxy = Proxy::start(&stack.emulator_url, &["--shutdown-grace", "1"]);
    stack
        .emulator
        .push_faults([Fault::parse("delay-ms=30000").expect("fault")]);
    let pending = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{}/v1/vlm/microsoft/florence-2", proxy.url()))
            .json(&request)
            .send(),
    );
    wait_for_upstream(&stack, 2).await;
    let signalled = Instant::now();
    proxy.signal("TERM");
    let answer = pending.await.expect("task").expect("an answer");
    let waited = signalled.elapsed();
    assert_eq!(answer.status(), 503);
    assert_eq!(answer.headers()["retry-after"], "1");
    let (_, error) = support::error_of(answer).await;
    assert_eq!(error["code"], "RATE_LIMITED", "{error}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "answered after {waited:?}"
    );
    let exit = proxy
        .wait_exit(Duration::from_secs(5))
        .expect("exits after the grace");
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    florence2_proxy::tls::install_crypto_provider();
    let stack = support::start(&[], &[], Some(KEY)).await;
    let mut proxy = Proxy::start(&stack.emulator_url, &["--shutdown-grace", "600"]);
    stack
        .emulator
        .push_faults([Fault::parse("delay-ms=30000").expect("fault")]);
    let pending = tokio::spawn(
        reqwest::Client::new()
            .post(format!("{}/v1/vlm/microsoft/florence-2", proxy.url()))
            .json(&body(Task::Caption, &data_url(&png(16, 16, 1))))
            .send(),
    );
    wait_for_upstream(&stack, 1).await;
    proxy.signal("TERM");
    assert!(
        proxy.wait_exit(Duration::from_millis(700)).is_none(),
        "the first signal waits for the open request"
    );
    let second = Instant::now();
    proxy.signal("INT");
    let exit = proxy
        .wait_exit(Duration::from_secs(2))
        .expect("exits at once");
    assert!(second.elapsed() < Duration::from_secs(2));
    assert!(!exit.success(), "an abrupt stop says so: {exit:?}");
    assert!(
        pending.await.expect("task").is_err(),
        "the open request was dropped"
    );
}

/// Waits until the emulator has seen `n` inference requests.
async fn wait_for_upstream(stack: &support::Stack, n: usize) {
    let started = Instant::now();
    while stack.seen("/v1/vlm").len() < n {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the request never went upstream"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens a connection from `source` with a small receive window, sends `head`, and never
/// reads: the proxy's writes stall once the kernel's buffers are full.
async fn stalled_reader(proxy: SocketAddr, source: &str, head: &str) -> tokio::net::TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    socket
        .bind(format!("{source}:0").parse().expect("address"))
        .expect("bind");
    let mut stream = socket.connect(proxy).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
}

/// Issue 33, item 1: four addresses that fetch a large model file and stop reading held every
/// `--max-connections` slot for good (only the head read had a timeout), and /healthz waited
/// unaccepted. Now a write that waits on the client longer than `--stall-timeout` closes the
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_stop_reading_give_their_connections_back() {
    let root = support::TempDir::new("stalled-readers");
    let folder = root.0.join("models").join("tiny");
    std::fs::create_dir_all(&folder).expect("model folder");
    // Larger than the kernel's buffers on both sides, so that the proxy's writes stall.
    std::fs::write(folder.join("model.safetensors"), vec![7u8; 32 * MB]).expect("model file");
    let models = root.0.join("models");
    let proxy = Proxy::start(
        "http://127.0.0.1:9",
        &[
            "--models",
            models.to_str().expect("utf-8 path"),
            "--max-connections",
            "4",
            "--stall-timeout",
            "1",
        ],
    );
    let head = "GET /models/tiny/model.safetensors HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut attackers = Vec::new();
    for source in ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        attackers.push(stalled_reader(proxy.addr, source, head).await);
    }
    // Every slot is taken; the attackers' answers stall in the kernel's buffers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let health = client_from("127.0.0.5")
        .get(format!("{}/healthz", proxy.url()))
        .timeout(Duration::from_secs(8))
        .send()
        .await
        .map(|r| r.status().as_u16());
    let waited = started.elapsed();
    eprintln!(
        "/healthz with 4 stalled readers holding --max-connections 4 (--stall-timeout 1): {health:?} after {waited:?}"
    );
    assert_eq!(health.ok(), Some(200), "answered after {waited:?}");
    assert!(waited < Duration::from_secs(4), "answered after {waited:?}");
    // A normal request from another address too (the slots stay free).
    let file = client_from("127.0.0.6")
        .get(format!("{}/models/tiny/model.safetensors", proxy.url()))
        .timeout(Duration::from_secs(8))
        .send()
        .await
        .expect("answer");
    assert_eq!(file.bytes().await.expect("the whole file").len(), 32 * MB);
    drop(attackers);
}

/// Issue 33, item 2: a body's declared size is reserved before it is read, and only
/// `--timeout` bounded the read: two uploads that stall after 64 KB held the whole
/// `--memory-budget`, and another client's request waited 20 s for room, then got 429. Now
/// a body that stops arriving is refused (408 `body-too-slow`) after `--stall-timeout`, and
/// its reservation is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_give_their_memory_back_within_the_stall_timeout() {
    florence2_proxy::tls::install_crypto_provider();
    let stack = support::start(&[], &[], Some(KEY)).await;
    let proxy = Proxy::start(
        &stack.emulator_url,
        &[
            "--memory-budget",
            "32",
            "--stall-timeout",
            "1",
            "--rate-limit",
            "0",
        ],
    );
    // Two addresses declare 16 MB each (the whole budget) and stop after 64 KB.
    let mut uploads = Vec::new();
    for source in ["127.0.0.1", "127.0.0.2"] {
        let head = format!(
            "POST /v1/assets HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n",
            16 * MB
        );
        let mut stream = stalled_reader(proxy.addr, source, &head).await;
        stream
            .write_all(&vec![0x55u8; 64 * 1024])
            .await
            .expect("first bytes");
        uploads.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let answer = client_from("127.0.0.3")
        .post(format!("{}/v1/vlm/microsoft/florence-2", proxy.url()))
        .json(&body(Task::Caption, &data_url(&png(16, 16, 1))))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .map(|r| r.status().as_u16());
    let waited = started.elapsed();
    eprintln!(
        "a request behind two stalled 16 MB uploads (--memory-budget 32, --stall-timeout 1): {answer:?} after {waited:?}"
    );
    assert_eq!(answer.ok(), Some(200), "after {waited:?}");
    assert!(waited < Duration::from_secs(5), "answered after {waited:?}");
    // The stalled uploads were told why.
    for mut stream in uploads {
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer),
        )
        .await;
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("body-too-slow"), "{answer}");
    }
}

/// Issue 33, item 13: a body's copies (the body, its parsed JSON, what goes upstream) are all
/// held while a request waits on a stalled upstream, and the budget reserved only one of them.
/// 40 bodies of 3.8 MB from one address, `--max-concurrent 4`, `--memory-budget 64`: the
/// proxy's peak RSS must stay within the budget and 32 MB of its resting RSS.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_waiting_on_a_stalled_upstream_stay_within_the_memory_budget() {
    use base64::Engine;
    florence2_proxy::tls::install_crypto_provider();
    let stack = support::start(&[], &[], Some(KEY)).await;
    let proxy = Proxy::start(
        &stack.emulator_url,
        &[
            "--memory-budget",
            &BUDGET_MB.to_string(),
            "--max-concurrent",
            "4",
            "--rate-limit",
            "0",
        ],
    );
    let client = client_from("127.0.0.1");
    let url = format!("{}/v1/vlm/microsoft/florence-2", proxy.url());
    for _ in 0..3 {
        let small = body(Task::Caption, &data_url(&png(64, 48, 2)));
        let status = client
            .post(&url)
            .json(&small)
            .send()
            .await
            .expect("warm-up");
        assert_eq!(status.status(), 200, "warm-up");
    }
    let resting = proxy.memory_kib("VmRSS");
    // 2.85 MB of incompressible bytes: a 3.8 MB body.
    let mut noise = vec![0u8; 2_850_000];
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    for byte in noise.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    let src = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&noise)
    );
    let large = serde_json::to_vec(&body(Task::Caption, &src)).expect("JSON");
    assert!(large.len() > 3_700_000, "{} bytes", large.len());
    stack
        .emulator
        .push_faults((0..40).map(|_| Fault::parse("delay-ms=15000").expect("fault")));
    let mut requests = Vec::new();
    for _ in 0..40 {
        let (client, url, large) = (client.clone(), url.clone(), large.clone());
        requests.push(tokio::spawn(async move {
            let sent = client
                .post(url)
                .header("content-type", "application/json")
                .body(large)
                .timeout(Duration::from_secs(12))
                .send()
                .await;
            sent.map(|r| r.status().as_u16()).unwrap_or(0)
        }));
    }
    drop(large);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let rss = proxy.memory_kib("VmRSS");
    let peak = proxy.memory_kib("VmHWM");
    let upstream = stack.seen("/v1/vlm").len();
    eprintln!(
        "memory under 40 bodies of 3.8 MB from one address to a stalled upstream \
         (--max-concurrent 4, --memory-budget {BUDGET_MB}): resting RSS {resting} KiB, RSS {rss} KiB, \
         peak (VmHWM) {peak} KiB, growth {} KiB, bound {ALLOWED_GROWTH_KIB} KiB; {upstream} reached the upstream",
        peak.saturating_sub(resting)
    );
    assert!(
        peak.saturating_sub(resting) <= ALLOWED_GROWTH_KIB,
        "the proxy grew by {} KiB (peak {peak} KiB, resting {resting} KiB)",
        peak - resting
    );
    for request in requests {
        request.abort();
    }
}
