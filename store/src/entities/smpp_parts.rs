//! Parts of a concatenated SMPP submit (UDH or SAR) waiting for their siblings. Each part is
//! answered with its own id as soon as it is durable; when the last one arrives the whole text
//! becomes one message (split again by whichever provider sends it), in the same writer job
//! that removes the parts, so a part is never both waiting and sent.

use crate::kv::Batch;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::keys::{Key, prefix_end, space};
use crate::messages::{enqueue_op, next_id};
use crate::model::{Id, Message, Millis};
use crate::value::{decode, encode};
use crate::{Enqueued, Store, now_ms};

use super::smpp_outbox::{SmppLink, link_key, pending_key};

/// One waiting part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct SmppPart {
    /// Its number, 1-based.
    pub seq: u8,
    /// Its text.
    pub text: String,
    /// The id it was answered with.
    pub answered_id: Id,
    /// When it arrived.
    pub created_at: Millis,
}

/// What became of a submitted part.
#[derive(Debug, Clone, PartialEq)]
pub enum PartOutcome {
    /// Stored; siblings still missing.
    Waiting {
        /// The part's id.
        answered_id: Id,
    },
    /// It was the last: the whole message is queued.
    Complete {
        /// The part's id.
        answered_id: Id,
        /// The whole message.
        message: Box<Message>,
    },
}

/// A part as submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPart {
    /// Names the message: destination, reference, reference width, total.
    pub group: String,
    /// Parts in all.
    pub total: u8,
    /// This part's number, 1-based.
    pub seq: u8,
    /// Its text.
    pub text: String,
}

fn group_prefix(account: Id, group: &str) -> Vec<u8> {
    Key::new(space::SMPP_PARTS).u64(account).str0(group).build()
}

impl Store {
    /// Stores one part of a concatenated submit of `account`; `link` is written for the part's id
    /// (and, completed, for the whole message with every part's id). When this part completes
    /// the set, `whole` builds the message from the joined text and it is enqueued.
    ///
    /// # Errors
    /// [`StoreError::Invalid`](crate::StoreError::Invalid) for a group with NUL, what `whole`
    /// returns, storage errors.
    pub async fn smpp_submit_part(
        &self,
        account: Id,
        part: NewPart,
        link: SmppLink,
        whole: impl FnOnce(String) -> Result<Message> + Send + 'static,
    ) -> Result<PartOutcome> {
        let NewPart {
            group,
            total,
            seq,
            text,
        } = part;
        if group.contains('\0') {
            return Err(super::invalid("group", "contains NUL"));
        }
        self.writer()
            .run(move |ctx| {
                let now = now_ms();
                let prefix = group_prefix(account, &group);
                let answered_id = next_id(ctx)?;
                let part = SmppPart {
                    seq,
                    text,
                    answered_id,
                    created_at: now,
                };
                let mut parts: Vec<(Vec<u8>, SmppPart)> = Vec::new();
                for entry in ctx.kv.range(prefix.clone()..prefix_end(&prefix)) {
                    let (key, value) = entry?;
                    let stored: SmppPart = decode(&key, &value)?;
                    // A part sent again replaces the earlier copy.
                    if stored.seq != seq {
                        parts.push((key.to_vec(), stored));
                    }
                }
                let part_key = Key::new(space::SMPP_PARTS)
                    .u64(account)
                    .str0(&group)
                    .u8(seq)
                    .build();
                let mut batch = Batch::default();
                if parts.len() + 1 < usize::from(total) {
                    batch.insert(part_key, encode(&part)?);
                    batch.insert(link_key(answered_id), encode(&link)?);
                    ctx.apply(batch)?;
                    return Ok(PartOutcome::Waiting { answered_id });
                }
                parts.push((part_key, part));
                parts.sort_by_key(|(_, p)| p.seq);
                let joined: String = parts.iter().map(|(_, p)| p.text.as_str()).collect();
                let message = match enqueue_op(ctx, whole(joined)?, now)? {
                    Enqueued::Created(m) | Enqueued::Duplicate(m) => m,
                };
                let ids: Vec<Id> = parts.iter().map(|(_, p)| p.answered_id).collect();
                for (key, p) in &parts {
                    batch.remove(key.as_slice());
                    let alias = SmppLink {
                        message_id: Some(message.id),
                        ..link.clone()
                    };
                    batch.insert(link_key(p.answered_id), encode(&alias)?);
                }
                let whole_link = SmppLink {
                    answered_ids: ids,
                    ..link.clone()
                };
                batch.insert(link_key(message.id), encode(&whole_link)?);
                if link.registered_delivery & 0x03 != 0 {
                    batch.insert(pending_key(message.id), &[][..]);
                }
                ctx.apply(batch)?;
                Ok(PartOutcome::Complete {
                    answered_id,
                    message: Box::new(message),
                })
            })
            .await
    }
}
