//! The two asset steps: `POST /v2/nvcf/assets` (create, hands out a presigned-like upload URL)
//! and `PUT /s3/assets/{assetId}` (the upload; the signed headers must match the creation).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State as Extract};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use florence2::request::HEADER_ASSET_DESCRIPTION;
use serde::Deserialize;
use serde_json::json;

use super::{MAX_ASSET_BYTES, MAX_JSON_BYTES, auth, request};
use crate::problem::Problem;
use crate::state::{Asset, State, lock};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Create {
    content_type: String,
    #[serde(default)]
    description: String,
}

pub async fn create(
    Extract(state): Extract<Arc<State>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        auth::check(&state, &headers)?;
        let fault = request::fault(&state, &headers)?;
        request::misbehave(&fault, &headers).await?;
        let body = request::body(body, MAX_JSON_BYTES).await?;
        let create: Create = serde_json::from_slice(&body)
            .map_err(|e| Problem::unprocessable(format!("invalid asset request: {e}")))?;
        if !create.content_type.starts_with("image/") {
            return Err(Problem::unprocessable(format!(
                "unsupported contentType {:?}",
                create.content_type
            )));
        }
        let asset_id = uuid::Uuid::new_v4().to_string();
        let upload_url = fault.upload_url.clone().unwrap_or_else(|| {
            format!(
                "{}/s3/assets/{asset_id}?X-Amz-Signature=emulated",
                state.base_url()
            )
        });
        lock(&state.assets).insert(
            asset_id.clone(),
            Asset {
                content_type: create.content_type,
                description: create.description,
                bytes: None,
            },
        );
        Ok(Json(
            json!({ "uploadUrl": upload_url, "assetId": asset_id }),
        ))
    };
    match run.await {
        Ok(json) => json.into_response(),
        Err(problem) => problem.into_response(),
    }
}

pub async fn upload(
    Extract(state): Extract<Arc<State>>,
    Path(asset_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let run = async {
        let (content_type, description) = {
            let assets = lock(&state.assets);
            let asset = assets
                .get(&asset_id)
                .ok_or_else(|| Problem::not_found(format!("no asset {asset_id}")))?;
            (asset.content_type.clone(), asset.description.clone())
        };
        let header_is = |name: &str, expected: &str| {
            headers.get(name).and_then(|v| v.to_str().ok()) == Some(expected)
        };
        if !header_is(header::CONTENT_TYPE.as_str(), &content_type)
            || !header_is(HEADER_ASSET_DESCRIPTION, &description)
        {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                format!(
                    "SignatureDoesNotMatch: content-type and {HEADER_ASSET_DESCRIPTION} must be those given when the asset was created"
                ),
            ));
        }
        let bytes = request::body(body, MAX_ASSET_BYTES).await?;
        if let Some(asset) = lock(&state.assets).get_mut(&asset_id) {
            asset.bytes = Some(bytes);
        }
        Ok(StatusCode::OK)
    };
    match run.await {
        Ok(status) => status.into_response(),
        Err(problem) => problem.into_response(),
    }
}
