//! The one module that names fjall: everything else in the store speaks keys and values.
//!
//! Keys keep the one-byte keyspace prefix `keys.rs` gives them; the prefix also picks the
//! fjall keyspace the key lives in ([`KEYSPACES`]), so a scan, a point read or a batch entry
//! never has to name a keyspace. The set of keyspaces is fixed (never one per tenant or per
//! campaign: fjall keeps a journal alive for every keyspace with unflushed writes).
//!
//! Durability is explicit. A [`Batch`] is committed to the journal's buffer (visible to every
//! later read at once) and made durable by [`Kv::persist`], which the writer calls once per
//! group. A failed write or fsync poisons fjall: every later write is refused with
//! [`StoreError::Poisoned`], and the fsync is never retried (a retried fsync can report success
//! for pages the kernel already dropped).

use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};

use crate::error::{Result, StoreError};

/// The keyspaces, each with the key prefix bytes it holds (inclusive ranges, in byte order, so
/// walking them in this order walks every key in key order).
const KEYSPACES: [(&str, u8, u8); 11] = [
    ("meta", 0x00, 0x0F),
    ("entities", 0x10, 0x1F),
    ("messages", 0x20, 0x20),
    ("events", 0x21, 0x21),
    ("message_indexes", 0x22, 0x2F),
    ("ready", 0x30, 0x30),
    ("due", 0x31, 0x31),
    ("in_flight", 0x32, 0x32),
    ("other", 0x33, 0x5F),
    // Its own keyspace: entries are written once and trimmed in order, and its tombstones
    // stay out of every other scan.
    ("outbox", 0x60, 0x6F),
    // Room for the prefixes later issues add.
    ("rest", 0x70, 0xFF),
];

/// The file sled wrote at the root of a store directory; fjall never writes one.
const SLED_MARKER: &str = "conf";

/// How long [`Kv::open`] waits for a lock this process itself may still hold: fjall's
/// background workers release the database's lock file a moment after the last handle drops.
const LOCK_WAIT: Duration = Duration::from_millis(2000);

/// Free space under which a poisoned store reports a full disk.
const DISK_FULL_BELOW: u64 = 16 * 1024 * 1024;

/// Free space on the store's file system, for an unprivileged writer.
fn available_bytes(path: &Path) -> Option<u64> {
    rustix::fs::statvfs(path)
        .ok()
        .map(|s| s.f_bavail.saturating_mul(s.f_frsize))
}

/// Pause between attempts while waiting for the lock.
const LOCK_RETRY: Duration = Duration::from_millis(5);

/// Memory and file sizing of an open store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizing {
    /// Block cache, bytes.
    pub(crate) cache_bytes: u64,
    /// All memtables together, bytes (each keyspace gets an equal share, at least 1 MiB).
    pub(crate) write_buffer_bytes: u64,
    /// All journals together, bytes (at least 64 MiB, fjall's minimum): bounds what a reopen
    /// replays.
    pub(crate) journal_bytes: u64,
}

/// A value (or key) read from the store: a cheap, reference-counted slice.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Value(fjall::Slice);

impl std::ops::Deref for Value {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Value {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", crate::value::hex(&self.0))
    }
}

/// Writes to apply atomically, across keyspaces.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    items: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    /// Sets `key` to `value`.
    pub(crate) fn insert(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.items
            .push((key.as_ref().to_vec(), Some(value.as_ref().to_vec())));
    }

    /// Removes `key`.
    pub(crate) fn remove(&mut self, key: impl AsRef<[u8]>) {
        self.items.push((key.as_ref().to_vec(), None));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The keys the batch sets.
    pub(crate) fn inserted_keys(&self) -> impl Iterator<Item = &[u8]> {
        self.items
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.as_slice())
    }
}

/// The open database: cheap to clone, shared by the writer and every reader.
#[derive(Clone)]
pub(crate) struct Kv {
    db: Database,
    spaces: Arc<[Keyspace]>,
    /// Keyspace index of every first key byte.
    route: Arc<[u8; 256]>,
    /// Keys written or removed since open (for the keys-per-operation figures).
    keys_written: Arc<AtomicU64>,
    path: Arc<PathBuf>,
    /// Set when an fsync of the journal done outside fjall ([`JournalSync`]) failed: fjall
    /// cannot know, so the seam refuses every later write itself.
    sync_failed: Arc<AtomicBool>,
}

impl std::fmt::Debug for Kv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kv").finish_non_exhaustive()
    }
}

impl Kv {
    /// Opens (or creates) the database at `path`.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process holds it, [`StoreError::Format`] for a
    /// directory the old sled-based store wrote (or a fjall format this build cannot read).
    pub(crate) fn open(path: &Path, sizing: Sizing) -> Result<Self> {
        if path.join(SLED_MARKER).is_file() && !path.join("version").exists() {
            return Err(StoreError::Format(format!(
                "{} holds a store written by the old sled-based Sairex; this build stores on \
                 fjall and cannot read it (nothing was deployed on sled, so there is no \
                 migration: move the directory away and start with an empty one)",
                path.display()
            )));
        }
        let db = open_db(path, sizing)?;
        // fjall 3.1 bounds each keyspace's memtable, not their sum: share the budget out.
        let memtable = (sizing.write_buffer_bytes / KEYSPACES.len() as u64).max(1024 * 1024);
        let mut spaces = Vec::with_capacity(KEYSPACES.len());
        let mut route = [0u8; 256];
        for (index, (name, first, last)) in KEYSPACES.iter().enumerate() {
            let keyspace = db
                .keyspace(name, || {
                    KeyspaceCreateOptions::default()
                        .manual_journal_persist(true)
                        .max_memtable_size(memtable)
                })
                .map_err(|e| storage_error(&e))?;
            spaces.push(keyspace);
            for byte in *first..=*last {
                route[usize::from(byte)] = u8::try_from(index).unwrap_or(u8::MAX);
            }
        }
        Ok(Self {
            db,
            spaces: spaces.into(),
            route: Arc::new(route),
            keys_written: Arc::new(AtomicU64::new(0)),
            path: Arc::new(path.to_path_buf()),
            sync_failed: Arc::new(AtomicBool::new(false)),
        })
    }

    fn space(&self, key: &[u8]) -> &Keyspace {
        let index = key.first().map_or(0, |b| self.route[usize::from(*b)]);
        &self.spaces[usize::from(index)]
    }

    /// The value at `key`.
    ///
    /// # Errors
    /// Storage errors.
    pub(crate) fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Value>> {
        let key = key.as_ref();
        self.space(key)
            .get(key)
            .map(|v| v.map(Value))
            .map_err(|e| storage_error(&e))
    }

    /// Whether `key` holds a value.
    ///
    /// # Errors
    /// Storage errors.
    pub(crate) fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        self.space(key)
            .contains_key(key)
            .map_err(|e| storage_error(&e))
    }

    /// Every key starting with `prefix`, in key order (reverse with `.rev()`), as of now: a
    /// snapshot, so writes that land during the scan are not met (nor met twice).
    pub(crate) fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Scan {
        let prefix = prefix.as_ref();
        let space = self.space(prefix);
        Scan {
            inner: Box::new(self.db.snapshot().prefix(space, prefix)),
        }
    }

    /// The keys in `range`, as a snapshot like [`Kv::scan_prefix`]. The range must lie within
    /// one keyspace prefix family (every caller scans within one prefix).
    pub(crate) fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Scan {
        let first = match range.start_bound() {
            Bound::Included(k) | Bound::Excluded(k) => k.as_ref().first().copied(),
            Bound::Unbounded => None,
        };
        let space = self.space(first.as_slice());
        Scan {
            inner: Box::new(self.db.snapshot().range(space, range)),
        }
    }

    /// Every key of every keyspace, in key order (for the consistency check and tests).
    pub(crate) fn iter(&self) -> Scan {
        let snapshot = self.db.snapshot();
        let all: Vec<fjall::Iter> = self.spaces.iter().map(|s| snapshot.iter(s)).collect();
        Scan {
            inner: Box::new(all.into_iter().flatten()),
        }
    }

    /// Applies `batch` atomically. Visible to every read at once; durable after the next
    /// [`Kv::persist`].
    ///
    /// # Errors
    /// [`StoreError::DiskFull`], [`StoreError::Poisoned`], storage errors: nothing of the
    /// batch is visible then.
    pub(crate) fn apply(&self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.sync_failed.load(Ordering::Acquire) {
            return Err(StoreError::Poisoned);
        }
        self.keys_written
            .fetch_add(batch.items.len() as u64, Ordering::Relaxed);
        let mut out = self.db.batch();
        for (key, value) in batch.items {
            let space = self.space(&key);
            match value {
                Some(value) => out.insert(space, key, value),
                None => out.remove(space, key),
            }
        }
        out.commit().map_err(|e| self.fail(&e))
    }

    /// Sets one key outside any operation's batch (store metadata at open, best-effort records).
    ///
    /// # Errors
    /// As [`Kv::apply`].
    pub(crate) fn insert(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        let mut batch = Batch::default();
        batch.insert(key, value);
        self.apply(batch)
    }

    /// Makes every applied batch durable (fsync of the journal's data).
    ///
    /// # Errors
    /// [`StoreError::DiskFull`], [`StoreError::Poisoned`], storage errors. After a failure the
    /// database refuses every further write.
    pub(crate) fn persist(&self) -> Result<()> {
        if self.sync_failed.load(Ordering::Acquire) {
            return Err(StoreError::Poisoned);
        }
        self.db
            .persist(PersistMode::SyncData)
            .map_err(|e| self.fail(&e))
    }

    /// Hands applied batches to the operating system without an fsync: they survive the
    /// process dying, not the machine.
    ///
    /// # Errors
    /// As [`Kv::persist`].
    pub(crate) fn hand_to_os(&self) -> Result<()> {
        if self.sync_failed.load(Ordering::Acquire) {
            return Err(StoreError::Poisoned);
        }
        self.db
            .persist(PersistMode::Buffer)
            .map_err(|e| self.fail(&e))
    }

    /// The store's error for a failed write. fjall poisons itself when any write fails, its
    /// background flushes included, and then answers only "poisoned"; a full disk is by far the
    /// likeliest cause, and an operator must be told that rather than a generic failure.
    fn fail(&self, err: &fjall::Error) -> StoreError {
        match storage_error(err) {
            StoreError::Poisoned => match available_bytes(&self.path) {
                Some(left) if left < DISK_FULL_BELOW => StoreError::DiskFull(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!(
                        "{left} bytes left; an earlier write failed and the store refuses \
                         further writes until Sairex is restarted with space freed"
                    ),
                )),
                _ => StoreError::Poisoned,
            },
            other => other,
        }
    }

    /// An fsync of the journal that runs beside the writer (see [`JournalSync`]).
    pub(crate) fn journal_sync(&self) -> JournalSync {
        JournalSync {
            dir: Arc::clone(&self.path),
            open: None,
            failed: Arc::clone(&self.sync_failed),
        }
    }

    /// Keys written or removed by every batch applied since open.
    pub(crate) fn keys_written(&self) -> u64 {
        self.keys_written.load(Ordering::Relaxed)
    }

    /// Bytes on disk, journals included.
    ///
    /// # Errors
    /// Storage errors.
    pub(crate) fn size_on_disk(&self) -> Result<u64> {
        self.db.disk_space().map_err(|e| storage_error(&e))
    }
}

fn open_db(path: &Path, sizing: Sizing) -> Result<Database> {
    // fjall itself tries its lock three times, 100 ms apart, before it answers "locked".
    let deadline = tokio::time::Instant::now() + LOCK_WAIT;
    loop {
        let opened = Database::builder(path)
            .cache_size(sizing.cache_bytes)
            .max_journaling_size(sizing.journal_bytes.max(64 * 1024 * 1024))
            .manual_journal_persist(true)
            .open();
        match opened {
            Ok(db) => return Ok(db),
            Err(fjall::Error::Locked) if tokio::time::Instant::now() < deadline => {
                std::thread::sleep(LOCK_RETRY);
            }
            Err(fjall::Error::Locked) => {
                return Err(StoreError::Locked {
                    path: PathBuf::from(path),
                });
            }
            Err(fjall::Error::InvalidVersion(version)) => {
                return Err(StoreError::Format(format!(
                    "{} holds a fjall database of format {version:?}, which this build cannot \
                     read",
                    path.display()
                )));
            }
            Err(e) => return Err(storage_error(&e)),
        }
    }
}

/// The store's error for a fjall error. Kept private: no fjall type crosses the seam.
fn storage_error(err: &fjall::Error) -> StoreError {
    let io = match err {
        fjall::Error::Io(io) => Some(io),
        fjall::Error::Storage(fjall::LsmError::Io(io)) => Some(io),
        _ => None,
    };
    if let Some(io) = io {
        if io.raw_os_error() == Some(28) || io.kind() == std::io::ErrorKind::StorageFull {
            return StoreError::DiskFull(std::io::Error::new(io.kind(), io.to_string()));
        }
        return StoreError::Storage(io.to_string());
    }
    match err {
        fjall::Error::Poisoned => StoreError::Poisoned,
        fjall::Error::Locked => StoreError::Storage("the database is locked".into()),
        fjall::Error::Decompress(_)
        | fjall::Error::InvalidTrailer
        | fjall::Error::InvalidTag(_)
        | fjall::Error::JournalRecovery(_)
        | fjall::Error::Unrecoverable => StoreError::Corrupt {
            key: "(journal or table)".into(),
            problem: format!("{err:?}"),
        },
        other => StoreError::Storage(format!("{other:?}")),
    }
}

/// The bare-fjall reference for the store's benchmarks: `ops` operations written in a loop
/// with no store logic, each one batch of `shape` (a key template and the value's length, or
/// `None` for a removal), the key's last 8 bytes replaced by the operation's number so every
/// key is new; a `persist(SyncData)` every `persist_every` operations (never with `None`).
/// Returns the time the loop took.
pub(crate) fn bare_loop(
    path: &Path,
    shape: &[(Vec<u8>, Option<usize>)],
    ops: u64,
    persist_every: Option<u64>,
) -> Result<Duration> {
    let kv = Kv::open(
        path,
        Sizing {
            cache_bytes: 64 << 20,
            write_buffer_bytes: 64 << 20,
            journal_bytes: 64 << 20,
        },
    )?;
    let filler: Vec<u8> = (0..4096u32)
        .map(|i| i.wrapping_mul(2_654_435_761).to_be_bytes()[1])
        .collect();
    let start = tokio::time::Instant::now();
    for op in 0..ops {
        let mut batch = kv.db.batch();
        for (template, value) in shape {
            let mut key = template.clone();
            let at = key.len().saturating_sub(8);
            key.truncate(at);
            key.extend_from_slice(&op.to_be_bytes());
            let space = kv.space(&key).clone();
            match value {
                Some(len) => batch.insert(&space, key, &filler[..(*len).min(filler.len())]),
                None => batch.remove(&space, key),
            }
        }
        batch.commit().map_err(|e| kv.fail(&e))?;
        if persist_every.is_some_and(|every| (op + 1) % every.max(1) == 0) {
            kv.persist()?;
        }
    }
    kv.persist()?;
    Ok(start.elapsed())
}

/// A scan: `(key, value)` pairs in key order, forwards or (`.rev()`) backwards.
pub(crate) struct Scan {
    inner: Box<dyn DoubleEndedIterator<Item = fjall::Guard> + Send>,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan").finish_non_exhaustive()
    }
}

fn pair(guard: fjall::Guard) -> Result<(Value, Value)> {
    guard
        .into_inner()
        .map(|(k, v)| (Value(k), Value(v)))
        .map_err(|e| storage_error(&e))
}

impl Iterator for Scan {
    type Item = Result<(Value, Value)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(pair)
    }
}

impl DoubleEndedIterator for Scan {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(pair)
    }
}

impl Scan {
    /// The keys only.
    pub(crate) fn keys(self) -> impl DoubleEndedIterator<Item = Result<Value>> {
        self.inner
            .map(|guard| guard.key().map(Value).map_err(|e| storage_error(&e)))
    }
}

/// Makes what [`Kv::hand_to_os`] wrote durable without holding fjall's journal lock.
///
/// fjall's own `persist(SyncData)` runs the fsync under the journal's lock, so no batch can be
/// applied for the ~0.6 ms it takes; the writer would sit idle during every group's fsync. This
/// fsyncs the journal file through a descriptor of its own instead, while the writer goes on
/// applying the next group. Which file: fjall names journals `<id>.jnl` in the store's
/// directory and only ever appends to the newest; it rotates by fsyncing the old journal
/// completely *before* it creates the next one. So after a `hand_to_os`, fsyncing the newest
/// journal found makes those bytes durable: either they are in it, or they are in an older
/// one that rotation has already synced.
///
/// A failed fsync is never retried (the kernel may have dropped the pages it could not write,
/// and a retry would report success): the store refuses every later write instead.
pub(crate) struct JournalSync {
    dir: Arc<PathBuf>,
    /// The newest journal's id and a descriptor of it.
    open: Option<(u64, std::fs::File)>,
    failed: Arc<AtomicBool>,
}

impl std::fmt::Debug for JournalSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalSync")
            .field("journal", &self.open.as_ref().map(|(id, _)| *id))
            .finish_non_exhaustive()
    }
}

impl JournalSync {
    /// fsyncs (data) the newest journal.
    ///
    /// # Errors
    /// [`StoreError::Poisoned`] once any sync failed; [`StoreError::DiskFull`] or a storage
    /// error for this one's failure (after which the store refuses writes).
    pub(crate) fn sync(&mut self) -> Result<()> {
        if self.failed.load(Ordering::Acquire) {
            return Err(StoreError::Poisoned);
        }
        let result = self.sync_newest();
        if result.is_err() {
            self.failed.store(true, Ordering::Release);
        }
        result
    }

    fn sync_newest(&mut self) -> Result<()> {
        // A journal can be deleted (after its memtables were flushed) between listing and
        // opening it; a newer one exists then, so look again.
        for _ in 0..8 {
            let newest = newest_journal(&self.dir)?;
            if self.open.as_ref().is_none_or(|(id, _)| *id != newest) {
                match std::fs::File::open(self.dir.join(format!("{newest}.jnl"))) {
                    Ok(file) => self.open = Some((newest, file)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(sync_error(e)),
                }
            }
            if let Some((_, file)) = &self.open {
                return file.sync_data().map_err(sync_error);
            }
        }
        Err(StoreError::Storage(
            "the store's journal kept disappearing while it was being synced".into(),
        ))
    }
}

/// The id of the newest `<id>.jnl` in `dir`.
fn newest_journal(dir: &Path) -> Result<u64> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).map_err(sync_error)? {
        let entry = entry.map_err(sync_error)?;
        let name = entry.file_name();
        let id = name
            .to_str()
            .and_then(|n| n.strip_suffix(".jnl"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(id) = id {
            newest = newest.max(Some(id));
        }
    }
    newest.ok_or_else(|| StoreError::Storage(format!("no journal in {}", dir.display())))
}

fn sync_error(e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::StorageFull {
        StoreError::DiskFull(e)
    } else {
        StoreError::Storage(format!("fsync of the store's journal failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizing() -> Sizing {
        Sizing {
            cache_bytes: 8 << 20,
            write_buffer_bytes: 8 << 20,
            journal_bytes: 64 << 20,
        }
    }

    #[test]
    fn the_newest_journal_is_the_highest_id_not_the_last_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["1.jnl", "9.jnl", "10.jnl", "2.jnl", "11.txt", "version"] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        assert_eq!(newest_journal(dir.path()).unwrap(), 10);
    }

    /// fsync outside fjall finds the live journal, and data it covered survives a reopen.
    #[test]
    fn the_journal_sync_finds_the_live_journal() {
        let dir = tempfile::tempdir().unwrap();
        {
            let kv = Kv::open(dir.path(), sizing()).unwrap();
            kv.insert([0x14, 1], [7]).unwrap();
            kv.hand_to_os().unwrap();
            let mut sync = kv.journal_sync();
            sync.sync().unwrap();
            assert!(sync.open.is_some(), "a journal was opened and synced");
        }
        let kv = Kv::open(dir.path(), sizing()).unwrap();
        assert_eq!(kv.get([0x14, 1]).unwrap().as_deref(), Some(&[7u8][..]));
    }

    /// A failed fsync is not retried: that sync and every later write are refused, because
    /// fjall itself never saw the failure.
    #[test]
    fn a_failed_journal_sync_makes_the_store_refuse_writes() {
        let dir = tempfile::tempdir().unwrap();
        let kv = Kv::open(dir.path(), sizing()).unwrap();
        kv.insert([0x14, 1], [1]).unwrap();
        let mut sync = kv.journal_sync();
        // The journals vanish (as if the disk failed under us): the sync cannot succeed.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "jnl") {
                std::fs::remove_file(path).unwrap();
            }
        }
        assert!(sync.sync().is_err());
        assert!(matches!(sync.sync(), Err(StoreError::Poisoned)));
        assert!(matches!(
            kv.insert([0x14, 2], [2]),
            Err(StoreError::Poisoned)
        ));
        assert!(matches!(kv.persist(), Err(StoreError::Poisoned)));
        assert!(matches!(kv.hand_to_os(), Err(StoreError::Poisoned)));
    }

    #[test]
    fn every_prefix_byte_has_exactly_one_keyspace_in_order() {
        let mut next = 0u16;
        for (_, first, last) in KEYSPACES {
            assert_eq!(u16::from(first), next);
            assert!(first <= last);
            next = u16::from(last) + 1;
        }
        assert_eq!(next, 256);
    }

    #[test]
    fn scans_stay_within_their_prefix_and_run_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let kv = Kv::open(dir.path(), sizing()).unwrap();
        let mut batch = Batch::default();
        for (first, n) in [(0x14u8, 1u8), (0x14, 2), (0x15, 1), (0x30, 1), (0x30, 2)] {
            batch.insert([first, n], [n]);
        }
        kv.apply(batch).unwrap();
        let keys = |scan: Scan| -> Vec<Vec<u8>> { scan.map(|e| e.unwrap().0.to_vec()).collect() };
        assert_eq!(
            keys(kv.scan_prefix([0x14])),
            vec![vec![0x14, 1], vec![0x14, 2]]
        );
        let reversed: Vec<Vec<u8>> = kv
            .scan_prefix([0x30])
            .rev()
            .map(|e| e.unwrap().0.to_vec())
            .collect();
        assert_eq!(reversed, vec![vec![0x30, 2], vec![0x30, 1]]);
        assert_eq!(
            keys(kv.range([0x14u8, 2].to_vec()..[0x16u8].to_vec())),
            vec![vec![0x14, 2], vec![0x15, 1]]
        );
        assert_eq!(keys(kv.iter()).len(), 5);
    }
}
