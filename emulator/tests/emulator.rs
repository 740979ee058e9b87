//! The emulator over real HTTP: NVCF's protocol, the faults, the controls, the binary.

use std::io::{BufRead, BufReader, Cursor};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use nvcf_emulator::{Config, Emulator, FAULT_HEADER};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const BIN: &str = env!("CARGO_BIN_EXE_nvcf-emulator");

struct Running {
    url: String,
    emulator: Emulator,
    client: reqwest::Client,
}

async fn start(args: &[&str]) -> Running {
    use clap::Parser;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config =
        Config::try_parse_from(std::iter::once("nvcf-emulator").chain(args.iter().copied()))
            .expect("flags");
    let emulator = Emulator::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(
        emulator
            .clone()
            .serve_until(listener, std::future::pending()),
    );
    // Redirects are part of what is tested: not followed.
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Running {
        url,
        emulator,
        client,
    }
}

fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, _| {
        if x < w / 2 {
            image::Rgb([20, 40, 220])
        } else {
            image::Rgb([240, 230, 30])
        }
    });
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .expect("png");
    out
}

fn body(content_src: &str, task: &str) -> Value {
    json!({ "messages": [{ "role": "user", "content": format!("{task}<img src=\"{content_src}\" />") }] })
}

fn inline(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

impl Running {
    fn invoke(&self, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}/v1/vlm/microsoft/florence-2", self.url))
            .bearer_auth("nvapi-emu")
            .json(body)
    }
}

async fn problem(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let p: Value = response.json().await.expect("problem JSON");
    assert_eq!(p["status"], status);
    assert!(
        p["type"]
            .as_str()
            .expect("type")
            .starts_with("urn:nvcf-worker-service:problem-details:")
    );
    assert!(p["title"].is_string() && p["detail"].is_string());
    p
}

fn response_json(zip_bytes: &[u8]) -> Value {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip_bytes)).expect("zip");
    let name = archive
        .file_names()
        .filter_map(Result::ok)
        .find(|n| n.ends_with(".response"))
        .expect(".response")
        .into_owned();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut archive.by_name(&name).expect("entry"), &mut text)
        .expect("read");
    serde_json::from_str(&text).expect("JSON")
}

#[tokio::test]
async fn invokes_need_a_key_and_answer_deterministic_zips() {
    let emu = start(&["--api-key", "nvapi-emu"]).await;
    let request = body(&inline(&png(60, 40)), "<OD>");
    let anonymous = emu
        .client
        .post(format!("{}/v1/vlm/microsoft/florence-2", emu.url))
        .json(&request)
        .send()
        .await
        .expect("answer");
    problem(anonymous, 401).await;
    let wrong = emu
        .client
        .post(format!("{}/v1/vlm/microsoft/florence-2", emu.url))
        .bearer_auth("nvapi-other")
        .json(&request)
        .send()
        .await
        .expect("answer");
    problem(wrong, 401).await;
    let first = emu.invoke(&request).send().await.expect("answer");
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["content-type"], "application/zip");
    let first = first.bytes().await.expect("body");
    let second = emu
        .invoke(&request)
        .send()
        .await
        .expect("answer")
        .bytes()
        .await
        .expect("body");
    assert_eq!(first, second, "same request, same bytes");
    let answer = response_json(&first);
    let message = &answer["choices"][0]["message"];
    assert_eq!(message["role"], "assistant");
    assert!(
        message["content"]
            .as_str()
            .expect("content")
            .starts_with("<OD>")
    );
    let mut labels: Vec<&str> = message["entities"]["labels"]
        .as_array()
        .expect("labels")
        .iter()
        .map(|l| l.as_str().expect("label"))
        .collect();
    labels.sort();
    assert_eq!(labels, ["sign", "sky"], "blue left half, yellow right half");
    assert!(answer["usage"]["total_tokens"].as_u64().expect("usage") > 0);
}

#[tokio::test]
async fn refuses_what_nvcf_refuses() {
    let emu = start(&["--max-inline-chars", "50"]).await;
    let cases = [
        (body(&inline(&png(60, 40)), "<OD>"), 422, "assets API"),
        (body("data:image/png;base64,AAAA", "<OD>"), 422, "decode"),
        (
            body(
                "data:image/png;base64,AAAA",
                "<REGION_TO_OCR><loc_1><loc_1><loc_5><loc_5>",
            ),
            422,
            "unsupported task",
        ),
        (json!({"messages": "nope"}), 422, "not an invocation"),
    ];
    for (request, status, says) in cases {
        let p = problem(emu.invoke(&request).send().await.expect("answer"), status).await;
        assert!(p["detail"].as_str().expect("detail").contains(says), "{p}");
    }
    let oversized = emu
        .client
        .post(format!("{}/v1/vlm/microsoft/florence-2", emu.url))
        .bearer_auth("k")
        .body(vec![b' '; 5 * 1024 * 1024 + 1])
        .send()
        .await
        .expect("answer");
    problem(oversized, 413).await;
}

#[tokio::test]
async fn header_faults_script_202_chains_302s_and_429s() {
    let emu = start(&[]).await;
    let request = body(&inline(&png(30, 20)), "<CAPTION>");
    let pending = emu
        .invoke(&request)
        .header(FAULT_HEADER, "chain=2; redirect")
        .send()
        .await
        .expect("answer");
    assert_eq!(pending.status(), 202);
    assert_eq!(pending.headers()["nvcf-status"], "pending-evaluation");
    let req_id = pending.headers()["nvcf-reqid"]
        .to_str()
        .expect("id")
        .to_owned();
    let poll = |id: String| {
        emu.client
            .get(format!("{}/v2/nvcf/pexec/status/{id}", emu.url))
            .bearer_auth("k")
            .send()
    };
    assert_eq!(poll(req_id.clone()).await.expect("answer").status(), 202);
    let found = poll(req_id.clone()).await.expect("answer");
    assert_eq!(found.status(), 302);
    let location = found.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert!(
        location.starts_with(&format!("{}/s3/results/", emu.url)),
        "{location}"
    );
    let download = emu.client.get(&location).send().await.expect("answer");
    assert_eq!(download.status(), 200, "presigned: no key needed");
    assert!(
        response_json(&download.bytes().await.expect("body"))["choices"][0]["message"]["content"]
            .as_str()
            .expect("content")
            .starts_with("<CAPTION>")
    );
    problem(poll(req_id).await.expect("answer"), 404).await;

    let limited = emu
        .invoke(&request)
        .header(FAULT_HEADER, "status=429; retry-after=3")
        .send()
        .await
        .expect("answer");
    assert_eq!(limited.headers()["retry-after"], "3");
    problem(limited, 429).await;
    let truncated = emu
        .invoke(&request)
        .header(FAULT_HEADER, "truncate")
        .send()
        .await
        .expect("answer")
        .bytes()
        .await
        .expect("body");
    assert!(zip::ZipArchive::new(Cursor::new(truncated)).is_err());
    let html = emu
        .invoke(&request)
        .header(FAULT_HEADER, "content-type=text/html")
        .send()
        .await
        .expect("answer");
    assert_eq!(html.headers()["content-type"], "text/html");
    let started = Instant::now();
    assert_eq!(
        emu.invoke(&request)
            .header(FAULT_HEADER, "delay-ms=300")
            .send()
            .await
            .expect("answer")
            .status(),
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    problem(
        emu.invoke(&request)
            .header(FAULT_HEADER, "nonsense")
            .send()
            .await
            .expect("answer"),
        400,
    )
    .await;
    let echoed = problem(
        emu.invoke(&request)
            .header(FAULT_HEADER, "echo-key")
            .send()
            .await
            .expect("answer"),
        500,
    )
    .await;
    assert!(
        echoed["detail"]
            .as_str()
            .expect("detail")
            .contains("Bearer nvapi-emu")
    );
}

#[tokio::test]
async fn assets_take_two_signed_steps() {
    let emu = start(&[]).await;
    let create = |ct: &str| {
        emu.client
            .post(format!("{}/v2/nvcf/assets", emu.url))
            .bearer_auth("k")
            .json(&json!({"contentType": ct, "description": "d1"}))
            .send()
    };
    problem(create("text/plain").await.expect("answer"), 422).await;
    let created: Value = create("image/png")
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let (url, id) = (
        created["uploadUrl"].as_str().expect("url"),
        created["assetId"].as_str().expect("id"),
    );
    let image = png(20, 20);
    let put = |desc: &str| {
        emu.client
            .put(url)
            .header("content-type", "image/png")
            .header("x-amz-meta-nvcf-asset-description", desc)
            .body(image.clone())
            .send()
    };
    problem(put("another").await.expect("answer"), 403).await;
    assert_eq!(put("d1").await.expect("answer").status(), 200);
    let request = body(&format!("data:image/png;asset_id,{id}"), "<OCR>");
    problem(emu.invoke(&request).send().await.expect("answer"), 400).await;
    let answered = emu
        .invoke(&request)
        .header("NVCF-INPUT-ASSET-REFERENCES", id)
        .header("NVCF-FUNCTION-ASSET-IDS", id)
        .send()
        .await
        .expect("answer");
    assert_eq!(answered.status(), 200);
    let content =
        response_json(&answered.bytes().await.expect("body"))["choices"][0]["message"]["content"]
            .as_str()
            .expect("content")
            .to_owned();
    assert!(
        content.starts_with("<OCR>") && content.ends_with("20X20"),
        "{content}"
    );
}

#[tokio::test]
async fn the_fault_queue_and_journal_are_scriptable_over_http() {
    let emu = start(&["--fault", "status=503", "--fault-times", "1"]).await;
    let request = body(&inline(&png(10, 10)), "<CAPTION>");
    problem(emu.invoke(&request).send().await.expect("answer"), 503).await;
    let queued: Value = emu
        .client
        .post(format!("{}/_emulator/faults", emu.url))
        .json(&json!([{"status": 500}, {"chain": 1}]))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    assert_eq!(queued["queued"], 2);
    problem(emu.invoke(&request).send().await.expect("answer"), 500).await;
    assert_eq!(
        emu.invoke(&request).send().await.expect("answer").status(),
        202
    );
    assert_eq!(
        emu.invoke(&request).send().await.expect("answer").status(),
        200,
        "queue and flag used up"
    );
    let journal: Value = emu
        .client
        .get(format!("{}/_emulator/requests", emu.url))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("JSON");
    let invokes = journal
        .as_array()
        .expect("array")
        .iter()
        .filter(|s| s["path"] == "/v1/vlm/microsoft/florence-2")
        .count();
    assert_eq!(invokes, 4);
    assert_eq!(journal[0]["authorization"], "Bearer nvapi-emu");
    assert_eq!(
        emu.emulator.journal().len(),
        journal.as_array().expect("array").len()
    );
    assert_eq!(
        journal.as_array().expect("array").last().expect("entries")["path"],
        "/_emulator/requests",
        "the journal read itself is journalled"
    );
}

#[test]
fn help_says_it_is_a_test_double() {
    let output = Command::new(BIN).arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(
        help.contains("TEST DOUBLE") && help.contains("NOT the product"),
        "{help}"
    );
    for flag in [
        "--listen",
        "--api-key",
        "--fault",
        "--fault-times",
        "--max-inline-chars",
    ] {
        assert!(help.contains(flag), "{flag}");
    }
}

#[test]
fn the_binary_prints_its_port_and_stops_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("line");
    let url = line
        .trim_end()
        .strip_prefix("listening on http://127.0.0.1:")
        .map(str::to_owned);
    assert!(
        url.is_some_and(|port| port.parse::<u16>().is_ok_and(|p| p != 0)),
        "{line:?}"
    );
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill")
            .success()
    );
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{status:?}");
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("still running 10 s after SIGTERM");
}
