//! `POST /v1/assets`: raw image bytes in (Content-Type image/…), `{"assetId": …}` out, after
//! both NVCF asset steps.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use florence2::ErrorCode;
use serde_json::{Value, json};

use super::{caller_key, nvcf_assets};
use crate::backend::{AssetUpload, CallContext};
use crate::error::ApiError;
use crate::guard::body::{self, MAX_IMAGE_BYTES};
use crate::guard::client_tokens::Caller;
use crate::guard::deadline::Deadline;
use crate::state::App;
use crate::wire::ClientAddr;

pub async fn upload(
    State(app): State<Arc<App>>,
    Extension(client): Extension<ClientAddr>,
    Extension(caller): Extension<Caller>,
    Extension(deadline): Extension<Deadline>,
    headers: HeaderMap,
    request_body: Body,
) -> Result<Json<Value>, ApiError> {
    app.rate.check(client.0)?;
    // The type travels into a signed upload header: a plain image/<subtype> only.
    let content_type = body::require_media_type(
        &headers,
        is_image_type,
        "the image bytes with Content-Type image/jpeg, image/png, …",
    )?;
    let bytes = body::read(&headers, request_body, MAX_IMAGE_BYTES, "the image").await?;
    if bytes.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::ImageDecode,
            "the body is empty; send the image bytes",
        ));
    }
    let context = CallContext {
        caller_key: caller_key::from_headers(&headers, app.backend.profile())?,
        deadline: deadline.0,
        tenant: caller.tenant(client.0),
        // An upload holds its body only (reserved by the memory guard).
        memory: None,
    };
    let _slot = app
        .slots
        .enter_unless(app.backend.profile().own_queue)
        .await?;
    tracing::info!(content_type, bytes = bytes.len(), "asset upload");
    let upload = AssetUpload {
        content_type,
        bytes,
    };
    let asset_id = nvcf_assets::add(&app, caller, caller.tenant(client.0), upload, context).await?;
    Ok(Json(json!({ "assetId": asset_id })))
}

pub(crate) fn is_image_type(media: &str) -> bool {
    media.strip_prefix("image/").is_some_and(|sub| {
        !sub.is_empty()
            && sub.len() <= 64
            && sub
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    })
}
