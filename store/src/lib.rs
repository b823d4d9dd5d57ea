//! Durable state of the Sairex SMS gateway on sled: messages and their audit trail, the queue
//! the engine works from, and every tenant's entities.
//!
//! The store is the queue: a message is accepted only once its record, its QUEUED event, its
//! indexes and its queue entry are durable together (one sled batch, flushed under the
//! [`SyncPolicy`]). The engine leases ready messages per organization, and acks, retries or
//! finalizes them; each of those is again one batch with the message's new event.
//!
//! # Layout
//! - `keys`: every key, one keyspace per prefix byte, big-endian fields.
//! - `value`: record encoding (format-version byte + MessagePack with named fields).
//! - [`model`]: the records (blueprint §3.2 field names).
//! - `writer`: the single writer thread and group commit.
//! - `messages`: enqueue, read, list and transition messages; indexes derived from the record.
//! - `queue`: lease, ack, retry, finalize, due promotion and crash recovery.
//! - `entities`: organizations, API keys, providers, contacts, groups, templates, campaigns,
//!   webhooks and their deliveries; unique indexes and counters kept in the record's batch.
//! - `crypto`: the [`MasterKey`] and the sealing of provider credentials and webhook secrets.
//! - `retention`: retention purge, erasure of a number's messages.
//! - `verify`: [`Store::check_consistency`], records against indexes, events and the queue.
//!
//! # Tenancy
//! Every read and list of a tenant's record takes the organization; another organization's
//! record is [`StoreError::NotFound`], exactly like one that does not exist.
//!
//! # Example
//! ```
//! # tokio_test::block_on(async {
//! use sairex_store::{Store, StoreOptions, model::{Message, Priority}};
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(StoreOptions::new(dir.path())).unwrap();
//! let accepted = store
//!     .enqueue(Message { organization_id: 1, to_number: "+923001234567".into(),
//!                        body: "Fee due Friday".into(), priority: Priority::OTP,
//!                        ..Message::default() })
//!     .await
//!     .unwrap();
//! let leased = store.lease(1, 10).await.unwrap();
//! assert_eq!(leased[0].id, accepted.message().id);
//! # });
//! ```
#![deny(missing_docs)]
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod api_support;
mod crypto;
mod entities;
mod error;
mod keys;
mod messages;
pub mod model;
mod queue;
mod retention;
mod value;
mod verify;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crypto::MasterKey;
pub use entities::{
    CONTACT_CSV_HEADER, CampaignCounts, CampaignStats, ContactFilter, Erasure,
    MAX_MEMBERS_PER_CALL, MAX_ROWS_PER_CALL, MAX_VARIANTS, MembershipChange, ProviderHealth,
    Recipient, RowOutcome, Upserted, api_key_hash, render_template,
};
pub use entities::{
    MAX_SYSTEM_ID, NewPart, PartOutcome, ReceiptIdFormat, SmppAccount, SmppBindType, SmppLink,
    SmppOwed, SmppOwedKind, SmppPart, receipt_wanted,
};
pub use error::{Result, StoreError};
pub use messages::{Enqueued, MAX_PAGE, MessageFilter, MessageUpdate, Page, PageRequest};
pub use queue::{PartsAccepted, Recovery, RecoveryPolicy, Submitted};
pub use retention::{DEFAULT_RETENTION_DAYS, days_ms};
pub use value::FORMAT_VERSION;
pub use verify::{ConsistencyReport, MAX_LISTED, Problem, ProblemKind};

use crypto::Sealer;
use writer::{Ctx, Writer};

/// When an acknowledged write is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Flush before every acknowledgement, one operation at a time.
    Always,
    /// Group commit: operations that arrive while a flush runs, plus those within `window`, share
    /// the next flush; each is acknowledged after it. The default.
    Batch {
        /// How long to wait for more operations before flushing a group.
        window: Duration,
    },
    /// Acknowledge without waiting for a flush; sled flushes in the background every
    /// `flush_every`. A crash loses what was acknowledged since the last flush: for tests and
    /// benchmarks only.
    None,
}

impl Default for SyncPolicy {
    fn default() -> Self {
        Self::Batch {
            window: Duration::from_millis(1),
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Directory of the store (created if missing).
    pub path: PathBuf,
    /// Durability of acknowledged writes.
    pub sync: SyncPolicy,
    /// sled page cache, in MiB: resident memory is bounded by it, not by the data size.
    pub cache_mb: u64,
    /// Background flush interval (the bound on loss under [`SyncPolicy::None`]).
    pub flush_every: Duration,
    /// What to do with messages that were in flight when the process stopped.
    pub recovery: RecoveryPolicy,
    /// Seals provider credentials and webhook secrets at rest. A store that holds secrets
    /// cannot be opened without the key it was created with.
    pub master_key: Option<MasterKey>,
}

impl StoreOptions {
    /// Defaults for a store at `path`: batch sync, 128 MiB cache, re-queue on recovery.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            sync: SyncPolicy::default(),
            cache_mb: 128,
            flush_every: Duration::from_millis(500),
            recovery: RecoveryPolicy::default(),
            master_key: None,
        }
    }

    /// With the master key that seals secrets.
    #[must_use]
    pub fn with_master_key(mut self, key: MasterKey) -> Self {
        self.master_key = Some(key);
        self
    }
}

/// The store: cheap to clone, safe to share between tasks and threads.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tree: sled::Tree,
    db: sled::Db,
    writer: Writer,
    recovery: Recovery,
    sealer: Option<Sealer>,
    /// When each API key's `lastUsedAt` was last written (see [`Store::touch_last_used`]).
    touched: Mutex<HashMap<model::Id, model::Millis>>,
}

impl Store {
    /// Opens (or creates) the store, then recovers messages left in flight by a crash.
    ///
    /// # Errors
    /// [`StoreError::Locked`] when another process has it open, [`StoreError::Format`] when a
    /// newer Sairex wrote it, [`StoreError::WrongMasterKey`] when the master key is not the one
    /// the store was created with, [`StoreError::MasterKeyRequired`] when the store holds
    /// secrets and no key was given, storage errors otherwise.
    pub fn open(options: StoreOptions) -> Result<Self> {
        let config = sled::Config::new()
            .path(&options.path)
            .cache_capacity(options.cache_mb.saturating_mul(1024 * 1024))
            .flush_every_ms(Some(
                u64::try_from(options.flush_every.as_millis()).unwrap_or(500),
            ))
            .mode(sled::Mode::HighThroughput);
        let db = open_db(&config, &options.path)?;
        let tree = db.open_tree("sairex")?;
        queue::check_format(&tree)?;
        // The key is checked before recovery or the writer touch anything.
        let sealer = match crypto::open_secrets(&tree, options.master_key.as_ref()) {
            Ok(sealer) => sealer,
            Err(e) => {
                close(tree, db);
                return Err(e);
            }
        };
        // Recovery runs before the writer starts, on this thread: nothing else can write yet,
        // and open() may be called from inside an async runtime.
        let mut ctx = Ctx {
            db: db.clone(),
            tree: tree.clone(),
        };
        let recovery = queue::recover(&mut ctx, options.recovery, now_ms())?;
        db.flush()?;
        let writer = Writer::start(ctx, options.sync)?;
        Ok(Self {
            inner: Arc::new(Inner {
                tree,
                db,
                writer,
                recovery,
                sealer,
                touched: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// What recovery did when the store was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.inner.recovery
    }

    /// Makes everything acknowledged so far durable (useful under [`SyncPolicy::None`] and at
    /// shutdown).
    ///
    /// # Errors
    /// A storage error.
    pub async fn flush(&self) -> Result<()> {
        let db = self.inner.db.clone();
        self.inner
            .writer
            .run(move |_| db.flush().map(|_| ()).map_err(StoreError::from))
            .await
    }

    /// Size of the store on disk, in bytes.
    ///
    /// # Errors
    /// A storage error.
    pub fn size_on_disk(&self) -> Result<u64> {
        Ok(self.inner.db.size_on_disk()?)
    }

    pub(crate) fn db(&self) -> &sled::Db {
        &self.inner.db
    }

    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.inner.tree
    }

    pub(crate) fn writer(&self) -> &Writer {
        &self.inner.writer
    }

    pub(crate) fn sealer(&self) -> Option<&Sealer> {
        self.inner.sealer.as_ref()
    }

    pub(crate) fn touched(&self) -> &Mutex<HashMap<model::Id, model::Millis>> {
        &self.inner.touched
    }
}

/// Closes a store that failed to open so that its lock is released when this returns: sled
/// finishes writes on background threads that hold the files, and a flush waits for them.
fn close(tree: sled::Tree, db: sled::Db) {
    drop(tree);
    let _ = db.flush();
    drop(db);
}

/// How long [`Store::open`] waits for a lock this process itself may still hold.
///
/// sled releases its file lock when the last reference to the file goes, and its background
/// threads (segment truncation, log writes) hold one for some milliseconds after the last
/// `Db` is dropped (up to 36 ms measured). So a store dropped and reopened in the same process
/// could fail with [`StoreError::Locked`]; another process holding it is reported after this.
const LOCK_WAIT: Duration = Duration::from_millis(500);

/// Pause between attempts while waiting for the lock.
const LOCK_RETRY: Duration = Duration::from_millis(5);

fn open_db(config: &sled::Config, path: &Path) -> Result<sled::Db> {
    let mut waited = Duration::ZERO;
    loop {
        match config.open().map_err(|e| open_error(path, e)) {
            Err(StoreError::Locked { .. }) if waited < LOCK_WAIT => {
                std::thread::sleep(LOCK_RETRY);
                waited += LOCK_RETRY;
            }
            other => return other,
        }
    }
}

fn open_error(path: &Path, err: sled::Error) -> StoreError {
    match &err {
        sled::Error::Io(io)
            if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock") =>
        {
            StoreError::Locked {
                path: path.to_path_buf(),
            }
        }
        _ => err.into(),
    }
}

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> model::Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
