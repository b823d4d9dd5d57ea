//! API keys. Only the SHA-256 of a key is stored, and the record lives under that hash, so
//! authentication is a single point read ([`Store::api_key_by_hash`]);
//! `[API_KEY][org][id]` → hash serves the organization's reads and lists.

use crate::kv::{Batch, Kv};
use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::keys::{self, space};
use crate::messages::{Page, PageRequest, next_id};
use crate::model::{ApiKey, Id, Millis};
use crate::value::{decode, encode, hex};
use crate::writer::Ctx;
use crate::{Store, now_ms};

use super::{clean_name, invalid, not_found, page_of};

const ENTITY: &str = "api key";

/// Characters of the key kept in clear as `keyPrefix`: "sk_live_" and four more, enough to
/// tell a tenant's keys apart and far too few to guess the rest.
const KEY_PREFIX_CHARS: usize = 12;

/// Shortest and longest raw key accepted, in bytes.
const KEY_LEN: std::ops::RangeInclusive<usize> = 16..=256;

/// How often a key's `lastUsedAt` is written at most (blueprint §6.2: debounced, every 60 s).
pub(crate) const TOUCH_INTERVAL_MS: Millis = 60_000;

/// The SHA-256 of a raw API key, as stored and looked up.
pub fn api_key_hash(raw_key: &str) -> [u8; 32] {
    Sha256::digest(raw_key.as_bytes()).into()
}

fn hash_of(value: &[u8]) -> Result<[u8; 32]> {
    value.try_into().map_err(|_| StoreError::Corrupt {
        key: "api key index".into(),
        problem: format!("a hash of {} bytes", value.len()),
    })
}

fn id_key(org: Id, id: Id) -> Vec<u8> {
    keys::scoped(space::API_KEY, org, id)
}

fn load_by_hash(tree: &Kv, hash: &[u8; 32]) -> Result<Option<ApiKey>> {
    let key = keys::api_key_by_hash(hash);
    tree.get(&key)?
        .map(|bytes| decode(&key, &bytes))
        .transpose()
}

fn load(tree: &Kv, org: Id, id: Id) -> Result<ApiKey> {
    let Some(hash) = tree.get(id_key(org, id))? else {
        return Err(not_found(ENTITY, id));
    };
    match load_by_hash(tree, &hash_of(&hash)?)? {
        Some(key) if key.organization_id == org && key.id == id => Ok(key),
        _ => Err(not_found(ENTITY, id)),
    }
}

fn validate(key: &mut ApiKey) -> Result<()> {
    key.name = clean_name("name", &key.name)?;
    if key.scopes.iter().any(|s| s.trim().is_empty()) {
        return Err(invalid("scopes", "contains an empty scope"));
    }
    Ok(())
}

fn write(batch: &mut Batch, key: &ApiKey) -> Result<()> {
    batch.insert(id_key(key.organization_id, key.id), key.key_hash);
    batch.insert(keys::api_key_by_hash(&key.key_hash), encode(key)?);
    Ok(())
}

fn create_op(ctx: &mut Ctx, mut key: ApiKey, now: Millis) -> Result<ApiKey> {
    if key.organization_id == 0 {
        return Err(invalid("organizationId", "must be set"));
    }
    validate(&mut key)?;
    if let Some(holder) = load_by_hash(&ctx.kv, &key.key_hash)? {
        // Keys are 32 random bytes, so this is a caller reusing a key. Another tenant's key is
        // not confirmed to exist: only the fact that this key cannot be used.
        return Err(if holder.organization_id == key.organization_id {
            StoreError::Conflict {
                entity: ENTITY,
                what: format!("key {}…", holder.key_prefix),
                existing_id: holder.id,
            }
        } else {
            invalid("key", "cannot be used; generate another")
        });
    }
    key.id = next_id(ctx)?;
    key.created_at = now;
    key.updated_at = now;
    key.last_used_at = None;
    let mut batch = Batch::default();
    write(&mut batch, &key)?;
    ctx.apply(batch)?;
    Ok(key)
}

fn update_op(
    ctx: &mut Ctx,
    org: Id,
    id: Id,
    now: Millis,
    change: impl FnOnce(&mut ApiKey) -> Result<()>,
) -> Result<ApiKey> {
    let old = load(&ctx.kv, org, id)?;
    let mut new = old.clone();
    change(&mut new)?;
    // The hash is the record's place and the prefix describes it: neither can change, and
    // last use is the store's to record.
    new.id = old.id;
    new.organization_id = old.organization_id;
    new.key_hash = old.key_hash;
    new.key_prefix = old.key_prefix.clone();
    new.last_used_at = old.last_used_at;
    new.created_at = old.created_at;
    new.updated_at = now;
    validate(&mut new)?;
    let mut batch = Batch::default();
    write(&mut batch, &new)?;
    ctx.apply(batch)?;
    Ok(new)
}

fn delete_op(ctx: &mut Ctx, org: Id, id: Id) -> Result<ApiKey> {
    let old = load(&ctx.kv, org, id)?;
    let mut batch = Batch::default();
    batch.remove(id_key(org, id));
    batch.remove(keys::api_key_by_hash(&old.key_hash));
    ctx.apply(batch)?;
    Ok(old)
}

fn touch_op(ctx: &mut Ctx, hash: [u8; 32], at: Millis) -> Result<()> {
    let Some(mut key) = load_by_hash(&ctx.kv, &hash)? else {
        return Ok(());
    };
    if key.last_used_at.is_some_and(|last| last >= at) {
        return Ok(());
    }
    key.last_used_at = Some(at);
    ctx.kv.insert(keys::api_key_by_hash(&hash), encode(&key)?)?;
    Ok(())
}

impl Store {
    /// Creates an API key from the raw key the caller generated and shows the user once. Only
    /// its SHA-256 (`keyHash`) and its first characters (`keyPrefix`) are stored; the store sets
    /// both, with `id` and the times.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a missing name or a raw key shorter than 16 or longer than
    /// 256 bytes; [`StoreError::Conflict`] when the organization already has this key;
    /// storage errors.
    pub async fn create_api_key(&self, mut key: ApiKey, raw_key: &str) -> Result<ApiKey> {
        if !KEY_LEN.contains(&raw_key.len()) {
            return Err(invalid(
                "key",
                format!("must be {} to {} bytes", KEY_LEN.start(), KEY_LEN.end()),
            ));
        }
        if raw_key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("key", "contains whitespace or control characters"));
        }
        key.key_hash = api_key_hash(raw_key);
        key.key_prefix = raw_key.chars().take(KEY_PREFIX_CHARS).collect();
        self.writer()
            .run(move |ctx| create_op(ctx, key, now_ms()))
            .await
    }

    /// The key whose SHA-256 is `hash`, whatever its organization: the authentication path,
    /// one point read. The caller checks `isActive`, `expiresAt` and scopes.
    ///
    /// # Errors
    /// Storage errors.
    pub fn api_key_by_hash(&self, hash: &[u8; 32]) -> Result<Option<ApiKey>> {
        load_by_hash(self.kv(), hash)
    }

    /// An API key of the organization.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], also for another organization's key.
    pub fn api_key(&self, org: Id, id: Id) -> Result<ApiKey> {
        load(self.kv(), org, id)
    }

    /// The organization's API keys, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_api_keys(&self, org: Id, page: PageRequest) -> Result<Page<ApiKey>> {
        let tree = self.kv();
        page_of(
            tree,
            &keys::scoped_prefix(space::API_KEY, org),
            page,
            |key, hash| {
                load_by_hash(tree, &hash_of(hash)?)?.ok_or_else(|| StoreError::Corrupt {
                    key: hex(key),
                    problem: "api key index without its record".into(),
                })
            },
            None,
        )
    }

    /// Changes an API key (name, scopes, limits, expiry, `isActive`); its hash, prefix and last
    /// use cannot change.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], validation errors, or what `change` returns.
    pub async fn update_api_key(
        &self,
        org: Id,
        id: Id,
        change: impl FnOnce(&mut ApiKey) -> Result<()> + Send + 'static,
    ) -> Result<ApiKey> {
        self.writer()
            .run(move |ctx| update_op(ctx, org, id, now_ms(), change))
            .await
    }

    /// Revokes an API key: it stays listed, inactive, and no longer authenticates.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], storage errors.
    pub async fn revoke_api_key(&self, org: Id, id: Id) -> Result<ApiKey> {
        self.update_api_key(org, id, |key| {
            key.is_active = false;
            Ok(())
        })
        .await
    }

    /// Deletes an API key and its hash entry.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], storage errors.
    pub async fn delete_api_key(&self, org: Id, id: Id) -> Result<ApiKey> {
        self.writer().run(move |ctx| delete_op(ctx, org, id)).await
    }

    /// Records that `key` was just used, cheaply: at most once a minute per key (remembered in
    /// memory), queued on the writer without waiting for it or for a flush, and dropped when
    /// the writer is busy. `lastUsedAt` is therefore approximate (up to a minute behind, or
    /// lost in a crash), which is what it is for. Returns whether a write was queued.
    pub fn touch_last_used(&self, key: &ApiKey) -> bool {
        let now = now_ms();
        {
            let Ok(mut touched) = self.touched().lock() else {
                return false;
            };
            let last = touched
                .get(&key.id)
                .copied()
                .or(key.last_used_at)
                .unwrap_or(0);
            if now.saturating_sub(last) < TOUCH_INTERVAL_MS {
                return false;
            }
            touched.insert(key.id, now);
        }
        let hash = key.key_hash;
        self.writer().submit(move |ctx| touch_op(ctx, hash, now))
    }
}
