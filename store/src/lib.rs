//! Durable state of the Sairex SMS gateway on fjall: messages and their audit trail, the queue
//! the engine works from, and every tenant's entities.
//!
//! The store is the queue: a message is accepted only once its record, its QUEUED event, its
//! indexes and its queue entry are durable together (one atomic batch across keyspaces, made
//! durable under the [`SyncPolicy`]). The engine leases ready messages per organization, and
//! acks, retries or finalizes them; each of those is again one batch with the message's new
//! event.
//!
//! # Layout
//! - `kv`: the one module that names fjall: open and lock, reads, snapshot scans, atomic
//!   batches, persist. Every key's prefix byte picks its keyspace.
//! - `keys`: every key, a keyspace prefix byte, then big-endian fields.
//! - `value`: record encoding (format-version byte + MessagePack with named fields).
//! - [`model`]: the records (blueprint §3.2 field names).
//! - `writer`: the single writer thread and group commit.
//! - `messages`: enqueue, read, list and transition messages; indexes derived from the record.
//! - `outbox`: the durable event outbox (an entry in the batch of every status change and
//!   inbound message), consumers' cursors and pending deliveries, trimming.
//! - `queue`: lease, ack, retry, finalize, due promotion and crash recovery.
//! - `entities`: organizations, API keys, providers, contacts, groups, templates, campaigns,
//!   webhooks and their deliveries; unique indexes and counters kept in the record's batch.
//! - `crypto`: the [`MasterKey`] and the sealing of provider credentials and webhook secrets.
//! - `holds`: inbound parts and early receipts the engine answered before it could use them.
//! - `receipt_due`: the receipt timeout (EXPIRED with RECEIPT_TIMEOUT), from its index.
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
mod floors;
mod holds;
mod keys;
mod kv;
mod messages;
pub mod model;
mod outbox;
mod queue;
pub mod raw;
mod receipt_due;
mod retention;
mod value;
mod verify;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use kv::Kv;

pub use crypto::MasterKey;
pub use entities::{
    CONTACT_CSV_HEADER, CampaignCounts, CampaignStats, ContactFilter, Erasure,
    MAX_MEMBERS_PER_CALL, MAX_ROWS_PER_CALL, MAX_VARIANTS, MembershipChange, ProviderHealth,
    Recipient, RowOutcome, Upserted, api_key_hash, render_template,
};
pub use entities::{IDEMPOTENT_RESPONSE_TTL_MS, MAX_IDEMPOTENCY_KEY_BYTES, StoredResponse};
pub use entities::{
    MAX_SYSTEM_ID, NewPart, PartOutcome, ReceiptIdFormat, SmppAccount, SmppBindType, SmppLink,
    SmppOwed, SmppOwedKind, SmppPart, receipt_wanted,
};
pub use error::{Result, StoreError};
pub use holds::{HeldPart, HeldReceipt};
pub use messages::{
    Enqueued, MAX_PAGE, MessageFilter, MessageUpdate, Page, PageRequest, Transition,
};
pub use outbox::{CALLBACKS, OutboxEntry, OutboxProgress, PendingDelivery};
pub use queue::{PartsAccepted, ReceiptUpdate, Recovery, RecoveryPolicy, Submitted};
pub use receipt_due::{Overdue, RECEIPT_TIMEOUT};
pub use retention::{DEFAULT_RETENTION_DAYS, days_ms};
pub use value::FORMAT_VERSION;
pub use verify::{ConsistencyReport, MAX_LISTED, Problem, ProblemKind};

use crypto::Sealer;
use writer::{Ctx, Writer};

/// When an acknowledged write is on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPolicy {
    /// Flush before every acknowledgement, one operation at a time.
    Always,
    /// Group commit: operations that arrive while an fsync runs share the next one (the writer
    /// keeps applying meanwhile); each is acknowledged after the fsync that covers it. The
    /// default.
    #[default]
    Batch,
    /// Acknowledge without waiting for an fsync; the journal is handed to the operating system
    /// whenever the writer's queue drains. A machine crash loses what was acknowledged since the
    /// last fsync (a process crash loses at most the operations of the current burst): for tests
    /// and benchmarks only.
    None,
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Directory of the store (created if missing).
    pub path: PathBuf,
    /// Durability of acknowledged writes.
    pub sync: SyncPolicy,
    /// Block cache, in MiB: with `write_buffer_mb`, what bounds resident memory (not the number
    /// of stored or queued messages).
    pub cache_mb: u64,
    /// All in-memory write buffers (memtables) together, in MiB, shared equally by the
    /// keyspaces. Larger buffers mean fewer, larger flushes to disk.
    pub write_buffer_mb: u64,
    /// All journals together, in MiB (at least 64): what a reopen may have to replay.
    pub journal_mb: u64,
    /// What to do with messages that were in flight when the process stopped.
    pub recovery: RecoveryPolicy,
    /// Seals provider credentials and webhook secrets at rest. A store that holds secrets
    /// cannot be opened without the key it was created with.
    pub master_key: Option<MasterKey>,
}

impl StoreOptions {
    /// Defaults for a store at `path`: batch sync, 64 MiB cache, 64 MiB of write buffers, 64 MiB
    /// of journals, re-queue on recovery.
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_path_buf(),
            sync: SyncPolicy::default(),
            cache_mb: 64,
            write_buffer_mb: 64,
            journal_mb: 64,
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
    kv: Kv,
    floors: Arc<floors::Floors>,
    heads: Arc<outbox::Heads>,
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
    /// newer Sairex (or the old sled-based one) wrote it, [`StoreError::WrongMasterKey`] when the
    /// master key is not the one the store was created with, [`StoreError::MasterKeyRequired`]
    /// when the store holds secrets and no key was given, storage errors otherwise.
    pub fn open(options: StoreOptions) -> Result<Self> {
        let mib = 1024 * 1024;
        let kv = Kv::open(
            &options.path,
            kv::Sizing {
                cache_bytes: options.cache_mb.saturating_mul(mib),
                write_buffer_bytes: options.write_buffer_mb.saturating_mul(mib),
                journal_bytes: options.journal_mb.saturating_mul(mib),
            },
        )?;
        queue::check_format(&kv)?;
        // The key is checked before recovery or the writer touch anything.
        let sealer = crypto::open_secrets(&kv, options.master_key.as_ref())?;
        // Recovery runs before the writer starts, on this thread: nothing else can write yet,
        // and open() may be called from inside an async runtime.
        let floors = Arc::new(floors::Floors::read(&kv)?);
        let mut ctx = Ctx::new(kv.clone(), floors.clone())?;
        let recovery = queue::recover(&mut ctx, options.recovery, now_ms())?;
        kv.persist()?;
        // Everything written so far is durable: the outbox is readable up to the last id.
        let heads = ctx.heads.clone();
        heads.durable(ctx.last_id());
        let writer = Writer::start(ctx, options.sync)?;
        Ok(Self {
            inner: Arc::new(Inner {
                kv,
                floors,
                heads,
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
        self.inner.writer.run(|ctx| ctx.kv.persist()).await
    }

    /// Size of the store on disk, in bytes.
    ///
    /// # Errors
    /// A storage error.
    pub fn size_on_disk(&self) -> Result<u64> {
        self.inner.kv.size_on_disk()
    }

    /// Keys written or removed since the store was opened (each batch entry counts one): the
    /// store's benchmarks divide it by operations to report keys per operation.
    #[doc(hidden)]
    pub fn keys_written(&self) -> u64 {
        self.inner.kv.keys_written()
    }

    /// Every key and value, in key order: for benchmarks and tests that compare what operations
    /// write. Reads everything.
    ///
    /// # Errors
    /// Storage errors.
    #[doc(hidden)]
    pub fn raw_entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner
            .kv
            .iter()
            .map(|entry| entry.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect()
    }

    pub(crate) fn kv(&self) -> &Kv {
        &self.inner.kv
    }

    pub(crate) fn floors(&self) -> &floors::Floors {
        &self.inner.floors
    }

    pub(crate) fn heads(&self) -> &outbox::Heads {
        &self.inner.heads
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

/// Now, in milliseconds since the Unix epoch.
pub fn now_ms() -> model::Millis {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
