//! Raw access to a closed store's keys and values, for tests that must damage or inspect what is
//! on disk (a corrupt record, a record from a newer build, secrets never stored in the clear).
//! Not for the gateway: nothing here checks a record, an index or a tenant.

use std::path::Path;
use std::time::Duration;

use crate::error::Result;
use crate::kv::{Batch, Kv, Sizing};

/// A store directory opened without the store: keys and values as bytes.
#[doc(hidden)]
#[derive(Debug)]
pub struct RawStore {
    kv: Kv,
}

impl RawStore {
    /// Opens the directory (waiting briefly for a store this process just closed).
    ///
    /// # Errors
    /// As [`Store::open`](crate::Store::open) for locks and formats.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let kv = Kv::open(
            path.as_ref(),
            Sizing {
                cache_bytes: 8 << 20,
                write_buffer_bytes: 8 << 20,
                journal_bytes: 64 << 20,
            },
        )?;
        Ok(Self { kv })
    }

    /// The value at `key`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Vec<u8>>> {
        Ok(self.kv.get(key)?.map(|v| v.to_vec()))
    }

    /// Sets `key` to `value`, durably.
    ///
    /// # Errors
    /// Storage errors.
    pub fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.kv.insert(key, value)?;
        self.kv.persist()
    }

    /// Removes `key`, durably.
    ///
    /// # Errors
    /// Storage errors.
    pub fn remove(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = Batch::default();
        batch.remove(key);
        self.kv.apply(batch)?;
        self.kv.persist()
    }

    /// Every key and value, in key order.
    ///
    /// # Errors
    /// Storage errors.
    pub fn entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.kv
            .iter()
            .map(|entry| entry.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect()
    }
}

/// The bare-fjall reference the store's benchmarks compare with: `ops` operations of `shape`
/// (key templates, and value lengths or `None` for removals) written in a loop with no store
/// logic, one atomic batch each, a `persist(SyncData)` every `persist_every` (never: `None`).
/// Every store figure is also given as a share of this one, measured in the same run.
///
/// # Errors
/// Storage errors.
#[doc(hidden)]
pub fn bare_fjall_loop(
    path: impl AsRef<Path>,
    shape: &[(Vec<u8>, Option<usize>)],
    ops: u64,
    persist_every: Option<u64>,
) -> Result<Duration> {
    crate::kv::bare_loop(path.as_ref(), shape, ops, persist_every)
}
