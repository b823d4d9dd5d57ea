//! The durable event outbox: one entry for every status change and every inbound message,
//! written in the same batch as the change, so an event exists exactly when its change does.
//!
//! Consumers (a webhook's deliveries, an organization's `callbackUrl` deliveries, the event
//! stream) read an organization's entries in order after a position. A consumer that must not
//! miss anything keeps a durable cursor and a set of pending entries (retrying, or waiting
//! behind an earlier event of the same message), moved together with its delivery log in one
//! batch ([`Store::record_outbox_progress`]).
//!
//! Readers only see entries that are durable: [`Store::outbox_watch`] announces the highest
//! sequence the last group commit made durable, and every read stops there, so nothing is ever
//! announced that a crash could take back.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::crypto::Stored;
use crate::entities::log_deliveries;
use crate::error::{Result, StoreError};
use crate::keys::{Key, prefix_end, scoped, space, u64_at};
use crate::kv::{Batch, Kv};
use crate::model::{Id, Message, MessageStatus, Millis, Webhook, WebhookDelivery};
use crate::value::{decode, encode};
use crate::writer::Ctx;
use crate::{Store, now_ms};

/// The consumer id of an organization's per-message `callbackUrl` deliveries (webhook ids
/// start at 1).
pub const CALLBACKS: Id = 0;

/// The consumer id under which an organization's trim mark is kept (the last position
/// trimmed), so a reader resuming before it knows it missed events.
const TRIMMED: Id = u64::MAX;

/// Entries trimmed per writer turn, so other operations are not held up long.
const TRIM_CHUNK: u64 = 4096;

/// One event: what changed, and the message as the change left it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct OutboxEntry {
    /// Its position: increasing in the order changes were made, unique across organizations.
    pub seq: u64,
    /// The tenant.
    pub organization_id: Id,
    /// The message event recorded with the change (QUEUED, SUBMITTED, DELIVERED, RECEIVED,
    /// RECEIPT_TIMEOUT, …).
    pub event_type: String,
    /// The message right after the change: its status is the event's.
    pub message: Message,
    /// When the change was made.
    pub occurred_at: Millis,
}

impl OutboxEntry {
    /// Whether this entry announces an inbound message rather than a status change.
    pub fn is_inbound(&self) -> bool {
        self.message.status == MessageStatus::Received
    }
}

/// An entry a consumer has passed with its cursor but not yet delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct PendingDelivery {
    /// The entry.
    pub seq: u64,
    /// Its message: later entries of the same message wait behind it.
    pub message_id: Id,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due; `None` while it waits behind an earlier entry of its
    /// message.
    pub due_at: Option<Millis>,
}

/// What a consumer did since its last progress: written in one batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OutboxProgress {
    /// The tenant.
    pub organization_id: Id,
    /// The webhook, or [`CALLBACKS`].
    pub consumer: Id,
    /// Every entry up to here is delivered, given up on, or pending.
    pub cursor: Option<u64>,
    /// Attempts to add to the webhook's delivery log (not for [`CALLBACKS`]), oldest first;
    /// they move its `consecutiveFails` and `lastTriggeredAt`.
    pub deliveries: Vec<WebhookDelivery>,
    /// Pending entries to write (new, or with another attempt count or due time).
    pub pending: Vec<PendingDelivery>,
    /// Pending entries that are done (delivered or given up).
    pub settled: Vec<u64>,
}

/// What the store knows of the outbox without reading it.
#[derive(Debug)]
pub(crate) struct Heads {
    durable: watch::Sender<u64>,
    /// The last entry written for each organization since the store was opened (perhaps not
    /// yet durable).
    orgs: Mutex<HashMap<Id, u64>>,
}

impl Heads {
    pub(crate) fn new(durable: u64) -> Self {
        Self {
            durable: watch::Sender::new(durable),
            orgs: Mutex::new(HashMap::new()),
        }
    }

    /// Everything up to `seq` is durable.
    pub(crate) fn durable(&self, seq: u64) {
        self.durable.send_if_modified(|head| {
            let moved = seq > *head;
            if moved {
                *head = seq;
            }
            moved
        });
    }

    fn wrote(&self, org: Id, seq: u64) {
        self.orgs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(org, seq);
    }
}

fn entry_key(org: Id, seq: u64) -> Vec<u8> {
    Key::new(space::OUTBOX).u64(org).u64(seq).build()
}

fn cursor_key(org: Id, consumer: Id) -> Vec<u8> {
    Key::new(space::OUTBOX_CURSOR)
        .u64(org)
        .u64(consumer)
        .build()
}

fn pending_prefix(org: Id, consumer: Id) -> Vec<u8> {
    Key::new(space::OUTBOX_PENDING)
        .u64(org)
        .u64(consumer)
        .build()
}

fn pending_key(org: Id, consumer: Id, seq: u64) -> Vec<u8> {
    Key::new(space::OUTBOX_PENDING)
        .u64(org)
        .u64(consumer)
        .u64(seq)
        .build()
}

/// Adds the entry for `message`'s change to `batch`: called by every operation that changes a
/// message's status or stores an inbound message, inside its batch.
pub(crate) fn record(
    ctx: &mut Ctx,
    batch: &mut Batch,
    message: &Message,
    event_type: &str,
    now: Millis,
) -> Result<()> {
    let seq = ctx.next_id()?;
    let entry = OutboxEntry {
        seq,
        organization_id: message.organization_id,
        event_type: event_type.to_owned(),
        message: message.clone(),
        occurred_at: now,
    };
    batch.insert(entry_key(message.organization_id, seq), encode(&entry)?);
    ctx.outbox_last = seq;
    ctx.heads.wrote(message.organization_id, seq);
    Ok(())
}

/// Rewrites the snapshots of `org`'s entries whose message is `id` with `message` (erasure):
/// the outbox must not keep what the record no longer does.
pub(crate) fn rewrite_snapshots(
    ctx: &Ctx,
    batch: &mut Batch,
    org: Id,
    changed: &HashMap<Id, Message>,
) -> Result<()> {
    if changed.is_empty() {
        return Ok(());
    }
    let prefix = Key::new(space::OUTBOX).u64(org).build();
    for entry in ctx.kv.scan_prefix(&prefix) {
        let (key, value) = entry?;
        let mut entry: OutboxEntry = decode(&key, &value)?;
        if let Some(message) = changed.get(&entry.message.id) {
            // The status stays the event's; only what erasure clears changes.
            let status = entry.message.status;
            entry.message = message.clone();
            entry.message.status = status;
            batch.insert(key.as_ref(), encode(&entry)?);
        }
    }
    Ok(())
}

/// Removes a consumer's cursor and pending entries (its webhook is deleted in `batch`).
pub(crate) fn forget_consumer(kv: &Kv, batch: &mut Batch, org: Id, consumer: Id) -> Result<()> {
    batch.remove(cursor_key(org, consumer));
    for key in kv.scan_prefix(pending_prefix(org, consumer)).keys() {
        batch.remove(key?);
    }
    Ok(())
}

fn progress_op(ctx: &mut Ctx, progress: OutboxProgress, now: Millis) -> Result<u32> {
    let org = progress.organization_id;
    let consumer = progress.consumer;
    let mut batch = Batch::default();
    let mut fails = 0;
    if consumer != CALLBACKS {
        if progress.deliveries.is_empty() {
            // A deleted webhook gets no cursor back.
            if !ctx.kv.contains_key(scoped(space::WEBHOOK, org, consumer))? {
                return Err(StoreError::NotFound {
                    entity: "webhook",
                    id: consumer,
                });
            }
        } else {
            (fails, _) = log_deliveries(ctx, &mut batch, org, consumer, progress.deliveries, now)?;
        }
    }
    if let Some(cursor) = progress.cursor {
        batch.insert(cursor_key(org, consumer), cursor.to_be_bytes());
    }
    for seq in progress.settled {
        batch.remove(pending_key(org, consumer, seq));
    }
    for pending in &progress.pending {
        batch.insert(pending_key(org, consumer, pending.seq), encode(pending)?);
    }
    ctx.apply(batch)?;
    Ok(fails)
}

/// Removes the entries of one organization older than `cutoff` (and, when `wait_for_consumers`,
/// that every consumer is past); returns how many, and whether more may remain.
fn trim_chunk(
    ctx: &mut Ctx,
    org: Id,
    cutoff: Millis,
    wait_for_consumers: bool,
) -> Result<(u64, bool)> {
    let keep_from = if wait_for_consumers {
        consumers_low_mark(ctx, org)?
    } else {
        None
    };
    let prefix = Key::new(space::OUTBOX).u64(org).build();
    let mut batch = Batch::default();
    let mut trimmed = 0u64;
    let mut more = false;
    let mut mark = None;
    for entry in ctx.kv.scan_prefix(&prefix) {
        let (key, value) = entry?;
        let seq = u64_at(&key, 9).unwrap_or(u64::MAX);
        if keep_from.is_some_and(|low| seq > low) {
            break;
        }
        let entry: OutboxEntry = decode(&key, &value)?;
        if entry.occurred_at >= cutoff {
            break;
        }
        if trimmed >= TRIM_CHUNK {
            more = true;
            break;
        }
        batch.remove(key.as_ref());
        mark = Some(seq);
        trimmed += 1;
    }
    if let Some(seq) = mark {
        batch.insert(cursor_key(org, TRIMMED), seq.to_be_bytes());
    }
    ctx.apply(batch)?;
    Ok((trimmed, more))
}

/// The lowest position an active consumer of `org` still needs: its cursor, or its oldest
/// pending entry. `None` when no active consumer has a cursor.
fn consumers_low_mark(ctx: &Ctx, org: Id) -> Result<Option<u64>> {
    let active: Vec<Id> = {
        let prefix = Key::new(space::WEBHOOK).u64(org).build();
        let mut ids = vec![CALLBACKS];
        for entry in ctx.kv.scan_prefix(&prefix) {
            let (key, value) = entry?;
            let hook: Stored<Webhook> = decode(&key, &value)?;
            if hook.record.is_active {
                ids.push(hook.record.id);
            }
        }
        ids
    };
    let mut low: Option<u64> = None;
    let mut lower = |seq: u64| low = Some(low.map_or(seq, |l| l.min(seq)));
    for consumer in active {
        if let Some(cursor) = ctx
            .kv
            .get(cursor_key(org, consumer))?
            .and_then(|v| u64_at(&v, 0))
        {
            lower(cursor);
        }
        if let Some(first) = ctx
            .kv
            .scan_prefix(pending_prefix(org, consumer))
            .keys()
            .next()
        {
            let key = first?;
            if let Some(seq) = u64_at(&key, 17) {
                lower(seq.saturating_sub(1));
            }
        }
    }
    Ok(low)
}

impl Store {
    /// A receiver of the highest durable outbox position; it changes whenever a group commit
    /// makes new entries durable.
    pub fn outbox_watch(&self) -> watch::Receiver<u64> {
        self.heads().durable.subscribe()
    }

    /// The highest durable outbox position.
    pub fn outbox_head(&self) -> u64 {
        *self.heads().durable.borrow()
    }

    /// The last entry written for the organization since the store was opened, if any: lets a
    /// consumer skip reading when nothing of its organization is new.
    pub fn outbox_org_head(&self, org: Id) -> Option<u64> {
        self.heads()
            .orgs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&org)
            .copied()
    }

    /// Every organization with entries written since the store was opened, with its last one.
    pub fn outbox_org_heads(&self) -> Vec<(Id, u64)> {
        self.heads()
            .orgs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(org, seq)| (*org, *seq))
            .collect()
    }

    /// Up to `limit` durable entries of the organization after position `after`, in order.
    ///
    /// # Errors
    /// Storage errors.
    pub fn outbox_after(&self, org: Id, after: u64, limit: usize) -> Result<Vec<OutboxEntry>> {
        let head = self.outbox_head();
        if after >= head {
            return Ok(Vec::new());
        }
        let start = entry_key(org, after.saturating_add(1));
        let end = prefix_end(&Key::new(space::OUTBOX).u64(org).build());
        let mut out = Vec::new();
        for entry in self.kv().range(start..end).take(limit) {
            let (key, value) = entry?;
            if u64_at(&key, 9).is_none_or(|seq| seq > head) {
                break;
            }
            out.push(decode(&key, &value)?);
        }
        Ok(out)
    }

    /// One entry of the organization.
    ///
    /// # Errors
    /// Storage errors.
    pub fn outbox_entry(&self, org: Id, seq: u64) -> Result<Option<OutboxEntry>> {
        let key = entry_key(org, seq);
        self.kv()
            .get(&key)?
            .map(|value| decode(&key, &value))
            .transpose()
    }

    /// The oldest entry the organization still has, if any.
    ///
    /// # Errors
    /// Storage errors.
    pub fn outbox_oldest(&self, org: Id) -> Result<Option<u64>> {
        let prefix = Key::new(space::OUTBOX).u64(org).build();
        match self.kv().scan_prefix(&prefix).keys().next() {
            Some(key) => Ok(u64_at(&key?, 9)),
            None => Ok(None),
        }
    }

    /// The last position trimmed from the organization's outbox (0: none): a reader resuming
    /// before it missed events.
    ///
    /// # Errors
    /// Storage errors.
    pub fn outbox_trimmed(&self, org: Id) -> Result<u64> {
        Ok(self
            .kv()
            .get(cursor_key(org, TRIMMED))?
            .and_then(|v| u64_at(&v, 0))
            .unwrap_or(0))
    }

    /// A consumer's cursor, if it has one.
    ///
    /// # Errors
    /// Storage errors.
    pub fn outbox_cursor(&self, org: Id, consumer: Id) -> Result<Option<u64>> {
        Ok(self
            .kv()
            .get(cursor_key(org, consumer))?
            .and_then(|v| u64_at(&v, 0)))
    }

    /// A consumer's pending entries, oldest first.
    ///
    /// # Errors
    /// Storage errors.
    pub fn outbox_pending(&self, org: Id, consumer: Id) -> Result<Vec<PendingDelivery>> {
        self.kv()
            .scan_prefix(pending_prefix(org, consumer))
            .map(|entry| {
                let (key, value) = entry?;
                decode(&key, &value)
            })
            .collect()
    }

    /// Writes a consumer's progress in one batch: its delivery log, cursor and pending entries.
    /// Returns the webhook's `consecutiveFails` after the logged attempts (0 for
    /// [`CALLBACKS`]).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the webhook was deleted (nothing is written then), storage
    /// errors.
    pub async fn record_outbox_progress(&self, progress: OutboxProgress) -> Result<u32> {
        self.writer()
            .run(move |ctx| progress_op(ctx, progress, now_ms()))
            .await
    }

    /// Removes outbox entries older than `max_age_ms` that every active consumer (webhook or
    /// callbacks) of their organization is past. Returns how many.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn trim_outbox(&self, now: Millis, max_age_ms: Millis) -> Result<u64> {
        let cutoff = now.saturating_sub(max_age_ms);
        let mut total = 0;
        for org in self.outbox_orgs()? {
            total += self.trim_outbox_org(org, cutoff, true).await?;
        }
        Ok(total)
    }

    pub(crate) async fn trim_outbox_org(
        &self,
        org: Id,
        cutoff: Millis,
        wait_for_consumers: bool,
    ) -> Result<u64> {
        let mut total = 0;
        loop {
            let (trimmed, more) = self
                .writer()
                .run(move |ctx| trim_chunk(ctx, org, cutoff, wait_for_consumers))
                .await?;
            total += trimmed;
            if !more {
                return Ok(total);
            }
        }
    }

    /// The organizations with outbox entries: one seek per organization.
    fn outbox_orgs(&self) -> Result<Vec<Id>> {
        let mut orgs = Vec::new();
        let mut start = Key::new(space::OUTBOX).build();
        let end = prefix_end(&start);
        loop {
            let Some(key) = self.kv().range(start.clone()..end.clone()).keys().next() else {
                return Ok(orgs);
            };
            let key = key?;
            let Some(org) = u64_at(&key, 1) else {
                return Err(StoreError::Corrupt {
                    key: crate::value::hex(&key),
                    problem: "short outbox key".into(),
                });
            };
            orgs.push(org);
            start = prefix_end(&Key::new(space::OUTBOX).u64(org).build());
        }
    }
}
