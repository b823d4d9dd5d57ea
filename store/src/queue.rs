//! The queue: ready entries per organization in (priority, enqueue order), due entries by time,
//! in-flight leases, and recovery of leases a crash left behind.
//!
//! Every move is an [`update_op`](crate::messages) or a batch built the same way: the message
//! record's `queue` field and the queue keys change together, with the event that explains it.

use crate::kv::{Batch, Kv};

use crate::error::{Result, StoreError};
use crate::keys::{Key, prefix_end, space, u64_at};
use crate::messages::{
    MessageUpdate, Step, Transition, load_message, transition_op, update_op, write_message,
};
use crate::model::{AcceptedPart, Id, Message, MessageStatus, Millis, PartialSend, QueuePlace};
use crate::value::FORMAT_VERSION;
use crate::writer::Ctx;
use crate::{Store, now_ms};

/// What to do on open with messages that were in flight when the process stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryPolicy {
    /// Put them back in the ready queue (at-least-once: one may have reached the carrier before
    /// the crash and be sent again). Their event says RESUBMITTED_AFTER_RESTART.
    #[default]
    Requeue,
    /// Mark them FAILED (at-most-once).
    Fail,
}

/// What recovery did on open.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recovery {
    /// Messages put back in the ready queue.
    pub requeued: Vec<(Id, Id)>,
    /// Messages failed.
    pub failed: Vec<(Id, Id)>,
}

const META_FORMAT: &[u8] = b"format";

/// Refuses a store written by a newer build; stamps a new store with our format.
pub(crate) fn check_format(tree: &Kv) -> Result<()> {
    let key = Key::new(space::META).tail(META_FORMAT).build();
    match tree.get(&key)? {
        Some(v) => match v.first() {
            Some(&version) if version <= FORMAT_VERSION => Ok(()),
            Some(&version) => Err(StoreError::Format(format!(
                "the store was written by a newer Sairex (format {version}, this build reads up \
                 to {FORMAT_VERSION}); upgrade Sairex or restore a backup"
            ))),
            None => Err(StoreError::Corrupt {
                key: "meta/format".into(),
                problem: "empty".into(),
            }),
        },
        None => {
            tree.insert(key, vec![FORMAT_VERSION])?;
            Ok(())
        }
    }
}

pub(crate) fn recover(ctx: &mut Ctx, policy: RecoveryPolicy, now: Millis) -> Result<Recovery> {
    let mut report = Recovery::default();
    let prefix = Key::new(space::IN_FLIGHT).build();
    let leased: Vec<(Id, Id)> = ctx
        .kv
        .scan_prefix(&prefix)
        .keys()
        .filter_map(|k| k.ok())
        .filter_map(|k| Some((u64_at(&k, 1)?, u64_at(&k, 9)?)))
        .collect();
    for (org, id) in leased {
        match policy {
            RecoveryPolicy::Requeue => {
                let update = MessageUpdate::new("RESUBMITTED_AFTER_RESTART").detail(
                    "was in flight when the gateway stopped; it may have reached the carrier",
                );
                update_op(ctx, org, id, update, now, |m| {
                    m.status = MessageStatus::Queued;
                    m.queue = QueuePlace::Ready { seq: 0 };
                    Ok(())
                })?;
                report.requeued.push((org, id));
            }
            RecoveryPolicy::Fail => {
                let update = MessageUpdate::new("FAILED")
                    .detail("was in flight when the gateway stopped (recovery policy: fail)");
                update_op(ctx, org, id, update, now, |m| {
                    m.status = MessageStatus::Failed;
                    m.queue = QueuePlace::Done;
                    Ok(())
                })?;
                report.failed.push((org, id));
            }
        }
    }
    Ok(report)
}

fn lease_op(ctx: &mut Ctx, org: Id, max: usize, now: Millis) -> Result<Vec<Message>> {
    let start = ctx.floors.ready_start(org);
    let end = prefix_end(&Key::new(space::READY).u64(org).build());
    let mut batch = Batch::default();
    let mut leased = Vec::with_capacity(max.min(1024));
    let mut last_key = None;
    for entry in ctx.kv.range(start..end).take(max) {
        let (key, value) = entry?;
        last_key = Some(key);
        let Some(id) = u64_at(&value, 0) else {
            continue;
        };
        let old = load_message(&ctx.kv, org, id)?;
        let mut new = old.clone();
        new.queue = QueuePlace::InFlight { since: now };
        new.updated_at = now;
        write_message(&ctx.kv, &mut batch, Some(&old), Some(&new))?;
        leased.push(new);
    }
    // The whole lease is one batch: a crash leaves all of it ready or all of it in flight.
    ctx.apply(batch)?;
    if let Some(last) = last_key {
        ctx.floors.raise_ready(org, &last);
    }
    Ok(leased)
}

fn promote_op(ctx: &mut Ctx, now: Millis, max: usize) -> Result<Vec<Id>> {
    let floor = ctx.floors.due();
    if floor > now || max == 0 {
        return Ok(Vec::new());
    }
    let start = Key::new(space::DUE).u64(floor).build();
    let end = Key::new(space::DUE).u64(now.saturating_add(1)).build();
    let mut due: Vec<(Millis, Id, Id)> = Vec::new();
    // A key that cannot be read must stop the promotion, not be skipped: the floor is raised
    // past everything read below.
    for key in ctx.kv.range(start..end).keys().take(max) {
        let key = key?;
        if let (Some(at), Some(org), Some(id)) =
            (u64_at(&key, 1), u64_at(&key, 9), u64_at(&key, 17))
        {
            due.push((at, org, id));
        }
    }
    let mut orgs = Vec::new();
    for &(_, org, id) in &due {
        update_op(ctx, org, id, MessageUpdate::new("READY"), now, |m| {
            m.queue = QueuePlace::Ready { seq: 0 };
            Ok(())
        })?;
        if !orgs.contains(&org) {
            orgs.push(org);
        }
    }
    // Fewer than `max` due: nothing waits until now any more. Otherwise everything before the
    // last one taken is gone (others due in the same millisecond may remain).
    match due.last() {
        _ if due.len() < max => ctx.floors.raise_due(now.saturating_add(1)),
        Some(&(at, _, _)) => ctx.floors.raise_due(at),
        None => {}
    }
    Ok(orgs)
}

fn in_flight(m: &Message) -> bool {
    matches!(m.queue, QueuePlace::InFlight { .. })
}

/// What a receipt says, for [`Store::apply_receipt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptUpdate {
    /// The status it reports (SENT, DELIVERED, FAILED, REJECTED, EXPIRED).
    pub status: MessageStatus,
    /// The part it is for (from 0; 0 for a single-part message).
    pub part: u32,
    /// The message's part count.
    pub parts: u32,
    /// For the timeline: who sent it and what it said.
    pub detail: String,
    /// The provider's error code, for a failure.
    pub error_code: Option<String>,
    /// When it was applied (the dispatcher's clock), for `deliveredAt`.
    pub at: Millis,
}

/// The state machine of a receipt (see [`Store::apply_receipt`]).
fn receipt_step(m: &mut Message, r: ReceiptUpdate) -> Step {
    // EXPIRED by the receipt timeout is the gateway's guess, not an outcome: a late final
    // receipt still records the real one (an intermediate one says nothing new).
    let late = m.status == MessageStatus::Expired
        && m.error_code.as_deref() == Some(crate::receipt_due::RECEIPT_TIMEOUT);
    if (m.status.is_final() && !(late && r.status.is_final()))
        || (r.status == MessageStatus::Sent && m.status == r.status)
    {
        return Step::Duplicate;
    }
    // A part accepted while the rest is still to be sent: the message has not left as a
    // whole, so a part's intermediate receipt does not make it SENT.
    if m.status == MessageStatus::Queued && !r.status.is_final() {
        return Step::Stale;
    }
    if r.status == MessageStatus::Delivered && r.parts > 1 {
        if m.delivered_parts.contains(&r.part) {
            return Step::Duplicate;
        }
        if m.delivered_parts.len() + 1 < r.parts as usize {
            m.delivered_parts.push(r.part);
            m.delivered_parts.sort_unstable();
            return Step::Apply(MessageUpdate {
                event_type: "PART_DELIVERED".into(),
                detail: Some(format!("part {} of {}: {}", r.part + 1, r.parts, r.detail)),
                metadata: Some(serde_json::json!({ "part": r.part })),
            });
        }
    }
    m.status = r.status;
    if late {
        // The real outcome replaces the timeout's.
        m.error_code = None;
    }
    if r.status.is_final() {
        m.queue = QueuePlace::Done;
        m.status_message = Some(r.detail.clone());
        if r.status != MessageStatus::Delivered && r.error_code.is_some() {
            m.error_code = r.error_code;
        }
        if r.status == MessageStatus::Delivered {
            m.delivered_at = Some(r.at);
            if r.parts > 1 && !m.delivered_parts.contains(&r.part) {
                m.delivered_parts.push(r.part);
                m.delivered_parts.sort_unstable();
            }
        }
    }
    Step::Apply(MessageUpdate::new(r.status.as_str()).detail(r.detail))
}

/// What a provider said when it accepted a message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Submitted {
    /// The provider configuration used.
    pub provider_id: Id,
    /// The provider's id for each part, in order.
    pub provider_msg_ids: Vec<String>,
    /// Cost of one part, when the provider says.
    pub cost_per_segment: Option<crate::model::Micros>,
    /// Detail for the event.
    pub detail: Option<String>,
    /// When the message expires if its receipt has not come (`None`: no receipt asked for).
    pub receipt_due_at: Option<Millis>,
}

/// What a provider accepted of a multipart message it did not accept whole (see
/// [`PartialSend`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartsAccepted {
    /// The provider that accepted them.
    pub provider_id: Id,
    /// Parts in all.
    pub total: u32,
    /// The concatenation reference the parts carry.
    pub reference: u16,
    /// How the provider split the text ([`PartialSend::layout`]).
    pub layout: String,
    /// The accepted parts: index from 0, and the provider's id.
    pub parts: Vec<(u32, String)>,
    /// Detail for the event.
    pub detail: Option<String>,
}

/// Adds `accepted` to the message's [`PartialSend`]. A part already recorded keeps its first
/// id: a resend's answer repeats the earlier parts' ids, and those are the ones the receipts
/// will name.
fn merge_parts(m: &mut Message, accepted: PartsAccepted) -> Result<()> {
    let partial = m.partial.get_or_insert_with(|| PartialSend {
        total: accepted.total,
        reference: accepted.reference,
        layout: accepted.layout.clone(),
        provider_id: accepted.provider_id,
        accepted: Vec::new(),
    });
    if (partial.total, partial.reference, &partial.layout)
        != (accepted.total, accepted.reference, &accepted.layout)
    {
        return Err(StoreError::Invalid {
            field: "partial",
            problem: format!(
                "parts of {} with reference {} ({}) do not continue {} parts with reference {} ({})",
                accepted.total,
                accepted.reference,
                accepted.layout,
                partial.total,
                partial.reference,
                partial.layout
            ),
        });
    }
    for (index, provider_msg_id) in accepted.parts {
        if index >= partial.total {
            return Err(StoreError::Invalid {
                field: "partial",
                problem: format!("part {index} of {} parts", partial.total),
            });
        }
        if partial.part(index).is_none() {
            partial.accepted.push(AcceptedPart {
                index,
                provider_id: accepted.provider_id,
                provider_msg_id,
            });
        }
    }
    partial.accepted.sort_by_key(|p| p.index);
    partial.provider_id = accepted.provider_id;
    Ok(())
}

impl Store {
    /// Leases up to `max` ready messages of one organization, highest priority first, then in
    /// enqueue order; they move to in-flight atomically.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn lease(&self, org: Id, max: usize) -> Result<Vec<Message>> {
        self.writer()
            .run(move |ctx| lease_op(ctx, org, max, now_ms()))
            .await
    }

    /// Runs a named transition on the writer.
    async fn transition(
        &self,
        org: Id,
        id: Id,
        step: impl FnOnce(&mut Message) -> Result<Step> + Send + 'static,
    ) -> Result<Transition> {
        self.writer()
            .run(move |ctx| transition_op(ctx, org, id, now_ms(), step))
            .await
    }

    /// Acknowledges an in-flight message as SUBMITTED with the provider's ids, and indexes them
    /// for receipt correlation. [`Transition::Stale`] when it is no longer in flight.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], storage errors.
    pub async fn ack_submitted(&self, org: Id, id: Id, submitted: Submitted) -> Result<Transition> {
        let now = now_ms();
        self.transition(org, id, move |m| {
            if !in_flight(m) {
                return Ok(Step::Stale);
            }
            m.status = MessageStatus::Submitted;
            m.queue = QueuePlace::Done;
            m.provider_id = Some(submitted.provider_id);
            m.provider_msg_id = submitted.provider_msg_ids.first().cloned();
            m.provider_msg_ids = submitted.provider_msg_ids;
            m.submitted_at = Some(now);
            m.receipt_due_at = submitted.receipt_due_at;
            if let Some(cost) = submitted.cost_per_segment {
                m.cost_per_segment = Some(cost);
                m.total_cost = Some(cost.saturating_mul(i64::from(m.segments)));
            }
            Ok(Step::Apply(MessageUpdate {
                event_type: "SUBMITTED".into(),
                detail: submitted.detail,
                metadata: None,
            }))
        })
        .await
    }

    /// Records the parts a provider accepted of an in-flight multipart message it did not
    /// accept whole, with a PARTS_ACCEPTED event, and indexes their ids for receipts. The
    /// message stays in flight: the caller then requeues, retries, fails over or finalizes it.
    /// [`Transition::Stale`] when it is no longer in flight.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the parts do not continue those recorded before (another
    /// part count, reference or layout) or an index is out of range: nothing is written then.
    /// [`StoreError::NotFound`], storage errors.
    pub async fn record_accepted_parts(
        &self,
        org: Id,
        id: Id,
        accepted: PartsAccepted,
    ) -> Result<Transition> {
        let indexes: Vec<u32> = accepted.parts.iter().map(|(i, _)| *i).collect();
        let update = MessageUpdate {
            event_type: "PARTS_ACCEPTED".into(),
            detail: accepted.detail.clone(),
            metadata: Some(serde_json::json!({
                "providerId": accepted.provider_id,
                "parts": indexes,
                "total": accepted.total,
                "reference": accepted.reference,
            })),
        };
        self.transition(org, id, move |m| {
            if !in_flight(m) {
                return Ok(Step::Stale);
            }
            merge_parts(m, accepted)?;
            Ok(Step::Apply(update))
        })
        .await
    }

    /// Sends an in-flight message back to wait until `due` (a retry): QUEUED, `retryCount`
    /// incremented, RETRY event with the reason. [`Transition::Stale`] when it is no longer in
    /// flight.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], storage errors.
    pub async fn retry_at(
        &self,
        org: Id,
        id: Id,
        due: Millis,
        reason: String,
    ) -> Result<Transition> {
        self.transition(org, id, move |m| {
            if !in_flight(m) {
                return Ok(Step::Stale);
            }
            m.status = MessageStatus::Queued;
            m.retry_count += 1;
            m.next_retry_at = Some(due);
            m.queue = QueuePlace::Due { at: due };
            Ok(Step::Apply(MessageUpdate::new("RETRY").detail(reason)))
        })
        .await
    }

    /// Puts an in-flight message back at the end of the ready queue without counting a retry
    /// (its session died before it was sent), with an event of `event_type` saying why.
    /// [`Transition::Stale`] when it is no longer in flight.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], storage errors.
    pub async fn requeue(
        &self,
        org: Id,
        id: Id,
        event_type: &str,
        reason: String,
    ) -> Result<Transition> {
        let update = MessageUpdate::new(event_type).detail(reason);
        self.transition(org, id, move |m| {
            if !in_flight(m) {
                return Ok(Step::Stale);
            }
            m.status = MessageStatus::Queued;
            m.queue = QueuePlace::Ready { seq: 0 };
            Ok(Step::Apply(update))
        })
        .await
    }

    /// Adds an event to an in-flight message's timeline without changing it (a failover, an
    /// in-doubt answer). [`Transition::Stale`] when it is no longer in flight.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], storage errors.
    pub async fn note_in_flight(
        &self,
        org: Id,
        id: Id,
        event_type: &str,
        detail: String,
    ) -> Result<Transition> {
        let update = MessageUpdate::new(event_type).detail(detail);
        self.transition(org, id, move |m| {
            Ok(if in_flight(m) {
                Step::Apply(update)
            } else {
                Step::Stale
            })
        })
        .await
    }

    /// Puts a message in a final status (FAILED, REJECTED, EXPIRED, DELIVERED) and out of the
    /// queue, wherever it was. [`Transition::Duplicate`] when it already is in that status,
    /// [`Transition::Stale`] when it already is in another final one.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a status that is not final; [`StoreError::NotFound`],
    /// storage errors.
    pub async fn finalize(
        &self,
        org: Id,
        id: Id,
        status: MessageStatus,
        error_code: Option<String>,
        reason: Option<String>,
    ) -> Result<Transition> {
        if !status.is_final() {
            return Err(StoreError::Invalid {
                field: "status",
                problem: format!("{} is not final", status.as_str()),
            });
        }
        let update = MessageUpdate {
            event_type: status.as_str().into(),
            detail: reason.clone(),
            metadata: None,
        };
        let now = now_ms();
        self.transition(org, id, move |m| {
            if m.status == status {
                return Ok(Step::Duplicate);
            }
            if m.status.is_final() {
                return Ok(Step::Stale);
            }
            m.status = status;
            m.queue = QueuePlace::Done;
            m.status_message = reason;
            if error_code.is_some() {
                m.error_code = error_code;
            }
            if status == MessageStatus::Delivered {
                m.delivered_at = Some(now);
            }
            Ok(Step::Apply(update))
        })
        .await
    }

    /// Fails a message still waiting in the queue (ready, due or held) before it is sent: a
    /// customer's cancel. [`Transition::Stale`] when it already left the queue.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], storage errors.
    pub async fn cancel_queued(
        &self,
        org: Id,
        id: Id,
        error_code: &str,
        reason: String,
    ) -> Result<Transition> {
        let error_code = error_code.to_owned();
        self.transition(org, id, move |m| {
            if !matches!(m.queue, QueuePlace::Ready { .. } | QueuePlace::Due { .. }) {
                return Ok(Step::Stale);
            }
            m.status = MessageStatus::Failed;
            m.queue = QueuePlace::Done;
            m.error_code = Some(error_code);
            m.status_message = Some(reason.clone());
            Ok(Step::Apply(MessageUpdate::new("FAILED").detail(reason)))
        })
        .await
    }

    /// Applies a delivery receipt (blueprint §8.1: SUBMITTED → SENT → DELIVERED, or a failure
    /// status). A receipt for one part of a multipart message records that part
    /// (PART_DELIVERED, status unchanged) until every part is delivered, then the message is.
    /// [`Transition::Duplicate`] for a receipt already applied (the message is final, or it
    /// repeats SENT or a part already recorded): except that a message EXPIRED by the receipt
    /// timeout takes a late final receipt, which records the real outcome and clears the
    /// RECEIPT_TIMEOUT error code. [`Transition::Stale`] for an intermediate
    /// receipt of a part while the rest of the message still waits to be sent.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], storage errors.
    pub async fn apply_receipt(
        &self,
        org: Id,
        id: Id,
        receipt: ReceiptUpdate,
    ) -> Result<Transition> {
        self.transition(org, id, move |m| Ok(receipt_step(m, receipt)))
            .await
    }

    /// Moves scheduled and retry messages whose time has come into the ready queue (at most
    /// `max`); returns the organizations that got work.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn promote_due(&self, now: Millis, max: usize) -> Result<Vec<Id>> {
        self.writer()
            .run(move |ctx| promote_op(ctx, now, max))
            .await
    }

    /// When the earliest due message becomes ready, if any.
    ///
    /// # Errors
    /// Storage errors.
    pub fn next_due(&self) -> Result<Option<Millis>> {
        let start = Key::new(space::DUE).u64(self.floors().due()).build();
        let end = prefix_end(&Key::new(space::DUE).build());
        Ok(self
            .kv()
            .range(start..end)
            .keys()
            .next()
            .transpose()?
            .and_then(|k| u64_at(&k, 1)))
    }

    /// Organizations that have ready messages, in id order.
    ///
    /// # Errors
    /// Storage errors.
    pub fn ready_orgs(&self) -> Result<Vec<Id>> {
        let mut orgs = Vec::new();
        // One seek per organization, from where its live queue begins.
        for (org, floor) in self.floors().ready_orgs() {
            let end = prefix_end(&Key::new(space::READY).u64(org).build());
            if self.kv().range(floor..end).next().transpose()?.is_some() {
                orgs.push(org);
            }
        }
        Ok(orgs)
    }

    /// Ready messages of an organization.
    ///
    /// # Errors
    /// Storage errors.
    pub fn ready_count(&self, org: Id) -> Result<u64> {
        let start = self.floors().ready_start(org);
        let end = prefix_end(&Key::new(space::READY).u64(org).build());
        Ok(self.kv().range(start..end).count() as u64)
    }

    /// Messages of an organization that are in flight.
    ///
    /// # Errors
    /// Storage errors.
    pub fn in_flight(&self, org: Id) -> Result<Vec<Id>> {
        let prefix = Key::new(space::IN_FLIGHT).u64(org).build();
        self.kv()
            .scan_prefix(prefix)
            .keys()
            .map(|k| Ok(u64_at(&k?, 9).unwrap_or_default()))
            .collect()
    }
}
