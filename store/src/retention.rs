//! Retention and erasure of messages: purging old messages with their events and index entries,
//! and anonymising the messages of a phone number (the right to erasure).

use crate::kv::Batch;
use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::keys::{Key, prefix_end, space, trailing_id};
use crate::messages::{load_message, write_message};
use crate::model::{Direction, Id, Message, Millis, QueuePlace};
use crate::writer::Ctx;
use crate::{Store, now_ms};

/// Messages purged or anonymised per writer turn, so other operations are not held up long.
const CHUNK: usize = 512;

/// Default retention when an organization sets none (blueprint: one year).
pub const DEFAULT_RETENTION_DAYS: u32 = 365;

const META_ERASURE_SALT: &[u8] = b"erasure_salt";

fn remove_events(ctx: &Ctx, batch: &mut Batch, m: &Message) -> Result<u64> {
    let prefix = Key::new(space::EVENT).u64(m.id).build();
    let mut removed = 0;
    for key in ctx.kv.scan_prefix(&prefix).keys() {
        batch.remove(key?);
        removed += 1;
    }
    Ok(removed)
}

/// One chunk of the purge: messages of `org` created before `cutoff` that are out of the queue.
fn purge_chunk(ctx: &mut Ctx, org: Id, cutoff: Millis) -> Result<(u64, bool)> {
    let mut batch = Batch::default();
    let mut purged = 0u64;
    let mut more = false;
    for direction in [Direction::Outbound, Direction::Inbound] {
        let prefix = Key::new(space::MSG_BY_DIR)
            .u64(org)
            .u8(direction.code())
            .build();
        let end = Key::new(space::MSG_BY_DIR)
            .u64(org)
            .u8(direction.code())
            .u64(cutoff)
            .build();
        for key in ctx.kv.range(prefix..end).keys() {
            if purged >= CHUNK as u64 {
                more = true;
                break;
            }
            let Some(id) = trailing_id(&key?) else {
                continue;
            };
            let m = load_message(&ctx.kv, org, id)?;
            // A message still waiting to be sent is never purged: it was accepted and is owed a
            // final state first.
            if m.queue != QueuePlace::Done {
                continue;
            }
            remove_events(ctx, &mut batch, &m)?;
            write_message(&ctx.kv, &mut batch, Some(&m), None)?;
            purged += 1;
        }
    }
    ctx.apply(batch)?;
    Ok((purged, more))
}

fn erasure_salt(ctx: &Ctx) -> Result<Vec<u8>> {
    let key = Key::new(space::META).tail(META_ERASURE_SALT).build();
    if let Some(salt) = ctx.kv.get(&key)? {
        return Ok(salt.to_vec());
    }
    let salt: [u8; 32] = rand::random();
    ctx.kv.insert(key, salt)?;
    Ok(salt.to_vec())
}

/// The stand-in for an erased phone number: a salted SHA-256, so an erased number cannot be
/// recovered from the store but the same number still maps to the same stand-in.
fn anonymised(salt: &[u8], phone: &str) -> String {
    let digest = Sha256::new()
        .chain_update(salt)
        .chain_update(phone.as_bytes())
        .finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("erased:{hex}")
}

fn anonymise_chunk(
    ctx: &mut Ctx,
    org: Id,
    phone: &str,
    clear_body: bool,
    now: Millis,
) -> Result<(u64, bool)> {
    let salt = erasure_salt(ctx)?;
    let replacement = anonymised(&salt, phone);
    let prefix = Key::new(space::MSG_BY_TO).u64(org).str0(phone).build();
    let mut ids: Vec<Id> = ctx
        .kv
        .range(prefix.clone()..prefix_end(&prefix))
        .keys()
        .take(CHUNK + 1)
        .filter_map(|k| k.ok().and_then(|k| trailing_id(&k)))
        .collect();
    if ids.len() <= CHUNK {
        // Inbound messages carry the number as the sender; there is no index by sender, so
        // scan the organization's inbound messages (erasure is rare).
        let inbound = Key::new(space::MSG_BY_DIR)
            .u64(org)
            .u8(Direction::Inbound.code())
            .build();
        for key in ctx.kv.range(inbound.clone()..prefix_end(&inbound)).keys() {
            let Some(id) = trailing_id(&key?) else {
                continue;
            };
            if load_message(&ctx.kv, org, id)?.from_number == phone {
                ids.push(id);
                if ids.len() > CHUNK {
                    break;
                }
            }
        }
    }
    ids.sort_unstable();
    ids.dedup();
    let more = ids.len() > CHUNK;
    let mut batch = Batch::default();
    let mut changed = 0u64;
    let mut snapshots = std::collections::HashMap::new();
    for id in ids.into_iter().take(CHUNK) {
        let old = load_message(&ctx.kv, org, id)?;
        let mut new = old.clone();
        if new.to_number == phone {
            new.to_number = replacement.clone();
        }
        if new.from_number == phone {
            new.from_number = replacement.clone();
        }
        new.contact_id = None;
        if clear_body {
            new.body.clear();
            new.metadata = None;
        }
        new.updated_at = now;
        write_message(&ctx.kv, &mut batch, Some(&old), Some(&new))?;
        snapshots.insert(id, new);
        changed += 1;
    }
    // The outbox's copies of these messages are erased with them.
    crate::outbox::rewrite_snapshots(ctx, &mut batch, org, &snapshots)?;
    ctx.apply(batch)?;
    Ok((changed, more))
}

impl Store {
    /// Deletes the organization's messages created before `cutoff`, with their events and index
    /// entries, in chunks so other writes interleave. Messages still in the queue are kept.
    /// Returns how many were purged.
    ///
    /// # Errors
    /// Storage errors (what was purged before the error stays purged).
    pub async fn purge_messages_before(&self, org: Id, cutoff: Millis) -> Result<u64> {
        let mut total = 0;
        loop {
            let (purged, more) = self
                .writer()
                .run(move |ctx| purge_chunk(ctx, org, cutoff))
                .await?;
            total += purged;
            if !more {
                return Ok(total);
            }
        }
    }

    /// Anonymises every message of the organization to or from `phone`: the number is replaced by
    /// a salted hash (the same for every message of that number), the contact link removed, and
    /// the body and metadata cleared when `clear_body`. Returns how many messages changed.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn anonymise_messages(&self, org: Id, phone: &str, clear_body: bool) -> Result<u64> {
        let mut total = 0;
        loop {
            let phone = phone.to_owned();
            let (changed, more) = self
                .writer()
                .run(move |ctx| anonymise_chunk(ctx, org, &phone, clear_body, now_ms()))
                .await?;
            total += changed;
            if !more {
                return Ok(total);
            }
        }
    }
}

impl Store {
    /// Applies every organization's retention (its `retentionDays`, else `default_days`): purges
    /// messages created more than that many days before `now`. Returns the number purged.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn apply_retention(&self, now: Millis, default_days: u32) -> Result<u64> {
        let mut purged = 0;
        for org in self.all_organizations()? {
            let days = org.retention_days.unwrap_or(default_days);
            let cutoff = now.saturating_sub(days_ms(days));
            purged += self.purge_messages_before(org.id, cutoff).await?;
            // The outbox keeps no copy of a message longer than the message itself is kept.
            self.trim_outbox_org(org.id, cutoff, false).await?;
        }
        Ok(purged)
    }
}

/// Milliseconds in `days` days.
pub fn days_ms(days: u32) -> Millis {
    u64::from(days) * 86_400_000
}
