//! Messages: enqueue, read, list, and the one way to change a message ([`transition_op`], under
//! every named transition), which rewrites the record, its event, its outbox entry and every
//! index entry derived from it in one batch.

use crate::kv::{Batch, Kv};

use crate::error::{Result, StoreError};
use crate::keys::{Key, prefix_end, space, trailing_id, u64_at};
use crate::model::{Direction, Id, Message, MessageEvent, MessageStatus, Millis, QueuePlace};
use crate::outbox;
use crate::value::{decode, encode};
use crate::writer::Ctx;
use crate::{Store, now_ms};

/// The variant byte of a campaign message that has none (the value of its `MSG_BY_CAMPAIGN`
/// entry).
pub(crate) const NO_VARIANT: u8 = u8::MAX;

/// The outcome of [`Store::enqueue`].
#[derive(Debug, Clone, PartialEq)]
pub enum Enqueued {
    /// A new message, durable and queued.
    Created(Message),
    /// The organization already has a message with this idempotency key: that one, unchanged.
    Duplicate(Message),
}

impl Enqueued {
    /// The stored message.
    pub fn message(&self) -> &Message {
        match self {
            Self::Created(m) | Self::Duplicate(m) => m,
        }
    }

    /// Whether the idempotency key matched an existing message.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Self::Duplicate(_))
    }
}

/// The event recorded with a change of a message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MessageUpdate {
    /// QUEUED, SUBMITTED, DELIVERED, RETRY, RESUBMITTED_AFTER_RESTART, IN_DOUBT, …
    pub event_type: String,
    /// Human-readable detail.
    pub detail: Option<String>,
    /// Raw provider data.
    pub metadata: Option<serde_json::Value>,
}

impl MessageUpdate {
    /// An event of this type, without detail.
    pub fn new(event_type: impl Into<String>) -> Self {
        Self {
            event_type: event_type.into(),
            ..Self::default()
        }
    }

    /// With a detail.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// Which messages to list. Every filter is within one organization.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageFilter {
    /// Only this direction.
    pub direction: Option<Direction>,
    /// Only this status.
    pub status: Option<MessageStatus>,
    /// Only to this number (E.164).
    pub to_number: Option<String>,
    /// Only of this campaign.
    pub campaign_id: Option<Id>,
    /// Created at or after.
    pub created_from: Option<Millis>,
    /// Created before.
    pub created_to: Option<Millis>,
}

impl MessageFilter {
    fn matches(&self, m: &Message) -> bool {
        self.direction.is_none_or(|d| m.direction == d)
            && self.status.is_none_or(|s| m.status == s)
            && self.to_number.as_ref().is_none_or(|t| &m.to_number == t)
            && self.campaign_id.is_none_or(|c| m.campaign_id == Some(c))
            && self.created_from.is_none_or(|f| m.created_at >= f)
            && self.created_to.is_none_or(|t| m.created_at < t)
    }
}

/// A page request: `limit` items after skipping `offset`, in a stable order (newest first).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Items to skip.
    pub offset: u64,
    /// Items to return (at most 1,000).
    pub limit: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            offset: 0,
            limit: 50,
        }
    }
}

/// Most items one page returns.
pub const MAX_PAGE: u32 = 1000;

/// One page of a listing, with the total number of matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// How many match in all.
    pub total: u64,
    /// The request's offset.
    pub offset: u64,
    /// The request's limit (after clamping).
    pub limit: u32,
}

pub(crate) fn message_key(org: Id, id: Id) -> Vec<u8> {
    Key::new(space::MESSAGE).u64(org).u64(id).build()
}

fn event_key(id: Id, seq: u32) -> Vec<u8> {
    Key::new(space::EVENT).u64(id).u32(seq).build()
}

/// Every index and queue entry a message implies. Updates remove what the old state implied and
/// write what the new one does, so indexes can never disagree with records.
pub(crate) fn derived_entries(m: &Message) -> Vec<(Vec<u8>, Vec<u8>)> {
    let org = m.organization_id;
    let mut out = Vec::with_capacity(8);
    out.push((
        Key::new(space::MSG_BY_DIR)
            .u64(org)
            .u8(m.direction.code())
            .u64(m.created_at)
            .u64(m.id)
            .build(),
        Vec::new(),
    ));
    out.push((
        Key::new(space::MSG_BY_STATUS)
            .u64(org)
            .u8(m.status.code())
            .u64(m.id)
            .build(),
        Vec::new(),
    ));
    out.push((
        Key::new(space::MSG_BY_TO)
            .u64(org)
            .str0(&m.to_number)
            .u64(m.created_at)
            .u64(m.id)
            .build(),
        Vec::new(),
    ));
    if let Some(campaign) = m.campaign_id {
        // The variant rides in the value, so one snapshot scan of the campaign's range counts
        // both statuses and variants.
        out.push((
            Key::new(space::MSG_BY_CAMPAIGN)
                .u64(org)
                .u64(campaign)
                .u8(m.status.code())
                .u64(m.id)
                .build(),
            vec![m.campaign_variant.unwrap_or(NO_VARIANT)],
        ));
    }
    if let Some(key) = &m.idempotency_key {
        out.push((
            Key::new(space::IDEMPOTENCY)
                .u64(org)
                .tail(key.as_bytes())
                .build(),
            m.id.to_be_bytes().to_vec(),
        ));
    }
    let org_id = Key::new(0).u64(org).u64(m.id).build()[1..].to_vec();
    let by_provider = |provider: Id, pid: &str| {
        (
            Key::new(space::MSG_BY_PROVIDER_ID)
                .u64(provider)
                .tail(pid.as_bytes())
                .build(),
            org_id.clone(),
        )
    };
    // A part accepted through another provider than the one that took the rest is indexed
    // under the provider whose receipt will name it (below), not under `provider_id`.
    let through_other = |index: usize, provider: Id| {
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        m.partial
            .as_ref()
            .and_then(|p| p.part(index))
            .is_some_and(|part| part.provider_id != provider)
    };
    if let Some(provider) = m.provider_id {
        let ids = m.provider_msg_ids.iter().enumerate();
        for (index, pid) in ids.chain(m.provider_msg_id.iter().map(|pid| (0, pid))) {
            if !through_other(index, provider) {
                out.push(by_provider(provider, pid));
            }
        }
    }
    if let Some(partial) = &m.partial {
        for part in &partial.accepted {
            out.push(by_provider(part.provider_id, &part.provider_msg_id));
        }
    }
    match m.queue {
        QueuePlace::Ready { seq } => out.push((
            Key::new(space::READY)
                .u64(org)
                .u8(m.priority.0)
                .u64(seq)
                .build(),
            m.id.to_be_bytes().to_vec(),
        )),
        QueuePlace::Due { at } => {
            out.push((
                Key::new(space::DUE).u64(at).u64(org).u64(m.id).build(),
                Vec::new(),
            ));
        }
        QueuePlace::InFlight { since } => out.push((
            Key::new(space::IN_FLIGHT).u64(org).u64(m.id).build(),
            since.to_be_bytes().to_vec(),
        )),
        QueuePlace::Done => {}
    }
    if let Some(at) = m.receipt_due_at
        && matches!(m.status, MessageStatus::Submitted | MessageStatus::Sent)
    {
        out.push((
            Key::new(space::RECEIPT_DUE)
                .u64(at)
                .u64(org)
                .u64(m.id)
                .build(),
            Vec::new(),
        ));
    }
    out
}

/// Writes the change from `old` to `new` (either may be absent) into `batch`: only the entries
/// that change, so an update that leaves an index alone does not rewrite it.
///
/// A provider message id belongs to the latest message submitted with it (carriers reuse ids):
/// a submission takes the id over, an older message's later changes leave it alone, and an
/// entry is removed only by the message it points to.
pub(crate) fn write_message(
    tree: &Kv,
    batch: &mut Batch,
    old: Option<&Message>,
    new: Option<&Message>,
) -> Result<()> {
    // At most nine entries each: a linear diff is cheaper than building maps on every write.
    let old_entries = old.map(derived_entries).unwrap_or_default();
    let new_entries = new.map(derived_entries).unwrap_or_default();
    let in_new = |key: &[u8]| new_entries.iter().any(|(k, _)| k.as_slice() == key);
    for (key, value) in &old_entries {
        if in_new(key) {
            continue;
        }
        if key.first() == Some(&space::MSG_BY_PROVIDER_ID)
            && tree
                .get(key)?
                .is_some_and(|owner| owner.as_ref() != value.as_slice())
        {
            continue;
        }
        batch.remove(key.as_slice());
    }
    for (i, (key, value)) in new_entries.iter().enumerate() {
        // A key twice (one provider id for two parts) is written once: its first value.
        let repeated = new_entries[..i].iter().any(|(k, _)| k == key);
        let unchanged = old_entries.iter().any(|(k, v)| k == key && v == value);
        if !repeated && !unchanged {
            batch.insert(key, value);
        }
    }
    match (old, new) {
        (Some(old), None) => batch.remove(message_key(old.organization_id, old.id)),
        (_, Some(new)) => batch.insert(message_key(new.organization_id, new.id), encode(new)?),
        (None, None) => {}
    }
    Ok(())
}

/// Appends an event for the message's current status to its trail.
pub(crate) fn push_event(
    batch: &mut Batch,
    m: &mut Message,
    update: MessageUpdate,
    now: Millis,
) -> Result<()> {
    let event = MessageEvent {
        seq: m.event_count,
        message_id: m.id,
        event_type: update.event_type,
        status: m.status,
        detail: update.detail,
        metadata: update.metadata,
        occurred_at: now,
    };
    m.event_count += 1;
    batch.insert(event_key(m.id, event.seq), encode(&event)?);
    Ok(())
}

pub(crate) fn load_message(tree: &Kv, org: Id, id: Id) -> Result<Message> {
    let key = message_key(org, id);
    match tree.get(&key)? {
        Some(bytes) => decode(&key, &bytes),
        None => Err(StoreError::NotFound {
            entity: "message",
            id,
        }),
    }
}

pub(crate) fn next_id(ctx: &mut Ctx) -> Result<Id> {
    ctx.next_id()
}

fn validate(m: &Message) -> Result<()> {
    if m.to_number.contains('\0') {
        return Err(StoreError::Invalid {
            field: "toNumber",
            problem: "contains NUL".into(),
        });
    }
    if m.organization_id == 0 {
        return Err(StoreError::Invalid {
            field: "organizationId",
            problem: "must be set".into(),
        });
    }
    if m.idempotency_key
        .as_ref()
        .is_some_and(|k| k.is_empty() || k.len() > 255)
    {
        return Err(StoreError::Invalid {
            field: "idempotencyKey",
            problem: "must be 1 to 255 bytes".into(),
        });
    }
    Ok(())
}

pub(crate) fn enqueue_op(ctx: &mut Ctx, mut m: Message, now: Millis) -> Result<Enqueued> {
    validate(&m)?;
    if let Some(key) = &m.idempotency_key {
        let idem = Key::new(space::IDEMPOTENCY)
            .u64(m.organization_id)
            .tail(key.as_bytes())
            .build();
        if let Some(id) = ctx.kv.get(&idem)?.and_then(|v| u64_at(&v, 0)) {
            return Ok(Enqueued::Duplicate(load_message(
                &ctx.kv,
                m.organization_id,
                id,
            )?));
        }
    }
    m.id = next_id(ctx)?;
    if m.created_at == 0 {
        m.created_at = now;
    }
    m.queued_at = now;
    m.updated_at = now;
    m.event_count = 0;
    let event = match m.direction {
        Direction::Inbound => {
            m.status = MessageStatus::Received;
            m.queue = QueuePlace::Done;
            MessageUpdate::new("RECEIVED")
        }
        Direction::Outbound => {
            m.status = MessageStatus::Queued;
            m.queue = match m.scheduled_at {
                Some(at) if at > now => QueuePlace::Due { at },
                _ => QueuePlace::Ready { seq: next_id(ctx)? },
            };
            MessageUpdate::new("QUEUED")
        }
    };
    let mut batch = Batch::default();
    let event_type = event.event_type.clone();
    push_event(&mut batch, &mut m, event, now)?;
    write_message(&ctx.kv, &mut batch, None, Some(&m))?;
    outbox::record(ctx, &mut batch, &m, &event_type, now)?;
    ctx.apply(batch)?;
    Ok(Enqueued::Created(m))
}

pub(crate) fn update_op(
    ctx: &mut Ctx,
    org: Id,
    id: Id,
    update: MessageUpdate,
    now: Millis,
    change: impl FnOnce(&mut Message) -> Result<()>,
) -> Result<Message> {
    let outcome = transition_op(ctx, org, id, now, |m| {
        change(m)?;
        Ok(Step::Apply(update))
    })?;
    Ok(outcome.into_message())
}

/// What a transition decides, looking at the message (a copy it may change).
pub(crate) enum Step {
    /// Write the changed copy, with an event of this type.
    Apply(MessageUpdate),
    /// The message already is where the transition would take it: write nothing.
    Duplicate,
    /// The message has moved on and the transition no longer applies: write nothing.
    Stale,
}

/// The outcome of a named transition of a message (an acknowledgement, a receipt, a retry,
/// …). None is an error: a repeated receipt or an answer for a message that moved on are
/// normal, and the caller reads which it was.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Written: the message as it is now.
    Applied(Message),
    /// Nothing to do, the message already is there (a repeated receipt): as it is.
    Duplicate(Message),
    /// Nothing done, the message has moved on (no longer in flight, already final): as it is.
    Stale(Message),
}

impl Transition {
    /// Whether it was written.
    pub fn is_applied(&self) -> bool {
        matches!(self, Self::Applied(_))
    }

    /// The message as it is now, whatever the outcome.
    pub fn message(&self) -> &Message {
        match self {
            Self::Applied(m) | Self::Duplicate(m) | Self::Stale(m) => m,
        }
    }

    /// The message as it is now, whatever the outcome.
    pub fn into_message(self) -> Message {
        match self {
            Self::Applied(m) | Self::Duplicate(m) | Self::Stale(m) => m,
        }
    }
}

impl std::ops::Deref for Transition {
    type Target = Message;

    fn deref(&self) -> &Message {
        self.message()
    }
}

/// Runs one transition: `step` looks at (and may change) a copy of the message; when it
/// applies, the record, its event, its outbox entry (when the status changed) and every index
/// entry are written in one batch.
pub(crate) fn transition_op(
    ctx: &mut Ctx,
    org: Id,
    id: Id,
    now: Millis,
    step: impl FnOnce(&mut Message) -> Result<Step>,
) -> Result<Transition> {
    let old = load_message(&ctx.kv, org, id)?;
    let mut new = old.clone();
    let update = match step(&mut new)? {
        Step::Apply(update) => update,
        Step::Duplicate => return Ok(Transition::Duplicate(old)),
        Step::Stale => return Ok(Transition::Stale(old)),
    };
    new.id = old.id;
    new.organization_id = old.organization_id;
    new.updated_at = now;
    if new.queue == (QueuePlace::Ready { seq: 0 }) {
        new.queue = QueuePlace::Ready { seq: next_id(ctx)? };
    }
    validate(&new)?;
    let mut batch = Batch::default();
    let event_type = (new.status != old.status).then(|| update.event_type.clone());
    push_event(&mut batch, &mut new, update, now)?;
    write_message(&ctx.kv, &mut batch, Some(&old), Some(&new))?;
    // Every status change is announced through the outbox, in the change's own batch.
    if let Some(event_type) = event_type {
        outbox::record(ctx, &mut batch, &new, &event_type, now)?;
    }
    ctx.apply(batch)?;
    Ok(Transition::Applied(new))
}

impl Store {
    /// Stores a new message with its QUEUED event (RECEIVED for inbound) and queue entry, and
    /// returns once that is durable. The store sets `id`, `status`, `queue`, `queuedAt` and
    /// `updatedAt` (and `createdAt` when 0). A message with `scheduledAt` in the future waits in
    /// the due index. With an idempotency key the organization has used before, nothing is
    /// written and the earlier message is returned as [`Enqueued::Duplicate`].
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a message the store cannot index, storage errors.
    pub async fn enqueue(&self, message: Message) -> Result<Enqueued> {
        self.writer()
            .run(move |ctx| enqueue_op(ctx, message, now_ms()))
            .await
    }

    /// [`Store::enqueue`] for callers outside an async runtime.
    ///
    /// # Errors
    /// As [`Store::enqueue`].
    pub fn enqueue_blocking(&self, message: Message) -> Result<Enqueued> {
        self.writer()
            .run_blocking(move |ctx| enqueue_op(ctx, message, now_ms()))
    }

    /// Changes a message any way `change` likes, outside the state machine: for tests and
    /// tools that need a message in a given state. The gateway itself changes messages only
    /// through the named transitions ([`Store::ack_submitted`], [`Store::apply_receipt`],
    /// [`Store::retry_at`], …), which check the state machine. `change` edits a copy; the
    /// record, an event of `update`'s type, its outbox entry (when the status changed) and every
    /// index entry are written in one batch. Setting `queue` to `Ready { seq: 0 }` puts the
    /// message at the back of its priority's ready queue.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the organization has no such message, or what `change`
    /// returns (nothing is written then).
    #[doc(hidden)]
    pub async fn update_message(
        &self,
        org: Id,
        id: Id,
        update: MessageUpdate,
        change: impl FnOnce(&mut Message) -> Result<()> + Send + 'static,
    ) -> Result<Message> {
        self.writer()
            .run(move |ctx| update_op(ctx, org, id, update, now_ms(), change))
            .await
    }

    /// A message of the organization.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], also for another organization's message.
    pub fn message(&self, org: Id, id: Id) -> Result<Message> {
        load_message(self.kv(), org, id)
    }

    /// A message's audit trail, oldest first.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the organization has no such message.
    pub fn events(&self, org: Id, id: Id) -> Result<Vec<MessageEvent>> {
        self.message(org, id)?;
        let prefix = Key::new(space::EVENT).u64(id).build();
        self.kv()
            .scan_prefix(&prefix)
            .map(|entry| {
                let (key, value) = entry?;
                decode(&key, &value)
            })
            .collect()
    }

    /// The organization's message with this idempotency key.
    ///
    /// # Errors
    /// Storage errors.
    pub fn message_by_idempotency_key(&self, org: Id, key: &str) -> Result<Option<Message>> {
        let idem = Key::new(space::IDEMPOTENCY)
            .u64(org)
            .tail(key.as_bytes())
            .build();
        match self.kv().get(idem)?.and_then(|v| u64_at(&v, 0)) {
            Some(id) => self.message(org, id).map(Some),
            None => Ok(None),
        }
    }

    /// The message a provider knows by `provider_msg_id` (any part's id), for receipts.
    ///
    /// # Errors
    /// Storage errors.
    pub fn message_by_provider_id(
        &self,
        provider_id: Id,
        provider_msg_id: &str,
    ) -> Result<Option<Message>> {
        let key = Key::new(space::MSG_BY_PROVIDER_ID)
            .u64(provider_id)
            .tail(provider_msg_id.as_bytes())
            .build();
        match self.kv().get(key)? {
            Some(v) => match (u64_at(&v, 0), u64_at(&v, 8)) {
                (Some(org), Some(id)) => self.message(org, id).map(Some),
                _ => Err(StoreError::Corrupt {
                    key: crate::value::hex(provider_msg_id.as_bytes()),
                    problem: "bad provider index entry".into(),
                }),
            },
            None => Ok(None),
        }
    }

    /// One page of the organization's messages matching `filter`, newest first, with the total.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_messages(
        &self,
        org: Id,
        filter: &MessageFilter,
        page: PageRequest,
    ) -> Result<Page<Message>> {
        let limit = page.limit.clamp(1, MAX_PAGE);
        // The index that covers the most of the filter; what it does not cover (`residual`)
        // is checked on the record, and only then are records loaded to count.
        let mut residual = filter.clone();
        let prefix = if let Some(c) = filter.campaign_id {
            residual.campaign_id = None;
            match residual.status.take() {
                Some(s) => Key::new(space::MSG_BY_CAMPAIGN)
                    .u64(org)
                    .u64(c)
                    .u8(s.code())
                    .build(),
                None => Key::new(space::MSG_BY_CAMPAIGN).u64(org).u64(c).build(),
            }
        } else if let Some(s) = residual.status.take() {
            Key::new(space::MSG_BY_STATUS).u64(org).u8(s.code()).build()
        } else if let Some(to) = residual.to_number.take() {
            Key::new(space::MSG_BY_TO).u64(org).str0(&to).build()
        } else if let Some(d) = residual.direction.take() {
            Key::new(space::MSG_BY_DIR).u64(org).u8(d.code()).build()
        } else {
            Key::new(space::MESSAGE).u64(org).build()
        };
        let check_records = residual != MessageFilter::default();
        let end = prefix_end(&prefix);
        let mut items = Vec::new();
        let mut total = 0u64;
        // Every index key ends in the message id and ids grow with time, so reverse key order
        // within the prefix is newest first.
        for entry in self.kv().range(prefix..end).rev() {
            let (key, _) = entry?;
            let Some(id) = trailing_id(&key) else {
                continue;
            };
            let on_page = total >= page.offset && items.len() < limit as usize;
            if check_records || on_page {
                let message = match self.message(org, id) {
                    Ok(m) => m,
                    Err(StoreError::NotFound { .. }) => continue,
                    Err(e) => return Err(e),
                };
                if !residual.matches(&message) {
                    continue;
                }
                if on_page {
                    items.push(message);
                }
            }
            total += 1;
        }
        Ok(Page {
            items,
            total,
            offset: page.offset,
            limit,
        })
    }
}
