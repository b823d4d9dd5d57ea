//! Console users: argon2id passwords, creation (superadmin JSON route, Settings → Users, the
//! `sairex user add` command) and the login throttle.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use sairex_store::Store;
use sairex_store::model::{ConsoleRole, ConsoleUser, Id, Millis};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult, envelope, ok};
use crate::listing::{self, ListParams};
use crate::routes::{ApiJson, ApiQuery, parse_id};
use crate::state::AppState;
use crate::time;

/// Shortest password accepted (NIST SP 800-63B's minimum for chosen secrets).
pub const MIN_PASSWORD: usize = 8;
/// Longest password accepted: hashing cost grows with it.
const MAX_PASSWORD: usize = 1024;

/// Failed logins of one account within [`THROTTLE_WINDOW_MS`] before it is refused until the
/// window ends.
const ACCOUNT_FAILURES: u32 = 5;
/// Failed logins from one address within the window before it is refused.
const IP_FAILURES: u32 = 20;
/// The throttle's window.
const THROTTLE_WINDOW_MS: Millis = 15 * 60_000;
/// Most entries kept; expired ones are dropped past it.
const THROTTLE_CAP: usize = 100_000;

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): the crate's defaults, spelled out
    // so a dependency update cannot lower them silently.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A password's problem, or `None` when it is acceptable.
fn password_problem(password: &str) -> Option<String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD {
        Some(format!("password: at least {MIN_PASSWORD} characters"))
    } else if password.len() > MAX_PASSWORD {
        Some(format!("password: at most {MAX_PASSWORD} bytes"))
    } else {
        None
    }
}

/// The argon2id PHC string of a password, with a fresh random salt.
///
/// # Errors
/// A password too short or too long (400).
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    if let Some(problem) = password_problem(password) {
        return Err(ApiError::invalid(problem));
    }
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(ApiError::internal)?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(ApiError::internal)
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash).
pub(crate) fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash no password matches, verified when the email is unknown so that an unknown and a
/// known account take the same time to refuse (no user enumeration by timing).
pub(crate) fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::encode_b64(&[7u8; 16]).ok();
        salt.and_then(|salt| {
            argon2()
                .hash_password(&rand::random::<[u8; 32]>(), &salt)
                .ok()
                .map(|h| h.to_string())
        })
        .unwrap_or_default()
    })
}

/// Parses a role name (`admin`, `member`, any case).
pub fn parse_role(raw: &str) -> Option<ConsoleRole> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "admin" => Some(ConsoleRole::Admin),
        "member" => Some(ConsoleRole::Member),
        _ => None,
    }
}

/// Creates a console user of organization `org` with an argon2id hash of `password`: what
/// the superadmin route, Settings → Users and `sairex user add` all run.
///
/// # Errors
/// 400 for a bad email, name or password; 404 for an unknown organization; 409 when the email
/// is taken (in any organization).
pub async fn create_user(
    store: &Store,
    org: Id,
    email: &str,
    name: &str,
    role: ConsoleRole,
    password: &str,
) -> Result<ConsoleUser, ApiError> {
    let password_hash = hash_password(password)?;
    Ok(store
        .create_console_user(ConsoleUser {
            organization_id: org,
            email: email.to_owned(),
            name: name.to_owned(),
            role,
            password_hash,
            is_active: true,
            ..ConsoleUser::default()
        })
        .await?)
}

/// A user as JSON shows it: never the hash.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserView {
    id: Id,
    organization_id: Id,
    email: String,
    name: String,
    role: ConsoleRole,
    is_active: bool,
    last_login_at: Option<String>,
    created_at: String,
}

impl From<&ConsoleUser> for UserView {
    fn from(u: &ConsoleUser) -> Self {
        Self {
            id: u.id,
            organization_id: u.organization_id,
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role,
            is_active: u.is_active,
            last_login_at: u.last_login_at.map(time::format),
            created_at: time::format(u.created_at),
        }
    }
}

/// `POST /api/admin/organizations/{id}/users`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct UserRequest {
    email: Option<String>,
    name: Option<String>,
    role: Option<String>,
    password: Option<String>,
}

/// `POST /api/admin/organizations/{organizationId}/users` (superadmin): creates a console user.
pub(crate) async fn admin_create_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<UserRequest>,
) -> ApiResult {
    let org = parse_id(&id, "organization")?;
    state.store().organization(org)?;
    let role = match r.role.as_deref() {
        None => ConsoleRole::Member,
        Some(raw) => parse_role(raw).ok_or_else(|| ApiError::invalid("role: ADMIN or MEMBER"))?,
    };
    let user = create_user(
        state.store(),
        org,
        r.email.as_deref().unwrap_or(""),
        r.name.as_deref().unwrap_or(""),
        role,
        r.password.as_deref().unwrap_or(""),
    )
    .await?;
    Ok(envelope(StatusCode::CREATED, &UserView::from(&user)))
}

/// `GET /api/admin/organizations/{organizationId}/users` (superadmin).
pub(crate) async fn admin_list_users(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult {
    let org = parse_id(&id, "organization")?;
    state.store().organization(org)?;
    let listed = listing::fetch(
        q.request()?,
        |page| state.store().list_console_users(org, page),
        |u| u.id,
    )?;
    Ok(ok(&listed.map(|u| UserView::from(&u))))
}

/// Failed logins per account and per address, in a fixed window from the first failure.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    entries: Mutex<HashMap<ThrottleKey, (u32, Millis)>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ThrottleKey {
    Account(String),
    Ip(IpAddr),
}

impl Throttle {
    /// Seconds to wait when this account or address is locked out at `now`.
    pub(crate) fn locked(&self, email: &str, ip: Option<IpAddr>, now: Millis) -> Option<u64> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let wait = |key: &ThrottleKey, max: u32| {
            entries.get(key).and_then(|(n, since)| {
                let ends = since.saturating_add(THROTTLE_WINDOW_MS);
                (*n >= max && ends > now).then(|| ends.saturating_sub(now).div_ceil(1000))
            })
        };
        let account = wait(&ThrottleKey::Account(email.to_owned()), ACCOUNT_FAILURES);
        let address = ip.and_then(|ip| wait(&ThrottleKey::Ip(ip), IP_FAILURES));
        account.max(address)
    }

    /// Counts a failed login.
    pub(crate) fn failed(&self, email: &str, ip: Option<IpAddr>, now: Millis) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= THROTTLE_CAP {
            entries.retain(|_, (_, since)| since.saturating_add(THROTTLE_WINDOW_MS) > now);
        }
        let keys = [
            Some(ThrottleKey::Account(email.to_owned())),
            ip.map(ThrottleKey::Ip),
        ];
        for key in keys.into_iter().flatten() {
            let entry = entries.entry(key).or_insert((0, now));
            if entry.1.saturating_add(THROTTLE_WINDOW_MS) <= now {
                *entry = (0, now);
            }
            entry.0 = entry.0.saturating_add(1);
        }
    }

    /// Forgets an account's failures after a successful login.
    pub(crate) fn succeeded(&self, email: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&ThrottleKey::Account(email.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horsf"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert!(!verify_password(dummy_hash(), ""));
        assert_ne!(hash, hash_password("correct horse").unwrap());
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn throttle_locks_an_account_and_an_address_for_the_window() {
        let t = Throttle::default();
        let ip: IpAddr = [127, 0, 0, 1].into();
        for _ in 0..ACCOUNT_FAILURES {
            assert_eq!(t.locked("a@x.y", Some(ip), 1_000), None);
            t.failed("a@x.y", Some(ip), 1_000);
        }
        assert_eq!(t.locked("a@x.y", None, 1_000), Some(900));
        assert_eq!(t.locked("b@x.y", Some(ip), 1_000), None);
        assert_eq!(t.locked("a@x.y", None, 1_000 + THROTTLE_WINDOW_MS), None);
        for i in 0..IP_FAILURES {
            t.failed(&format!("u{i}@x.y"), Some(ip), 2_000);
        }
        assert!(t.locked("new@x.y", Some(ip), 2_000).is_some());
        assert_eq!(t.locked("new@x.y", Some([10, 0, 0, 1].into()), 2_000), None);
        t.succeeded("a@x.y");
        assert_eq!(t.locked("a@x.y", None, 1_000), None);
    }
}
