//! The local model's work queue: a bounded line of waiting requests and a fixed set of runner
//! threads (`--model-threads`). The model never runs on the async runtime; a full line is a
//! 429 at once rather than an unbounded wait; a request whose client went away leaves the
//! line at once, and a running one is told to stop (it checks at every token).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::oneshot;

/// Stack of a runner thread: the model's kernels keep sizeable arrays on the stack, and the
/// 2 MiB default of spawned threads is smaller than the main thread's the CLI runs on.
const RUNNER_STACK_BYTES: usize = 16 << 20;

/// A piece of work for a runner: gets the shared context and the stop question, and answers
/// how to deliver its outcome (done after the runner counts itself free, so that whoever gets
/// the answer sees the queue as it is).
type Work<C> = Box<dyn FnOnce(&C, &(dyn Fn() -> bool + Sync)) -> Deliver + Send>;
type Deliver = Box<dyn FnOnce() + Send>;

/// A line of work for `threads` runners sharing the context `C` (the loaded model).
pub struct WorkQueue<C: Send + Sync + 'static> {
    shared: Arc<Shared<C>>,
    runners: Vec<JoinHandle<()>>,
}

struct Shared<C> {
    context: C,
    line: Mutex<Line<C>>,
    ready: Condvar,
    capacity: usize,
    threads: usize,
    stats: Stats,
}

struct Line<C> {
    waiting: VecDeque<Queued<C>>,
    running: usize,
    next_ticket: u64,
    closing: bool,
}

struct Queued<C> {
    ticket: u64,
    stop: Arc<AtomicBool>,
    work: Work<C>,
}

#[derive(Default)]
struct Stats {
    served: AtomicU64,
    cancelled: AtomicU64,
    rejected: AtomicU64,
    failed: AtomicU64,
    /// Sum of run times of served requests, microseconds (for the average and Retry-After).
    run_micros: AtomicU64,
    last_wait_micros: AtomicU64,
    last_run_micros: AtomicU64,
}

/// The line is full: how many wait, and a fair guess of when to come back.
#[derive(Debug, Clone, Copy)]
pub struct Full {
    pub waiting: usize,
    pub retry_after: Duration,
}

/// The queue's state for `/healthz`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueHealth {
    pub capacity: usize,
    pub threads: usize,
    pub waiting: usize,
    pub running: usize,
    pub served: u64,
    pub cancelled: u64,
    pub rejected: u64,
    pub failed: u64,
    pub average_run_ms: Option<f64>,
    pub last_wait_ms: Option<f64>,
    pub last_run_ms: Option<f64>,
}

/// What a runner hands back besides the work's own answer.
#[derive(Debug, Clone, Copy)]
pub struct Ran {
    /// How many waited when the work was queued (itself not counted).
    pub queued_behind: usize,
    pub wait: Duration,
    pub run: Duration,
}

/// Why queued work produced no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lost {
    /// The work panicked (the runner survives; the message is the panic's).
    Panicked(String),
    /// The queue shut down first.
    Closed,
}

/// Queued work: await [`Pending::answer`]; dropping it (the client went away) takes the work
/// out of the line, or tells it to stop if it already runs.
pub struct Pending<T, C: Send + Sync + 'static> {
    answer: Option<oneshot::Receiver<Result<(T, Ran), Lost>>>,
    answered: bool,
    stop: Arc<AtomicBool>,
    ticket: u64,
    shared: Arc<Shared<C>>,
}

impl<C: Send + Sync + 'static> WorkQueue<C> {
    /// Starts `threads` runners sharing `context`; at most `capacity` requests wait.
    pub fn start(context: C, threads: usize, capacity: usize) -> std::io::Result<WorkQueue<C>> {
        let shared = Arc::new(Shared {
            context,
            line: Mutex::new(Line {
                waiting: VecDeque::new(),
                running: 0,
                next_ticket: 0,
                closing: false,
            }),
            ready: Condvar::new(),
            capacity,
            threads: threads.max(1),
            stats: Stats::default(),
        });
        let mut queue = WorkQueue {
            shared: shared.clone(),
            runners: Vec::new(),
        };
        for i in 0..shared.threads {
            let shared = shared.clone();
            let runner = std::thread::Builder::new()
                .name(format!("florence2-model-{i}"))
                .stack_size(RUNNER_STACK_BYTES)
                .spawn(move || run(&shared))?;
            // On a failed spawn `queue` drops here and stops the runners already started.
            queue.runners.push(runner);
        }
        Ok(queue)
    }

    /// Puts `work` in line; it gets the context and a question to ask between steps ("should
    /// I stop?"). Refused when `capacity` requests already wait beyond the free runners: a
    /// free runner takes work even with `capacity` 0 (no waiting room, only free runners).
    pub fn submit<T, F>(&self, work: F) -> Result<Pending<T, C>, Full>
    where
        T: Send + 'static,
        F: FnOnce(&C, &(dyn Fn() -> bool + Sync)) -> T + Send + 'static,
    {
        let shared = &self.shared;
        let mut line = lock(&shared.line);
        // Work in line that a free runner has not picked up yet is not waiting for long: each
        // free runner adds a place.
        let free = shared.threads.saturating_sub(line.running);
        if line.waiting.len() >= shared.capacity + free || line.closing {
            shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(Full {
                waiting: line.waiting.len(),
                retry_after: self.retry_after(line.waiting.len()),
            });
        }
        let (reply, answer) = oneshot::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let queued_behind = line.waiting.len();
        let queued_at = Instant::now();
        let ticket = line.next_ticket;
        line.next_ticket += 1;
        let job: Work<C> = Box::new(
            move |context: &C, should_stop: &(dyn Fn() -> bool + Sync)| {
                let started = Instant::now();
                let outcome = catch_unwind(AssertUnwindSafe(|| work(context, should_stop)));
                let ran = Ran {
                    queued_behind,
                    wait: started - queued_at,
                    run: started.elapsed(),
                };
                let outcome = match outcome {
                    Ok(answer) => Ok((answer, ran)),
                    Err(panic) => Err(Lost::Panicked(panic_message(&panic))),
                };
                Box::new(move || {
                    // The receiver is gone when the client went away: nobody to tell.
                    let _ = reply.send(outcome);
                }) as Deliver
            },
        );
        line.waiting.push_back(Queued {
            ticket,
            stop: stop.clone(),
            work: job,
        });
        drop(line);
        shared.ready.notify_one();
        Ok(Pending {
            answer: Some(answer),
            answered: false,
            stop,
            ticket,
            shared: shared.clone(),
        })
    }

    /// The runners' average run time times the rounds needed to serve `waiting + 1`; at least
    /// a second (Retry-After has whole seconds).
    fn retry_after(&self, waiting: usize) -> Duration {
        let average = self.shared.average_run().unwrap_or(Duration::from_secs(1));
        let rounds = (waiting + 1).div_ceil(self.shared.threads) as u32;
        (average * rounds).max(Duration::from_secs(1))
    }

    pub fn health(&self) -> QueueHealth {
        let shared = &self.shared;
        let line = lock(&shared.line);
        let stats = &shared.stats;
        let served = stats.served.load(Ordering::Relaxed);
        let ms = |micros: u64| micros as f64 / 1000.0;
        let last = |a: &AtomicU64| (served > 0).then(|| ms(a.load(Ordering::Relaxed)));
        QueueHealth {
            capacity: shared.capacity,
            threads: shared.threads,
            waiting: line.waiting.len(),
            running: line.running,
            served,
            cancelled: stats.cancelled.load(Ordering::Relaxed),
            rejected: stats.rejected.load(Ordering::Relaxed),
            failed: stats.failed.load(Ordering::Relaxed),
            average_run_ms: shared.average_run().map(|d| d.as_secs_f64() * 1000.0),
            last_wait_ms: last(&stats.last_wait_micros),
            last_run_ms: last(&stats.last_run_micros),
        }
    }

    /// Counts a served request's times (the caller knows whether the work succeeded).
    pub fn record(&self, ran: &Ran, ok: bool) {
        let stats = &self.shared.stats;
        if ok {
            stats.served.fetch_add(1, Ordering::Relaxed);
            stats
                .run_micros
                .fetch_add(ran.run.as_micros() as u64, Ordering::Relaxed);
            stats
                .last_wait_micros
                .store(ran.wait.as_micros() as u64, Ordering::Relaxed);
            stats
                .last_run_micros
                .store(ran.run.as_micros() as u64, Ordering::Relaxed);
        } else {
            stats.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl<C: Send + Sync + 'static> Drop for WorkQueue<C> {
    fn drop(&mut self) {
        let mut line = lock(&self.shared.line);
        line.closing = true;
        for queued in line.waiting.drain(..) {
            queued.stop.store(true, Ordering::Relaxed);
        }
        drop(line);
        self.shared.ready.notify_all();
        // Runners finish their current work (told to stop only if its client left) and exit;
        // joining would block the runtime thread that drops the server, so they are detached.
        self.runners.clear();
    }
}

impl<C> Shared<C> {
    fn average_run(&self) -> Option<Duration> {
        let served = self.stats.served.load(Ordering::Relaxed);
        (served > 0)
            .then(|| Duration::from_micros(self.stats.run_micros.load(Ordering::Relaxed) / served))
    }
}

/// A runner: takes the oldest waiting work, skips it if its client is gone, runs it.
fn run<C>(shared: &Shared<C>) {
    loop {
        let mut line = lock(&shared.line);
        let queued = loop {
            if line.closing {
                return;
            }
            if let Some(queued) = line.waiting.pop_front() {
                break queued;
            }
            line = shared
                .ready
                .wait(line)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        };
        if queued.stop.load(Ordering::Relaxed) {
            shared.stats.cancelled.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        line.running += 1;
        drop(line);
        let stop = queued.stop.clone();
        let deliver = (queued.work)(&shared.context, &|| stop.load(Ordering::Relaxed));
        if stop.load(Ordering::Relaxed) {
            shared.stats.cancelled.fetch_add(1, Ordering::Relaxed);
        }
        lock(&shared.line).running -= 1;
        deliver();
    }
}

impl<T, C: Send + Sync + 'static> Pending<T, C> {
    /// The work's answer and its times.
    pub async fn answer(mut self) -> Result<(T, Ran), Lost> {
        let Some(answer) = self.answer.take() else {
            return Err(Lost::Closed);
        };
        let outcome = answer.await.unwrap_or(Err(Lost::Closed));
        self.answered = true;
        outcome
    }
}

impl<T, C: Send + Sync + 'static> Drop for Pending<T, C> {
    /// Unanswered when dropped: the client went away (or the deadline passed). The work
    /// leaves the line, or, if it already runs, is told to stop.
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        self.stop.store(true, Ordering::Relaxed);
        let mut line = lock(&self.shared.line);
        if let Some(at) = line.waiting.iter().position(|q| q.ticket == self.ticket) {
            line.waiting.remove(at);
            self.shared.stats.cancelled.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The line's lock; a runner that panicked holding it left consistent data (every update is
/// a single push, pop or counter change), so a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "the model panicked".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 33, item 7: `--queue 0` refused every request, even with idle runners. 0 means no
    /// waiting room: a free runner still takes work, a busy one refuses the next.
    #[tokio::test]
    async fn no_waiting_room_still_lets_free_runners_work() {
        let queue = WorkQueue::start((), 1, 0).expect("runner");
        let (release, released) = std::sync::mpsc::channel::<()>();
        let first = queue
            .submit(move |_: &(), _: &(dyn Fn() -> bool + Sync)| {
                let _ = released.recv_timeout(Duration::from_secs(10));
                1
            })
            .expect("a free runner takes work with --queue 0");
        // Once the runner holds it, the next has nowhere to wait.
        let started = Instant::now();
        while queue.health().running == 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "never ran");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let full = queue
            .submit(|_: &(), _: &(dyn Fn() -> bool + Sync)| 2)
            .err()
            .expect("a busy runner and no room: refused");
        assert_eq!(full.waiting, 0);
        release.send(()).expect("release");
        assert_eq!(first.answer().await.ok().map(|(n, _)| n), Some(1));
        let second = queue
            .submit(|_: &(), _: &(dyn Fn() -> bool + Sync)| 3)
            .expect("free again");
        assert_eq!(second.answer().await.ok().map(|(n, _)| n), Some(3));
    }
}
