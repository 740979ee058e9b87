//! Waiting for Ctrl-C or SIGTERM.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Completes on the first Ctrl-C or SIGTERM after it was made.
pub struct Shutdown(Pin<Box<dyn Future<Output = ()> + Send>>);

impl Shutdown {
    /// Registers the handlers now. A signal whose handler cannot be installed is not awaited
    /// (the process still dies to it, just not gracefully).
    pub fn on_signals() -> Shutdown {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut interrupt = signal(SignalKind::interrupt()).ok();
            let mut terminate = signal(SignalKind::terminate()).ok();
            Shutdown(Box::pin(async move {
                let interrupted = async {
                    match interrupt.as_mut() {
                        Some(s) => drop(s.recv().await),
                        None => std::future::pending().await,
                    }
                };
                let terminated = async {
                    match terminate.as_mut() {
                        Some(s) => drop(s.recv().await),
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = interrupted => {}
                    () = terminated => {}
                }
                tracing::info!("shutting down: no new connections; open requests may finish");
            }))
        }
        #[cfg(not(unix))]
        Shutdown(Box::pin(async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            tracing::info!("shutting down: no new connections; open requests may finish");
        }))
    }
}

impl Future for Shutdown {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}
