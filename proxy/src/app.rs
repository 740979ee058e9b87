//! The whole server: routes, their shared state, and the layers every request passes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use florence2::request::{ASSETS_PATH, INVOKE_PATH};

use crate::backend::Backend;
use crate::config::Config;
use crate::guard::concurrency::ConcurrencyCap;
use crate::guard::host::AllowedHosts;
use crate::guard::rate_limit::ClientRateLimit;
use crate::guard::{cors, deadline, host, request_target};
use crate::observe::access_log;
use crate::routes::{assets, healthz, invoke, not_found, static_files};

/// What handlers share.
pub struct App {
    pub backend: Arc<dyn Backend>,
    pub rate: ClientRateLimit,
    pub slots: ConcurrencyCap,
}

/// The server for `config`, answering through `backend`, listening on `local` (which decides
/// the Host names it answers to by default).
pub fn router(config: &Config, backend: Arc<dyn Backend>, local: SocketAddr) -> Router {
    let app = Arc::new(App {
        backend,
        rate: ClientRateLimit::new(config.rate_limit, config.rate_burst),
        slots: ConcurrencyCap::new(config.max_concurrent),
    });
    let api = Router::new()
        .route(INVOKE_PATH, post(invoke::invoke))
        .route(ASSETS_PATH, post(assets::upload))
        .route("/healthz", get(healthz::healthz))
        .method_not_allowed_fallback(not_found::method_not_allowed)
        .with_state(app);
    // Outermost last: the access log sees everything (with its id), CORS headers reach even
    // refusals, refusals come before any work, and the deadline bounds the work.
    static_files::attach(api, config.static_dir.as_deref())
        .layer(from_fn_with_state(config.timeout(), deadline::enforce))
        .layer(from_fn(request_target::check))
        .layer(from_fn_with_state(
            AllowedHosts::new(&config.allow_hosts, local),
            host::check,
        ))
        .layer(cors::layer(config.origins()))
        .layer(from_fn(access_log::record))
}
