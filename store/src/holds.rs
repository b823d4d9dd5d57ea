//! Holds: what the engine acknowledged to a carrier before it could use it, kept durably until
//! it can be.
//!
//! - A part of a concatenated inbound message waits for its siblings: each part is written here
//!   before its deliver_sm is answered, and the whole message (or, given up, the parts that
//!   came) is stored in the same writer job that removes them.
//! - A delivery receipt whose provider id is not recorded yet (it overtook its
//!   submit_sm_resp) is written here before it is answered, and removed once applied.
//!
//! Both are read back when the engine starts. The engine bounds them (count and age) and
//! decides when one is given up; the store only keeps them.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::keys::{Key, space, u64_at};
use crate::kv::Batch;
use crate::messages::{enqueue_op, next_id};
use crate::model::{Id, Message, Millis};
use crate::value::{decode, encode};
use crate::{Enqueued, Store, now_ms};

/// One part of a concatenated inbound message, waiting for its siblings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct HeldPart {
    /// The provider it came through.
    pub provider_id: Id,
    /// Sender, as normalised for the message.
    pub from: String,
    /// Destination, as normalised for the message.
    pub to: String,
    /// The concatenation reference.
    pub reference: u16,
    /// Whether the reference is 16-bit (UDH IEI 8 or SAR) rather than 8-bit.
    pub wide: bool,
    /// Parts in all.
    pub total: u8,
    /// This part's number, 1-based.
    pub seq: u8,
    /// Its decoded text.
    pub text: String,
    /// The alphabet it was decoded from ("GSM-7", "UCS-2", ...).
    pub encoding: String,
    /// When it arrived.
    pub received_at: Millis,
}

/// A delivery receipt held until its message's provider id is recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct HeldReceipt {
    /// The provider it came through.
    pub provider_id: Id,
    /// The message id it names, as sent.
    pub receipt_id: String,
    /// The `stat:` word as sent.
    pub stat: String,
    /// The SMPP message_state it stands for, when known.
    pub state: Option<u8>,
    /// The `err:` field as sent.
    pub err: Option<String>,
    /// When it first arrived.
    pub received_at: Millis,
}

fn part_key(id: Id) -> Vec<u8> {
    Key::new(space::INBOUND_PART).u64(id).build()
}

fn receipt_key(id: Id) -> Vec<u8> {
    Key::new(space::EARLY_RECEIPT).u64(id).build()
}

impl Store {
    /// Writes one held inbound part, under `id` when given (a part delivered again replaces
    /// the earlier copy), else under a new id; returns the id once durable.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn hold_inbound_part(&self, id: Option<Id>, part: HeldPart) -> Result<Id> {
        self.writer()
            .run(move |ctx| {
                let id = match id {
                    Some(id) => id,
                    None => next_id(ctx)?,
                };
                let mut batch = Batch::default();
                batch.insert(part_key(id), encode(&part)?);
                ctx.apply(batch)?;
                Ok(id)
            })
            .await
    }

    /// Every held inbound part, oldest id first.
    ///
    /// # Errors
    /// Storage errors, an unreadable record.
    pub fn held_inbound_parts(&self) -> Result<Vec<(Id, HeldPart)>> {
        let prefix = Key::new(space::INBOUND_PART).build();
        let mut out = Vec::new();
        for entry in self.kv().scan_prefix(&prefix) {
            let (key, value) = entry?;
            if let Some(id) = u64_at(&key, 1) {
                out.push((id, decode(&key, &value)?));
            }
        }
        Ok(out)
    }

    /// Stores an inbound message made of held parts and removes those parts, in one writer
    /// job (one group commit): the parts are never both waiting and stored as a message.
    ///
    /// # Errors
    /// As [`Store::enqueue`].
    pub async fn enqueue_from_parts(&self, message: Message, parts: Vec<Id>) -> Result<Enqueued> {
        self.writer()
            .run(move |ctx| {
                let enqueued = enqueue_op(ctx, message, now_ms())?;
                // After the message: a crash between the two leaves the parts, which the engine
                // recognises as complete at start and drops, rather than losing the text.
                let mut batch = Batch::default();
                for id in parts {
                    batch.remove(part_key(id));
                }
                ctx.apply(batch)?;
                Ok(enqueued)
            })
            .await
    }

    /// Writes held receipts in one batch; their ids, in order, once durable.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn hold_receipts(&self, receipts: Vec<HeldReceipt>) -> Result<Vec<Id>> {
        self.writer()
            .run(move |ctx| {
                let mut batch = Batch::default();
                let mut ids = Vec::with_capacity(receipts.len());
                for receipt in &receipts {
                    let id = next_id(ctx)?;
                    batch.insert(receipt_key(id), encode(receipt)?);
                    ids.push(id);
                }
                ctx.apply(batch)?;
                Ok(ids)
            })
            .await
    }

    /// Every held receipt, oldest id first.
    ///
    /// # Errors
    /// Storage errors, an unreadable record.
    pub fn held_receipts(&self) -> Result<Vec<(Id, HeldReceipt)>> {
        let prefix = Key::new(space::EARLY_RECEIPT).build();
        let mut out = Vec::new();
        for entry in self.kv().scan_prefix(&prefix) {
            let (key, value) = entry?;
            if let Some(id) = u64_at(&key, 1) {
                out.push((id, decode(&key, &value)?));
            }
        }
        Ok(out)
    }

    /// Removes held parts and receipts (applied, stored or given up), in one batch.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn release_holds(&self, parts: Vec<Id>, receipts: Vec<Id>) -> Result<()> {
        if parts.is_empty() && receipts.is_empty() {
            return Ok(());
        }
        self.writer()
            .run(move |ctx| {
                let mut batch = Batch::default();
                for id in parts {
                    batch.remove(part_key(id));
                }
                for id in receipts {
                    batch.remove(receipt_key(id));
                }
                ctx.apply(batch)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;
    use crate::model::{Direction, MessageStatus};

    fn part(seq: u8, text: &str) -> HeldPart {
        HeldPart {
            provider_id: 3,
            from: "+923001234567".into(),
            to: "8080".into(),
            reference: 9,
            total: 2,
            seq,
            text: text.into(),
            encoding: "GSM-7".into(),
            received_at: 1_000,
            ..HeldPart::default()
        }
    }

    #[tokio::test]
    async fn held_parts_and_receipts_survive_a_reopen_and_are_released() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (first, receipt) = {
            let store = Store::open(StoreOptions::new(dir.path())).expect("store");
            let first = store
                .hold_inbound_part(None, part(1, "hello "))
                .await
                .expect("held");
            // Delivered again: replaces the copy under the same id.
            store
                .hold_inbound_part(Some(first), part(1, "hello "))
                .await
                .expect("held again");
            let receipt = HeldReceipt {
                provider_id: 3,
                receipt_id: "77".into(),
                stat: "DELIVRD".into(),
                state: Some(2),
                err: Some("000".into()),
                received_at: 5,
            };
            let ids = store
                .hold_receipts(vec![receipt.clone()])
                .await
                .expect("receipt held");
            (first, (ids[0], receipt))
        };
        let store = Store::open(StoreOptions::new(dir.path())).expect("reopened");
        assert_eq!(
            store.held_inbound_parts().expect("parts"),
            vec![(first, part(1, "hello "))]
        );
        assert_eq!(
            store.held_receipts().expect("receipts"),
            vec![receipt.clone()]
        );

        let whole = Message {
            organization_id: 7,
            direction: Direction::Inbound,
            body: "hello world".into(),
            ..Message::default()
        };
        let stored = store
            .enqueue_from_parts(whole, vec![first])
            .await
            .expect("stored");
        assert_eq!(stored.message().status, MessageStatus::Received);
        assert!(store.held_inbound_parts().expect("parts").is_empty());
        store
            .release_holds(Vec::new(), vec![receipt.0])
            .await
            .expect("released");
        assert!(store.held_receipts().expect("receipts").is_empty());
    }
}
