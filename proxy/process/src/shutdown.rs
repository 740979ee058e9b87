//! Waiting for Ctrl-C or SIGTERM: the first (stop gracefully), and, for servers that give open
//! requests a grace period, the second (stop now).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::watch;

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

/// Ctrl-C and SIGTERM counted from now on: `first` completes on the first of them, `second`
/// on the second. Needs a running Tokio runtime (a task counts the signals).
pub fn staged_signals() -> (Shutdown, Shutdown) {
    let (count_tx, count) = watch::channel(0u32);
    // Registered now, before the caller announces itself: a signal sent right after the
    // announcement must find the handlers in place.
    let mut signals = Signals::register();
    tokio::spawn(async move {
        loop {
            signals.next().await;
            count_tx.send_modify(|n| *n += 1);
        }
    });
    let reaching = |n: u32| {
        let mut count = count.clone();
        Shutdown(Box::pin(async move {
            if count.wait_for(|c| *c >= n).await.is_err() {
                std::future::pending::<()>().await;
            }
        }))
    };
    (reaching(1), reaching(2))
}

/// The signal streams, registered once and awaited repeatedly.
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn register() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal; never, when none could be registered.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            let interrupted = async {
                match self.interrupt.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending().await,
                }
            };
            let terminated = async {
                match self.terminate.as_mut() {
                    Some(s) => drop(s.recv().await),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = interrupted => {}
                () = terminated => {}
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl Future for Shutdown {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}
