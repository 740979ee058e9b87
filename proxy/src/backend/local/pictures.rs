//! The features of the last few pictures: clients often ask several tasks about one picture
//! (caption it, detect, ground a phrase), and a picture's features do not depend on the task,
//! so a repeat skips the vision tower — the most expensive stage of a run. Kept per tenant
//! (client token, else address): whether a picture was remembered shows in how fast its answer
//! comes (and in `Server-Timing`), and must not tell one tenant what another just sent.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use florence2_burn::ImageFeatures;

use crate::wire::Tenant;

/// Pictures are known by a keyed hash of their tenant and bytes (SipHash with this process's
/// random key: a client cannot make its bytes collide with another client's picture) and
/// their length; the bytes themselves are not kept.
pub struct PictureCache {
    key: RandomState,
    capacity: usize,
    entries: Mutex<VecDeque<((u64, usize), ImageFeatures)>>,
    reused: AtomicU64,
}

impl PictureCache {
    pub fn new(capacity: usize) -> Self {
        PictureCache {
            key: RandomState::new(),
            capacity,
            entries: Mutex::new(VecDeque::new()),
            reused: AtomicU64::new(0),
        }
    }

    /// The features of `bytes` for `tenant`: remembered for that tenant, or made by `make`
    /// and remembered (the oldest picture goes when the cache is full).
    pub fn get_or_make<E>(
        &self,
        tenant: Tenant,
        bytes: &[u8],
        make: impl FnOnce() -> Result<ImageFeatures, E>,
    ) -> Result<ImageFeatures, E> {
        let id = (self.key.hash_one((tenant, bytes)), bytes.len());
        if let Some(features) = self.find(id) {
            self.reused.fetch_add(1, Ordering::Relaxed);
            return Ok(features);
        }
        // Made outside the lock: runner threads never wait on each other's vision passes.
        let features = make()?;
        if self.capacity > 0 {
            let mut entries = self.lock();
            if !entries.iter().any(|(seen, _)| *seen == id) {
                if entries.len() == self.capacity {
                    entries.pop_front();
                }
                entries.push_back((id, features.clone()));
            }
        }
        Ok(features)
    }

    /// How many runs started from a remembered picture.
    pub fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }

    fn find(&self, id: (u64, usize)) -> Option<ImageFeatures> {
        let mut entries = self.lock();
        let at = entries.iter().position(|(seen, _)| *seen == id)?;
        // The most recently used goes last: the oldest is the one dropped.
        let entry = entries.remove(at)?;
        let features = entry.1.clone();
        entries.push_back(entry);
        Some(features)
    }

    /// Every update is one push or removal, so a lock poisoned by a panicking runner still
    /// holds consistent data.
    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<((u64, usize), ImageFeatures)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
