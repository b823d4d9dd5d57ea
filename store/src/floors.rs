//! Where the live part of the queue's keyspaces begins.
//!
//! In an LSM store a removed key leaves a tombstone until compaction reaches it, and the ready
//! and due queues remove every key they ever insert, always at the front: a scan from the start
//! of an organization's ready queue would step over every message leased since the last
//! compaction (hundreds of thousands at full speed) before it finds a live one. So the store
//! remembers, per organization, a key below which nothing is live (the ready floor), and one
//! due time before which nothing waits (the due floor), and scans from there.
//!
//! Invariant: no live ready key of an organization sorts below its floor, and no live due key
//! is earlier than the due floor. The writer keeps it: every inserted queue key lowers its floor
//! *before* the batch is applied (so a reader that sees the key also sees the floor), and only a
//! lease or a promotion, which removed everything below, raises one, after its batch.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Result;
use crate::keys::{Key, prefix_end, space, u64_at};
use crate::kv::Kv;
use crate::model::{Id, Millis};

#[derive(Debug, Default)]
pub(crate) struct Floors {
    /// Organization → the lowest ready key that may be live.
    ready: Mutex<BTreeMap<Id, Vec<u8>>>,
    /// The earliest due time that may have an entry.
    due: AtomicU64,
}

impl Floors {
    /// Finds the floors of an opened store: one seek per organization with ready messages.
    pub(crate) fn read(kv: &Kv) -> Result<Self> {
        let mut ready = BTreeMap::new();
        let mut from = Key::new(space::READY).build();
        let end = prefix_end(&from);
        while let Some((key, _)) = kv.range(from.clone()..end.clone()).next().transpose()? {
            let Some(org) = u64_at(&key, 1) else { break };
            ready.insert(org, key.to_vec());
            from = prefix_end(&Key::new(space::READY).u64(org).build());
        }
        let due_start = Key::new(space::DUE).build();
        let due = match kv.scan_prefix(&due_start).keys().next().transpose()? {
            Some(key) => u64_at(&key, 1).unwrap_or(0),
            None => Millis::MAX,
        };
        Ok(Self {
            ready: Mutex::new(ready),
            due: AtomicU64::new(due),
        })
    }

    fn ready_map(&self) -> std::sync::MutexGuard<'_, BTreeMap<Id, Vec<u8>>> {
        // The map holds plain data; a panic elsewhere cannot leave it half-changed.
        self.ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Lowers the floor a queue key about to be inserted needs.
    pub(crate) fn lower_for(&self, key: &[u8]) {
        match key.first() {
            Some(&space::READY) => {
                let Some(org) = u64_at(key, 1) else { return };
                let mut ready = self.ready_map();
                match ready.get_mut(&org) {
                    Some(floor) if floor.as_slice() <= key => {}
                    Some(floor) => *floor = key.to_vec(),
                    None => {
                        ready.insert(org, key.to_vec());
                    }
                }
            }
            Some(&space::DUE) => {
                if let Some(at) = u64_at(key, 1) {
                    self.due.fetch_min(at, Ordering::AcqRel);
                }
            }
            _ => {}
        }
    }

    /// The first key of `org`'s ready queue worth reading.
    pub(crate) fn ready_start(&self, org: Id) -> Vec<u8> {
        self.ready_map()
            .get(&org)
            .cloned()
            .unwrap_or_else(|| Key::new(space::READY).u64(org).build())
    }

    /// After a lease removed every ready key of `org` up to and including `last`.
    pub(crate) fn raise_ready(&self, org: Id, last: &[u8]) {
        let mut after = last.to_vec();
        after.push(0);
        let mut ready = self.ready_map();
        if let Some(floor) = ready.get_mut(&org)
            && floor.as_slice() < after.as_slice()
        {
            *floor = after;
        }
    }

    /// Organizations that may have ready messages.
    pub(crate) fn ready_orgs(&self) -> Vec<(Id, Vec<u8>)> {
        self.ready_map()
            .iter()
            .map(|(org, floor)| (*org, floor.clone()))
            .collect()
    }

    /// The earliest due time that may have an entry.
    pub(crate) fn due(&self) -> Millis {
        self.due.load(Ordering::Acquire)
    }

    /// After a promotion removed every due entry before `at`.
    pub(crate) fn raise_due(&self, at: Millis) {
        self.due.fetch_max(at, Ordering::AcqRel);
    }
}
