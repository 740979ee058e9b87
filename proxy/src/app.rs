//! The whole server: routes, their shared state, and the layers every request passes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post, put};
use florence2::request::{ASSETS_PATH, INVOKE_PATH, NVCF_ASSETS_PATH};
use tokio::sync::watch;

use crate::asset_store::AssetStore;
use crate::backend::Backend;
use crate::config::Config;
use crate::guard::client::TrustedProxies;
use crate::guard::client_tokens::{self, Access, ClientTokens};
use crate::guard::concurrency::ConcurrencyCap;
use crate::guard::host::AllowedHosts;
use crate::guard::memory::{self, MemoryBudget};
use crate::guard::pace::{self, Pace};
use crate::guard::rate_limit::ClientRateLimit;
use crate::guard::shutdown::{self, Phase};
use crate::guard::{cors, deadline, host, ignored_key, panic, request_target, response_headers};
use crate::observe::access_log;
use crate::routes::nvcf_assets::{self, UPLOAD_ROUTE};
use crate::routes::{assets, healthz, invoke, not_found, static_files};
use crate::state::App;

/// The server for `config`, answering through `backend`, listening on `local` (which decides
/// the Host names it answers to by default); `phase` says when the shutdown grace is over;
/// `tokens` are the `--client-tokens`, loaded.
pub fn router(
    config: &Config,
    backend: Arc<dyn Backend>,
    local: SocketAddr,
    phase: watch::Receiver<Phase>,
    tokens: Option<Arc<ClientTokens>>,
) -> Router {
    // With client tokens the per-client rate limit counts per token (in the token check),
    // so the per-address one is off.
    let address_rate = if tokens.is_some() {
        0
    } else {
        config.rate_limit
    };
    let access = Arc::new(Access::new(tokens, config.rate_limit, config.rate_burst));
    let app = Arc::new(App {
        backend,
        rate: ClientRateLimit::new(address_rate, config.rate_burst),
        slots: ConcurrencyCap::new(config.max_concurrent),
        assets: AssetStore::new(config.asset_limits()),
        public_url: config.public_url.clone(),
        client_tokens_required: access.required(),
        access: access.clone(),
    });
    // The routes that spend the key or hold assets need a caller (and, with tokens, a valid
    // one); the upload URL is its own credential, /healthz and the demo are open.
    let api = Router::new()
        .route(INVOKE_PATH, post(invoke::invoke))
        .route(ASSETS_PATH, post(assets::upload))
        .route(NVCF_ASSETS_PATH, post(nvcf_assets::create))
        .route_layer(from_fn_with_state(access, client_tokens::require))
        .route(UPLOAD_ROUTE, put(nvcf_assets::upload))
        .route("/healthz", get(healthz::healthz))
        .method_not_allowed_fallback(not_found::method_not_allowed)
        .with_state(app)
        .layer(from_fn_with_state(Pace::of(config), pace::bodies))
        .layer(from_fn_with_state(
            MemoryBudget::new(config.memory_budget_bytes()),
            memory::guard,
        ));
    let hosts = AllowedHosts::new(&config.allow_hosts, local, config.api_key.is_some());
    tracing::info!("answering Host names: {}", hosts.describe());
    // Outermost last: the access log sees everything (with its id), a panic anywhere inside
    // is that request's 500, every answer gets the security headers, CORS headers reach even
    // refusals, refusals come before any work, and the deadline bounds the work.
    let router = static_files::attach(
        api,
        config.static_dir.as_deref(),
        config.models_dir.as_deref(),
    )
    .layer(from_fn_with_state(config.timeout(), deadline::enforce))
    .layer(from_fn(request_target::check))
    .layer(from_fn_with_state(hosts, host::check));
    let router = if config.api_key.is_some() {
        router.layer(from_fn(ignored_key::strip))
    } else {
        router
    };
    router
        .layer(cors::layer(config.origins()))
        .layer(from_fn_with_state(phase, shutdown::enforce))
        .layer(from_fn_with_state(
            static_files::content_security_policy(config.static_dir.as_deref()),
            response_headers::add,
        ))
        .layer(panic::layer(config.api_key.clone()))
        .layer(from_fn_with_state(
            TrustedProxies::new(&config.trusted_proxies),
            access_log::record,
        ))
}
