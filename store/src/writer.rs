//! The single writer: every mutation runs on one thread, in order, which makes each
//! read-modify-write race-free without transactions, and lets one fsync cover a whole group of
//! operations (group commit).
//!
//! A caller's operation runs as soon as the writer reaches it and its batch is applied at once
//! (so later operations see it); the caller is answered only after the flush that makes it
//! durable, under the [`SyncPolicy`](crate::SyncPolicy).
//!
//! Group commit (`SyncPolicy::Batch`) needs no waiting window: the writer applies whatever is
//! queued, hands the group's bytes to the OS and the group to the syncer thread, and goes on
//! with the next operations while the fsync runs. Groups that queue up behind an fsync share
//! the next one, so a group is as large as what arrives during one fsync: small when the load
//! is light (an operation waits one fsync), large when it is heavy.

use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use crate::SyncPolicy;
use crate::error::{Result, StoreError};
use crate::floors::Floors;
use crate::keys::{Key, space};
use crate::kv::{Batch, Kv};
use crate::model::Id;

/// Most operations one flush covers: bounds the latency the last of a group sees.
const MAX_GROUP: usize = 4096;

/// Operations waiting for the writer; senders wait (back-pressure) when it is full.
const QUEUE_CAPACITY: usize = 16 * 1024;

/// Ids reserved at a time: the counter is written once per block, not with every record.
const ID_BLOCK: Id = 1024;

/// `[META]"ids"` → the id reservation (u64 BE): a reopened store hands out ids after it.
const META_IDS: &[u8] = b"ids";

/// What the writer thread owns.
pub(crate) struct Ctx {
    pub(crate) kv: Kv,
    /// Where the live queue begins; lowered here for every queue key a batch inserts.
    pub(crate) floors: Arc<Floors>,
    /// The last id handed out.
    last_id: Id,
    /// The reservation written to `META_IDS`: ids up to it may be handed out without writing it.
    persisted_id: Id,
    /// The outbox's positions, moved when a group is durable.
    pub(crate) heads: Arc<crate::outbox::Heads>,
    /// The last outbox entry written.
    pub(crate) outbox_last: u64,
}

impl Ctx {
    /// Takes over the database, reading the id counter back.
    pub(crate) fn new(kv: Kv, floors: Arc<Floors>) -> Result<Self> {
        let key = ids_key();
        let last_id = match kv.get(&key)? {
            None => 0,
            Some(v) => crate::keys::u64_at(&v, 0).ok_or_else(|| StoreError::Corrupt {
                key: "meta/ids".into(),
                problem: format!("{} bytes, expected 8", v.len()),
            })?,
        };
        Ok(Self {
            kv,
            floors,
            last_id,
            persisted_id: last_id,
            heads: Arc::new(crate::outbox::Heads::new(last_id)),
            outbox_last: last_id,
        })
    }

    /// The last id handed out.
    pub(crate) fn last_id(&self) -> Id {
        self.last_id
    }

    /// A new id: larger than every id handed out before, across restarts. It is made durable
    /// with the next batch [`Ctx::apply`] writes, which is the batch of the record using it.
    pub(crate) fn next_id(&mut self) -> Result<Id> {
        self.last_id = self
            .last_id
            .checked_add(1)
            .ok_or_else(|| StoreError::Storage("ids exhausted".into()))?;
        Ok(self.last_id)
    }

    /// Applies one operation's batch, with a new id reservation when ids were handed out past
    /// the last one: a crash can never leave a record whose id a restarted store hands out
    /// again (it starts after the reservation), and only one batch in [`ID_BLOCK`] carries the
    /// counter.
    pub(crate) fn apply(&mut self, mut batch: Batch) -> Result<()> {
        let reserve =
            (self.last_id > self.persisted_id).then(|| self.last_id.saturating_add(ID_BLOCK));
        if let Some(reserved) = reserve {
            batch.insert(ids_key(), reserved.to_be_bytes());
        }
        for key in batch.inserted_keys() {
            if matches!(key.first(), Some(&space::READY | &space::DUE)) {
                self.floors.lower_for(key);
            }
        }
        self.kv.apply(batch)?;
        if let Some(reserved) = reserve {
            self.persisted_id = reserved;
        }
        Ok(())
    }
}

fn ids_key() -> Vec<u8> {
    Key::new(space::META).tail(META_IDS).build()
}

type Completion = Box<dyn FnOnce(Result<()>) + Send>;
type Job = Box<dyn FnOnce(&mut Ctx) -> Completion + Send>;

pub(crate) struct Writer {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    pub(crate) fn start(ctx: Ctx, policy: SyncPolicy) -> Result<Self> {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let syncer = match policy {
            SyncPolicy::Batch => Some(Syncer::start(ctx.kv.journal_sync(), ctx.heads.clone())?),
            SyncPolicy::Always | SyncPolicy::None => None,
        };
        let thread = std::thread::Builder::new()
            .name("sairex-store-writer".into())
            .spawn(move || run(ctx, rx, policy, syncer))
            .map_err(|e| StoreError::Storage(format!("cannot start the store writer: {e}")))?;
        Ok(Self {
            jobs: Some(tx),
            thread: Some(thread),
        })
    }

    fn job<R: Send + 'static>(
        op: impl FnOnce(&mut Ctx) -> Result<R> + Send + 'static,
    ) -> (Job, oneshot::Receiver<Result<R>>) {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |ctx| {
            let result = op(ctx);
            Box::new(move |flushed: Result<()>| {
                // A caller that gave up waiting is not an error of the store.
                let _ = tx.send(flushed.and(result));
            })
        });
        (job, rx)
    }

    /// Runs `op` on the writer and waits until it is durable.
    pub(crate) async fn run<R: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Ctx) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let jobs = self.jobs.as_ref().ok_or(StoreError::Closed)?;
        let (job, rx) = Self::job(op);
        jobs.send(job).await.map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `op` without waiting for it or its flush, for writes that may be lost (a key's
    /// last-used time). Returns false, dropping `op`, when the queue is full or closed: such a
    /// write never adds back-pressure.
    pub(crate) fn submit(&self, op: impl FnOnce(&mut Ctx) -> Result<()> + Send + 'static) -> bool {
        let Some(jobs) = self.jobs.as_ref() else {
            return false;
        };
        let job: Job = Box::new(move |ctx| {
            // Nobody waits for the outcome: a failed best-effort write is just not made.
            let _ = op(ctx);
            Box::new(|_flushed: Result<()>| {})
        });
        jobs.try_send(job).is_ok()
    }

    /// [`Writer::run`] for callers outside an async runtime.
    pub(crate) fn run_blocking<R: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Ctx) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let jobs = self.jobs.as_ref().ok_or(StoreError::Closed)?;
        let (job, rx) = Self::job(op);
        jobs.blocking_send(job).map_err(|_| StoreError::Closed)?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the writer loop after it has applied and flushed what was
        // queued; joining makes a dropped store durable before the process moves on.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn flush(ctx: &Ctx) -> Result<()> {
    ctx.kv.persist()
}

fn complete(done: &mut Vec<Completion>, flushed: &Result<()>) {
    for completion in done.drain(..) {
        completion(match flushed {
            Ok(()) => Ok(()),
            Err(StoreError::DiskFull(e)) => Err(StoreError::DiskFull(std::io::Error::new(
                e.kind(),
                e.to_string(),
            ))),
            Err(StoreError::Poisoned) => Err(StoreError::Poisoned),
            Err(e) => Err(StoreError::Storage(format!("flush failed: {e}"))),
        });
    }
}

/// `syncer` is there under group commit: the fsyncs run on a thread of their own, so the
/// writer goes on applying while one is in progress.
fn run(mut ctx: Ctx, mut rx: mpsc::Receiver<Job>, policy: SyncPolicy, syncer: Option<Syncer>) {
    let mut done: Vec<Completion> = Vec::with_capacity(MAX_GROUP);
    while let Some(job) = rx.blocking_recv() {
        done.push(job(&mut ctx));
        match (&syncer, policy) {
            (_, SyncPolicy::None) => {
                ctx.heads.durable(ctx.outbox_last);
                complete(&mut done, &Ok(()));
                // Hand the journal to the OS once the queue is drained, so a crashed process
                // (not machine) loses nothing acknowledged.
                if rx.is_empty() {
                    let _ = ctx.kv.hand_to_os();
                }
            }
            (Some(syncer), _) => {
                // Everything queued meanwhile joins the group: the callers answered by the
                // last fsync send their next operations in a burst.
                while done.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(job) => done.push(job(&mut ctx)),
                        Err(_) => break,
                    }
                }
                // The group's bytes go to the OS now; the syncer makes them durable and
                // answers the callers, coalescing the groups that queue up behind an fsync.
                match ctx.kv.hand_to_os() {
                    Ok(()) => syncer.hand(std::mem::take(&mut done), ctx.outbox_last),
                    Err(e) => complete(&mut done, &Err(e)),
                }
            }
            (None, _) => {
                let flushed = flush(&ctx);
                if flushed.is_ok() {
                    ctx.heads.durable(ctx.outbox_last);
                }
                complete(&mut done, &flushed);
            }
        }
    }
    // Queue closed: answer what the syncer holds, then make everything applied durable
    // whatever the policy.
    drop(syncer);
    if flush(&ctx).is_ok() {
        ctx.heads.durable(ctx.outbox_last);
    }
}

/// Groups waiting for an fsync; more than this and the writer waits (back-pressure).
const SYNC_QUEUE: usize = 256;

/// The fsync thread of group commit.
struct Syncer {
    groups: Option<std::sync::mpsc::SyncSender<(Vec<Completion>, u64)>>,
    thread: Option<JoinHandle<()>>,
}

impl Syncer {
    fn start(
        mut journal: crate::kv::JournalSync,
        heads: Arc<crate::outbox::Heads>,
    ) -> Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<Completion>, u64)>(SYNC_QUEUE);
        let thread = std::thread::Builder::new()
            .name("sairex-store-sync".into())
            .spawn(move || {
                let mut waiting: Vec<Completion> = Vec::with_capacity(MAX_GROUP);
                while let Ok((group, mut head)) = rx.recv() {
                    waiting.extend(group);
                    // Every group handed over before this fsync starts is covered by it.
                    while let Ok((group, later)) = rx.try_recv() {
                        waiting.extend(group);
                        head = head.max(later);
                    }
                    let synced = journal.sync();
                    if synced.is_ok() {
                        // Readers are told before callers are answered: an answered change's
                        // event is readable.
                        heads.durable(head);
                    }
                    complete(&mut waiting, &synced);
                }
            })
            .map_err(|e| {
                StoreError::Storage(format!("cannot start the store's fsync thread: {e}"))
            })?;
        Ok(Self {
            groups: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands over a group whose batches are with the OS.
    /// `head` is the last outbox entry the group wrote (or an earlier one).
    fn hand(&self, group: Vec<Completion>, head: u64) {
        if group.is_empty() {
            return;
        }
        if let Some(groups) = &self.groups
            && let Err(std::sync::mpsc::SendError((mut group, _))) = groups.send((group, head))
        {
            // The thread is gone (it cannot panic short of a bug): these were never synced.
            complete(
                &mut group,
                &Err(StoreError::Storage(
                    "the store's fsync thread stopped".into(),
                )),
            );
        }
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        self.groups.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
