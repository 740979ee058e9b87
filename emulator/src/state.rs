//! What the emulator remembers between requests: uploaded assets, pending (202) requests,
//! results waiting behind a 302, the fault queue, and a journal of every request it saw.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use bytes::Bytes;
use serde::Serialize;

use crate::config::Config;
use crate::fault::Fault;

/// How many requests the journal keeps (the oldest are dropped): enough for any test, bounded
/// for a long-running emulator.
const JOURNAL_CAPACITY: usize = 10_000;

/// One request as the emulator saw it (tests read this to prove where a key went and where
/// requests did not go).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    pub method: String,
    /// The path without the query (presigned URLs carry signatures there).
    pub path: String,
    /// The `Host` header as received.
    pub host: Option<String>,
    /// The `Authorization` header as received. This is a test double: it keeps it so tests
    /// can check which requests carried the key.
    pub authorization: Option<String>,
}

/// An asset from its creation to its upload.
#[derive(Debug, Clone)]
pub struct Asset {
    pub content_type: String,
    pub description: String,
    pub bytes: Option<Bytes>,
}

/// A finished answer, ready to be sent (now, after 202 polls, or behind a 302).
#[derive(Debug, Clone)]
pub struct Delivery {
    pub content_type: String,
    pub body: Bytes,
    /// Send a 302 to this URL instead of the body.
    pub location: Option<String>,
}

/// A request answered with 202 that still owes `remaining` more 202s before its result.
#[derive(Debug, Clone)]
pub struct Job {
    pub remaining: u32,
    pub delivery: Delivery,
    pub polls: u32,
}

pub struct State {
    pub config: Config,
    /// `http://IP:PORT` of the listener, for the URLs the emulator hands out.
    pub base_url: OnceLock<String>,
    pub assets: Mutex<HashMap<String, Asset>>,
    pub jobs: Mutex<HashMap<String, Job>>,
    pub results: Mutex<HashMap<String, Delivery>>,
    faults: Mutex<FaultSource>,
    journal: Mutex<VecDeque<Seen>>,
}

struct FaultSource {
    queue: VecDeque<Fault>,
    /// How many more requests the `--fault` flag applies to (`None`: all).
    flag_remaining: Option<u64>,
}

/// Locks a mutex, carrying on with the data if another thread panicked while holding it: every
/// critical section here is a plain map or queue operation that leaves the data consistent.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl State {
    pub fn new(config: Config) -> State {
        let flag_remaining = config.fault_times;
        State {
            config,
            base_url: OnceLock::new(),
            assets: Mutex::default(),
            jobs: Mutex::default(),
            results: Mutex::default(),
            faults: Mutex::new(FaultSource {
                queue: VecDeque::new(),
                flag_remaining,
            }),
            journal: Mutex::default(),
        }
    }

    pub fn base_url(&self) -> &str {
        self.base_url
            .get()
            .map_or("http://127.0.0.1", String::as_str)
    }

    pub fn record(&self, seen: Seen) {
        let mut journal = lock(&self.journal);
        if journal.len() == JOURNAL_CAPACITY {
            journal.pop_front();
        }
        journal.push_back(seen);
    }

    pub fn journal(&self) -> Vec<Seen> {
        lock(&self.journal).iter().cloned().collect()
    }

    pub fn clear_journal(&self) {
        lock(&self.journal).clear();
    }

    pub fn push_faults(&self, faults: impl IntoIterator<Item = Fault>) -> usize {
        let mut source = lock(&self.faults);
        source.queue.extend(faults);
        source.queue.len()
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).queue.clear();
    }

    /// The fault for a request that has no `X-Emulator-Fault` header: the queue's front, else
    /// the flag's (while it still applies), else none.
    pub fn next_fault(&self) -> Fault {
        let mut source = lock(&self.faults);
        if let Some(fault) = source.queue.pop_front() {
            return fault;
        }
        let Some(flag) = &self.config.fault else {
            return Fault::default();
        };
        match &mut source.flag_remaining {
            None => flag.clone(),
            Some(0) => Fault::default(),
            Some(n) => {
                *n -= 1;
                flag.clone()
            }
        }
    }
}
