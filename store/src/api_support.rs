//! Reads the HTTP API needs beyond entity CRUD and filtered lists: a bounded count of ready
//! messages (its back-pressure check) and a time-ordered walk over one direction of an
//! organization's messages (inbox conversations, analytics).

use std::ops::ControlFlow;

use crate::Store;
use crate::error::{Result, StoreError};
use crate::keys::{Key, prefix_end, space, trailing_id};
use crate::model::{Direction, Id, Message, Millis};

impl Store {
    /// Messages ready to be leased, over all organizations, counted up to `cap` (the count
    /// stops there, so the cost is bounded by `cap` whatever the backlog).
    ///
    /// # Errors
    /// Storage errors.
    pub fn ready_depth(&self, cap: u64) -> Result<u64> {
        let prefix = Key::new(space::READY).build();
        let mut n = 0u64;
        for key in self.kv().scan_prefix(prefix).keys() {
            key?;
            n += 1;
            if n >= cap {
                break;
            }
        }
        Ok(n)
    }

    /// Visits the organization's messages of one direction created in `[from, to)`, newest
    /// first, until `visit` breaks; returns how many were visited. Walks the direction index,
    /// so only the period's messages are read.
    ///
    /// # Errors
    /// Storage errors.
    pub fn scan_messages(
        &self,
        org: Id,
        direction: Direction,
        from: Millis,
        to: Millis,
        mut visit: impl FnMut(Message) -> ControlFlow<()>,
    ) -> Result<u64> {
        let base = Key::new(space::MSG_BY_DIR).u64(org).u8(direction.code());
        let start = base.clone().u64(from).build();
        let end = if to == Millis::MAX {
            prefix_end(&base.build())
        } else {
            base.u64(to).build()
        };
        let mut visited = 0u64;
        for entry in self.kv().range(start..end).rev() {
            let (key, _) = entry?;
            let Some(id) = trailing_id(&key) else {
                continue;
            };
            let message = match self.message(org, id) {
                Ok(m) => m,
                // An index entry whose record went (a purge between the two reads).
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            visited += 1;
            if visit(message).is_break() {
                break;
            }
        }
        Ok(visited)
    }
}

impl Store {
    /// Ready messages of an organization per priority (priority byte, count), lowest (served
    /// first) first: the queue depths `GET /api/admin/status` reports. Walks the organization's
    /// live ready queue once.
    ///
    /// # Errors
    /// Storage errors.
    pub fn ready_by_priority(&self, org: Id) -> Result<Vec<(u8, u64)>> {
        let start = self.floors().ready_start(org);
        let end = prefix_end(&Key::new(space::READY).u64(org).build());
        let mut counts: Vec<(u8, u64)> = Vec::new();
        for key in self.kv().range(start..end).keys() {
            // [READY][org: 8][priority][seq]
            let Some(&priority) = key?.get(9) else {
                continue;
            };
            match counts.last_mut() {
                Some((p, n)) if *p == priority => *n += 1,
                _ => counts.push((priority, 1)),
            }
        }
        Ok(counts)
    }
}
