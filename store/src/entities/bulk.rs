//! Batched operations for CSV imports and campaigns: many contacts upserted in one writer turn
//! and one sled batch, many messages enqueued under one flush, a campaign's own audience
//! (inline or uploaded recipients, one entry per phone), cursors over audiences, and a
//! campaign's message counts read from its index.
//!
//! The store does about ten thousand single operations a second, each waiting for its group
//! commit; an import of a million rows or a campaign of a hundred thousand recipients needs
//! thousands of rows per writer turn instead.

use std::collections::{HashMap, HashSet};

use crate::kv::Batch;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::keys::{self, Key, prefix_end, space, trailing_id, u64_at};
use crate::messages::{
    Enqueued, MessageUpdate, NO_VARIANT, Step, Transition, enqueue_op, next_id, transition_op,
};
use crate::model::{
    Campaign, CampaignStatus, Contact, Group, Id, Message, MessageStatus, Millis, QueuePlace,
};
use crate::value::{decode, encode};
use crate::writer::Ctx;
use crate::{Store, now_ms};

/// The due time of a paused campaign's held messages: never promoted on its own.
const HELD: Millis = Millis::MAX;

use super::contacts::{check_phone, id_by_phone, merge};
use super::{Record, encode_record, load, rewrite_op, write_record};

/// Most rows one [`Store::upsert_contacts_by_phone`] call takes (one batch).
pub const MAX_ROWS_PER_CALL: usize = 20_000;

/// What became of one row of [`Store::upsert_contacts_by_phone`].
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// A new contact.
    Created(Id),
    /// The organization's contact with that phone, updated (also a row repeating a phone
    /// an earlier row of the same import created).
    Updated(Id),
    /// Not written: the reason (an invalid field).
    Invalid(String),
}

/// One recipient of a campaign's own audience.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Recipient {
    /// E.164 (also the entry's key, so a phone is in the audience once).
    pub phone: String,
    /// Template variables of this recipient.
    pub variables: Option<serde_json::Value>,
    /// Position in the audience, from 0, given by the store (it names the recipient in the
    /// message's idempotency key, so the key never holds the phone).
    pub seq: u64,
}

/// A campaign's messages by status, counted from its index: exact at the moment of reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CampaignCounts {
    /// Every message of the campaign.
    pub total: u64,
    /// Waiting in the queue.
    pub queued: u64,
    /// Accepted by a provider, no receipt yet.
    pub submitted: u64,
    /// An intermediate receipt said it left for the network.
    pub sent: u64,
    /// Delivered.
    pub delivered: u64,
    /// Failed.
    pub failed: u64,
    /// Rejected.
    pub rejected: u64,
    /// Expired.
    pub expired: u64,
}

impl CampaignCounts {
    /// Messages that left the queue for a provider: `sentCount` of the campaign.
    pub fn handed_over(&self) -> u64 {
        self.submitted + self.sent + self.delivered + self.failed + self.expired
    }

    /// Messages that did not arrive after a provider took them: `failedCount` of the campaign
    /// (failed or expired; rejected ones are counted apart).
    pub fn failed_or_expired(&self) -> u64 {
        self.failed + self.expired
    }

    /// Delivered out of handed over, 0 to 1 (0 before any was handed over). The campaign's
    /// stats and the analytics both show this, so they cannot disagree.
    pub fn delivery_rate(&self) -> f64 {
        match self.handed_over() {
            0 => 0.0,
            #[allow(clippy::cast_precision_loss)] // A ratio for display.
            n => self.delivered as f64 / n as f64,
        }
    }

    /// Counts one index entry by its status code (inbound and unknown codes are not counted).
    fn add(&mut self, code: u8) {
        let slot = match MessageStatus::ALL.into_iter().find(|s| s.code() == code) {
            Some(MessageStatus::Queued) => &mut self.queued,
            Some(MessageStatus::Submitted) => &mut self.submitted,
            Some(MessageStatus::Sent) => &mut self.sent,
            Some(MessageStatus::Delivered) => &mut self.delivered,
            Some(MessageStatus::Failed) => &mut self.failed,
            Some(MessageStatus::Rejected) => &mut self.rejected,
            Some(MessageStatus::Expired) => &mut self.expired,
            Some(MessageStatus::Received) | None => return,
        };
        *slot += 1;
        self.total += 1;
    }
}

fn recipient_key(campaign: Id, phone: &str) -> Vec<u8> {
    Key::new(space::CAMPAIGN_RECIPIENT)
        .u64(campaign)
        .tail(phone.as_bytes())
        .build()
}

/// `[CAMPAIGN_RECIPIENT][campaign]` itself holds the audience's size (the next `seq`).
fn recipients_prefix(campaign: Id) -> Vec<u8> {
    Key::new(space::CAMPAIGN_RECIPIENT).u64(campaign).build()
}

/// One row onto the batch: validated, then created or merged into the existing contact.
fn upsert_row(
    ctx: &mut Ctx,
    batch: &mut Batch,
    pending: &mut HashMap<String, Contact>,
    mut row: Contact,
    now: Millis,
) -> Result<RowOutcome> {
    check_phone(&row.phone_number)?;
    // Taken, not cloned: it goes back into `pending` below as the row's result.
    let existing = match pending.remove(&row.phone_number) {
        Some(c) => Some(c),
        None => match id_by_phone(&ctx.kv, row.organization_id, &row.phone_number)? {
            Some(id) => Some(load::<Contact>(&ctx.kv, None, row.organization_id, id)?),
            None => None,
        },
    };
    let (contact, outcome) = match existing {
        Some(old) => {
            let mut new = old.clone();
            merge(&mut new, row);
            new.stamp(old.id, old.organization_id, old.created_at, now);
            new.keep_owned(&old);
            if let Err(e) = new.validate() {
                // The row is refused; the contact (maybe only in this batch) stays known.
                pending.insert(old.phone_number.clone(), old);
                return Err(e);
            }
            write_record(&ctx.kv, None, batch, Some(&old), &new)?;
            let id = new.id;
            (new, RowOutcome::Updated(id))
        }
        None => {
            if row.is_opted_out && row.opted_out_at.is_none() {
                row.opted_out_at = Some(now);
            }
            row.validate()?;
            let created = match row.created_at {
                0 => now,
                at => at,
            };
            let org = row.organization_id;
            row.stamp(next_id(ctx)?, org, created, now);
            write_record(&ctx.kv, None, batch, None, &row)?;
            let id = row.id;
            (row, RowOutcome::Created(id))
        }
    };
    pending.insert(contact.phone_number.clone(), contact);
    Ok(outcome)
}

fn upsert_many_op(
    ctx: &mut Ctx,
    org: Id,
    rows: Vec<Contact>,
    group: Option<Id>,
    now: Millis,
) -> Result<Vec<RowOutcome>> {
    let mut group = match group {
        Some(id) => Some(load::<Group>(&ctx.kv, None, org, id)?),
        None => None,
    };
    let mut batch = Batch::default();
    // Reads do not see the batch: contacts written by earlier rows are looked up here.
    let mut pending: HashMap<String, Contact> = HashMap::with_capacity(rows.len());
    let mut joined: HashSet<Id> = HashSet::new();
    let mut out = Vec::with_capacity(rows.len());
    for mut row in rows {
        row.organization_id = org;
        let outcome = match upsert_row(ctx, &mut batch, &mut pending, row, now) {
            Ok(outcome) => outcome,
            Err(StoreError::Invalid { field, problem }) => {
                RowOutcome::Invalid(format!("{field}: {problem}"))
            }
            Err(e) => return Err(e),
        };
        if let (Some(group), RowOutcome::Created(id) | RowOutcome::Updated(id)) =
            (group.as_mut(), &outcome)
        {
            let member = keys::group_member(group.id, *id);
            if !joined.contains(id) && !ctx.kv.contains_key(&member)? {
                batch.insert(member, now.to_be_bytes());
                batch.insert(keys::contact_group(*id, group.id), []);
                group.member_count = group.member_count.saturating_add(1);
                joined.insert(*id);
            }
        }
        out.push(outcome);
    }
    if let Some(mut group) = group
        && !joined.is_empty()
    {
        group.updated_at = now;
        let key = Group::key(org, group.id);
        batch.insert(key.as_slice(), encode_record(None, &key, &group)?);
    }
    ctx.apply(batch)?;
    Ok(out)
}

fn put_recipients_op(
    ctx: &mut Ctx,
    org: Id,
    campaign: Id,
    recipients: Vec<Recipient>,
) -> Result<(u64, u64)> {
    load::<Campaign>(&ctx.kv, None, org, campaign)?;
    let size_key = recipients_prefix(campaign);
    let mut next = ctx
        .kv
        .get(&size_key)?
        .and_then(|v| u64_at(&v, 0))
        .unwrap_or(0);
    let mut batch = Batch::default();
    let mut seen: HashSet<String> = HashSet::with_capacity(recipients.len());
    let (mut added, mut duplicates) = (0u64, 0u64);
    for mut r in recipients {
        check_phone(&r.phone)?;
        let key = recipient_key(campaign, &r.phone);
        if seen.contains(&r.phone) || ctx.kv.contains_key(&key)? {
            duplicates += 1;
            continue;
        }
        r.seq = next;
        next += 1;
        batch.insert(key, encode(&r)?);
        seen.insert(r.phone);
        added += 1;
    }
    batch.insert(size_key, next.to_be_bytes());
    ctx.apply(batch)?;
    Ok((added, duplicates))
}

impl Store {
    /// Creates or updates many contacts of the organization by phone in one writer turn and
    /// one batch (CSV import): each row as [`Store::upsert_contact_by_phone`] would, rows with
    /// the same phone applied in order, and, with `group`, every row's contact made a member
    /// (the group's `memberCount` moved in the same batch). A row that fails validation is
    /// reported and the others are written.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for a group the organization does not have,
    /// [`StoreError::Invalid`] for more than [`MAX_ROWS_PER_CALL`] rows, storage errors
    /// (nothing of the call is written then).
    pub async fn upsert_contacts_by_phone(
        &self,
        org: Id,
        rows: Vec<Contact>,
        group: Option<Id>,
    ) -> Result<Vec<RowOutcome>> {
        if rows.len() > MAX_ROWS_PER_CALL {
            return Err(StoreError::Invalid {
                field: "rows",
                problem: format!("at most {MAX_ROWS_PER_CALL} per call"),
            });
        }
        self.writer()
            .run(move |ctx| upsert_many_op(ctx, org, rows, group, now_ms()))
            .await
    }

    /// Enqueues many messages in one writer turn (one flush covers them all): each as
    /// [`Store::enqueue`] does, with its own batch, so an idempotency key repeated in the list
    /// is a duplicate of the first.
    ///
    /// # Errors
    /// The store closing; each message's own error is in its place in the list.
    pub async fn enqueue_many(&self, messages: Vec<Message>) -> Result<Vec<Result<Enqueued>>> {
        self.writer()
            .run(move |ctx| {
                let now = now_ms();
                Ok(messages
                    .into_iter()
                    .map(|m| enqueue_op(ctx, m, now))
                    .collect())
            })
            .await
    }

    /// Up to `limit` member ids of a group after `after`, in id order: a cursor over an
    /// audience that never holds it whole.
    ///
    /// # Errors
    /// Storage errors.
    pub fn group_member_ids_after(
        &self,
        group: Id,
        after: Option<Id>,
        limit: usize,
    ) -> Result<Vec<Id>> {
        let prefix = keys::group_members(group);
        let start = match after {
            Some(id) => keys::group_member(group, id.saturating_add(1)),
            None => prefix.clone(),
        };
        if after == Some(Id::MAX) {
            return Ok(Vec::new());
        }
        self.kv()
            .range(start..prefix_end(&prefix))
            .keys()
            .take(limit)
            .filter_map(|k| match k {
                Ok(k) => trailing_id(&k).map(Ok),
                Err(e) => Some(Err(e)),
            })
            .collect()
    }

    /// Adds recipients to a campaign's own audience: one entry per phone (a phone already in
    /// it is counted as a duplicate). Returns (added, duplicates).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for another organization's campaign, [`StoreError::Invalid`]
    /// for a malformed phone (nothing is written then), storage errors.
    pub async fn add_campaign_recipients(
        &self,
        org: Id,
        campaign: Id,
        recipients: Vec<Recipient>,
    ) -> Result<(u64, u64)> {
        self.writer()
            .run(move |ctx| put_recipients_op(ctx, org, campaign, recipients))
            .await
    }

    /// Up to `limit` recipients of a campaign's own audience after the phone `after`, in phone
    /// order.
    ///
    /// # Errors
    /// Storage errors.
    pub fn campaign_recipients_after(
        &self,
        campaign: Id,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Recipient>> {
        let prefix = recipients_prefix(campaign);
        let start = match after {
            // The smallest key after `after`'s own.
            Some(phone) => {
                let mut k = recipient_key(campaign, phone);
                k.push(0);
                k
            }
            None => {
                let mut k = prefix.clone();
                k.push(0);
                k
            }
        };
        self.kv()
            .range(start..prefix_end(&prefix))
            .take(limit)
            .map(|entry| {
                let (key, value) = entry?;
                decode(&key, &value)
            })
            .collect()
    }

    /// How many recipients a campaign's own audience has.
    ///
    /// # Errors
    /// Storage errors.
    pub fn campaign_recipient_count(&self, campaign: Id) -> Result<u64> {
        Ok(self
            .kv()
            .get(recipients_prefix(campaign))?
            .and_then(|v| u64_at(&v, 0))
            .unwrap_or(0))
    }

    /// Removes a campaign's own audience (the campaign was deleted, or its audience replaced).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn clear_campaign_recipients(&self, campaign: Id) -> Result<u64> {
        self.writer()
            .run(move |ctx| {
                let prefix = recipients_prefix(campaign);
                let mut batch = Batch::default();
                let mut removed = 0u64;
                for key in ctx.kv.range(prefix.clone()..prefix_end(&prefix)).keys() {
                    let key = key?;
                    if key.len() > prefix.len() {
                        removed += 1;
                    }
                    batch.remove(key);
                }
                ctx.apply(batch)?;
                Ok(removed)
            })
            .await
    }

    /// Removes a phone from the own audiences of every campaign of the organization (the
    /// right to erasure leaves no copy of the number behind). Returns how many entries went.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn forget_recipient_phone(&self, org: Id, phone: &str) -> Result<u64> {
        let phone = phone.to_owned();
        self.writer()
            .run(move |ctx| {
                let prefix = keys::scoped_prefix(space::CAMPAIGN, org);
                let mut batch = Batch::default();
                let mut removed = 0u64;
                for key in ctx.kv.range(prefix.clone()..prefix_end(&prefix)).keys() {
                    let Some(campaign) = trailing_id(&key?) else {
                        continue;
                    };
                    let entry = recipient_key(campaign, &phone);
                    if ctx.kv.contains_key(&entry)? {
                        batch.remove(entry);
                        removed += 1;
                    }
                }
                ctx.apply(batch)?;
                Ok(removed)
            })
            .await
    }

    /// A campaign's messages by status, counted from the campaign index: exact, whatever
    /// receipts were missed by listeners or restarts, and every message counted once even
    /// while receipts change them during the scan.
    ///
    /// # Errors
    /// Storage errors.
    pub fn campaign_counts(&self, org: Id, campaign: Id) -> Result<CampaignCounts> {
        let mut counts = CampaignCounts::default();
        self.campaign_states(org, campaign, |code, _| counts.add(code))?;
        Ok(counts)
    }

    /// Calls `each(status code, variant)` for every message of the campaign: one snapshot scan
    /// of the campaign's index, so a message whose status changes during the scan is met once.
    fn campaign_states(&self, org: Id, campaign: Id, mut each: impl FnMut(u8, u8)) -> Result<()> {
        let prefix = Key::new(space::MSG_BY_CAMPAIGN)
            .u64(org)
            .u64(campaign)
            .build();
        let at = prefix.len();
        for entry in self.kv().range(prefix.clone()..prefix_end(&prefix)) {
            let (key, variant) = entry?;
            if let Some(&code) = key.get(at) {
                each(code, variant.first().copied().unwrap_or(NO_VARIANT));
            }
        }
        Ok(())
    }

    /// An A/B campaign's messages by variant (index `i` of the answer is variant `i`, for
    /// `variants` of them) and status, counted from the campaign index: exact like
    /// [`Store::campaign_counts`], and together they add up to it when every message of the
    /// campaign has a variant.
    ///
    /// # Errors
    /// Storage errors.
    pub fn campaign_variant_counts(
        &self,
        org: Id,
        campaign: Id,
        variants: u8,
    ) -> Result<Vec<CampaignCounts>> {
        let mut out = vec![CampaignCounts::default(); usize::from(variants)];
        self.campaign_states(org, campaign, |code, variant| {
            if let Some(counts) = out.get_mut(usize::from(variant)) {
                counts.add(code);
            }
        })?;
        Ok(out)
    }

    /// Sets a campaign's counters from [`Store::campaign_counts`] (sent = handed to a
    /// provider, failed = failed or expired), so that lists and analytics show exact numbers.
    /// Returns the campaign and the counts it was set from.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], storage errors.
    pub async fn sync_campaign_stats(
        &self,
        org: Id,
        campaign: Id,
    ) -> Result<(Campaign, CampaignCounts)> {
        let counts = self.campaign_counts(org, campaign)?;
        let synced = self
            .writer()
            .run(move |ctx| {
                rewrite_op(ctx, None, org, campaign, now_ms(), |c: &mut Campaign| {
                    c.sent_count = counts.handed_over();
                    c.delivered_count = counts.delivered;
                    c.failed_count = counts.failed_or_expired();
                    c.rejected_count = counts.rejected;
                    Ok(())
                })
            })
            .await?;
        Ok((synced, counts))
    }

    /// Every campaign, of every organization, in one of `statuses` (the campaign runner's
    /// work list; campaigns are few next to messages).
    ///
    /// # Errors
    /// Storage errors.
    pub fn campaigns_in(&self, statuses: &[CampaignStatus]) -> Result<Vec<Campaign>> {
        let start = [space::CAMPAIGN];
        let mut out = Vec::new();
        for entry in self.kv().range(start.to_vec()..prefix_end(&start)) {
            let (key, value) = entry?;
            let campaign: Campaign = super::decode_record(None, &key, &value)?;
            if statuses.contains(&campaign.status) {
                out.push(campaign);
            }
        }
        Ok(out)
    }

    /// Moves a campaign from one status to another only if it is still in `from` (so a
    /// pause or cancel by a user is never overwritten by the runner), with `change` applied
    /// to the record too. Returns the campaign, changed or not, and whether it changed.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], what `change` returns, storage errors.
    pub async fn transition_campaign(
        &self,
        org: Id,
        id: Id,
        from: Vec<CampaignStatus>,
        change: impl FnOnce(&mut Campaign) -> Result<()> + Send + 'static,
    ) -> Result<(Campaign, bool)> {
        self.writer()
            .run(move |ctx| {
                let current: Campaign = load(&ctx.kv, None, org, id)?;
                if !from.contains(&current.status) {
                    return Ok((current, false));
                }
                let changed = rewrite_op(ctx, None, org, id, now_ms(), change)?;
                Ok((changed, true))
            })
            .await
    }

    /// Whether `needle` occurs in any key or value of the store (an erasure audit:
    /// after erasing a contact, its number must be nowhere). Reads everything: for audits and
    /// tests, not for request paths.
    ///
    /// # Errors
    /// Storage errors.
    pub fn contains_bytes(&self, needle: &[u8]) -> Result<bool> {
        if needle.is_empty() {
            return Ok(true);
        }
        let found = |bytes: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        for entry in self.kv().iter() {
            let (key, value) = entry?;
            if found(&key) || found(&value) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Holds the campaign's messages waiting in the queue (ready, or due for a retry) out of
    /// it until [`Store::release_campaign_messages`]: a paused campaign stops sending at once,
    /// not after the messages its runner had queued ahead. Messages already handed to a
    /// provider go on. Returns how many were held.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn hold_campaign_messages(&self, org: Id, campaign: Id) -> Result<u64> {
        self.change_queued_campaign_messages(org, campaign, "CAMPAIGN_PAUSED", |m| {
            match m.queue {
                QueuePlace::Ready { .. } => {}
                QueuePlace::Due { at } if at != HELD => {}
                _ => return false,
            }
            m.queue = QueuePlace::Due { at: HELD };
            true
        })
        .await
    }

    /// Puts the campaign's held messages back in the ready queue (the campaign resumed).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn release_campaign_messages(&self, org: Id, campaign: Id) -> Result<u64> {
        self.change_queued_campaign_messages(org, campaign, "CAMPAIGN_RESUMED", |m| {
            if m.queue != (QueuePlace::Due { at: HELD }) {
                return false;
            }
            m.queue = QueuePlace::Ready { seq: 0 };
            true
        })
        .await
    }

    /// Fails the campaign's messages not yet handed to a provider (ready, due or held), with
    /// error code `CAMPAIGN_CANCELLED`: a cancelled campaign sends nothing more.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn cancel_campaign_messages(&self, org: Id, campaign: Id) -> Result<u64> {
        self.change_queued_campaign_messages(org, campaign, "FAILED", |m| {
            if !matches!(m.queue, QueuePlace::Ready { .. } | QueuePlace::Due { .. }) {
                return false;
            }
            m.status = MessageStatus::Failed;
            m.queue = QueuePlace::Done;
            m.error_code = Some("CAMPAIGN_CANCELLED".into());
            m.status_message = Some("the campaign was cancelled before it was sent".into());
            true
        })
        .await
    }

    /// Applies `change` to each QUEUED message of the campaign, concurrently in groups (they
    /// share group commits); one it refuses (returns false: moved on meanwhile) is left alone.
    async fn change_queued_campaign_messages(
        &self,
        org: Id,
        campaign: Id,
        event_type: &'static str,
        change: fn(&mut Message) -> bool,
    ) -> Result<u64> {
        let prefix = Key::new(space::MSG_BY_CAMPAIGN)
            .u64(org)
            .u64(campaign)
            .u8(MessageStatus::Queued.code())
            .build();
        let ids = self
            .kv()
            .range(prefix.clone()..prefix_end(&prefix))
            .keys()
            .map(|key| key.map(|k| trailing_id(&k)))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut changed = 0;
        for group in ids.chunks(256) {
            let updates = group.iter().flatten().map(|&id| {
                self.writer().run(move |ctx| {
                    transition_op(ctx, org, id, now_ms(), |m| {
                        Ok(if change(m) {
                            Step::Apply(MessageUpdate::new(event_type))
                        } else {
                            Step::Stale
                        })
                    })
                })
            });
            for result in futures::future::join_all(updates).await {
                match result {
                    Ok(Transition::Applied(_)) => changed += 1,
                    Ok(_) | Err(StoreError::NotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(changed)
    }

    /// How many of a campaign's messages wait in the queue (QUEUED), counting at most `cap`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn campaign_queued(&self, org: Id, campaign: Id, cap: u64) -> Result<u64> {
        let prefix = Key::new(space::MSG_BY_CAMPAIGN)
            .u64(org)
            .u64(campaign)
            .u8(MessageStatus::Queued.code())
            .build();
        let mut n = 0u64;
        for key in self.kv().range(prefix.clone()..prefix_end(&prefix)).keys() {
            key?;
            n += 1;
            if n >= cap {
                break;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;
    use crate::model::{Group, Organization};

    fn contact(phone: &str, name: Option<&str>) -> Contact {
        Contact {
            phone_number: phone.to_owned(),
            display_name: name.map(str::to_owned),
            ..Contact::default()
        }
    }

    #[tokio::test]
    async fn batched_upsert_handles_repeats_bad_rows_and_group_counts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path())).unwrap();
        let org = store
            .create_organization(Organization {
                name: "school".into(),
                ..Organization::default()
            })
            .await
            .unwrap()
            .id;
        let group = store
            .create_group(Group {
                organization_id: org,
                name: "all".into(),
                ..Group::default()
            })
            .await
            .unwrap()
            .id;
        let rows = vec![
            contact("+923001111111", Some("A")),
            contact("bad phone", None),
            contact("+923002222222", None),
            contact("+923001111111", Some("A2")),
            contact("", None),
            contact("+923001111111", None),
        ];
        let out = store
            .upsert_contacts_by_phone(org, rows, Some(group))
            .await
            .unwrap();
        let a = match out[0] {
            RowOutcome::Created(id) => id,
            ref other => panic!("{other:?}"),
        };
        assert!(matches!(out[1], RowOutcome::Invalid(_)));
        assert!(matches!(out[2], RowOutcome::Created(_)));
        assert_eq!(out[3], RowOutcome::Updated(a));
        assert!(matches!(out[4], RowOutcome::Invalid(_)));
        assert_eq!(out[5], RowOutcome::Updated(a));
        let stored = store.contact(org, a).unwrap();
        assert_eq!(stored.display_name.as_deref(), Some("A2"));
        assert_eq!(store.group(org, group).unwrap().member_count, 2);
        // Again, in another call: updates only, the count unchanged.
        let out = store
            .upsert_contacts_by_phone(org, vec![contact("+923002222222", Some("B"))], Some(group))
            .await
            .unwrap();
        assert!(matches!(out[0], RowOutcome::Updated(_)));
        assert_eq!(store.group(org, group).unwrap().member_count, 2);
        assert_eq!(
            store.group_member_ids_after(group, None, 10).unwrap().len(),
            2
        );
        assert_eq!(
            store
                .group_member_ids_after(group, Some(a), 10)
                .unwrap()
                .len(),
            1
        );
        assert!(store.contains_bytes(b"+923002222222").unwrap());
        assert!(!store.contains_bytes(b"+923009999999").unwrap());
        let report = store.check_consistency().unwrap();
        assert_eq!(report.problem_count, 0, "{:?}", report.problems);
    }

    #[tokio::test]
    async fn campaign_audience_is_one_entry_per_phone_read_by_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path())).unwrap();
        let campaign = store
            .create_campaign(Campaign {
                organization_id: 7,
                name: "c".into(),
                ..Campaign::default()
            })
            .await
            .unwrap()
            .id;
        let r = |p: &str| Recipient {
            phone: p.to_owned(),
            ..Recipient::default()
        };
        let (added, dup) = store
            .add_campaign_recipients(7, campaign, vec![r("+2"), r("+1"), r("+2")])
            .await
            .unwrap();
        assert_eq!((added, dup), (2, 1));
        let (added, dup) = store
            .add_campaign_recipients(7, campaign, vec![r("+1"), r("+3")])
            .await
            .unwrap();
        assert_eq!((added, dup), (1, 1));
        assert_eq!(store.campaign_recipient_count(campaign).unwrap(), 3);
        let first = store.campaign_recipients_after(campaign, None, 2).unwrap();
        let phones: Vec<&str> = first.iter().map(|r| r.phone.as_str()).collect();
        assert_eq!(phones, ["+1", "+2"]);
        let seqs: HashSet<u64> = first.iter().map(|r| r.seq).collect();
        assert_eq!(seqs.len(), 2);
        let rest = store
            .campaign_recipients_after(campaign, Some("+2"), 2)
            .unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].phone, "+3");
        assert!(matches!(
            store
                .add_campaign_recipients(8, campaign, vec![r("+4")])
                .await,
            Err(StoreError::NotFound { .. })
        ));
        let report = store.check_consistency().unwrap();
        assert_eq!(report.problem_count, 0, "{:?}", report.problems);
        assert_eq!(store.forget_recipient_phone(7, "+2").await.unwrap(), 1);
        assert!(!store.contains_bytes(b"+2").unwrap());
        assert_eq!(store.clear_campaign_recipients(campaign).await.unwrap(), 2);
        assert_eq!(store.campaign_recipient_count(campaign).unwrap(), 0);
    }
}
