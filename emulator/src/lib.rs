//! nvcf-emulator — a **test double** of NVIDIA's hosted Florence-2 endpoint for florence2-web's
//! tests. Not the product, not a model.
//!
//! It speaks NVCF's protocol on one loopback address (both of the proxy's upstreams): invoke,
//! 202 + status polling, 302 result downloads, the two asset steps, RFC 7807 problems, 429 with
//! `Retry-After`; it answers every task deterministically from coarse colour regions of the
//! decoded image, and misbehaves on request (see [`Fault`]).

mod answer;
pub mod config;
pub mod fault;
mod problem;
mod routes;
mod state;

use std::future::Future;
use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::Config;
pub use fault::{FAULT_HEADER, Fault};
pub use state::Seen;

use state::State;

/// A configured emulator; clones share state, so a test can keep one to script faults and
/// read the journal while another serves.
#[derive(Clone)]
pub struct Emulator {
    state: Arc<State>,
}

impl Emulator {
    pub fn new(config: Config) -> Emulator {
        Emulator {
            state: Arc::new(State::new(config)),
        }
    }

    /// Queues faults for the next invoke / asset-create requests, one each.
    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) {
        self.state.push_faults(faults);
    }

    /// Every request seen so far (oldest first).
    pub fn journal(&self) -> Vec<Seen> {
        self.state.journal()
    }

    /// Serves on `listener` until SIGTERM or Ctrl-C.
    pub async fn serve(self, listener: TcpListener) -> io::Result<()> {
        self.serve_until(listener, florence2_process::Shutdown::on_signals())
            .await
    }

    /// Serves on `listener` until `shutdown` completes, then lets open requests finish.
    pub async fn serve_until(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let addr = listener.local_addr()?;
        // The first serve decides the URLs handed out; a second one on another listener keeps them.
        let _ = self.state.base_url.set(format!("http://{addr}"));
        axum::serve(listener, routes::router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// Serves an emulator made from `config` on `listener` until SIGTERM or Ctrl-C.
pub async fn serve(config: Config, listener: TcpListener) -> io::Result<()> {
    Emulator::new(config).serve(listener).await
}
