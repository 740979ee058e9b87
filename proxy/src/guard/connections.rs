//! The cap on open client connections (`--max-connections`). Past it the listener stops
//! accepting (new connections wait in the kernel's backlog); one client address may hold at
//! most a quarter of the connections, beyond which its new ones are closed at once, so that
//! one client cannot take every connection from the others. A `--trusted-proxy` carries many
//! clients and is exempt from the per-client share.
//!
//! And the connections themselves: a client gets `--head-timeout` to send each request's
//! head, also the first and after an answer (keep-alive), so that a connection that sends
//! nothing, or its headers a byte at a time, gives its place back. axum::serve sets no timer
//! for hyper, which turns that timeout off; hence this loop. And a client that stops taking
//! its answer (a large file, a model folder, an API answer) is cut by [`super::pace`]: its
//! connection closes, the answer is dropped and its memory reservation with it.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Sleep;
use tower::Service;

use super::client::{TrustedProxies, client_key};
use super::pace::{Pace, PaceClock};

pub struct CappedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    per_client: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    trusted: TrustedProxies,
    pace: Pace,
}

impl CappedListener {
    pub fn new(
        inner: TcpListener,
        max: u32,
        trusted: TrustedProxies,
        pace: Pace,
    ) -> CappedListener {
        let max = max.max(1) as usize;
        CappedListener {
            inner,
            slots: Arc::new(Semaphore::new(max)),
            per_client: (max / 4).max(1),
            open: Arc::default(),
            trusted,
            pace,
        }
    }

    /// Counts one more connection for `client`, unless it holds its share already.
    fn admit(&self, peer: IpAddr) -> Option<Option<ClientSlot>> {
        if self.trusted.trusts(peer) {
            return Some(None);
        }
        let key = client_key(peer);
        // Counters only; a poisoned lock still holds consistent counts.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.per_client {
            return None;
        }
        *count += 1;
        Some(Some(ClientSlot {
            open: self.open.clone(),
            key,
        }))
    }
}

impl Listener for CappedListener {
    type Io = CountedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (CountedStream, SocketAddr) {
        loop {
            let slot = match self.slots.clone().acquire_owned().await {
                Ok(slot) => slot,
                // Never closed; were it, accepting nothing is the safe reading of a full cap.
                Err(_) => std::future::pending().await,
            };
            let (stream, peer) = Listener::accept(&mut self.inner).await;
            match self.admit(peer.ip()) {
                Some(client) => {
                    return (
                        CountedStream {
                            stream,
                            _slot: slot,
                            _client: client,
                            clock: self.pace.clock(),
                            stall: None,
                        },
                        peer,
                    );
                }
                None => {
                    tracing::debug!(%peer, "connection closed: the client holds its share of --max-connections");
                    drop(stream);
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// One client's connection count, given back when its connection closes.
struct ClientSlot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    key: IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// A connection holding its place under the caps until it is dropped.
pub struct CountedStream {
    stream: TcpStream,
    _slot: OwnedSemaphorePermit,
    _client: Option<ClientSlot>,
    /// How long writes may wait on the client.
    clock: PaceClock,
    /// Armed while a write waits.
    stall: Option<Pin<Box<Sleep>>>,
}

impl CountedStream {
    pub fn tcp(&self) -> &TcpStream {
        &self.stream
    }

    /// Runs the clock over a write's outcome: progress earns time; a write the socket will
    /// not take waits until the clock says, then fails the connection (hyper drops it, and
    /// with it the answer and its reservation).
    fn paced(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                self.clock.progress(n);
                Poll::Ready(Ok(n))
            }
            Poll::Pending => {
                let deadline = self.clock.waiting();
                let stall = self
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if stall.deadline() != deadline {
                    stall.as_mut().reset(deadline);
                }
                match stall.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        tracing::debug!(
                            "connection closed: the client stopped taking its answer (--stall-timeout, --min-rate)"
                        );
                        Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the client took its answer too slowly",
                        )))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.paced(cx, written)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.paced(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `app` on `listener` until `shutdown`; then stops accepting, lets each open
/// connection finish its request in progress (idle ones close), and returns when all have.
pub async fn serve(
    mut listener: CappedListener,
    app: Router,
    head_timeout: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let (closing_tx, closing) = watch::channel(false);
    // Each connection holds a sender; when the last is dropped, every connection is done.
    let (open_tx, mut all_closed) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = Listener::accept(&mut listener) => accepted,
            () = &mut shutdown => break,
        };
        // Answers are written whole; Nagle's delay would only add latency.
        let _ = io.tcp().set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            // A Router is always ready: no poll_ready needed before call.
            app.clone().call(request)
        });
        let mut closing = closing.clone();
        let open = open_tx.clone();
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(head_timeout);
            let connection = builder.serve_connection(TokioIo::new(io), service);
            tokio::pin!(connection);
            tokio::select! {
                // Errors here are the client's doing (reset, timeout, garbage): nothing to log
                // above debug.
                served = connection.as_mut() => {
                    if let Err(e) = served {
                        tracing::debug!(%peer, "connection ended: {e}");
                    }
                }
                () = async move { let _ = closing.wait_for(|c| *c).await; } => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    drop(open_tx);
    let _ = all_closed.recv().await;
}
