//! Per-client token buckets (by client IP address), so one client cannot spend a shared key's
//! quota for everyone.

use std::net::IpAddr;
use std::num::NonZeroU32;

use florence2::{Error, ErrorCode};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Above this many tracked clients, buckets that are full again are forgotten.
const MAX_TRACKED_CLIENTS: usize = 10_000;

pub struct ClientRateLimit {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_minute: u32,
    burst: u32,
}

impl ClientRateLimit {
    /// `per_minute` 0 turns the limit off.
    pub fn new(per_minute: u32, burst: u32) -> ClientRateLimit {
        let limiter = NonZeroU32::new(per_minute).map(|rate| {
            RateLimiter::keyed(
                Quota::per_minute(rate)
                    .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN)),
            )
        });
        ClientRateLimit {
            limiter,
            per_minute,
            burst,
        }
    }

    /// Takes a token for `client`, or says how long until one is free.
    pub fn check(&self, client: IpAddr) -> Result<(), Error> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        if limiter.len() > MAX_TRACKED_CLIENTS {
            limiter.retain_recent();
        }
        limiter.check_key(&client).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now()).as_secs_f64();
            Error::new(
                ErrorCode::RateLimited,
                format!("too many requests from your address: at most {} a minute and {} at once (--rate-limit); try again in {wait:.1} s", self.per_minute, self.burst),
            )
            .with_retry_after(Some(wait))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_a_wait_per_client() {
        let limit = ClientRateLimit::new(60, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limit.check(a).is_ok() && limit.check(a).is_ok());
        let err = limit.check(a).unwrap_err();
        assert_eq!(err.code, ErrorCode::RateLimited);
        let wait = err.retry_after_secs.unwrap();
        assert!(wait > 0.0 && wait <= 1.0, "{wait}");
        assert!(limit.check(b).is_ok(), "another client has its own bucket");
        let off = ClientRateLimit::new(0, 1);
        assert!((0..100).all(|_| off.check(a).is_ok()));
    }
}
