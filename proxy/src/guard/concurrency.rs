//! The global cap on requests in flight to the upstream.

use std::sync::Arc;
use std::time::Duration;

use florence2::{Error, ErrorCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a request waits for a free slot before it is turned away.
const QUEUE_WAIT: Duration = Duration::from_secs(20);

pub struct ConcurrencyCap {
    slots: Arc<Semaphore>,
    max: u32,
}

impl ConcurrencyCap {
    pub fn new(max: u32) -> ConcurrencyCap {
        ConcurrencyCap {
            slots: Arc::new(Semaphore::new(max as usize)),
            max,
        }
    }

    /// [`ConcurrencyCap::enter`], or no slot at all when `exempt` (a backend with a queue of
    /// its own, which answers 429 itself).
    pub async fn enter_unless(&self, exempt: bool) -> Result<Option<OwnedSemaphorePermit>, Error> {
        if exempt {
            Ok(None)
        } else {
            self.enter().await.map(Some)
        }
    }

    /// A slot, held until the permit drops; RATE_LIMITED when none frees up in time.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, Error> {
        let busy = || {
            Error::new(ErrorCode::RateLimited, format!("the proxy is busy ({} requests in flight, --max-concurrent); try again shortly", self.max))
                .with_retry_after(Some(1.0))
        };
        match tokio::time::timeout(QUEUE_WAIT, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it like a full one anyway.
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }
}
