//! Where answers come from. Today: NVIDIA's hosted endpoint ([`upstream::UpstreamBackend`]).
//! The local Rust model arrives later as a second implementation of [`Backend`]; the routes
//! know only this trait.

pub mod upstream;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use florence2::{Error, Prompt, Result};
use serde::Serialize;
use tokio::time::Instant;

use crate::api_key::ApiKey;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A validated inference request.
#[derive(Debug, Clone)]
pub struct InvokeRequest {
    pub prompt: Prompt,
    pub image: ImageSource,
    /// The optional `max_tokens` of the endpoint's body.
    pub max_tokens: Option<u32>,
}

/// The image of a request, as the endpoint's `<img src="…">` names it.
#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// `data:image/…;base64,…`
    Inline { data_url: String },
    /// `data:image/<subtype>;asset_id,<id>`: an image uploaded through `POST /v1/assets`.
    Asset { media_type: String, asset_id: String },
}

/// Longest asset id accepted (NVCF's are UUIDs).
const MAX_ASSET_ID_CHARS: usize = 128;

impl ImageSource {
    /// Reads an `<img src>` value; the full check of inline data is `Prompt::endpoint_content`'s.
    pub fn parse(src: &str) -> Result<ImageSource> {
        let bad = |why: &str| Err(Error::new(florence2::ErrorCode::BadOption, format!("image source: {why}")));
        let Some((media, data)) = src.split_once(',') else {
            return bad("expected data:image/…;base64,… or data:image/…;asset_id,…");
        };
        match media.strip_suffix(";asset_id") {
            Some(media_type) => {
                let valid = !data.is_empty() && data.len() <= MAX_ASSET_ID_CHARS && data.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !valid || !media_type.starts_with("data:image/") {
                    return bad("an asset reference is data:image/<type>;asset_id,<the assetId from POST /v1/assets>");
                }
                let media_type = media_type.trim_start_matches("data:").to_owned();
                Ok(ImageSource::Asset { media_type, asset_id: data.to_owned() })
            }
            None => Ok(ImageSource::Inline { data_url: src.to_owned() }),
        }
    }

    /// The `<img src>` value.
    pub fn src(&self) -> String {
        match self {
            ImageSource::Inline { data_url } => data_url.clone(),
            ImageSource::Asset { media_type, asset_id } => format!("data:{media_type};asset_id,{asset_id}"),
        }
    }

    pub fn asset_id(&self) -> Option<&str> {
        match self {
            ImageSource::Inline { .. } => None,
            ImageSource::Asset { asset_id, .. } => Some(asset_id),
        }
    }
}

/// Raw image bytes to store as an asset.
#[derive(Debug, Clone)]
pub struct AssetUpload {
    /// `image/<subtype>`, lower case, without parameters.
    pub content_type: String,
    pub bytes: Bytes,
}

/// What a call may use besides its request.
#[derive(Debug, Clone)]
pub struct CallContext {
    /// The key the request brought in `X-Api-Key`, if any (used only when none is configured).
    pub caller_key: Option<ApiKey>,
    /// When the whole request must be answered.
    pub deadline: Instant,
}

/// What `/healthz` reports.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// Which backend answers (`nvidia`).
    pub backend: &'static str,
    /// Whether the proxy holds a key (the key itself is never reported).
    pub key_configured: bool,
    /// Whether requests may bring their own key in `X-Api-Key`.
    pub request_keys_accepted: bool,
    pub upstream: Option<Reachability>,
}

/// Whether a remote service answered recently.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reachability {
    pub url: String,
    pub reachable: bool,
    /// Why not, when it is not.
    pub detail: Option<String>,
    /// How old this finding is (it is cached).
    pub checked_secs_ago: u64,
}

pub trait Backend: Send + Sync + 'static {
    /// Runs one inference; the answer is the endpoint's ZIP archive.
    fn invoke(&self, request: InvokeRequest, context: CallContext) -> BoxFuture<'_, Result<Bytes>>;

    /// Stores an image for use as `data:image/…;asset_id,<id>`; answers the id.
    fn upload_asset(&self, upload: AssetUpload, context: CallContext) -> BoxFuture<'_, Result<String>>;

    fn health(&self) -> BoxFuture<'_, Health>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_sources_round_trip() {
        let asset = ImageSource::parse("data:image/png;asset_id,3fa85f64-5717-4562").unwrap();
        assert_eq!(asset, ImageSource::Asset { media_type: "image/png".into(), asset_id: "3fa85f64-5717-4562".into() });
        assert_eq!(asset.src(), "data:image/png;asset_id,3fa85f64-5717-4562");
        let inline = ImageSource::parse("data:image/jpeg;base64,AAAA").unwrap();
        assert_eq!(inline.asset_id(), None);
        for bad in ["data:image/png;asset_id,../x", "data:image/png;asset_id,", "data:text/html;asset_id,abc", "nothing"] {
            assert!(ImageSource::parse(bad).is_err(), "{bad}");
        }
    }
}
