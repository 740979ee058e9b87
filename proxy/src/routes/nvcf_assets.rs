//! NVCF's asset flow on the proxy, as NVIDIA's own clients speak it, so that they need only a
//! new host:
//! 1. `POST /v2/nvcf/assets` with `{"contentType","description"}` answers
//!    `{"uploadUrl","assetId"}`; the URL points back at this proxy and plays the part of S3's
//!    presigned URL: unguessable, short-lived (`--upload-url-ttl`), good for one upload.
//! 2. `PUT {uploadUrl}` with the bytes and the `content-type` and
//!    `x-amz-meta-nvcf-asset-description` headers, which must equal what was declared (S3
//!    signs them into NVCF's URL). The bytes then go where the backend wants them (NVIDIA: the
//!    real two NVCF steps upstream, keeping only NVCF's id; a local model: the asset store).
//! 3. The invocation names the asset in its content (`data:image/…;asset_id,<assetId>`) and,
//!    as NVCF requires, in `NVCF-INPUT-ASSET-REFERENCES` and `NVCF-FUNCTION-ASSET-IDS`;
//!    [`resolve`] translates the id for the backend (our client, which names the asset only in
//!    the content, is served too).
//!
//! An asset is usable only by the client token it was uploaded with, and for `--asset-ttl`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::{Extension, Json};
use base64::Engine;
use florence2::ErrorCode;
use florence2::request::{
    HEADER_ASSET_DESCRIPTION, HEADER_FUNCTION_ASSET_IDS, HEADER_INPUT_ASSET_REFERENCES, ImageRef,
    Invocation,
};
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};
use std::time::Instant;

use super::assets::is_image_type;
use super::caller_key;
use crate::asset_store::{AssetStore, Claim, Content, StoreError};
use crate::backend::{AssetCustody, AssetUpload, CallContext};
use crate::error::ApiError;
use crate::guard::body::{self, MAX_IMAGE_BYTES};
use crate::guard::client_tokens::Caller;
use crate::guard::deadline::Deadline;
use crate::state::App;
use crate::wire::{ClientAddr, Tenant, UPLOAD_PATH_PREFIX};

pub const UPLOAD_ROUTE: &str = "/v2/nvcf/asset-uploads/{secret}";
/// Largest creation body read.
const MAX_CREATE_BYTES: usize = 16 * 1024;
/// Longest description: it travels in a header.
const MAX_DESCRIPTION_CHARS: usize = 256;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Create {
    content_type: String,
    description: String,
}

/// `POST /v2/nvcf/assets`: a new asset id and the URL to upload its bytes to.
pub async fn create(
    State(app): State<Arc<App>>,
    Extension(client): Extension<ClientAddr>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    request_body: Body,
) -> Result<Json<Value>, ApiError> {
    app.rate.check(client.0)?;
    body::require_media_type(&headers, |m| m == "application/json", "application/json")?;
    let bytes = body::read(
        &headers,
        request_body,
        MAX_CREATE_BYTES,
        "the asset request",
    )
    .await?;
    let invalid = |why: String| {
        ApiError::refused(StatusCode::BAD_REQUEST, why).with_kind("invalid-asset-request")
    };
    let create: Create = serde_json::from_slice(&bytes).map_err(|e| {
        invalid(format!(
            "the body must be {{\"contentType\": \"image/jpeg\", \"description\": \"…\"}}: {e}"
        ))
    })?;
    // Both values come back as headers of the upload: plain, header-safe text only.
    if !is_image_type(&create.content_type)
        || create.content_type.bytes().any(|b| b.is_ascii_uppercase())
    {
        return Err(invalid(format!(
            "contentType must be an image type in lower case (image/jpeg, image/png, …), not {:?}",
            create.content_type.chars().take(80).collect::<String>()
        ))
        .with_kind("unsupported-content-type"));
    }
    let description_ok = (1..=MAX_DESCRIPTION_CHARS).contains(&create.description.len())
        && create
            .description
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b));
    if !description_ok {
        return Err(invalid(format!(
            "description must be 1 to {MAX_DESCRIPTION_CHARS} printable ASCII characters (it is repeated in the {HEADER_ASSET_DESCRIPTION} header of the upload)"
        )));
    }
    let base = upload_base(&app, &headers)?;
    let created = app
        .assets
        .create(
            caller.0,
            caller.tenant(client.0),
            &create.content_type,
            &create.description,
            Instant::now(),
        )
        .map_err(store_refusal)?;
    let upload_url = base
        .join(&format!("{}{}", &UPLOAD_PATH_PREFIX[1..], created.secret))
        .map_err(|e| {
            ApiError::refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot build the upload URL: {e}"),
            )
        })?;
    tracing::info!(
        asset = %created.asset_id,
        content_type = %create.content_type,
        expires_in_secs = created.expires_in.as_secs(),
        "asset created"
    );
    Ok(Json(json!({
        "uploadUrl": upload_url.as_str(),
        "assetId": created.asset_id,
        "contentType": create.content_type,
        "description": create.description,
    })))
}

/// Where upload URLs start: `--public-url`, else this request's `Host` over http (the Host
/// check has accepted it by now).
fn upload_base(app: &App, headers: &HeaderMap) -> Result<Url, ApiError> {
    if let Some(url) = &app.public_url {
        return Ok(url.clone());
    }
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|host| Url::parse(&format!("http://{host}/")).ok())
        // A Host header that smuggles a path, credentials or a query is not an origin.
        .filter(|url| {
            url.path() == "/"
                && url.username().is_empty()
                && url.password().is_none()
                && url.query().is_none()
                && url.fragment().is_none()
        })
        .ok_or_else(|| {
            ApiError::refused(
                StatusCode::BAD_REQUEST,
                "the upload URL is built from the Host header, and this request has no usable one (or start the proxy with --public-url)",
            )
            .with_kind("no-host")
        })
}

/// `PUT {uploadUrl}`: the asset's bytes. No client token is needed: like S3's presigned URL,
/// the unguessable, single-use path is the credential (NVIDIA's samples send none).
pub async fn upload(
    State(app): State<Arc<App>>,
    Extension(deadline): Extension<Deadline>,
    Path(secret): Path<String>,
    headers: HeaderMap,
    request_body: Body,
) -> Result<StatusCode, ApiError> {
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let claim = app
        .assets
        .claim(
            &secret,
            header_text(header::CONTENT_TYPE.as_str()),
            header_text(HEADER_ASSET_DESCRIPTION),
            Instant::now(),
        )
        .map_err(store_refusal)?;
    // However this upload ends short of storing the asset (an error, the deadline, a client
    // hang-up, shutdown: the last three drop this future), the URL is given back, so that it
    // can be tried again while it lives; once stored, giving back changes nothing.
    let _give_back = GiveBack(&app.assets, &claim);
    let stored = async {
        let bytes = body::read(&headers, request_body, MAX_IMAGE_BYTES, "the asset").await?;
        if bytes.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::ImageDecode,
                "the body is empty; send the image bytes",
            )
            .with_kind("empty-upload"));
        }
        let content = match app.backend.asset_custody() {
            AssetCustody::Proxy => Content::Kept(bytes),
            AssetCustody::Backend => {
                let context = CallContext {
                    caller_key: caller_key::from_headers(&headers, app.backend.profile())?,
                    deadline: deadline.0,
                    tenant: claim.tenant,
                    memory: None,
                };
                let _slot = app.slots.enter().await?;
                let upload = AssetUpload {
                    content_type: claim.content_type.clone(),
                    bytes,
                };
                Content::Backend(app.backend.upload_asset(upload, context).await?)
            }
        };
        app.assets
            .complete(&claim, content, Instant::now())
            .map_err(store_refusal)
    }
    .await;
    match stored {
        Ok(()) => {
            tracing::info!(asset = %claim.asset_id, "asset uploaded");
            Ok(StatusCode::OK)
        }
        Err(refusal) => Err(refusal),
    }
}

/// Releases a claimed upload URL when dropped.
struct GiveBack<'a>(&'a AssetStore, &'a Claim);

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        self.0.release(self.1);
    }
}

/// Stores an asset that arrived in one step (`POST /v1/assets`): with the backend (its id is
/// the one callers see, as before) or kept here (a fresh id). Either way it is recorded with
/// its owner, so only that client token can use it.
pub async fn add(
    app: &App,
    caller: Caller,
    tenant: Tenant,
    upload: AssetUpload,
    context: CallContext,
) -> Result<String, ApiError> {
    let content_type = upload.content_type.clone();
    let (id, content) = match app.backend.asset_custody() {
        AssetCustody::Proxy => (None, Content::Kept(upload.bytes)),
        AssetCustody::Backend => {
            let id = app.backend.upload_asset(upload, context).await?;
            (Some(id.clone()), Content::Backend(id))
        }
    };
    app.assets
        .add(caller.0, tenant, id, &content_type, content, Instant::now())
        .map_err(store_refusal)
}

/// The invocation with its asset, if it names one, as the backend must see it: NVCF's id
/// for the NVIDIA backend (the upstream headers are built from it), the bytes inline for a
/// backend that does not keep assets. Only the caller's own assets resolve.
pub fn resolve(
    app: &App,
    invocation: Invocation,
    headers: &HeaderMap,
    caller: Caller,
) -> Result<Invocation, ApiError> {
    let ImageRef::Asset { mime, asset_id } = &invocation.image else {
        return Ok(invocation);
    };
    for name in [HEADER_INPUT_ASSET_REFERENCES, HEADER_FUNCTION_ASSET_IDS] {
        let mut values = headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            // Our own client names the asset only in the content.
            continue;
        }
        let listed = values
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|id| id.trim() == asset_id);
        if !listed {
            return Err(ApiError::refused(
                StatusCode::BAD_REQUEST,
                format!("the content uses asset {asset_id}, but the {name} header does not list it (NVCF requires both NVCF-INPUT-ASSET-REFERENCES and NVCF-FUNCTION-ASSET-IDS to name it)"),
            )
            .with_kind("asset-not-referenced"));
        }
    }
    let hours = app.assets.limits().asset_ttl.as_secs_f64() / 3600.0;
    let resolved = app
        .assets
        .resolve(asset_id, caller.0, Instant::now())
        .ok_or_else(|| {
            ApiError::refused(
                StatusCode::NOT_FOUND,
                format!("no asset {asset_id}: upload it first (POST /v2/nvcf/assets or POST /v1/assets); an asset lives {hours:.2} h and only the client token that uploaded it can use it"),
            )
            .with_kind("asset-not-found")
        })?;
    let image = match resolved.content {
        Content::Backend(id) => ImageRef::Asset {
            mime: mime.clone(),
            asset_id: id,
        },
        Content::Kept(bytes) => ImageRef::Inline {
            mime: resolved.content_type,
            base64: base64::engine::general_purpose::STANDARD.encode(&bytes),
        },
    };
    Ok(Invocation {
        image,
        ..invocation
    })
}

/// The typed answer for each refusal of the store.
fn store_refusal(error: StoreError) -> ApiError {
    match error {
        StoreError::UnknownUploadUrl => ApiError::refused(
            StatusCode::NOT_FOUND,
            "no such upload URL: create the asset with POST /v2/nvcf/assets and PUT to the uploadUrl it answers",
        )
        .with_kind("upload-url-not-found"),
        StoreError::UploadUrlUsed => ApiError::refused(
            StatusCode::CONFLICT,
            "this upload URL has been used; each takes one upload: create a new asset for another",
        )
        .with_kind("upload-url-used"),
        StoreError::UploadInProgress => ApiError::refused(
            StatusCode::CONFLICT,
            "an upload to this URL is in progress",
        )
        .with_kind("upload-in-progress"),
        StoreError::UploadUrlExpired => ApiError::refused(
            StatusCode::FORBIDDEN,
            "this upload URL has expired (--upload-url-ttl): create a new asset",
        )
        .with_kind("upload-url-expired"),
        StoreError::HeaderMismatch(name) => ApiError::refused(
            StatusCode::FORBIDDEN,
            format!("SignatureDoesNotMatch: the upload's {name} header must equal what was given when the asset was created (content-type = contentType, {HEADER_ASSET_DESCRIPTION} = description)"),
        )
        .with_kind("signature-does-not-match"),
        StoreError::Full { what, retry_after } => {
            let secs = retry_after.as_secs_f64().ceil().max(1.0);
            let mut refusal: ApiError = florence2::Error::new(
                ErrorCode::RateLimited,
                format!("the proxy's asset store is full ({what}); try again in {secs:.0} s, when older assets expire"),
            )
            .with_retry_after(Some(secs))
            .into();
            refusal.status = StatusCode::INSUFFICIENT_STORAGE;
            refusal.with_kind("asset-store-full")
        }
    }
}
