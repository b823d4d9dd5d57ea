//! What the SMPP server owes its customers, durably:
//! - `[SMPP_LINK][message]` → [`SmppLink`]: the account that submitted a message (query_sm,
//!   cancel_sm and receipts check it), written in the same writer job as the message itself;
//! - `[SMPP_PENDING][message]`: a receipt is owed once the message is final;
//! - `[SMPP_OUTBOX][account][seq]` → [`SmppOwed`]: a receipt or MO waiting for the customer's
//!   deliver_sm_resp.
//!
//! Turning a pending marker into outbox entries is one batch ([`Store::owe_smpp_receipt`]), so
//! a receipt is owed exactly once however often the engine's event is seen; markers left by a
//! crash or a lagging event stream are found again by [`Store::smpp_pending`].

use crate::kv::{Batch, Kv};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::keys::{self, Key, prefix_end, space, u64_at};
use crate::messages::{enqueue_op, load_message, next_id};
use crate::model::{Id, Message, MessageStatus, Millis};
use crate::value::{decode, encode};
use crate::{Enqueued, Store, now_ms};

/// Which account submitted a message, and what it asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SmppLink {
    /// The tenant.
    pub organization_id: Id,
    /// The account.
    pub account_id: Id,
    /// The submit's `registered_delivery`.
    pub registered_delivery: u8,
    /// The ids the customer was answered with (one per submit_sm); empty: the message's own.
    pub answered_ids: Vec<Id>,
    /// For the id of one part of a concatenated submit: the whole message, once every part
    /// came (`None` while some are missing).
    pub message_id: Option<Id>,
}

/// What a deliver_sm carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SmppOwedKind {
    /// A delivery receipt.
    #[default]
    Receipt,
    /// A mobile-originated message.
    Mo,
}

/// One deliver_sm owed to a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SmppOwed {
    /// Receipt or MO.
    pub kind: SmppOwedKind,
    /// The message it is about (the inbound message for MO).
    pub message_id: Id,
    /// The id the customer was given (receipts).
    pub answered_id: Id,
    /// The message's status (receipts).
    pub status: Option<MessageStatus>,
    /// The error code (receipts).
    pub error_code: Option<String>,
    /// When it was submitted (receipts) or received (MO).
    pub submitted_at: Millis,
    /// When it reached `status`.
    pub done_at: Millis,
    /// Sender (MO) or the original sender id (receipts).
    pub from: String,
    /// Recipient.
    pub to: String,
    /// The text (MO), or the first characters (receipts).
    pub body: String,
    /// When the entry was written (for expiry).
    pub created_at: Millis,
}

pub(crate) fn link_key(message: Id) -> Vec<u8> {
    Key::new(space::SMPP_LINK).u64(message).build()
}

pub(crate) fn pending_key(message: Id) -> Vec<u8> {
    Key::new(space::SMPP_PENDING).u64(message).build()
}

fn outbox_key(account: Id, seq: u64) -> Vec<u8> {
    Key::new(space::SMPP_OUTBOX).u64(account).u64(seq).build()
}

fn outbox_prefix(account: Id) -> Vec<u8> {
    Key::new(space::SMPP_OUTBOX).u64(account).build()
}

/// Adds the removal of everything owed to `account` to `batch`.
pub(crate) fn forget_owed(tree: &Kv, batch: &mut Batch, account: Id) -> Result<()> {
    let prefix = outbox_prefix(account);
    for entry in tree.range(prefix.clone()..prefix_end(&prefix)) {
        let (key, _) = entry?;
        batch.remove(key);
    }
    Ok(())
}

/// Whether the receipt for a message in `status` is owed under `registered_delivery`
/// (SMPP 3.4 §5.2.17: 1 any final outcome, 2 failures only).
pub fn receipt_wanted(registered_delivery: u8, status: MessageStatus) -> bool {
    if !status.is_final() {
        return false;
    }
    match registered_delivery & 0x03 {
        1 => true,
        2 => status != MessageStatus::Delivered,
        _ => false,
    }
}

impl Store {
    /// Stores a message submitted over SMPP with its link to the account (and the pending
    /// receipt marker when one is wanted), in one writer job: acknowledged together, after
    /// the same flush.
    ///
    /// # Errors
    /// As [`Store::enqueue`].
    pub async fn enqueue_smpp(&self, message: Message, link: SmppLink) -> Result<Message> {
        self.writer()
            .run(move |ctx| {
                let message = match enqueue_op(ctx, message, now_ms())? {
                    Enqueued::Created(m) | Enqueued::Duplicate(m) => m,
                };
                let mut batch = Batch::default();
                batch.insert(link_key(message.id), encode(&link)?);
                if link.registered_delivery & 0x03 != 0 {
                    batch.insert(pending_key(message.id), &[][..]);
                }
                ctx.apply(batch)?;
                Ok(message)
            })
            .await
    }

    /// The account link of a message, if it came over SMPP.
    ///
    /// # Errors
    /// Storage errors.
    pub fn smpp_link(&self, message: Id) -> Result<Option<SmppLink>> {
        match self.kv().get(link_key(message))? {
            Some(bytes) => Ok(Some(decode(&link_key(message), &bytes)?)),
            None => Ok(None),
        }
    }

    /// Whether a receipt may be owed for the message (a read, to spare the writer a job for
    /// every message that did not come over SMPP).
    ///
    /// # Errors
    /// Storage errors.
    pub fn smpp_receipt_pending(&self, message: Id) -> Result<bool> {
        self.kv().contains_key(pending_key(message))
    }

    /// If the message is final and a receipt is pending for it, owes the receipt (one entry
    /// per id the customer was given) and clears the marker, in one batch. Returns the account
    /// now owed something.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn owe_smpp_receipt(&self, message: Id) -> Result<Option<Id>> {
        self.writer()
            .run(move |ctx| {
                if !ctx.kv.contains_key(pending_key(message))? {
                    return Ok(None);
                }
                let Some(bytes) = ctx.kv.get(link_key(message))? else {
                    let mut batch = Batch::default();
                    batch.remove(pending_key(message));
                    ctx.apply(batch)?;
                    return Ok(None);
                };
                let link: SmppLink = decode(&link_key(message), &bytes)?;
                let m = match load_message(&ctx.kv, link.organization_id, message) {
                    Ok(m) => m,
                    Err(crate::StoreError::NotFound { .. }) => {
                        let mut batch = Batch::default();
                        batch.remove(pending_key(message));
                        ctx.apply(batch)?;
                        return Ok(None);
                    }
                    Err(e) => return Err(e),
                };
                if !m.status.is_final() {
                    return Ok(None);
                }
                let mut batch = Batch::default();
                batch.remove(pending_key(message));
                // A deleted account is owed nothing.
                let account_key =
                    keys::scoped(space::SMPP_ACCOUNT, link.organization_id, link.account_id);
                let owed = receipt_wanted(link.registered_delivery, m.status)
                    && ctx.kv.contains_key(account_key)?;
                if owed {
                    let ids = if link.answered_ids.is_empty() {
                        vec![m.id]
                    } else {
                        link.answered_ids.clone()
                    };
                    let now = now_ms();
                    for answered_id in ids {
                        let entry = SmppOwed {
                            kind: SmppOwedKind::Receipt,
                            message_id: m.id,
                            answered_id,
                            status: Some(m.status),
                            error_code: m.error_code.clone(),
                            submitted_at: m.queued_at,
                            done_at: m.updated_at,
                            from: m.from_number.clone(),
                            to: m.to_number.clone(),
                            body: m.body.chars().take(20).collect(),
                            created_at: now,
                        };
                        batch.insert(outbox_key(link.account_id, next_id(ctx)?), encode(&entry)?);
                    }
                }
                ctx.apply(batch)?;
                Ok(owed.then_some(link.account_id))
            })
            .await
    }

    /// Owes an MO (an inbound message) to an account.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn owe_smpp_mo(&self, account: Id, message: &Message) -> Result<()> {
        let entry = SmppOwed {
            kind: SmppOwedKind::Mo,
            message_id: message.id,
            answered_id: message.id,
            submitted_at: message.created_at,
            done_at: message.created_at,
            from: message.from_number.clone(),
            to: message.to_number.clone(),
            body: message.body.clone(),
            created_at: now_ms(),
            ..SmppOwed::default()
        };
        self.writer()
            .run(move |ctx| {
                let mut batch = Batch::default();
                batch.insert(outbox_key(account, next_id(ctx)?), encode(&entry)?);
                ctx.apply(batch)?;
                Ok(())
            })
            .await
    }

    /// Up to `max` entries owed to an account with a sequence above `after`, oldest first.
    ///
    /// # Errors
    /// Storage errors.
    pub fn smpp_owed(&self, account: Id, after: u64, max: usize) -> Result<Vec<(u64, SmppOwed)>> {
        let start = outbox_key(account, after.saturating_add(1));
        let end = prefix_end(&outbox_prefix(account));
        let mut out = Vec::new();
        for entry in self.kv().range(start..end).take(max) {
            let (key, value) = entry?;
            let seq = u64_at(&key, 9).unwrap_or(0);
            out.push((seq, decode(&key, &value)?));
        }
        Ok(out)
    }

    /// The customer answered deliver_sm_resp OK: the entry is done.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn smpp_delivered(&self, account: Id, seq: u64) -> Result<()> {
        self.writer()
            .run(move |ctx| {
                let mut batch = Batch::default();
                batch.remove(outbox_key(account, seq));
                ctx.apply(batch)?;
                Ok(())
            })
            .await
    }

    /// Up to `max` messages with a pending receipt marker (to re-check after a restart or a
    /// lagging event stream).
    ///
    /// # Errors
    /// Storage errors.
    pub fn smpp_pending(&self, after: Id, max: usize) -> Result<Vec<Id>> {
        let start = pending_key(after.saturating_add(1));
        let end = prefix_end(&[space::SMPP_PENDING]);
        let mut out = Vec::new();
        for entry in self.kv().range(start..end).take(max) {
            let (key, _) = entry?;
            if let Some(id) = u64_at(&key, 1) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// Drops entries of an account written before `before`; returns how many.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn smpp_expire_owed(&self, account: Id, before: Millis) -> Result<u64> {
        self.writer()
            .run(move |ctx| {
                let prefix = outbox_prefix(account);
                let mut batch = Batch::default();
                let mut n = 0;
                // Sequences are ids, which grow with time: the expired entries are a prefix,
                // and the scan stops at the first live one (this runs on the writer).
                for entry in ctx.kv.range(prefix.clone()..prefix_end(&prefix)) {
                    let (key, value) = entry?;
                    let owed: SmppOwed = decode(&key, &value)?;
                    if owed.created_at >= before {
                        break;
                    }
                    batch.remove(key);
                    n += 1;
                }
                ctx.apply(batch)?;
                Ok(n)
            })
            .await
    }
}
