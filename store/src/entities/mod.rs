//! Tenants' entities: one file per family, on a few shared operations.
//!
//! Every record of an organization lives at `[space][org][id]`, so a read with another
//! organization's id finds nothing: [`StoreError::NotFound`], never a hint that it exists.
//! Every change runs on the writer and is one batch: the record, its unique index entries
//! (`[..._BY_...][org][name]` → id) and any counter it moves. Lists walk the organization's
//! prefix newest first (ids grow with time), counting every match for the page's total.
//!
//! What a record may not change through a plain update (ids, creation time, counters and
//! states the store keeps, such as a group's `memberCount` or a contact's opt-out) is restored
//! from the stored record ([`Record::keep_owned`]); dedicated operations change those.

mod api_keys;
mod bulk;
mod campaigns;
mod console;
mod contacts;
mod groups;
mod idempotent;
mod organizations;
mod providers;
mod render;
mod smpp_accounts;
mod smpp_outbox;
mod smpp_parts;
mod templates;
mod webhooks;

use crate::kv::{Batch, Kv};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use api_keys::api_key_hash;
pub use bulk::{CampaignCounts, MAX_ROWS_PER_CALL, Recipient, RowOutcome};
pub use campaigns::{CampaignStats, MAX_VARIANTS};
pub use contacts::{CONTACT_CSV_HEADER, ContactFilter, Erasure, Upserted};
pub use groups::{MAX_MEMBERS_PER_CALL, MembershipChange};
pub use idempotent::{IDEMPOTENT_RESPONSE_TTL_MS, MAX_IDEMPOTENCY_KEY_BYTES, StoredResponse};
pub use providers::ProviderHealth;
pub use render::render_template;
pub use smpp_accounts::{MAX_SYSTEM_ID, ReceiptIdFormat, SmppAccount, SmppBindType};
pub use smpp_outbox::{SmppLink, SmppOwed, SmppOwedKind, receipt_wanted};
pub use smpp_parts::{NewPart, PartOutcome, SmppPart};
pub(crate) use webhooks::log_deliveries;

use crate::crypto::{Sealer, Stored};
use crate::error::{Result, StoreError};
use crate::keys::{self, prefix_end, u64_at};
use crate::messages::{MAX_PAGE, Page, PageRequest, next_id};
use crate::model::{Id, Millis};
use crate::value::{decode, encode, hex};
use crate::writer::Ctx;

/// Longest name (group, template, organization, key label) in bytes.
const MAX_NAME: usize = 200;

/// A record of an organization, stored at `[SPACE][org][id]`.
pub(crate) trait Record: Serialize + DeserializeOwned + Clone + Send + 'static {
    /// Its kind, for errors ("contact").
    const ENTITY: &'static str;
    /// Its keyspace.
    const SPACE: u8;
    /// Whether organization 0 (system-level) may own one.
    const SYSTEM_ORG: bool = false;
    /// Whether it carries a secret to seal ([`Record::take_secret`]).
    const SEALED: bool = false;

    fn id(&self) -> Id;
    fn org(&self) -> Id;
    /// Sets what the store assigns: id, organization, creation and update times.
    fn stamp(&mut self, id: Id, org: Id, created_at: Millis, updated_at: Millis);
    fn created_at(&self) -> Millis;
    /// Restores, from the stored record, fields only the store's own operations change.
    fn keep_owned(&mut self, _old: &Self) {}
    /// Checks and normalises the caller's fields.
    fn validate(&mut self) -> Result<()>;
    /// The unique index entry it claims, and what to call it in a conflict.
    fn unique_key(&self) -> Option<(Vec<u8>, String)> {
        None
    }
    /// Checks that the records it refers to are the same organization's.
    fn check_refs(&self, _tree: &Kv) -> Result<()> {
        Ok(())
    }
    /// Empties the secret field and returns the secret to seal (`None`: nothing secret).
    fn take_secret(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }
    /// Puts an opened secret back.
    fn put_secret(&mut self, _plain: Vec<u8>) -> Result<()> {
        Ok(())
    }

    fn key(org: Id, id: Id) -> Vec<u8> {
        keys::scoped(Self::SPACE, org, id)
    }
}

pub(crate) fn not_found(entity: &'static str, id: Id) -> StoreError {
    StoreError::NotFound { entity, id }
}

fn invalid(field: &'static str, problem: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        field,
        problem: problem.into(),
    }
}

/// A name: trimmed, non-empty, at most [`MAX_NAME`] bytes, no control characters.
fn clean_name(field: &'static str, name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid(field, "is required"));
    }
    if name.len() > MAX_NAME {
        return Err(invalid(field, format!("is longer than {MAX_NAME} bytes")));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(name.to_owned())
}

/// Empty (unknown), or an ISO 3166-1 alpha-2 code.
fn is_country_code(code: &str) -> bool {
    code.is_empty() || (code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase()))
}

/// The record's bytes: plain, or with its secret sealed under the record's key.
pub(crate) fn encode_record<T: Record>(
    sealer: Option<&Sealer>,
    key: &[u8],
    record: &T,
) -> Result<Vec<u8>> {
    if !T::SEALED {
        return encode(record);
    }
    let mut record = record.clone();
    let sealed = match record.take_secret()? {
        Some(plain) => Some(
            sealer
                .ok_or(StoreError::MasterKeyRequired)?
                .seal(key, &plain)?,
        ),
        None => None,
    };
    encode(&Stored { record, sealed })
}

pub(crate) fn decode_record<T: Record>(
    sealer: Option<&Sealer>,
    key: &[u8],
    bytes: &[u8],
) -> Result<T> {
    if !T::SEALED {
        return decode(key, bytes);
    }
    let stored: Stored<T> = decode(key, bytes)?;
    let mut record = stored.record;
    if let Some(sealed) = stored.sealed {
        let plain = sealer
            .ok_or(StoreError::MasterKeyRequired)?
            .open(key, &sealed)
            .ok_or_else(|| StoreError::Corrupt {
                key: hex(key),
                problem: "the secret does not open under the master key (changed or moved)".into(),
            })?;
        record.put_secret(plain)?;
    }
    Ok(record)
}

pub(crate) fn load<T: Record>(tree: &Kv, sealer: Option<&Sealer>, org: Id, id: Id) -> Result<T> {
    let key = T::key(org, id);
    match tree.get(&key)? {
        Some(bytes) => decode_record(sealer, &key, &bytes),
        None => Err(not_found(T::ENTITY, id)),
    }
}

/// Fails with a conflict when `index` is held by a record other than `id`.
fn claim(tree: &Kv, index: &[u8], id: Id, entity: &'static str, what: &str) -> Result<()> {
    match tree.get(index)?.and_then(|v| u64_at(&v, 0)) {
        Some(holder) if holder != id => Err(StoreError::Conflict {
            entity,
            what: what.to_owned(),
            existing_id: holder,
        }),
        _ => Ok(()),
    }
}

/// Writes `new` (replacing `old`, when given) with its unique index entry into `batch`.
pub(crate) fn write_record<T: Record>(
    tree: &Kv,
    sealer: Option<&Sealer>,
    batch: &mut Batch,
    old: Option<&T>,
    new: &T,
) -> Result<()> {
    let old_unique = old.and_then(Record::unique_key);
    let new_unique = new.unique_key();
    if old_unique.as_ref().map(|u| &u.0) != new_unique.as_ref().map(|u| &u.0) {
        if let Some((index, what)) = &new_unique {
            claim(tree, index, new.id(), T::ENTITY, what)?;
            batch.insert(index.as_slice(), new.id().to_be_bytes());
        }
        if let Some((index, _)) = old_unique {
            batch.remove(index);
        }
    }
    let key = T::key(new.org(), new.id());
    batch.insert(key.as_slice(), encode_record(sealer, &key, new)?);
    Ok(())
}

/// Creates a record: the store assigns its id and times.
pub(crate) fn create_op<T: Record>(
    ctx: &mut Ctx,
    sealer: Option<&Sealer>,
    mut record: T,
    now: Millis,
) -> Result<T> {
    let org = record.org();
    if org == 0 && !T::SYSTEM_ORG {
        return Err(invalid("organizationId", "must be set"));
    }
    record.validate()?;
    record.check_refs(&ctx.kv)?;
    let created = match record.created_at() {
        0 => now,
        at => at,
    };
    record.stamp(next_id(ctx)?, org, created, now);
    let mut batch = Batch::default();
    write_record(&ctx.kv, sealer, &mut batch, None, &record)?;
    ctx.apply(batch)?;
    Ok(record)
}

/// A caller's update: `change` edits a copy; ids, creation time and store-owned fields are
/// restored, the rest validated, and the unique index moved if it changed.
pub(crate) fn update_op<T: Record>(
    ctx: &mut Ctx,
    sealer: Option<&Sealer>,
    org: Id,
    id: Id,
    now: Millis,
    change: impl FnOnce(&mut T) -> Result<()>,
) -> Result<T> {
    let old: T = load(&ctx.kv, sealer, org, id)?;
    let mut new = old.clone();
    change(&mut new)?;
    new.stamp(old.id(), old.org(), old.created_at(), now);
    new.keep_owned(&old);
    new.validate()?;
    new.check_refs(&ctx.kv)?;
    let mut batch = Batch::default();
    write_record(&ctx.kv, sealer, &mut batch, Some(&old), &new)?;
    ctx.apply(batch)?;
    Ok(new)
}

/// The store's own change of a record (counters, health, opt-out): no caller fields move, so
/// neither validation nor the unique index is involved.
pub(crate) fn rewrite_op<T: Record>(
    ctx: &mut Ctx,
    sealer: Option<&Sealer>,
    org: Id,
    id: Id,
    now: Millis,
    change: impl FnOnce(&mut T) -> Result<()>,
) -> Result<T> {
    let mut record: T = load(&ctx.kv, sealer, org, id)?;
    change(&mut record)?;
    record.stamp(id, org, record.created_at(), now);
    let key = T::key(org, id);
    ctx.kv
        .insert(key.as_slice(), encode_record(sealer, &key, &record)?)?;
    Ok(record)
}

/// Deletes a record and its unique index entry; `cascade` adds what depends on it to the batch.
pub(crate) fn delete_op<T: Record>(
    ctx: &mut Ctx,
    sealer: Option<&Sealer>,
    org: Id,
    id: Id,
    cascade: impl FnOnce(&Kv, &mut Batch, &T) -> Result<()>,
) -> Result<T> {
    let old: T = load(&ctx.kv, sealer, org, id)?;
    let mut batch = Batch::default();
    if let Some((index, _)) = old.unique_key() {
        batch.remove(index);
    }
    batch.remove(T::key(org, id));
    cascade(&ctx.kv, &mut batch, &old)?;
    ctx.apply(batch)?;
    Ok(old)
}

/// One page of the records under `prefix`, newest first. With `keep`, every record is decoded
/// to be counted; without, only the page's records are.
pub(crate) fn page_of<T>(
    tree: &Kv,
    prefix: &[u8],
    page: PageRequest,
    decode: impl Fn(&[u8], &[u8]) -> Result<T>,
    keep: Option<&dyn Fn(&T) -> bool>,
) -> Result<Page<T>> {
    let limit = page.limit.clamp(1, MAX_PAGE);
    let mut items = Vec::new();
    let mut total = 0u64;
    for entry in tree.range(prefix.to_vec()..prefix_end(prefix)).rev() {
        let (key, value) = entry?;
        let on_page = total >= page.offset && items.len() < limit as usize;
        match keep {
            Some(keep) => {
                let record = decode(&key, &value)?;
                if !keep(&record) {
                    continue;
                }
                if on_page {
                    items.push(record);
                }
            }
            None if on_page => items.push(decode(&key, &value)?),
            None => {}
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

/// [`page_of`] over an organization's records of one kind.
pub(crate) fn list<T: Record>(
    tree: &Kv,
    sealer: Option<&Sealer>,
    org: Id,
    page: PageRequest,
    keep: Option<&dyn Fn(&T) -> bool>,
) -> Result<Page<T>> {
    let prefix = keys::scoped_prefix(T::SPACE, org);
    page_of(
        tree,
        &prefix,
        page,
        |key, value| decode_record(sealer, key, value),
        keep,
    )
}

/// Every record of an organization of one kind, oldest first (for small sets: providers,
/// webhooks).
pub(crate) fn all<T: Record>(tree: &Kv, sealer: Option<&Sealer>, org: Id) -> Result<Vec<T>> {
    let prefix = keys::scoped_prefix(T::SPACE, org);
    tree.range(prefix.clone()..prefix_end(&prefix))
        .map(|entry| {
            let (key, value) = entry?;
            decode_record(sealer, &key, &value)
        })
        .collect()
}

/// Implements the [`Record`] plumbing for a model type with the usual field names.
macro_rules! record_fields {
    () => {
        fn id(&self) -> Id {
            self.id
        }
        fn org(&self) -> Id {
            self.organization_id
        }
        fn stamp(&mut self, id: Id, org: Id, created_at: Millis, updated_at: Millis) {
            self.id = id;
            self.organization_id = org;
            self.created_at = created_at;
            self.updated_at = updated_at;
        }
        fn created_at(&self) -> Millis {
            self.created_at
        }
    };
}
pub(crate) use record_fields;
