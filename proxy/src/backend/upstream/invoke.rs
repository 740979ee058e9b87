//! One inference: POST the body, then follow NVCF until the ZIP: 202 → poll
//! `pexec/status/{reqId}`, 302 → download the `Location` (without the key).

use std::time::Duration;

use bytes::Bytes;
use florence2::request::{
    HEADER_FUNCTION_ASSET_IDS, HEADER_INPUT_ASSET_REFERENCES, HEADER_POLL_SECONDS,
    HEADER_REQUEST_ID, Invocation, InvokeRequest, nvcf_status_path,
};
use florence2::{Error, ErrorCode, Result};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION};
use reqwest::{Response, StatusCode};
use tokio::time::Instant;

use super::{UpstreamBackend, archive, failure, relative};
use crate::api_key::ApiKey;
use crate::backend::CallContext;

/// Shortest gap between two status polls, in case the upstream answers 202 at once instead
/// of holding the call for NVCF-POLL-SECONDS.
const MIN_POLL_GAP: Duration = Duration::from_millis(250);
/// Longest request id accepted from `NVCF-REQID` (NVCF's are UUIDs).
const MAX_REQ_ID_CHARS: usize = 128;

pub async fn invoke(
    up: &UpstreamBackend,
    invocation: Invocation,
    context: &CallContext,
) -> Result<Bytes> {
    let key = up.key(context)?;
    let asset = invocation.image.asset_id().map(str::to_owned);
    // Rebuilt from the validated parts: nothing the caller sent goes upstream unchecked. The
    // body is made in one step and the parts are dropped, so that a request waiting on the
    // upstream holds one copy of its image, as much as the memory budget reserved for it.
    let body = {
        let content = invocation
            .prompt
            .endpoint_content(&invocation.image.src())?;
        let max_tokens = invocation.max_tokens;
        drop(invocation);
        Bytes::from(
            InvokeRequest {
                max_tokens,
                ..InvokeRequest::new(content)
            }
            .to_json(),
        )
    };
    let asset = asset.as_deref();
    let response = up
        .send_retrying(context, "the inference request", key, || {
            let mut post = up
                .client
                .post(up.invoke_url.clone())
                .header(AUTHORIZATION, key.authorization())
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json")
                .header(HEADER_POLL_SECONDS, up.poll_seconds)
                .body(body.clone());
            if let Some(id) = asset {
                post = post
                    .header(HEADER_INPUT_ASSET_REFERENCES, id)
                    .header(HEADER_FUNCTION_ASSET_IDS, id);
            }
            post
        })
        .await?;
    settle(up, response, key, context).await
}

/// Follows 202s and a 302 to the archive.
async fn settle(
    up: &UpstreamBackend,
    mut response: Response,
    key: &ApiKey,
    context: &CallContext,
) -> Result<Bytes> {
    let mut polls = 0u32;
    let mut req_id: Option<String> = None;
    loop {
        match response.status() {
            StatusCode::OK => return archive::read(response, "the result", key).await,
            StatusCode::ACCEPTED => {
                // Each 202 names the request; a poll's 202 that does not keeps the first name.
                let id = match (request_id(&response), req_id.take()) {
                    (Ok(id), _) | (Err(_), Some(id)) => id,
                    (Err(e), None) => return Err(e),
                };
                let poll_url = up
                    .nvcf
                    .join(relative(&nvcf_status_path(&id)))
                    .map_err(|e| Error::new(ErrorCode::Upstream, format!("cannot poll: {e}")))?;
                req_id = Some(id);
                drop(response);
                polls += 1;
                tracing::debug!(polls, "pending (202); polling");
                let started = Instant::now();
                response = up
                    .send_retrying(context, "polling the pending request", key, || {
                        up.client
                            .get(poll_url.clone())
                            .header(AUTHORIZATION, key.authorization())
                            .header(ACCEPT, "application/json")
                            .header(HEADER_POLL_SECONDS, up.poll_seconds)
                    })
                    .await?;
                if response.status() == StatusCode::ACCEPTED {
                    tokio::time::sleep_until(started + MIN_POLL_GAP).await;
                }
            }
            s if s.is_redirection() => return download(up, response, key, context).await,
            _ => {
                return Err(
                    failure::from_response(response, "the inference request", Some(key)).await,
                );
            }
        }
    }
}

/// The request id to poll. It becomes part of a URL path, so only UUID-like ids pass.
fn request_id(response: &Response) -> Result<String> {
    let Some(id) = response.headers().get(HEADER_REQUEST_ID) else {
        return Err(Error::new(
            ErrorCode::Upstream,
            "the upstream answered 202 without an NVCF-REQID header",
        )
        .with_status(202));
    };
    let id = id.to_str().map(str::trim).unwrap_or("");
    let valid = !id.is_empty()
        && id.len() <= MAX_REQ_ID_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return Err(Error::new(
            ErrorCode::Upstream,
            "the upstream answered 202 with an unusable NVCF-REQID (not a UUID-like id)",
        )
        .with_status(202));
    }
    Ok(id.to_owned())
}

/// A 302 names where the (large) result waits: a presigned URL, fetched without the key.
async fn download(
    up: &UpstreamBackend,
    response: Response,
    key: &ApiKey,
    context: &CallContext,
) -> Result<Bytes> {
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Error::new(
                ErrorCode::Upstream,
                format!("the upstream answered {status} without a Location"),
            )
            .with_status(status)
        })?;
    let url = response.url().join(location).map_err(|_| {
        Error::new(
            ErrorCode::Upstream,
            format!("the upstream's {status} Location is not a URL"),
        )
        .with_status(status)
    })?;
    up.handoff.check(&url, "the result location")?;
    drop(response);
    let result = up
        .send(up.client.get(url), context, "the result download")
        .await?;
    if result.status() != StatusCode::OK {
        return Err(failure::from_handoff(&result, "the result download"));
    }
    archive::read(result, "the downloaded result", key).await
}
