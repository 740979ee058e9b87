//! `POST /v1/vlm/microsoft/florence-2`: the endpoint's body in, the result ZIP out.

use std::sync::Arc;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::{caller_key, invoke_body, nvcf_assets};
use crate::backend::CallContext;
use crate::error::ApiError;
use crate::guard::body::{self, MAX_JSON_BYTES};
use crate::guard::client_tokens::Caller;
use crate::guard::deadline::Deadline;
use crate::guard::memory::MemoryAccount;
use crate::state::App;
use crate::wire::{BACKEND_HEADER, ClientAddr};

pub async fn invoke(
    State(app): State<Arc<App>>,
    Extension(client): Extension<ClientAddr>,
    Extension(caller): Extension<Caller>,
    Extension(deadline): Extension<Deadline>,
    memory: Option<Extension<MemoryAccount>>,
    headers: HeaderMap,
    request_body: Body,
) -> Result<Response, ApiError> {
    app.rate.check(client.0)?;
    body::require_media_type(&headers, |m| m == "application/json", "application/json")?;
    let bytes = body::read(&headers, request_body, MAX_JSON_BYTES, "the JSON body").await?;
    let profile = app.backend.profile();
    let invocation = invoke_body::parse(&bytes, profile.all_tasks)?;
    // The parsed copy is all that is needed from here on: the budget reserved one body.
    drop(bytes);
    let asset = invocation.image.asset_id().is_some();
    // An asset id is the caller's own, translated for the backend (NVCF's id, or inline bytes).
    let invocation = nvcf_assets::resolve(&app, invocation, &headers, caller)?;
    let context = CallContext {
        caller_key: caller_key::from_headers(&headers, profile)?,
        deadline: deadline.0,
        tenant: caller.tenant(client.0),
        memory: memory.map(|Extension(account)| account),
    };
    let _slot = app.slots.enter_unless(profile.own_queue).await?;
    tracing::info!(task = %invocation.prompt.task, asset, "invoke");
    let zip = app.backend.invoke(invocation, context).await?;
    let mut response = zip.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/zip"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Which backend answered: the ZIP is the endpoint's either way, so clients (and the demo's
    // "answered by" line) learn it here.
    h.insert(BACKEND_HEADER, HeaderValue::from_static(profile.name));
    Ok(response)
}
