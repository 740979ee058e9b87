//! NVCF's two asset steps: create the asset (which hands back a presigned upload URL), then
//! PUT the bytes there with the headers the signature covers — without the key.

use bytes::Bytes;
use florence2::request::{HEADER_ASSET_DESCRIPTION, NVCF_ASSETS_PATH};
use florence2::{Error, ErrorCode, Result};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use serde::Deserialize;
use serde_json::json;

use super::{UpstreamBackend, failure, relative};
use crate::backend::{AssetUpload, CallContext};

/// The description given at creation; the presigned PUT must repeat it.
const DESCRIPTION: &str = "florence2-web image";
/// Longest creation answer read.
const MAX_CREATE_ANSWER: usize = 64 * 1024;
const MAX_ASSET_ID_CHARS: usize = 128;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    upload_url: String,
    asset_id: String,
}

pub async fn upload(
    up: &UpstreamBackend,
    upload: AssetUpload,
    context: &CallContext,
) -> Result<String> {
    let key = up.key(context)?;
    let create_url = up
        .nvcf
        .join(relative(NVCF_ASSETS_PATH))
        .map_err(|e| Error::new(ErrorCode::Upstream, format!("cannot create assets: {e}")))?;
    let create = Bytes::from(
        json!({ "contentType": upload.content_type, "description": DESCRIPTION }).to_string(),
    );
    let mut response = up
        .send_retrying(context, "the asset creation", key, || {
            up.client
                .post(create_url.clone())
                .header(AUTHORIZATION, key.authorization())
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json")
                .body(create.clone())
        })
        .await?;
    if response.status() != StatusCode::OK {
        return Err(failure::from_response(response, "the asset creation", Some(key)).await);
    }
    let mut answer = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        Error::new(
            ErrorCode::Network,
            format!("the asset creation answer was cut off: {}", e.without_url()),
        )
    })? {
        answer.extend_from_slice(&chunk);
        if answer.len() > MAX_CREATE_ANSWER {
            return Err(Error::new(
                ErrorCode::Upstream,
                "the asset creation answer is too long",
            ));
        }
    }
    let created: Created = serde_json::from_slice(&answer).map_err(|_| {
        Error::new(
            ErrorCode::Upstream,
            "the asset creation answer lacks uploadUrl and assetId",
        )
    })?;
    let id_ok = !created.asset_id.is_empty()
        && created.asset_id.len() <= MAX_ASSET_ID_CHARS
        && created
            .asset_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !id_ok {
        return Err(Error::new(
            ErrorCode::Upstream,
            "the asset creation answered an unusable assetId",
        ));
    }
    let upload_url = reqwest::Url::parse(&created.upload_url).map_err(|_| {
        Error::new(
            ErrorCode::Upstream,
            "the asset creation answered an uploadUrl that is not a URL",
        )
    })?;
    up.handoff.check(&upload_url, "the asset upload URL")?;
    let put = up
        .client
        .put(upload_url)
        .header(CONTENT_TYPE, &upload.content_type)
        .header(HEADER_ASSET_DESCRIPTION, DESCRIPTION)
        .body(upload.bytes);
    let stored = up.send(put, context, "the asset upload").await?;
    if !stored.status().is_success() {
        return Err(failure::from_handoff(&stored, "the asset upload"));
    }
    Ok(created.asset_id)
}
