//! `--shard I/N`: a stable 1/N of the pictures, by a hash of each picture's path relative to
//! the folder it was found in. FNV-1a (64 bit) on the UTF-8 path with `/` separators: the same
//! on every machine, every run and every Rust version, unlike the standard library's seeded
//! hasher, so N machines given the same folder (mounted anywhere) split it without overlap.

use crate::label::error::LabelError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based, below `count` (as Kubernetes' `JOB_COMPLETION_INDEX` and `SLURM_ARRAY_TASK_ID`
    /// with `--array=0-(N-1)` count).
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// Parses `I/N`.
    pub fn parse(s: &str) -> Result<Shard, LabelError> {
        let bad = || LabelError::Usage(format!("--shard {s:?}: expected I/N with 0 <= I < N"));
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether the picture with this relative path belongs to this shard.
    pub fn contains(&self, relative_path: &str) -> bool {
        fnv1a(relative_path.as_bytes()) % self.count == self.index
    }
}

/// FNV-1a, 64 bit (offset basis and prime from the FNV specification).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_fnv1a() {
        // Published test vectors of FNV-1a 64.
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn every_path_is_in_exactly_one_shard() {
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        let mut sizes = [0; 3];
        for k in 0..300 {
            let path = format!("photos/{k:04}.jpg");
            let owners: Vec<usize> = (0..3).filter(|&i| shards[i].contains(&path)).collect();
            assert_eq!(owners.len(), 1, "{path}");
            sizes[owners[0]] += 1;
        }
        assert!(sizes.iter().all(|&n| n > 70), "roughly even: {sizes:?}");
    }

    #[test]
    fn flags_parse_or_are_refused() {
        assert_eq!(Shard::parse("2/5").unwrap(), Shard { index: 2, count: 5 });
        for bad in ["5/5", "1/0", "x/2", "3", "-1/2", ""] {
            assert_eq!(Shard::parse(bad).unwrap_err().code(), "BAD_OPTION", "{bad}");
        }
    }
}
