//! florence2-proxy — the florence2-web server: holds the NVIDIA API key, speaks NVCF's protocol
//! to the hosted Florence-2 endpoint, serves the demo. See `--help` and proxy/README.md.

pub mod api_key;
mod app;
pub mod asset_store;
pub mod backend;
pub mod config;
mod error;
mod guard;
mod observe;
mod routes;
mod state;
pub mod tls;
mod wire;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::guard::client::TrustedProxies;
use crate::guard::connections::{self, CappedListener};
use crate::guard::pace::Pace;
use crate::guard::shutdown::Phase;

pub use api_key::ApiKey;
pub use backend::Backend;
pub use backend::local::LocalBackend;
pub use backend::upstream::UpstreamBackend;
pub use config::{BackendKind, Config};
pub use guard::client_tokens::{ClientTokens, Hangups};
pub use guard::memory::{MemoryAccount, Reservation};
pub use wire::Tenant;

/// Why serving stopped or could not start.
#[derive(Debug)]
pub enum ServeError {
    /// The configuration cannot work (e.g. the HTTP client cannot be built).
    Config(String),
    Io(std::io::Error),
}

impl std::fmt::Display for ServeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServeError::Config(why) => f.write_str(why),
            ServeError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ServeError {}

impl From<std::io::Error> for ServeError {
    fn from(e: std::io::Error) -> ServeError {
        ServeError::Io(e)
    }
}

/// Serves `config` on `listener` until SIGTERM or Ctrl-C.
pub async fn serve(config: Config, listener: TcpListener) -> Result<(), ServeError> {
    serve_until(config, listener, florence2_process::Shutdown::on_signals()).await
}

/// Serves until `shutdown` completes, then stops accepting and lets open requests finish
/// within `--shutdown-grace`.
pub async fn serve_until(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let backend = build_backend(&config).await?;
    serve_backend(&config, backend, listener, shutdown).await
}

/// The backend `config` asks for: NVIDIA's endpoint, or the local model (loaded here, on a
/// blocking thread: it reads and converts the whole checkpoint).
pub async fn build_backend(config: &Config) -> Result<Arc<dyn Backend>, ServeError> {
    config.check().map_err(ServeError::Config)?;
    match config.backend {
        BackendKind::Nvidia => Ok(Arc::new(
            UpstreamBackend::new(config).map_err(ServeError::Config)?,
        )),
        BackendKind::Local => {
            let config = config.clone();
            let loaded = tokio::task::spawn_blocking(move || LocalBackend::load(&config))
                .await
                .map_err(|e| ServeError::Config(format!("loading the model stopped: {e}")))?;
            Ok(Arc::new(loaded.map_err(ServeError::Config)?))
        }
    }
}

/// How long after the grace the process waits for the 503s to be written before it exits
/// regardless (a client that does not read its answer cannot keep the process up).
const FLUSH_AFTER_GRACE: Duration = Duration::from_secs(1);

/// Serves with any [`Backend`] (the seam for the local model). After `shutdown`: no new
/// connections; open requests have `--shutdown-grace` to finish, then get 503, and this
/// returns. SIGHUP is listened for from here on (see [`serve_backend_with`]).
pub async fn serve_backend(
    config: &Config,
    backend: Arc<dyn Backend>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    serve_backend_with(config, backend, listener, shutdown, listen_for_hangups()).await
}

/// SIGHUP, listened for from now on (a process calls this first thing, before loading a
/// model, so that a hang-up never ends it); `None` (and a warning) where it cannot be.
pub fn listen_for_hangups() -> Option<Hangups> {
    Hangups::listen()
        .inspect_err(|e| {
            tracing::warn!("cannot listen for SIGHUP, the client tokens will not be reloaded: {e}")
        })
        .ok()
}

/// [`serve_backend`] with SIGHUP already listened for (`hangups`, from the process's start):
/// it rereads `--client-tokens`, or is logged and ignored without them.
pub async fn serve_backend_with(
    config: &Config,
    backend: Arc<dyn Backend>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    hangups: Option<Hangups>,
) -> Result<(), ServeError> {
    let tokens = match &config.client_tokens {
        Some(path) => {
            let tokens = Arc::new(
                guard::client_tokens::ClientTokens::load(path).map_err(ServeError::Config)?,
            );
            if tokens.is_empty() {
                tracing::warn!(file = %path.display(), "--client-tokens holds no token: every API request will be refused until the file lists some (then SIGHUP)");
            } else {
                tracing::info!(
                    tokens = tokens.len(),
                    "client tokens required on API routes"
                );
            }
            Some(tokens)
        }
        None => None,
    };
    if let Some(hangups) = hangups {
        hangups.handle(tokens.clone());
    }
    let local = listener.local_addr()?;
    if tokens.is_none() && config.api_key.is_some() && !local.ip().is_loopback() {
        tracing::warn!(
            listen = %local,
            "listening beyond loopback with NVIDIA_API_KEY and no --client-tokens: anyone who reaches this address can spend the key"
        );
    }
    if let Some(dir) = config.static_dir.as_deref().filter(|d| !d.is_dir()) {
        tracing::warn!(dir = %dir.display(), "--static is not a directory; / will say how to build the demo");
    }
    if let Some(dir) = config.models_dir.as_deref().filter(|d| !d.is_dir()) {
        tracing::warn!(dir = %dir.display(), "--models is not a directory; /models/ answers 404");
    }
    if cfg!(panic = "abort") {
        tracing::warn!(
            "built with panic = \"abort\": a bug that panics stops the whole server; build with --profile release-native"
        );
    }
    if config.backend == BackendKind::Local {
        tracing::info!(
            backend = backend.profile().name,
            max_connections = config.max_connections,
            memory_budget_mb = config.memory_budget,
            "serving"
        );
    } else {
        tracing::info!(
            upstream = %config.upstream,
            assets_upstream = %config.assets_upstream,
            key_configured = config.api_key.is_some(),
            max_connections = config.max_connections,
            memory_budget_mb = config.memory_budget,
            "serving"
        );
    }
    let (phase_tx, phase) = watch::channel(Phase::Serving);
    let phase_tx = Arc::new(phase_tx);
    let app = app::router(config, backend, local, phase.clone(), tokens);
    let trusted = TrustedProxies::new(&config.trusted_proxies);
    let listener = CappedListener::new(listener, config.max_connections, trusted, Pace::of(config));
    let grace = config.shutdown_grace();
    let draining = {
        let phase_tx = phase_tx.clone();
        async move {
            shutdown.await;
            tracing::info!(
                grace_secs = grace.as_secs(),
                "shutting down: no new connections; open requests may finish within --shutdown-grace, then get 503; a second signal exits at once"
            );
            phase_tx.send_replace(Phase::Draining);
        }
    };
    let server = connections::serve(listener, app, config.head_timeout(), draining);
    let expiry = async move {
        let mut phase = phase;
        if phase.wait_for(|p| *p != Phase::Serving).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(grace).await;
        tracing::warn!("--shutdown-grace is over: answering open requests 503");
        phase_tx.send_replace(Phase::Expired);
        tokio::time::sleep(FLUSH_AFTER_GRACE).await;
    };
    tokio::select! {
        () = server => {}
        () = expiry => tracing::warn!("stopping with connections still open"),
    }
    Ok(())
}
