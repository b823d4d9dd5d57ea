//! The SMPP window: requests sent and not yet answered, matched by sequence number, each with a
//! deadline. Pure: time is passed in, so the session's timeouts are testable without waiting.

use std::collections::HashMap;

use tokio::time::{Duration, Instant};

/// Why a request could not enter the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// As many requests are outstanding as the window allows.
    #[error("window full ({0} outstanding)")]
    Full(usize),
    /// The sequence number is already outstanding (the allocator wrapped onto a request that
    /// is still waiting: with a 0x7FFFFFFF range this means a response never came).
    #[error("sequence number {0} is already outstanding")]
    Duplicate(u32),
}

/// Outstanding requests of one bind, at most `capacity`.
#[derive(Debug)]
pub struct Window<T> {
    capacity: usize,
    pending: HashMap<u32, (Instant, T)>,
}

impl<T> Window<T> {
    /// A window of `capacity` (at least 1) outstanding requests.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            pending: HashMap::with_capacity(capacity),
        }
    }

    /// Outstanding requests.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is outstanding.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Free slots.
    pub fn free(&self) -> usize {
        self.capacity - self.pending.len()
    }

    /// The configured size.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records a request sent at `now` that must be answered within `timeout`.
    ///
    /// # Errors
    /// [`WindowError::Full`] or [`WindowError::Duplicate`]; the entry is handed back unchanged
    /// in neither case, so the caller keeps it by not consuming it first.
    pub fn insert(
        &mut self,
        sequence: u32,
        entry: T,
        now: Instant,
        timeout: Duration,
    ) -> Result<(), (WindowError, T)> {
        if self.pending.len() >= self.capacity {
            return Err((WindowError::Full(self.pending.len()), entry));
        }
        if self.pending.contains_key(&sequence) {
            return Err((WindowError::Duplicate(sequence), entry));
        }
        self.pending.insert(sequence, (now + timeout, entry));
        Ok(())
    }

    /// The request a response answers; `None` for a response to nothing outstanding (late,
    /// duplicate or unsolicited).
    pub fn remove(&mut self, sequence: u32) -> Option<T> {
        self.pending.remove(&sequence).map(|(_, entry)| entry)
    }

    /// Takes out every request whose deadline is at or before `now`, oldest deadline first.
    pub fn expire(&mut self, now: Instant) -> Vec<(u32, T)> {
        let mut due: Vec<u32> = self
            .pending
            .iter()
            .filter(|(_, (deadline, _))| *deadline <= now)
            .map(|(s, _)| *s)
            .collect();
        due.sort_by_key(|s| self.pending.get(s).map(|(d, _)| *d));
        due.into_iter()
            .filter_map(|s| self.pending.remove(&s).map(|(_, e)| (s, e)))
            .collect()
    }

    /// The earliest deadline, for scheduling the next sweep.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|(d, _)| *d).min()
    }

    /// Takes out everything (the session ended: the caller re-queues it).
    pub fn drain(&mut self) -> Vec<(u32, T)> {
        let mut all: Vec<(u32, T)> = self.pending.drain().map(|(s, (_, e))| (s, e)).collect();
        all.sort_by_key(|(s, _)| *s);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_holds_more_than_its_capacity_and_matches_by_sequence() {
        let now = Instant::now();
        let mut w = Window::new(2);
        w.insert(1, "a", now, Duration::from_secs(5)).unwrap();
        w.insert(2, "b", now, Duration::from_secs(5)).unwrap();
        assert_eq!(
            w.insert(3, "c", now, Duration::from_secs(5)),
            Err((WindowError::Full(2), "c"))
        );
        assert_eq!(w.remove(2), Some("b"));
        assert_eq!(w.remove(2), None, "a duplicate response matches nothing");
        assert_eq!(
            w.insert(1, "d", now, Duration::from_secs(5)),
            Err((WindowError::Duplicate(1), "d"))
        );
        w.insert(3, "c", now, Duration::from_secs(5)).unwrap();
        assert_eq!(w.free(), 0);
    }

    #[test]
    fn expiry_takes_only_what_is_due_oldest_first() {
        let now = Instant::now();
        let mut w = Window::new(8);
        w.insert(10, "late", now, Duration::from_secs(3)).unwrap();
        w.insert(11, "early", now, Duration::from_secs(1)).unwrap();
        w.insert(12, "later", now, Duration::from_secs(9)).unwrap();
        assert_eq!(w.next_deadline(), Some(now + Duration::from_secs(1)));
        assert!(w.expire(now).is_empty());
        assert_eq!(
            w.expire(now + Duration::from_secs(3)),
            vec![(11, "early"), (10, "late")]
        );
        assert_eq!(w.drain(), vec![(12, "later")]);
        assert!(w.is_empty());
    }
}
