//! Per-client token buckets (by client address, an IPv6 client by its /64), so one client
//! cannot spend a shared key's quota for everyone.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use florence2::{Error, ErrorCode};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::client::client_key;

/// How often buckets that are full again (clients idle long enough) are forgotten: by time,
/// so that no request pays for a sweep of the whole table, and the table cannot grow between
/// sweeps by more than the clients seen in that time.
const SWEEP_EVERY: Duration = Duration::from_secs(60);

pub struct ClientRateLimit {
    limiter: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_minute: u32,
    burst: u32,
    sweep_every: Duration,
    next_sweep: Mutex<Instant>,
}

impl ClientRateLimit {
    /// `per_minute` 0 turns the limit off.
    pub fn new(per_minute: u32, burst: u32) -> ClientRateLimit {
        ClientRateLimit::sweeping_every(per_minute, burst, SWEEP_EVERY)
    }

    fn sweeping_every(per_minute: u32, burst: u32, sweep_every: Duration) -> ClientRateLimit {
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
            sweep_every,
            next_sweep: Mutex::new(Instant::now() + sweep_every),
        }
    }

    /// Takes a token for `client`, or says how long until one is free.
    pub fn check(&self, client: IpAddr) -> Result<(), Error> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        self.sweep_when_due(limiter);
        limiter.check_key(&client_key(client)).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now()).as_secs_f64();
            Error::new(
                ErrorCode::RateLimited,
                format!("too many requests from your address: at most {} a minute and {} at once (--rate-limit); try again in {wait:.1} s", self.per_minute, self.burst),
            )
            .with_retry_after(Some(wait))
        })
    }

    /// Forgets idle clients once per `sweep_every`; a request that finds another one
    /// sweeping goes on without waiting.
    fn sweep_when_due(&self, limiter: &DefaultKeyedRateLimiter<IpAddr>) {
        let Ok(mut next) = self.next_sweep.try_lock() else {
            return;
        };
        let now = Instant::now();
        if now >= *next {
            limiter.retain_recent();
            limiter.shrink_to_fit();
            *next = now + self.sweep_every;
        }
    }

    /// How many clients are tracked.
    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.limiter.as_ref().map_or(0, |l| l.len())
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

    #[test]
    fn one_ipv6_64_is_one_client() {
        let limit = ClientRateLimit::new(60, 1);
        let a: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:0:1:ffff::2".parse().unwrap();
        let other_64: IpAddr = "2001:db8:0:2::1".parse().unwrap();
        assert!(limit.check(a).is_ok());
        assert!(limit.check(same_64).is_err());
        assert!(limit.check(other_64).is_ok());
    }

    #[test]
    fn idle_clients_are_forgotten_by_time_not_per_request() {
        // 600 a minute, burst 1: a bucket is full again 100 ms after its last request.
        let limit = ClientRateLimit::sweeping_every(600, 1, Duration::from_millis(400));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let c: IpAddr = "192.0.2.3".parse().unwrap();
        assert!(limit.check(a).is_ok());
        std::thread::sleep(Duration::from_millis(150));
        // a is idle and full again, but no sweep is due yet: still tracked.
        assert!(limit.check(b).is_ok());
        assert_eq!(limit.tracked(), 2);
        std::thread::sleep(Duration::from_millis(300));
        // Past the interval: this request sweeps a and b (both full again) away.
        assert!(limit.check(c).is_ok());
        assert_eq!(limit.tracked(), 1);
    }
}
