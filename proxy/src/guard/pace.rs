//! How slowly a client may take its answer or send its body (`--stall-timeout`,
//! `--min-rate`), so that a client that stops reading (or sending) gives back its connection
//! and its share of `--memory-budget` within seconds rather than holding them for good.
//!
//! One clock for both directions, run only while the proxy waits on the client (a write the
//! socket will not take, a body frame that has not come): each byte that moves earns
//! `1/min-rate` seconds, a wait may last at most `--stall-timeout` past the last progress,
//! and credit never runs more than `--stall-timeout` ahead. A client that moves at least
//! `--min-rate` never runs out; one that stalls is cut `--stall-timeout` after its last byte;
//! one that trickles below the rate is cut once its credit is spent. Time when the proxy
//! itself has nothing to move (a model run, a kept-alive connection between requests) does
//! not count: a gap of more than `--stall-timeout` without a wait starts the clock afresh.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The limits, from the flags.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    /// Longest wait without progress.
    pub stall: Duration,
    /// Bytes per second that earn their own time; 0: only the stall limit.
    pub min_rate: u64,
}

impl Pace {
    /// `--stall-timeout` and `--min-rate`.
    pub fn of(config: &crate::config::Config) -> Pace {
        Pace {
            stall: Duration::from_secs(config.stall_timeout),
            min_rate: config.min_rate.saturating_mul(1024),
        }
    }

    pub fn clock(self) -> PaceClock {
        PaceClock {
            pace: self,
            deadline: None,
            last_progress: Instant::now(),
            waiting: false,
        }
    }
}

/// One connection's (or one body's) clock.
#[derive(Debug)]
pub struct PaceClock {
    pace: Pace,
    deadline: Option<Instant>,
    last_progress: Instant,
    /// Whether the last look was a wait (no progress since).
    waiting: bool,
}

impl PaceClock {
    /// `bytes` moved now.
    pub fn progress(&mut self, bytes: usize) {
        self.progress_at(Instant::now(), bytes);
    }

    /// The client keeps the proxy waiting: until when it may.
    pub fn waiting(&mut self) -> Instant {
        self.waiting_at(Instant::now())
    }

    fn progress_at(&mut self, now: Instant, bytes: usize) {
        let cap = now + self.pace.stall;
        let base = match self.deadline {
            Some(deadline) if !self.idle_gap(now) => deadline,
            _ => cap,
        };
        let earned = if self.pace.min_rate == 0 {
            self.pace.stall
        } else {
            Duration::from_secs_f64(bytes as f64 / self.pace.min_rate as f64)
        };
        self.deadline = Some((base + earned).min(cap));
        self.last_progress = now;
        self.waiting = false;
    }

    fn waiting_at(&mut self, now: Instant) -> Instant {
        let deadline = match self.deadline {
            Some(deadline) if self.waiting || !self.idle_gap(now) => deadline,
            _ => now + self.pace.stall,
        };
        self.deadline = Some(deadline);
        self.waiting = true;
        deadline
    }

    /// Whether the proxy had nothing to move for longer than a stall (so the time since the
    /// last progress is not the client's).
    fn idle_gap(&self, now: Instant) -> bool {
        !self.waiting && now.duration_since(self.last_progress) > self.pace.stall
    }
}

/// The middleware: every request body is read under the clock, so that an upload that stops
/// arriving fails (408 TIMEOUT, see [`super::body::read`]) and its reservation is given back,
/// within `--stall-timeout` rather than `--timeout`.
pub async fn bodies(State(pace): State<Pace>, request: Request, next: Next) -> Response {
    let request = request.map(|body| {
        Body::new(PacedBody {
            body,
            clock: pace.clock(),
            stall: None,
        })
    });
    next.run(request).await
}

/// Why a body stopped: it came too slowly (found by [`super::body::read`] in the error's
/// sources).
#[derive(Debug)]
pub struct TooSlow;

impl std::fmt::Display for TooSlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body arrived too slowly (--stall-timeout, --min-rate)")
    }
}

impl std::error::Error for TooSlow {}

struct PacedBody {
    body: Body,
    clock: PaceClock,
    stall: Option<Pin<Box<Sleep>>>,
}

impl HttpBody for PacedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.clock
                    .progress(frame.data_ref().map_or(0, |data| data.len()));
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                let deadline = this.clock.waiting();
                let stall = this
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if stall.deadline() != deadline {
                    stall.as_mut().reset(deadline);
                }
                match stall.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(TooSlow)))),
                    Poll::Pending => Poll::Pending,
                }
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pace(stall_ms: u64, min_rate: u64) -> PaceClock {
        Pace {
            stall: Duration::from_millis(stall_ms),
            min_rate,
        }
        .clock()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_stall_is_cut_a_stall_after_the_last_byte() {
        let t = Instant::now();
        let mut clock = pace(1000, 0);
        clock.progress_at(t, 10);
        assert_eq!(clock.waiting_at(t + ms(400)), t + ms(1000));
    }

    #[test]
    fn a_trickle_below_the_rate_runs_out_and_one_above_does_not() {
        // 1000 B/s required; 500 B every 800 ms is 625 B/s: the deadline falls behind.
        let t = Instant::now();
        let mut slow = pace(1000, 1000);
        let mut cut = false;
        for i in 0..20 {
            let deadline = slow.waiting_at(t + ms(800 * i));
            if t + ms(800 * (i + 1)) >= deadline {
                cut = true;
                break;
            }
            slow.progress_at(t + ms(800 * (i + 1)), 500);
        }
        assert!(cut, "a client below --min-rate is cut");
        // 1000 B every 800 ms is 1250 B/s: never.
        let mut fast = pace(1000, 1000);
        for i in 0..50 {
            let deadline = fast.waiting_at(t + ms(800 * i));
            assert!(t + ms(800 * (i + 1)) < deadline, "cut at round {i}");
            fast.progress_at(t + ms(800 * (i + 1)), 1000);
        }
    }

    #[test]
    fn time_with_nothing_to_move_is_not_the_clients() {
        // A 60 s model run, then the answer: a fresh stall allowance.
        let t = Instant::now();
        let mut clock = pace(1000, 1000);
        clock.progress_at(t, 1);
        assert_eq!(clock.waiting_at(t + ms(60_000)), t + ms(61_000));
        let mut clock = pace(1000, 1000);
        clock.progress_at(t, 1);
        clock.progress_at(t + ms(60_000), 1);
        assert!(clock.waiting_at(t + ms(60_000)) > t + ms(60_900));
    }
}
