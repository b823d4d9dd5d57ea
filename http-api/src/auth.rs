//! Authentication: API keys (`sk_live_` + base62 of 32 random bytes, stored as SHA-256 only)
//! resolved through an in-memory cache, so steady-state authentication reads nothing from the
//! store; the superadmin token for `/api/admin/*`, compared in constant time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sairex_store::model::{ApiKey, Id, Millis};
use sairex_store::{api_key_hash, now_ms};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::limits::Verdict;
use crate::state::{AppState, OrgInfo};

/// What every API key starts with.
pub const API_KEY_PREFIX: &str = "sk_live_";

/// How long a cached key is trusted before it is read again (changes made through this API
/// invalidate it at once; this bounds changes made any other way).
const KEY_TTL_MS: Millis = 60_000;

/// How often a key's `lastUsedAt` is written at most.
const TOUCH_INTERVAL_MS: Millis = 60_000;

/// Most keys cached; the cache is emptied when full (keys are few; this bounds memory against
/// a flood of distinct valid keys only, since unknown keys are never cached).
const KEY_CACHE_CAP: usize = 100_000;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Base62 of 32 bytes as a big-endian number, always 43 characters.
pub(crate) fn base62_32(bytes: [u8; 32]) -> String {
    let mut number = bytes.to_vec();
    let mut digits = Vec::with_capacity(43);
    while number.iter().any(|&b| b != 0) {
        let mut remainder = 0u32;
        for byte in &mut number {
            let acc = (remainder << 8) | u32::from(*byte);
            // acc < 62 * 256, so the quotient fits a byte.
            *byte = u8::try_from(acc / 62).unwrap_or(u8::MAX);
            remainder = acc % 62;
        }
        digits.push(BASE62[remainder as usize]);
    }
    while digits.len() < 43 {
        digits.push(b'0');
    }
    digits.reverse();
    digits.into_iter().map(char::from).collect()
}

/// A new raw API key: `sk_live_` and base62 of 32 random bytes. Show it once; store
/// only its SHA-256 (the store's `create_api_key` does that).
pub fn generate_api_key() -> String {
    let mut key = String::with_capacity(API_KEY_PREFIX.len() + 43);
    key.push_str(API_KEY_PREFIX);
    key.push_str(&base62_32(rand::random()));
    key
}

/// A new webhook signing secret (`whsec_` and base62 of 32 random bytes).
pub(crate) fn generate_webhook_secret() -> String {
    format!("whsec_{}", base62_32(rand::random()))
}

/// Scopes, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    SmsSend,
    SmsRead,
    ContactsRead,
    ContactsWrite,
    CampaignsWrite,
    /// The blueprint's ORG_ADMIN: every other scope too.
    Admin,
}

impl Scope {
    pub(crate) const ALL: [Scope; 6] = [
        Self::SmsSend,
        Self::SmsRead,
        Self::ContactsRead,
        Self::ContactsWrite,
        Self::CampaignsWrite,
        Self::Admin,
    ];

    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::SmsSend => "sms:send",
            Self::SmsRead => "sms:read",
            Self::ContactsRead => "contacts:read",
            Self::ContactsWrite => "contacts:write",
            Self::CampaignsWrite => "campaigns:write",
            Self::Admin => "admin",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Self::SmsSend => 1,
            Self::SmsRead => 2,
            Self::ContactsRead => 4,
            Self::ContactsWrite => 8,
            Self::CampaignsWrite => 16,
            Self::Admin => 32,
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Scope> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The scopes of a key as bits (unknown names, which the API never writes, grant nothing).
fn scope_bits(scopes: &[String]) -> u8 {
    scopes
        .iter()
        .filter_map(|s| Scope::parse(s))
        .fold(0, |bits, s| bits | s.bit())
}

/// The caller of an `/api/sms/*` request, put in the request's extensions by [`authenticate`].
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    /// The API key, or 0 for a console user.
    pub(crate) key_id: Id,
    /// The console user acting, when the request came from the web console.
    pub(crate) user_id: Option<Id>,
    pub(crate) org: Arc<OrgInfo>,
    scopes: u8,
}

impl Principal {
    /// A console user of `org`: an ADMIN has every scope (the blueprint's ORG_ADMIN), a MEMBER
    /// every scope but `admin` (providers, keys, webhooks, users).
    pub(crate) fn console(user_id: Id, org: Arc<OrgInfo>, admin: bool) -> Self {
        let scopes = Scope::ALL
            .into_iter()
            .filter(|s| admin || *s != Scope::Admin)
            .fold(0, |bits, s| bits | s.bit());
        Self {
            key_id: 0,
            user_id: Some(user_id),
            org,
            scopes,
        }
    }

    /// The API key a message or campaign records (none for a console user).
    pub(crate) fn api_key_id(&self) -> Option<Id> {
        self.user_id.is_none().then_some(self.key_id)
    }

    /// Who created a campaign: `api-key:ID` or `user:ID`.
    pub(crate) fn created_by(&self) -> String {
        match self.user_id {
            Some(user) => format!("user:{user}"),
            None => format!("api-key:{}", self.key_id),
        }
    }

    pub(crate) fn org_id(&self) -> Id {
        self.org.id
    }

    /// 403 unless the key has `scope` (or `admin`).
    pub(crate) fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.scopes & (scope.bit() | Scope::Admin.bit()) != 0 {
            Ok(())
        } else {
            Err(ApiError::forbidden(scope.name()))
        }
    }
}

/// A key as the cache holds it.
#[derive(Debug)]
pub(crate) struct CachedKey {
    record: ApiKey,
    scopes: u8,
    loaded_at: Millis,
    /// When `lastUsedAt` was last handed to the store (0: never by this process).
    touched_at: AtomicU64,
}

/// The key cache: SHA-256 → key.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    keys: std::sync::RwLock<std::collections::HashMap<[u8; 32], Arc<CachedKey>>>,
}

impl KeyCache {
    fn get(&self, hash: &[u8; 32], now: Millis) -> Option<Arc<CachedKey>> {
        let keys = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        keys.get(hash)
            .filter(|k| now.saturating_sub(k.loaded_at) < KEY_TTL_MS)
            .cloned()
    }

    fn put(&self, record: ApiKey, now: Millis) -> Arc<CachedKey> {
        let cached = Arc::new(CachedKey {
            scopes: scope_bits(&record.scopes),
            touched_at: AtomicU64::new(0),
            loaded_at: now,
            record,
        });
        let mut keys = self
            .keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.len() >= KEY_CACHE_CAP {
            keys.clear();
        }
        keys.insert(cached.record.key_hash, Arc::clone(&cached));
        cached
    }

    /// Forgets a key (after revoke, rotate, update or delete).
    pub(crate) fn invalidate(&self, hash: &[u8; 32]) {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(hash);
    }
}

/// The bearer token of a request.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Resolves the key of a request: cache first, the store on a miss.
fn resolve(state: &AppState, headers: &HeaderMap, now: Millis) -> Result<Arc<CachedKey>, ApiError> {
    let Some(raw) = bearer(headers) else {
        return Err(ApiError::unauthorized(
            "missing API key: send Authorization: Bearer sk_live_…",
        ));
    };
    let hash = api_key_hash(raw);
    let key = match state.keys().get(&hash, now) {
        Some(key) => key,
        None => match state.store().api_key_by_hash(&hash)? {
            Some(record) => state.keys().put(record, now),
            None => return Err(ApiError::unauthorized("invalid API key")),
        },
    };
    if !key.record.is_active {
        return Err(ApiError::unauthorized("this API key has been revoked"));
    }
    if key.record.expires_at.is_some_and(|at| at <= now) {
        return Err(ApiError::unauthorized("this API key has expired"));
    }
    Ok(key)
}

/// Middleware of `/api/sms/*`: authenticates the key (401), applies the key's and the
/// organization's rate limits (429 with Retry-After), and puts X-RateLimit-* headers on the
/// response, whatever it is.
pub(crate) async fn authenticate(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let now = now_ms();
    let key = match resolve(&state, request.headers(), now) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    let org = match state.org(key.record.organization_id, now) {
        Ok(org) => org,
        // A key whose organization is gone authenticates nobody.
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {
            return ApiError::unauthorized("invalid API key").into_response();
        }
        Err(e) => return e.into_response(),
    };
    if !org.is_active {
        return ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "ORGANIZATION_DISABLED",
            "this organization is disabled",
        )
        .into_response();
    }
    let verdict = state.limiter().check(
        &key.record,
        org.id,
        state.settings().org_per_minute,
        state.settings().org_per_day,
        now,
    );
    let mut response = match verdict {
        Verdict::Limited {
            scope, retry_after, ..
        } => {
            metrics::counter!("sms_rate_limit_hits_total", "scope" => scope).increment(1);
            ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                format!("rate limit of the {scope} exceeded"),
            )
            .retry_after(retry_after)
            .into_response()
        }
        Verdict::Allowed { .. } => {
            touch(&state, &key, now);
            request.extensions_mut().insert(Principal {
                key_id: key.record.id,
                user_id: None,
                org,
                scopes: key.scopes,
            });
            next.run(request).await
        }
    };
    let (limit, remaining, reset) = verdict.headers();
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
    response
}

/// Hands `lastUsedAt` to the store at most once a minute per key.
fn touch(state: &AppState, key: &CachedKey, now: Millis) {
    let last = key.touched_at.load(Ordering::Relaxed);
    if now.saturating_sub(last) >= TOUCH_INTERVAL_MS
        && key
            .touched_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        state.store().touch_last_used(&key.record);
    }
}

/// Middleware of `/api/admin/*`: the superadmin token, compared in constant time (digests of
/// equal length, so the token's length does not leak either).
pub(crate) async fn superadmin(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if state.settings().admin_token.is_none() {
        return ApiError::unauthorized("no superadmin token is configured").into_response();
    }
    if !is_superadmin(request.headers(), state.settings().admin_token.as_ref()) {
        return ApiError::unauthorized("invalid superadmin token").into_response();
    }
    next.run(request).await
}

/// Whether the request's bearer token is the superadmin token (compared in constant time);
/// never without a configured token.
pub(crate) fn is_superadmin(headers: &HeaderMap, expected: Option<&crate::Secret>) -> bool {
    let Some(expected) = expected else {
        return false;
    };
    let given = bearer(headers).unwrap_or("");
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(expected.expose().as_bytes());
    !given.is_empty() && bool::from(a.ct_eq(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base62_is_fixed_width_and_distinct() {
        assert_eq!(base62_32([0; 32]), "0".repeat(43));
        let max = base62_32([0xFF; 32]);
        assert_eq!(max.len(), 43);
        let mut one = [0u8; 32];
        one[31] = 61;
        assert!(base62_32(one).ends_with('z'));
        one[31] = 62;
        assert!(base62_32(one).ends_with("10"));
        let a = generate_api_key();
        let b = generate_api_key();
        assert!(a.starts_with(API_KEY_PREFIX));
        assert_eq!(a.len(), API_KEY_PREFIX.len() + 43);
        assert_ne!(a, b);
        assert!(
            a[API_KEY_PREFIX.len()..]
                .bytes()
                .all(|c| c.is_ascii_alphanumeric())
        );
    }

    #[test]
    fn scopes_round_trip_and_admin_implies_all() {
        for s in Scope::ALL {
            assert_eq!(Scope::parse(s.name()), Some(s));
        }
        assert_eq!(scope_bits(&["sms:send".into(), "nonsense".into()]), 1);
    }
}
