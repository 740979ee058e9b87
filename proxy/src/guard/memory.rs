//! The memory that request bodies and answers may hold, across all clients (`--memory-budget`).
//!
//! A request with a body reserves its size (its Content-Length, else the largest body any
//! route reads) before a byte of it is read, and keeps the reservation until its answer has
//! been sent in full: an answer larger than the reservation adds its size (counted even past
//! the budget, since it is already in memory, so that new bodies wait for it). A client that
//! uploads slowly, or never drains its answers, thus holds budget rather than unaccounted
//! memory; one client may hold at most a quarter of the budget (at least one largest body),
//! so that it cannot hold all of it. Requests wait for room up to [`QUEUE_WAIT`], then get
//! RATE_LIMITED.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use florence2::ErrorCode;
use http_body::{Frame, SizeHint};
use tokio::sync::Notify;

use super::body::MAX_IMAGE_BYTES;
use super::client::client_key;
use crate::error::ApiError;
use crate::wire::ClientAddr;

/// How long a request waits for room before it is turned away.
const QUEUE_WAIT: Duration = Duration::from_secs(20);

pub struct MemoryBudget {
    total: u64,
    per_client: u64,
    ledger: Mutex<Ledger>,
    freed: Notify,
}

#[derive(Default)]
struct Ledger {
    used: u64,
    /// Bytes held per client key; a client with none is not listed, so the table holds only
    /// clients with requests in flight.
    clients: HashMap<IpAddr, u64>,
}

impl MemoryBudget {
    pub fn new(total: u64) -> Arc<MemoryBudget> {
        Arc::new(MemoryBudget {
            total,
            per_client: (total / 4).max(MAX_IMAGE_BYTES as u64).min(total),
            ledger: Mutex::new(Ledger::default()),
            freed: Notify::new(),
        })
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // The ledger is a pair of counters updated whole; a panic elsewhere cannot leave it
        // half-written, so a poisoned lock is still a consistent one.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reserves `bytes` for `client` (a client key), waiting up to `wait` for room.
    pub async fn reserve(
        self: &Arc<Self>,
        client: IpAddr,
        bytes: u64,
        wait: Duration,
    ) -> Result<Reservation, ApiError> {
        let give_up = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so that a release between the look and the wait
            // still wakes this request.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            {
                let mut ledger = self.ledger();
                let held = ledger.clients.get(&client).copied().unwrap_or(0);
                if held + bytes > self.per_client {
                    return Err(busy(format!(
                        "your address already has {} MB of requests in flight (at most {} MB, a quarter of --memory-budget); wait for their answers",
                        held / (1024 * 1024),
                        self.per_client / (1024 * 1024)
                    )));
                }
                if ledger.used + bytes <= self.total {
                    ledger.used += bytes;
                    *ledger.clients.entry(client).or_insert(0) += bytes;
                    return Ok(Reservation {
                        budget: self.clone(),
                        client,
                        bytes,
                    });
                }
            }
            if tokio::time::timeout_at(give_up, freed).await.is_err() {
                return Err(busy(format!(
                    "the proxy is holding its whole --memory-budget ({} MB) of requests in flight; try again shortly",
                    self.total / (1024 * 1024)
                )));
            }
        }
    }

    fn release(&self, client: IpAddr, bytes: u64) {
        let mut ledger = self.ledger();
        ledger.used = ledger.used.saturating_sub(bytes);
        if let Some(held) = ledger.clients.get_mut(&client) {
            *held = held.saturating_sub(bytes);
            if *held == 0 {
                ledger.clients.remove(&client);
            }
        }
        drop(ledger);
        self.freed.notify_waiters();
    }
}

fn busy(message: String) -> ApiError {
    let mut error = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        message,
    );
    error.error = error.error.with_retry_after(Some(1.0));
    error
}

/// A request's place in the budget, for what its handler holds beyond its body (the local
/// model's decoded picture): handed to the handler as a request extension.
#[derive(Clone)]
pub struct MemoryAccount {
    budget: Arc<MemoryBudget>,
    client: IpAddr,
}

impl std::fmt::Debug for MemoryAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryAccount")
            .field("client", &self.client)
            .finish_non_exhaustive()
    }
}

impl MemoryAccount {
    /// The most one request may hold: a client's share of the budget.
    pub fn request_limit(&self) -> u64 {
        self.budget.per_client
    }

    /// Reserves `bytes` more for this request's client, waiting up to `wait` for room; a
    /// refusal is `RATE_LIMITED` (429, with a wait).
    pub async fn reserve(
        &self,
        bytes: u64,
        wait: Duration,
    ) -> Result<Reservation, florence2::Error> {
        self.budget
            .reserve(self.client, bytes, wait)
            .await
            .map_err(|refusal| refusal.error)
    }
}

/// Bytes held until dropped.
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    client: IpAddr,
    bytes: u64,
}

impl Reservation {
    /// Counts `bytes` more that are already in memory (an answer): added even past the
    /// budget, which only makes later requests wait.
    fn grow(&mut self, bytes: u64) {
        let mut ledger = self.budget.ledger();
        ledger.used += bytes;
        *ledger.clients.entry(self.client).or_insert(0) += bytes;
        self.bytes += bytes;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.client, self.bytes);
    }
}

/// The middleware: reserves before the handler reads the body; the answer's body carries the
/// reservation until it has been sent (or the connection is gone).
pub async fn guard(
    State(budget): State<Arc<MemoryBudget>>,
    request: Request,
    next: Next,
) -> Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let has_body = declared.is_some_and(|n| n > 0)
        || request.headers().contains_key(header::TRANSFER_ENCODING);
    if !has_body {
        // Requests without a body (health checks) get small answers.
        return next.run(request).await;
    }
    // No route reads more than MAX_IMAGE_BYTES; a larger declared body is refused unread.
    let bytes = declared
        .unwrap_or(MAX_IMAGE_BYTES as u64)
        .min(MAX_IMAGE_BYTES as u64);
    let client = request
        .extensions()
        .get::<ClientAddr>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| client_key(c.0));
    let mut reservation = match budget.reserve(client, bytes, QUEUE_WAIT).await {
        Ok(reservation) => reservation,
        Err(refusal) => return refusal.into_response(),
    };
    let mut request = request;
    request.extensions_mut().insert(MemoryAccount {
        budget: budget.clone(),
        client,
    });
    let response = next.run(request).await;
    let answer = response.body().size_hint().upper().unwrap_or(0);
    if answer > reservation.bytes {
        reservation.grow(answer - reservation.bytes);
    }
    response.map(|body| {
        Body::new(Held {
            body,
            pending: Bytes::new(),
            _reservation: reservation,
        })
    })
}

/// How much of an answer is handed to hyper at a time. hyper drops a body as soon as it has
/// taken its last frame, even while that frame still waits in its write buffer; handed out
/// whole, a 40 MB answer would release its reservation before a byte of it was sent. In
/// slices, hyper asks for the next only as it writes, so the reservation lasts until the last
/// slice.
const SLICE: usize = 64 * 1024;

/// An answer's body owning its reservation: released when hyper has taken the last slice, or
/// dropped the body with the connection. Size and end are the body's own, so that the
/// answer keeps its Content-Length.
struct Held {
    body: Body,
    /// The rest of a data frame larger than [`SLICE`] (slices share its buffer).
    pending: Bytes,
    _reservation: Reservation,
}

impl HttpBody for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.pending.is_empty() {
            let frame = match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                other => return other,
            };
            match frame.into_data() {
                Ok(data) => self.pending = data,
                Err(trailers) => return Poll::Ready(Some(Ok(trailers))),
            }
        }
        let take = self.pending.len().min(SLICE);
        let slice = self.pending.split_to(take);
        Poll::Ready(Some(Ok(Frame::data(slice))))
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        let inner = self.body.size_hint();
        let pending = self.pending.len() as u64;
        let mut hint = SizeHint::new();
        hint.set_lower(inner.lower() + pending);
        if let Some(upper) = inner.upper() {
            hint.set_upper(upper + pending);
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    #[tokio::test]
    async fn a_client_holds_at_most_its_share_and_everyone_waits_for_room() {
        let budget = MemoryBudget::new(100 * MB);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let wait = Duration::from_millis(50);
        let first = budget.reserve(a, 25 * MB, wait).await.unwrap();
        let refusal = budget.reserve(a, 1, wait).await.err().unwrap();
        assert_eq!(refusal.error.code, ErrorCode::RateLimited);
        let others: Vec<_> = [
            b,
            "192.0.2.3".parse().unwrap(),
            "192.0.2.4".parse().unwrap(),
        ]
        .into_iter()
        .map(|c| budget.reserve(c, 25 * MB, wait))
        .collect();
        let mut held = Vec::new();
        for r in others {
            held.push(r.await.unwrap());
        }
        // 100 MB held: a fifth client waits, and gets in when one is released.
        let e: IpAddr = "192.0.2.5".parse().unwrap();
        assert!(budget.reserve(e, MB, wait).await.is_err());
        let waiting = {
            let budget = budget.clone();
            tokio::spawn(async move { budget.reserve(e, MB, Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(first);
        assert!(waiting.await.unwrap().is_ok());
        drop(held);
        let ledger = budget.ledger();
        assert_eq!((ledger.used, ledger.clients.len()), (0, 0));
    }
}
