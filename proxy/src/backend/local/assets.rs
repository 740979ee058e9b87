//! `POST /v1/assets` answered locally: the bytes are kept in memory, bounded in count and in
//! total size (the oldest go first), so that the JS client's asset path works unchanged.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use florence2::{Error, ErrorCode, Result};

/// Most assets kept.
const MAX_ASSETS: usize = 256;
/// Most bytes kept, all assets together.
const MAX_TOTAL_BYTES: usize = 512 << 20;

#[derive(Default)]
pub struct AssetStore {
    assets: Mutex<VecDeque<(String, Bytes)>>,
}

impl AssetStore {
    /// Keeps `bytes`; answers their id. Older assets are forgotten to stay within bounds.
    pub fn put(&self, bytes: Bytes) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut assets = self.lock();
        let mut total: usize = assets.iter().map(|(_, b)| b.len()).sum::<usize>() + bytes.len();
        while !assets.is_empty() && (assets.len() >= MAX_ASSETS || total > MAX_TOTAL_BYTES) {
            if let Some((_, old)) = assets.pop_front() {
                total -= old.len();
            }
        }
        assets.push_back((id.clone(), bytes));
        id
    }

    pub fn get(&self, id: &str) -> Result<Bytes> {
        self.lock()
            .iter()
            .find(|(known, _)| known == id)
            .map(|(_, bytes)| bytes.clone())
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::BadOption,
                    format!("no asset {id}: upload the image to /v1/assets first (assets are kept in memory, the oldest forgotten first)"),
                )
            })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, Bytes)>> {
        // Every update is one push or pop: a poisoned lock still holds consistent data.
        self.assets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_until_the_bounds_push_them_out() {
        let store = AssetStore::default();
        let first = store.put(Bytes::from_static(b"one"));
        assert_eq!(store.get(&first).unwrap(), Bytes::from_static(b"one"));
        for _ in 0..MAX_ASSETS {
            store.put(Bytes::from_static(b"x"));
        }
        assert_eq!(store.get(&first).unwrap_err().code, ErrorCode::BadOption);
        assert_eq!(store.lock().len(), MAX_ASSETS);
    }
}
