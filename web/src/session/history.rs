//! This session's runs, newest first, bounded so a long session cannot fill the tab's memory.

/// An entry and the id it can be reopened by.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry<T> {
    pub id: u32,
    pub item: T,
}

#[derive(Debug, Clone, PartialEq)]
pub struct History<T> {
    entries: Vec<Entry<T>>,
    next_id: u32,
    capacity: usize,
}

impl<T> History<T> {
    pub fn new(capacity: usize) -> Self {
        History {
            entries: Vec::new(),
            next_id: 1,
            capacity: capacity.max(1),
        }
    }

    /// Adds `item` as the newest entry; the oldest falls off beyond the capacity (dropping it
    /// releases what it holds).
    pub fn push(&mut self, item: T) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(0, Entry { id, item });
        self.entries.truncate(self.capacity);
        id
    }

    pub fn get(&self, id: u32) -> Option<&T> {
        self.entries.iter().find(|e| e.id == id).map(|e| &e.item)
    }

    /// Newest first.
    pub fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_first_with_stable_ids() {
        let mut h = History::new(10);
        let a = h.push("caption");
        let b = h.push("detection");
        assert_ne!(a, b);
        assert_eq!(
            h.entries().iter().map(|e| e.item).collect::<Vec<_>>(),
            ["detection", "caption"]
        );
        assert_eq!(h.get(a), Some(&"caption"));
        assert_eq!(h.get(999), None);
    }

    #[test]
    fn the_oldest_fall_off() {
        let mut h = History::new(2);
        let first = h.push(1);
        h.push(2);
        h.push(3);
        assert_eq!(
            h.entries().iter().map(|e| e.item).collect::<Vec<_>>(),
            [3, 2]
        );
        assert_eq!(h.get(first), None);
        let id = h.push(4);
        assert_eq!(id, 4, "ids are never reused");
        assert_eq!(History::<u8>::new(0).capacity, 1);
    }
}
