//! A client written from NVIDIA's protocol (../shared/nim-api.md and the Florence-2 model
//! card's Python sample), not from our code: what existing NIM code does, with only the host
//! changed. Upload the picture as an asset (`POST /v2/nvcf/assets`, `PUT` the bytes to the
//! `uploadUrl` with the signed headers), invoke with `data:image/…;asset_id,ID` and the two
//! `NVCF-*` headers, unzip the answer. The same client runs against any proxy: [`all_tasks`]
//! takes the proxy's URL and what to expect of its answers.

use std::io::{Cursor, Read};

use florence2::Task;
use serde_json::{Value, json};

use crate::support::{self, TempDir, png, text_for};

/// What NIM code holds: the two NVIDIA hosts (here both the proxy) and its "API key" (here
/// the proxy's client token, or an NVIDIA key the proxy must ignore).
pub struct NimClient {
    http: reqwest::Client,
    invoke_url: String,
    assets_url: String,
    bearer: String,
}

/// A failed step: HTTP status and the body as JSON (problem details).
#[derive(Debug)]
pub struct Failure {
    pub status: u16,
    pub body: Value,
}

/// The unzipped answer.
pub struct Answer {
    pub response: Value,
    /// Entries that are images (NVIDIA's overlay; its name is unverified, so by extension).
    pub images: Vec<(String, Vec<u8>)>,
}

impl Failure {
    pub async fn of(response: reqwest::Response) -> Failure {
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Failure { status, body }
    }
}

impl NimClient {
    pub fn new(base_url: &str, bearer: &str) -> NimClient {
        florence2_proxy::tls::install_crypto_provider();
        NimClient {
            http: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            invoke_url: format!("{base_url}/v1/vlm/microsoft/florence-2"),
            assets_url: format!("{base_url}/v2/nvcf/assets"),
            bearer: format!("Bearer {bearer}"),
        }
    }

    /// Step 1: `{"uploadUrl","assetId"}`, as the sample reads them.
    pub async fn create_asset(
        &self,
        content_type: &str,
        description: &str,
    ) -> Result<(String, String), Failure> {
        let response = self
            .http
            .post(&self.assets_url)
            .header("Authorization", &self.bearer)
            .header("Content-Type", "application/json")
            .header("accept", "application/json")
            .json(&json!({ "contentType": content_type, "description": description }))
            .send()
            .await
            .expect("the proxy answers");
        if response.status() != 200 {
            return Err(Failure::of(response).await);
        }
        let created: Value = response.json().await.expect("JSON");
        let upload_url = created["uploadUrl"].as_str().expect("uploadUrl").to_owned();
        let asset_id = created["assetId"].as_str().expect("assetId").to_owned();
        // NVIDIA's sample does `uuid.UUID(asset_id)` and later sends `str(...)` of it.
        let parsed = uuid::Uuid::parse_str(&asset_id).expect("assetId is a UUID");
        assert_eq!(
            parsed.hyphenated().to_string(),
            asset_id,
            "str(uuid) round trip"
        );
        Ok((upload_url, asset_id))
    }

    /// Step 2: the bytes, with the headers the presigned URL was signed for; no key.
    pub async fn put(
        &self,
        upload_url: &str,
        bytes: Vec<u8>,
        content_type: &str,
        description: &str,
    ) -> Result<(), Failure> {
        let response = self
            .http
            .put(upload_url)
            .header("x-amz-meta-nvcf-asset-description", description)
            .header("content-type", content_type)
            .body(bytes)
            .send()
            .await
            .expect("the proxy answers");
        if response.status() != 200 {
            return Err(Failure::of(response).await);
        }
        Ok(())
    }

    pub async fn upload_asset(
        &self,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<String, Failure> {
        let description = "Reference image";
        let (upload_url, asset_id) = self.create_asset(content_type, description).await?;
        self.put(&upload_url, bytes, content_type, description)
            .await?;
        Ok(asset_id)
    }

    /// The invocation by asset, as the sample sends it.
    pub async fn invoke_asset(&self, content: &str, asset_id: &str) -> reqwest::Response {
        self.http
            .post(&self.invoke_url)
            .header("Authorization", &self.bearer)
            .header("Accept", "application/json")
            .header("NVCF-INPUT-ASSET-REFERENCES", asset_id)
            .header("NVCF-FUNCTION-ASSET-IDS", asset_id)
            .json(&json!({ "messages": [{ "role": "user", "content": content }] }))
            .send()
            .await
            .expect("the proxy answers")
    }

    /// Asset upload, invocation, unzip: the sample's whole run for one task.
    pub async fn run(&self, task: Task, image: Vec<u8>, mime: &str) -> Result<Answer, Failure> {
        let asset_id = self.upload_asset(image, mime).await?;
        let content = format!(
            "{}{}<img src=\"data:{mime};asset_id,{asset_id}\" />",
            task.token(),
            text_for(task).unwrap_or("")
        );
        let response = self.invoke_asset(&content, &asset_id).await;
        if response.status() != 200 {
            return Err(Failure::of(response).await);
        }
        Ok(unzip(&response.bytes().await.expect("body")))
    }
}

pub fn unzip(bytes: &[u8]) -> Answer {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).expect("the answer is a ZIP");
    let mut response = None;
    let mut images = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("entry");
        let name = entry.name().expect("entry name").into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("inflate");
        if name.ends_with(".response") {
            response = Some(serde_json::from_slice(&data).expect(".response is JSON"));
        } else if [".png", ".jpg", ".jpeg"].iter().any(|e| name.ends_with(e)) {
            images.push((name, data));
        }
    }
    Answer {
        response: response.expect("a .response entry"),
        images,
    }
}

/// What a backend's answers must show.
#[derive(Clone, Copy)]
pub struct Expect {
    /// Whether tasks that draw come with an overlay image (NVIDIA's do; `None`: not checked).
    pub overlay_when_drawing: Option<bool>,
}

/// The NIM client's run for every endpoint task, against the proxy at `base_url`.
pub async fn all_tasks(base_url: &str, bearer: &str, expect: Expect) {
    let client = NimClient::new(base_url, bearer);
    let image = png(120, 80, 5);
    for &task in Task::ENDPOINT {
        let answer = client
            .run(task, image.clone(), "image/png")
            .await
            .unwrap_or_else(|f| panic!("{task}: {} {}", f.status, f.body));
        let content = answer.response["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_else(|| panic!("{task}: no content in {}", answer.response));
        assert!(
            content.starts_with(task.token()),
            "{task}: content starts with the task token: {content}"
        );
        let draws = task.answer_kind() != florence2::task::AnswerKind::PureText;
        if let Some(overlay) = expect.overlay_when_drawing {
            assert_eq!(
                !answer.images.is_empty(),
                overlay && draws,
                "{task}: overlay images {:?}",
                answer.images.iter().map(|i| &i.0).collect::<Vec<_>>()
            );
        }
        for (name, bytes) in &answer.images {
            image::load_from_memory(bytes).unwrap_or_else(|e| panic!("{task}: {name}: {e}"));
        }
    }
}

/// A token file holding `tokens`, in its own temporary directory.
pub fn token_file(name: &str, tokens: &[&str]) -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new(name);
    let path = dir.0.join("tokens");
    let mut text = String::from("# florence2-proxy client tokens\n\n");
    for t in tokens {
        text.push_str(t);
        text.push('\n');
    }
    std::fs::write(&path, text).expect("write tokens");
    (dir, path)
}

pub const TOKEN_A: &str = "tok-a-5f0c2e8d9b7a41c6a3e1";
pub const TOKEN_B: &str = "tok-b-0d4e6f8a2c1b43d5b7e9";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nvidias_sample_flow_runs_every_task_through_the_proxy_to_nvcf() {
    let (_dir, tokens) = token_file("nim-all", &[TOKEN_A]);
    let tokens = tokens.to_str().expect("path").to_owned();
    let stack = support::start(
        &[],
        &["--rate-limit", "0", "--client-tokens", &tokens],
        Some("nvapi-proxy-own-key"),
    )
    .await;
    all_tasks(
        &stack.proxy_url,
        TOKEN_A,
        Expect {
            overlay_when_drawing: Some(true),
        },
    )
    .await;
    // Each run: one real NVCF upload, one invocation, all with the proxy's key; the client's
    // Authorization (its token) never went upstream.
    assert_eq!(stack.seen("/s3/assets/").len(), 14);
    let invokes = stack.seen("/v1/vlm/microsoft/florence-2");
    assert_eq!(invokes.len(), 14);
    for seen in stack.seen("/") {
        assert_ne!(
            seen.authorization.as_deref(),
            Some(&*format!("Bearer {TOKEN_A}"))
        );
        if seen.path.starts_with("/v") {
            assert_eq!(
                seen.authorization.as_deref(),
                Some("Bearer nvapi-proxy-own-key"),
                "{}",
                seen.path
            );
        }
    }
}

#[tokio::test]
async fn asset_ids_are_the_proxys_own_and_translated_to_nvcfs() {
    // Without client tokens, NIM code keeps sending its NVIDIA key: it is ignored.
    let stack = support::start(&[], &["--rate-limit", "0"], Some("nvapi-proxy-key")).await;
    let client = NimClient::new(&stack.proxy_url, "nvapi-the-callers-own-key");
    let answer = client
        .run(Task::ObjectDetection, png(64, 48, 1), "image/png")
        .await
        .expect("the flow works");
    assert!(!answer.images.is_empty(), "OD draws an overlay");
    let (upload_url, asset_id) = client
        .create_asset("image/jpeg", "x")
        .await
        .expect("created");
    assert!(
        upload_url.starts_with(&format!("{}/v2/nvcf/asset-uploads/", stack.proxy_url)),
        "the upload URL points back at the proxy: {upload_url}"
    );
    let upstream_ids: Vec<String> = stack
        .seen("/s3/assets/")
        .into_iter()
        .map(|s| s.path["/s3/assets/".len()..].to_owned())
        .collect();
    assert_eq!(
        upstream_ids.len(),
        1,
        "nothing goes upstream before the PUT"
    );
    assert!(!upstream_ids.contains(&asset_id));
    // NVCF's own id means nothing to the proxy: only ids it handed out resolve.
    let content = format!(
        "<OD><img src=\"data:image/png;asset_id,{}\" />",
        upstream_ids[0]
    );
    let response = client.invoke_asset(&content, &upstream_ids[0]).await;
    let f = Failure::of(response).await;
    assert_eq!(f.status, 404, "{}", f.body);
    assert_eq!(
        f.body["type"],
        "urn:florence2-proxy:problem-details:asset-not-found"
    );
    for seen in stack.seen("/") {
        assert_ne!(
            seen.authorization.as_deref(),
            Some("Bearer nvapi-the-callers-own-key"),
            "the caller's Authorization is never forwarded"
        );
    }
}

/// The reference data's tiny end-to-end model (see build.rs: without it, and without `CI`,
/// the test below is listed as ignored).
fn tiny_model() -> std::path::PathBuf {
    florence2_reference::dir(env!("CARGO_MANIFEST_DIR"), "florence2-tiny-e2e")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    reference_missing,
    ignore = "needs ../shared/reference (FLORENCE2_REFERENCE_DIR)"
)]
async fn nvidias_sample_flow_runs_every_task_on_the_local_backend() {
    use clap::Parser;
    florence2_proxy::tls::install_crypto_provider();
    let (_dir, tokens) = token_file("nim-local", &[TOKEN_A, TOKEN_B]);
    let model = tiny_model();
    let config = florence2_proxy::Config::try_parse_from([
        "florence2-proxy",
        "--backend",
        "local",
        "--model",
        model.to_str().expect("path"),
        "--rate-limit",
        "0",
        "--client-tokens",
        tokens.to_str().expect("path"),
    ])
    .expect("flags");
    let backend = florence2_proxy::build_backend(&config)
        .await
        .expect("the tiny model loads");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = florence2_proxy::serve_backend(&config, backend, listener, async move {
            let _ = stopped.await;
        })
        .await;
    });
    all_tasks(
        &url,
        TOKEN_A,
        Expect {
            overlay_when_drawing: Some(true),
        },
    )
    .await;
    // Scoping holds here too: B cannot use A's asset, and nobody gets in without a token.
    let a = NimClient::new(&url, TOKEN_A);
    let b = NimClient::new(&url, TOKEN_B);
    let id = a
        .upload_asset(png(32, 32, 7), "image/png")
        .await
        .expect("uploaded");
    let content = format!("<CAPTION><img src=\"data:image/png;asset_id,{id}\" />");
    let f = Failure::of(b.invoke_asset(&content, &id).await).await;
    assert_eq!(f.status, 404, "{}", f.body);
    assert_eq!(
        f.body["type"],
        "urn:florence2-proxy:problem-details:asset-not-found"
    );
    let f = NimClient::new(&url, "tok-nobody-0000000000000000")
        .create_asset("image/png", "x")
        .await
        .unwrap_err();
    assert_eq!(f.status, 401);
    drop(stop);
}
