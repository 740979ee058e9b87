//! What the handlers share: built by `app`, read by `routes` (its own module, so that routes
//! need not import the module that imports them).

use std::sync::Arc;

use crate::asset_store::AssetStore;
use crate::backend::Backend;
use crate::guard::client_tokens::Access;
use crate::guard::concurrency::ConcurrencyCap;
use crate::guard::rate_limit::ClientRateLimit;

/// What handlers share.
pub struct App {
    pub backend: Arc<dyn Backend>,
    pub rate: ClientRateLimit,
    pub slots: ConcurrencyCap,
    /// Assets uploaded through this proxy: owners, ids, kept bytes, expiry.
    pub assets: AssetStore,
    /// `--public-url`: where upload URLs point.
    pub public_url: Option<reqwest::Url>,
    pub client_tokens_required: bool,
    /// Who may read `/healthz?detail` (a client token, when there are any).
    pub access: Arc<Access>,
}
