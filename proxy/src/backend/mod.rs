//! Where answers come from: NVIDIA's hosted endpoint ([`upstream::UpstreamBackend`]) or the
//! Florence-2 model run in this process ([`local::LocalBackend`]). The routes know only this
//! trait.

pub mod local;
pub mod upstream;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use florence2::Result;
use florence2::request::Invocation;
use serde::Serialize;
use tokio::time::Instant;

use crate::api_key::ApiKey;
use crate::guard::memory::MemoryAccount;
use crate::wire::Tenant;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
    /// Who the call counts against (its client token, else its address): what a backend
    /// remembers from one call for the next (the local model's pictures) stays with it.
    pub tenant: Tenant,
    /// The request's place in `--memory-budget`, for what the backend holds beyond the body
    /// (absent for a request without a body).
    pub memory: Option<MemoryAccount>,
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
    /// The local model (`--backend local` only). Detail: only in `/healthz?detail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<serde_json::Value>,
    /// The local model's queue (`--backend local` only). Detail: only in `/healthz?detail`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<serde_json::Value>,
}

/// What the routes must know about a backend besides its calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// `nvidia` or `local`: answered in every inference answer's `x-florence2-backend`.
    pub name: &'static str,
    /// Runs the tasks NVIDIA's endpoint does not offer (`<REGION_TO_OCR>`).
    pub all_tasks: bool,
    /// Spends an NVIDIA key, so a request's `X-Api-Key` matters.
    pub takes_keys: bool,
    /// Bounds its own work (a queue that answers 429), so the proxy's `--max-concurrent`
    /// slots would only get in its way.
    pub own_queue: bool,
}

impl Profile {
    pub const NVIDIA: Profile = Profile {
        name: "nvidia",
        all_tasks: false,
        takes_keys: true,
        own_queue: false,
    };
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

/// Who holds the bytes of an uploaded asset (see [`Backend::asset_custody`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetCustody {
    /// The backend: uploads go to [`Backend::upload_asset`], and the proxy keeps only the id
    /// it answers (NVIDIA: NVCF's asset id), which invocations then name.
    Backend,
    /// The proxy: uploads stay in its asset store (bounded, expiring; `crate::asset_store`),
    /// `upload_asset` is never called, and an invocation naming an asset reaches
    /// [`Backend::invoke`] with the asset's bytes inline (`ImageRef::Inline`), so the backend
    /// never sees an asset id. For a backend that runs the model itself.
    Proxy,
}

pub trait Backend: Send + Sync + 'static {
    /// Runs one validated invocation; the answer is the endpoint's ZIP archive.
    fn invoke(&self, invocation: Invocation, context: CallContext) -> BoxFuture<'_, Result<Bytes>>;

    /// Stores an image for use as `data:image/…;asset_id,<id>`; answers the id.
    fn upload_asset(
        &self,
        upload: AssetUpload,
        context: CallContext,
    ) -> BoxFuture<'_, Result<String>>;

    fn health(&self) -> BoxFuture<'_, Health>;

    fn profile(&self) -> Profile {
        Profile::NVIDIA
    }

    /// Who keeps the bytes of uploaded assets (`POST /v1/assets`, and the `PUT` to an upload
    /// URL from `POST /v2/nvcf/assets`). Either way the proxy decides who may use an asset
    /// (its client token) and for how long, and translates the ids callers see.
    fn asset_custody(&self) -> AssetCustody {
        AssetCustody::Backend
    }
}
