//! Receipt timeout (blueprint: EXPIRED is "TTL exceeded without DLR"): a SUBMITTED or SENT
//! message whose receipt has not come by its `receipt_due_at` becomes EXPIRED with a
//! RECEIPT_TIMEOUT event.
//!
//! `[RECEIPT_DUE][at][org][id]` is derived from the record (see `messages::derived_entries`):
//! present exactly while the message awaits its receipt, removed by the receipt's own write.
//! The engine walks the range up to now, like the DUE promotion, never the messages.

use crate::error::Result;
use crate::keys::{Key, space, u64_at};
use crate::messages::{MessageUpdate, load_message, update_op};
use crate::model::{Id, Message, MessageStatus, Millis, QueuePlace};
use crate::writer::Ctx;
use crate::{Store, StoreError};

/// The error code of a message expired by [`Store::expire_overdue_receipts`]; a late receipt
/// for such a message still records its real outcome.
pub const RECEIPT_TIMEOUT: &str = "RECEIPT_TIMEOUT";

/// What one walk of the receipt-due index did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overdue {
    /// The messages expired, as written.
    pub expired: Vec<Message>,
    /// Where the next walk may start: everything due before it has been handled.
    pub next_from: Millis,
}

fn expire_op(ctx: &mut Ctx, from: Millis, now: Millis, max: usize) -> Result<Overdue> {
    let start = Key::new(space::RECEIPT_DUE).u64(from).build();
    let end = Key::new(space::RECEIPT_DUE)
        .u64(now.saturating_add(1))
        .build();
    let mut due: Vec<(Millis, Id, Id)> = Vec::new();
    for key in ctx.kv.range(start..end).keys().take(max.max(1)) {
        let key = key?;
        if let (Some(at), Some(org), Some(id)) =
            (u64_at(&key, 1), u64_at(&key, 9), u64_at(&key, 17))
        {
            due.push((at, org, id));
        }
    }
    let next_from = match due.last() {
        Some(&(at, _, _)) if due.len() >= max.max(1) => at,
        _ => now.saturating_add(1),
    };
    let mut expired = Vec::with_capacity(due.len());
    for (at, org, id) in due {
        let m = match load_message(&ctx.kv, org, id) {
            Ok(m) => m,
            Err(StoreError::NotFound { .. }) => continue,
            Err(e) => return Err(e),
        };
        // The entry exists only while this holds; checked again, as the writer is the one
        // place that could have changed it since the scan.
        if !matches!(m.status, MessageStatus::Submitted | MessageStatus::Sent)
            || m.receipt_due_at != Some(at)
        {
            continue;
        }
        let parts = m
            .provider_msg_ids
            .len()
            .max(m.partial.as_ref().map_or(0, |p| p.total as usize));
        let detail = format!(
            "no delivery receipt{} by the end of its validity plus the grace",
            if parts > 1 { " for every part" } else { "" }
        );
        let update = MessageUpdate::new("RECEIPT_TIMEOUT").detail(detail.clone());
        let m = update_op(ctx, org, id, update, now, move |m| {
            m.status = MessageStatus::Expired;
            m.queue = QueuePlace::Done;
            m.error_code = Some(RECEIPT_TIMEOUT.to_owned());
            m.status_message = Some(detail);
            Ok(())
        })?;
        expired.push(m);
    }
    Ok(Overdue { expired, next_from })
}

impl Store {
    /// Expires, with a RECEIPT_TIMEOUT event, up to `max` messages whose receipt was due in
    /// `[from, now]` and has not come. Pass the previous walk's [`Overdue::next_from`] as
    /// `from` (0 the first time): the range below it holds only entries already handled.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn expire_overdue_receipts(
        &self,
        from: Millis,
        now: Millis,
        max: usize,
    ) -> Result<Overdue> {
        // Called every second: nothing due (the usual case) costs a read, not a writer job
        // and its fsync. An entry is always written due after its write, so none can appear
        // in the range between this read and the writer.
        let start = Key::new(space::RECEIPT_DUE).u64(from).build();
        let end = Key::new(space::RECEIPT_DUE)
            .u64(now.saturating_add(1))
            .build();
        if self
            .kv()
            .range(start..end)
            .keys()
            .next()
            .transpose()?
            .is_none()
        {
            return Ok(Overdue {
                expired: Vec::new(),
                next_from: now.saturating_add(1),
            });
        }
        self.writer()
            .run(move |ctx| expire_op(ctx, from, now, max))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Message;
    use crate::{StoreOptions, Submitted};

    #[tokio::test]
    async fn only_messages_still_awaiting_their_receipt_expire_and_only_once_due() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(StoreOptions::new(dir.path())).expect("store");
        let mut ids = Vec::new();
        for (due, n) in [(Some(1_000), 1), (Some(2_000), 2), (None, 3)] {
            let id = store
                .enqueue(Message {
                    organization_id: 1,
                    to_number: format!("+92300000000{n}"),
                    body: "hi".into(),
                    ..Message::default()
                })
                .await
                .expect("enqueue")
                .message()
                .id;
            store.lease(1, 10).await.expect("lease");
            store
                .ack_submitted(
                    1,
                    id,
                    Submitted {
                        provider_id: 4,
                        provider_msg_ids: vec![format!("p{n}")],
                        receipt_due_at: due,
                        ..Submitted::default()
                    },
                )
                .await
                .expect("ack");
            ids.push(id);
        }
        // The second one's receipt came.
        store
            .update_message(1, ids[1], MessageUpdate::new("DELIVERED"), |m| {
                m.status = MessageStatus::Delivered;
                Ok(())
            })
            .await
            .expect("delivered");

        let walk = store
            .expire_overdue_receipts(0, 999, 10)
            .await
            .expect("walk");
        assert!(walk.expired.is_empty(), "not due yet");
        let walk = store
            .expire_overdue_receipts(walk.next_from, 5_000, 10)
            .await
            .expect("walk");
        let expired: Vec<Id> = walk.expired.iter().map(|m| m.id).collect();
        assert_eq!(expired, vec![ids[0]]);
        let m = store.message(1, ids[0]).expect("message");
        assert_eq!(m.status, MessageStatus::Expired);
        assert_eq!(m.error_code.as_deref(), Some(RECEIPT_TIMEOUT));
        let events = store.events(1, ids[0]).expect("events");
        assert_eq!(
            events.last().map(|e| (e.event_type.as_str(), e.status)),
            Some(("RECEIPT_TIMEOUT", MessageStatus::Expired))
        );
        assert_eq!(
            store.message(1, ids[2]).expect("message").status,
            MessageStatus::Submitted,
            "no receipt asked for: never times out"
        );
        // Walked again from 0 (after a restart): nothing is expired twice.
        let walk = store
            .expire_overdue_receipts(0, 9_000, 10)
            .await
            .expect("walk");
        assert!(walk.expired.is_empty());
        assert!(store.check_consistency().expect("check").is_consistent());
    }
}
