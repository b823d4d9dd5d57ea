//! Every key the store writes, built and parsed here and nowhere else.
//!
//! All keyspaces share one sled tree, so that one operation's writes (record, indexes, queue
//! entry, event) are one atomic `Batch`. A key is a one-byte keyspace prefix followed by
//! fixed-width big-endian integers (so byte order is numeric order) and, last or NUL-terminated,
//! variable strings.

use crate::model::Id;

/// Keyspace prefixes. Never renumber one: they are on disk.
pub(crate) mod space {
    /// `[META][name]` → store metadata.
    pub const META: u8 = 0x01;
    /// `[ORG][org]` → Organization.
    pub const ORG: u8 = 0x10;
    /// `[API_KEY][org][id]` → sha256 of the key (the record is under its hash).
    pub const API_KEY: u8 = 0x11;
    /// `[API_KEY_BY_HASH][sha256]` → ApiKey: authentication is one point read.
    pub const API_KEY_BY_HASH: u8 = 0x12;
    /// `[PROVIDER][org][id]` → ProviderConfig (org 0: system-level).
    pub const PROVIDER: u8 = 0x13;
    /// `[CONTACT][org][id]` → Contact.
    pub const CONTACT: u8 = 0x14;
    /// `[CONTACT_BY_PHONE][org][phone]` → id.
    pub const CONTACT_BY_PHONE: u8 = 0x15;
    /// `[GROUP][org][id]` → Group.
    pub const GROUP: u8 = 0x16;
    /// `[GROUP_MEMBER][group][contact]` → added-at (group ids are global, never reused).
    pub const GROUP_MEMBER: u8 = 0x17;
    /// `[CONTACT_GROUP][contact][group]` → ().
    pub const CONTACT_GROUP: u8 = 0x18;
    /// `[TEMPLATE][org][id]` → Template.
    pub const TEMPLATE: u8 = 0x19;
    /// `[CAMPAIGN][org][id]` → Campaign.
    pub const CAMPAIGN: u8 = 0x1A;
    /// `[WEBHOOK][org][id]` → Webhook.
    pub const WEBHOOK: u8 = 0x1B;
    /// `[WEBHOOK_DELIVERY][org][webhook][id]` → WebhookDelivery.
    pub const WEBHOOK_DELIVERY: u8 = 0x1C;
    /// `[GROUP_BY_NAME][org][name]` → id.
    pub const GROUP_BY_NAME: u8 = 0x1D;
    /// `[TEMPLATE_BY_NAME][org][name]` → id.
    pub const TEMPLATE_BY_NAME: u8 = 0x1E;
    /// `[CAMPAIGN_RECIPIENT][campaign][phone]` → Recipient: a campaign's own audience (inline
    /// or uploaded), one entry per phone (campaign ids are global, never reused).
    pub const CAMPAIGN_RECIPIENT: u8 = 0x1F;

    /// `[MESSAGE][org][id]` → Message.
    pub const MESSAGE: u8 = 0x20;
    /// `[EVENT][id][seq]` → MessageEvent.
    pub const EVENT: u8 = 0x21;
    /// `[MSG_BY_DIR][org][direction][created][id]` → ().
    pub const MSG_BY_DIR: u8 = 0x22;
    /// `[MSG_BY_STATUS][org][status][id]` → ().
    pub const MSG_BY_STATUS: u8 = 0x23;
    /// `[MSG_BY_TO][org][to]\0[created][id]` → ().
    pub const MSG_BY_TO: u8 = 0x24;
    /// `[MSG_BY_CAMPAIGN][org][campaign][status][id]` → variant (or `NO_VARIANT`).
    pub const MSG_BY_CAMPAIGN: u8 = 0x25;
    /// `[MSG_BY_PROVIDER_ID][provider][provider message id]` → (org, id).
    pub const MSG_BY_PROVIDER_ID: u8 = 0x26;
    /// `[IDEMPOTENCY][org][key]` → id.
    pub const IDEMPOTENCY: u8 = 0x27;
    /// `[MSG_BY_CREATED][created][org][id]` → (), for retention.
    #[allow(dead_code)] // Reserved on disk; no code reads or writes it yet.
    pub const MSG_BY_CREATED: u8 = 0x28;
    /// `[MSG_ID][id]` → org: finds a message's tenant from its id alone.
    #[allow(dead_code)] // Reserved on disk; no code reads or writes it yet.
    pub const MSG_ID: u8 = 0x29;
    // 0x2A and 0x2B held campaign state indexes that only sled's non-snapshot scans needed
    // (a scan met a message moving between status ranges twice); fjall's scans are snapshots,
    // so `MSG_BY_CAMPAIGN` alone counts exactly. Not reused.

    /// `[READY][org][priority][seq]` → id.
    pub const READY: u8 = 0x30;
    /// `[DUE][due][org][id]` → ().
    pub const DUE: u8 = 0x31;
    /// `[IN_FLIGHT][org][id]` → leased-at.
    pub const IN_FLIGHT: u8 = 0x32;

    /// `[IDEMPOTENT_RESPONSE][org][key]` → StoredResponse (the `Idempotency-Key` replays).
    pub const IDEMPOTENT_RESPONSE: u8 = 0x40;
    /// `[IDEMPOTENT_BY_TIME][stored-at][org][key]` → (), to purge expired responses.
    pub const IDEMPOTENT_BY_TIME: u8 = 0x41;
    /// `[CONSOLE_USER][org][id]` → ConsoleUser.
    pub const CONSOLE_USER: u8 = 0x48;
    /// `[CONSOLE_USER_BY_EMAIL][email]` → (org, id): login looks the email up across
    /// organizations.
    pub const CONSOLE_USER_BY_EMAIL: u8 = 0x49;
    /// `[CONSOLE_SESSION][sha256(session id)]` → ConsoleSession.
    pub const CONSOLE_SESSION: u8 = 0x4A;
    /// `[SMPP_ACCOUNT][org][id]` → SmppAccount (the SMPP server's customers).
    pub const SMPP_ACCOUNT: u8 = 0x50;
    /// `[SMPP_ACCOUNT_BY_SYSTEM_ID][system_id]` → id: system ids are unique gateway-wide.
    pub const SMPP_ACCOUNT_BY_SYSTEM_ID: u8 = 0x51;
    /// `[SMPP_LINK][message id]` → SmppLink: which account submitted a message, and the ids
    /// it was answered with.
    pub const SMPP_LINK: u8 = 0x52;
    /// `[SMPP_PENDING][message id]` → (): a receipt is owed once the message is final.
    pub const SMPP_PENDING: u8 = 0x53;
    /// `[SMPP_OUTBOX][account][seq]` → SmppOwed: receipts and MO owed to a customer, until
    /// its deliver_sm_resp.
    pub const SMPP_OUTBOX: u8 = 0x54;
    /// `[SMPP_PARTS][account][group]\0[seq]` → SmppPart: parts of a concatenated submit
    /// waiting for their siblings.
    pub const SMPP_PARTS: u8 = 0x55;

    /// `[INBOUND_PART][id]` → HeldPart: one part of a concatenated inbound message, kept until
    /// its siblings arrive (or it is given up), so a crash after its deliver_sm_resp loses
    /// nothing.
    pub const INBOUND_PART: u8 = 0x56;
    /// `[EARLY_RECEIPT][id]` → HeldReceipt: a receipt answered before its message's provider id
    /// was recorded, kept until that id is (or it is given up).
    pub const EARLY_RECEIPT: u8 = 0x57;
    /// `[RECEIPT_DUE][at][org][id]` → (): a SUBMITTED or SENT message whose receipt is overdue
    /// at `at` (derived from `Message::receipt_due_at`).
    pub const RECEIPT_DUE: u8 = 0x58;

    /// `[OUTBOX][org][seq]` → OutboxEntry: one per status change and inbound message, written
    /// in the batch of the change; `seq` is a store id, so key order is the order of changes.
    pub const OUTBOX: u8 = 0x60;
    /// `[OUTBOX_CURSOR][org][consumer]` → seq: every entry up to it is handled by the consumer
    /// (a webhook by its id; 0 is the organization's `callbackUrl` deliveries).
    pub const OUTBOX_CURSOR: u8 = 0x61;
    /// `[OUTBOX_PENDING][org][consumer][seq]` → PendingDelivery: an entry behind the cursor not
    /// yet delivered (retrying, or waiting behind an earlier event of its message).
    pub const OUTBOX_PENDING: u8 = 0x62;
}

/// A key under construction.
#[derive(Debug, Clone)]
pub(crate) struct Key(Vec<u8>);

impl Key {
    pub(crate) fn new(space: u8) -> Self {
        let mut v = Vec::with_capacity(32);
        v.push(space);
        Self(v)
    }
    pub(crate) fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub(crate) fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    /// A string in the middle of a key: NUL-terminated (callers reject NUL in such values).
    pub(crate) fn str0(mut self, s: &str) -> Self {
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        self
    }
    /// A string at the end of a key.
    pub(crate) fn tail(mut self, s: &[u8]) -> Self {
        self.0.extend_from_slice(s);
        self
    }
    pub(crate) fn build(self) -> Vec<u8> {
        self.0
    }
}

/// `[space][org][id]`: an organization's record.
pub(crate) fn scoped(space: u8, org: Id, id: Id) -> Vec<u8> {
    Key::new(space).u64(org).u64(id).build()
}

/// `[space][org]`: every record of an organization in a keyspace.
pub(crate) fn scoped_prefix(space: u8, org: Id) -> Vec<u8> {
    Key::new(space).u64(org).build()
}

/// `[space][org][name]`: a per-organization unique index entry.
pub(crate) fn unique(space: u8, org: Id, name: &str) -> Vec<u8> {
    Key::new(space).u64(org).tail(name.as_bytes()).build()
}

/// `[ORG][id]`.
pub(crate) fn organization(id: Id) -> Vec<u8> {
    Key::new(space::ORG).u64(id).build()
}

/// `[API_KEY_BY_HASH][sha256]`.
pub(crate) fn api_key_by_hash(hash: &[u8; 32]) -> Vec<u8> {
    Key::new(space::API_KEY_BY_HASH).tail(hash).build()
}

/// `[GROUP_MEMBER][group][contact]`.
pub(crate) fn group_member(group: Id, contact: Id) -> Vec<u8> {
    Key::new(space::GROUP_MEMBER)
        .u64(group)
        .u64(contact)
        .build()
}

/// `[GROUP_MEMBER][group]`.
pub(crate) fn group_members(group: Id) -> Vec<u8> {
    Key::new(space::GROUP_MEMBER).u64(group).build()
}

/// `[CONTACT_GROUP][contact][group]`.
pub(crate) fn contact_group(contact: Id, group: Id) -> Vec<u8> {
    Key::new(space::CONTACT_GROUP)
        .u64(contact)
        .u64(group)
        .build()
}

/// `[CONTACT_GROUP][contact]`.
pub(crate) fn contact_groups(contact: Id) -> Vec<u8> {
    Key::new(space::CONTACT_GROUP).u64(contact).build()
}

/// `[WEBHOOK_DELIVERY][org][webhook][id]`.
pub(crate) fn webhook_delivery(org: Id, webhook: Id, id: Id) -> Vec<u8> {
    Key::new(space::WEBHOOK_DELIVERY)
        .u64(org)
        .u64(webhook)
        .u64(id)
        .build()
}

/// `[WEBHOOK_DELIVERY][org][webhook]`.
pub(crate) fn webhook_deliveries(org: Id, webhook: Id) -> Vec<u8> {
    Key::new(space::WEBHOOK_DELIVERY)
        .u64(org)
        .u64(webhook)
        .build()
}

/// Reads big-endian integers back out of a key.
pub(crate) fn u64_at(key: &[u8], offset: usize) -> Option<u64> {
    key.get(offset..offset + 8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}

/// The id at the end of an index key (every index key ends with the record id).
pub(crate) fn trailing_id(key: &[u8]) -> Option<Id> {
    key.len().checked_sub(8).and_then(|at| u64_at(key, at))
}

/// The smallest key after every key starting with `prefix` (for range ends).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xFF; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_endian_keys_sort_numerically() {
        let a = Key::new(space::READY).u64(1).u8(5).u64(255).build();
        let b = Key::new(space::READY).u64(1).u8(5).u64(256).build();
        let c = Key::new(space::READY).u64(1).u8(10).u64(0).build();
        assert!(a < b && b < c);
        assert_eq!(trailing_id(&b), Some(256));
        assert_eq!(prefix_end(&[1, 2, 0xFF]), vec![1, 3]);
    }
}
