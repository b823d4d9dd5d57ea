//! Stored responses of idempotent requests (the `Idempotency-Key` header, Stripe-style): a
//! retry with the same key and the same request is answered the original status and body.
//!
//! `[IDEMPOTENT_RESPONSE][org][key]` → [`StoredResponse`]; `[IDEMPOTENT_BY_TIME][stored-at]
//! [org][key]` → () finds the expired ones in time order. Each [`Store::put_idempotent_response`]
//! also removes a bounded number of entries older than [`IDEMPOTENT_RESPONSE_TTL_MS`], so the
//! keyspace stays as large as one day of keyed requests without a sweeper of its own.

use crate::kv::Batch;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::keys::{Key, prefix_end, space, u64_at};
use crate::model::{Id, Millis};
use crate::value::{decode, encode};
use crate::writer::Ctx;
use crate::{Store, now_ms};

/// How long a stored response is kept and replayed: 24 hours (as Stripe).
pub const IDEMPOTENT_RESPONSE_TTL_MS: Millis = 24 * 3600 * 1000;

/// Longest key accepted (bytes).
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// Most expired entries one put removes.
const PURGE_PER_PUT: usize = 16;

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    /// Hash of what was asked (method, route and body), to tell a retry from a reuse.
    pub fingerprint: Vec<u8>,
    /// HTTP status answered.
    pub status: u16,
    /// Body answered, as sent.
    pub body: Vec<u8>,
    /// When it was stored.
    pub stored_at: Millis,
}

fn response_key(org: Id, key: &str) -> Vec<u8> {
    Key::new(space::IDEMPOTENT_RESPONSE)
        .u64(org)
        .tail(key.as_bytes())
        .build()
}

fn time_key(at: Millis, org: Id, key: &str) -> Vec<u8> {
    Key::new(space::IDEMPOTENT_BY_TIME)
        .u64(at)
        .u64(org)
        .tail(key.as_bytes())
        .build()
}

fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
        return Err(StoreError::Invalid {
            field: "idempotencyKey",
            problem: format!("1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes"),
        });
    }
    Ok(())
}

fn put_op(ctx: &mut Ctx, org: Id, key: String, response: StoredResponse) -> Result<()> {
    let mut batch = Batch::default();
    let own = response_key(org, &key);
    // A replaced entry (an expired one stored again) leaves no stale time entry behind.
    if let Some(old) = ctx.kv.get(&own)? {
        let old: StoredResponse = decode(&own, &old)?;
        batch.remove(time_key(old.stored_at, org, &key));
    }
    batch.insert(time_key(response.stored_at, org, &key), []);
    batch.insert(own, encode(&response)?);
    // Expired entries, oldest first.
    let start = [space::IDEMPOTENT_BY_TIME];
    let horizon = response
        .stored_at
        .saturating_sub(IDEMPOTENT_RESPONSE_TTL_MS);
    for entry in ctx
        .kv
        .range(start.to_vec()..prefix_end(&start))
        .keys()
        .take(PURGE_PER_PUT)
    {
        let k = entry?;
        let (Some(at), Some(owner)) = (u64_at(&k, 1), u64_at(&k, 9)) else {
            continue;
        };
        if at >= horizon {
            break;
        }
        let name = k.get(17..).unwrap_or_default();
        let mut own_key = Key::new(space::IDEMPOTENT_RESPONSE).u64(owner).build();
        own_key.extend_from_slice(name);
        // The entry may have been stored again since (a newer time entry points to it).
        let still_this = match ctx.kv.get(&own_key)? {
            Some(v) => decode::<StoredResponse>(&own_key, &v)?.stored_at == at,
            None => false,
        };
        if still_this && own_key != response_key(org, &key) {
            batch.remove(own_key);
        }
        batch.remove(&k);
    }
    ctx.apply(batch)?;
    Ok(())
}

impl Store {
    /// The response stored for `key` of the organization, if one was stored less than
    /// [`IDEMPOTENT_RESPONSE_TTL_MS`] ago.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an empty or too long key, storage errors.
    pub fn idempotent_response(&self, org: Id, key: &str) -> Result<Option<StoredResponse>> {
        check_key(key)?;
        let own = response_key(org, key);
        let Some(bytes) = self.kv().get(&own)? else {
            return Ok(None);
        };
        let stored: StoredResponse = decode(&own, &bytes)?;
        if stored.stored_at.saturating_add(IDEMPOTENT_RESPONSE_TTL_MS) <= now_ms() {
            return Ok(None);
        }
        Ok(Some(stored))
    }

    /// Stores the response to replay for `key` of the organization (replacing an expired
    /// one), durably, and removes a few expired ones.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an empty or too long key, storage errors.
    pub async fn put_idempotent_response(
        &self,
        org: Id,
        key: &str,
        response: StoredResponse,
    ) -> Result<()> {
        check_key(key)?;
        let key = key.to_owned();
        self.writer()
            .run(move |ctx| put_op(ctx, org, key, response))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    fn response(at: Millis, body: &str) -> StoredResponse {
        StoredResponse {
            fingerprint: vec![1, 2, 3],
            status: 202,
            body: body.as_bytes().to_vec(),
            stored_at: at,
        }
    }

    #[tokio::test]
    async fn stores_per_organization_and_expires() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path())).unwrap();
        let now = now_ms();
        store
            .put_idempotent_response(1, "k1", response(now, "a"))
            .await
            .unwrap();
        assert_eq!(
            store.idempotent_response(1, "k1").unwrap().unwrap().body,
            b"a"
        );
        // Another organization's key space.
        assert_eq!(store.idempotent_response(2, "k1").unwrap(), None);
        // An old one is not replayed, and the next put purges it.
        let old = now - IDEMPOTENT_RESPONSE_TTL_MS - 1;
        store
            .put_idempotent_response(1, "old", response(old, "o"))
            .await
            .unwrap();
        assert_eq!(store.idempotent_response(1, "old").unwrap(), None);
        store
            .put_idempotent_response(1, "k2", response(now, "b"))
            .await
            .unwrap();
        assert!(store.kv().get(response_key(1, "old")).unwrap().is_none());
        assert!(store.kv().get(time_key(old, 1, "old")).unwrap().is_none());
        assert!(store.kv().get(response_key(1, "k1")).unwrap().is_some());
        assert!(store.idempotent_response(1, "").is_err());
    }
}
