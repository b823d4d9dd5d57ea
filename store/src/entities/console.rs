//! Web console users and their login sessions (blueprint §6.1).
//!
//! A user is an organization's record (`[CONSOLE_USER][org][id]`); its email is unique across
//! organizations (`[CONSOLE_USER_BY_EMAIL][email]` → org, id), because the login form asks for
//! the email alone. A session lives under the SHA-256 of its random id, so what the store holds
//! cannot be replayed as a cookie; it expires at a fixed time, checked on every read.

use sha2::{Digest, Sha256};

use crate::error::{Result, StoreError};
use crate::keys::{self, Key, space, u64_at};
use crate::kv::{Batch, Kv};
use crate::messages::{Page, PageRequest};
use crate::model::{ConsoleSession, ConsoleUser, Id, Millis};
use crate::value::{decode, encode};
use crate::{Store, now_ms};

use super::{Record, clean_name, invalid, list, load, not_found, record_fields};

/// Longest email, in bytes (RFC 5321's path limit).
const MAX_EMAIL: usize = 254;

impl Record for ConsoleUser {
    const ENTITY: &'static str = "user";
    const SPACE: u8 = space::CONSOLE_USER;

    record_fields!();

    fn validate(&mut self) -> Result<()> {
        self.email = clean_email(&self.email)?;
        self.name = if self.name.trim().is_empty() {
            self.email.clone()
        } else {
            clean_name("name", &self.name)?
        };
        if !self.password_hash.starts_with("$argon2id$") {
            return Err(invalid("passwordHash", "must be an argon2id PHC string"));
        }
        Ok(())
    }

    fn keep_owned(&mut self, old: &Self) {
        self.last_login_at = self.last_login_at.max(old.last_login_at);
    }
}

/// An email: trimmed, lower-cased, one `@` with text on both sides, no spaces or controls.
fn clean_email(email: &str) -> Result<String> {
    let email = email.trim().to_lowercase();
    let well_formed = email
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && !domain.is_empty())
        && email.matches('@').count() == 1
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed || email.len() > MAX_EMAIL {
        return Err(invalid(
            "email",
            "must be an email address such as ana@example.com",
        ));
    }
    Ok(email)
}

fn email_key(email: &str) -> Vec<u8> {
    Key::new(space::CONSOLE_USER_BY_EMAIL)
        .tail(email.as_bytes())
        .build()
}

fn session_key(session_id: &str) -> Vec<u8> {
    let hash: [u8; 32] = Sha256::digest(session_id.as_bytes()).into();
    Key::new(space::CONSOLE_SESSION).tail(&hash).build()
}

/// The (org, id) the email index holds.
fn email_holder(kv: &Kv, email: &str) -> Result<Option<(Id, Id)>> {
    Ok(kv
        .get(email_key(email))?
        .and_then(|v| Some((u64_at(&v, 0)?, u64_at(&v, 8)?))))
}

fn holder_value(org: Id, id: Id) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&org.to_be_bytes());
    v.extend_from_slice(&id.to_be_bytes());
    v
}

fn conflict(email: &str, existing: Id) -> StoreError {
    StoreError::Conflict {
        entity: "user",
        what: format!("email {email}"),
        existing_id: existing,
    }
}

impl Store {
    /// Creates a console user; the store assigns `id` and times and lower-cases the email.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when any organization has a user with that email;
    /// [`StoreError::Invalid`] for a bad email, name or password hash; storage errors.
    pub async fn create_console_user(&self, user: ConsoleUser) -> Result<ConsoleUser> {
        self.writer()
            .run(move |ctx| {
                let mut user = user;
                if user.organization_id == 0 {
                    return Err(invalid("organizationId", "must be set"));
                }
                user.validate()?;
                // The organization must exist: a user of no organization could never log in.
                if !ctx
                    .kv
                    .contains_key(keys::organization(user.organization_id))?
                {
                    return Err(not_found("organization", user.organization_id));
                }
                if let Some((_, existing)) = email_holder(&ctx.kv, &user.email)? {
                    return Err(conflict(&user.email, existing));
                }
                let now = now_ms();
                let org = user.organization_id;
                user.stamp(ctx.next_id()?, org, now, now);
                let mut batch = Batch::default();
                batch.insert(email_key(&user.email), holder_value(org, user.id));
                batch.insert(ConsoleUser::key(org, user.id), encode(&user)?);
                ctx.apply(batch)?;
                Ok(user)
            })
            .await
    }

    /// A console user of the organization.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] (also for another organization's user).
    pub fn console_user(&self, org: Id, id: Id) -> Result<ConsoleUser> {
        load(self.kv(), None, org, id)
    }

    /// The user with this email (any organization), for login.
    ///
    /// # Errors
    /// Storage errors.
    pub fn console_user_by_email(&self, email: &str) -> Result<Option<ConsoleUser>> {
        let email = email.trim().to_lowercase();
        match email_holder(self.kv(), &email)? {
            Some((org, id)) => match load(self.kv(), None, org, id) {
                Ok(user) => Ok(Some(user)),
                Err(StoreError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            },
            None => Ok(None),
        }
    }

    /// The organization's console users, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_console_users(&self, org: Id, page: PageRequest) -> Result<Page<ConsoleUser>> {
        list(self.kv(), None, org, page, None)
    }

    /// Changes a console user: `change` edits a copy; the email index moves with the email.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::Conflict`] for an email another user has,
    /// validation errors, or what `change` returns (nothing is written then).
    pub async fn update_console_user(
        &self,
        org: Id,
        id: Id,
        change: impl FnOnce(&mut ConsoleUser) -> Result<()> + Send + 'static,
    ) -> Result<ConsoleUser> {
        self.writer()
            .run(move |ctx| {
                let old: ConsoleUser = load(&ctx.kv, None, org, id)?;
                let mut new = old.clone();
                change(&mut new)?;
                new.stamp(old.id, old.organization_id, old.created_at, now_ms());
                new.keep_owned(&old);
                new.validate()?;
                let mut batch = Batch::default();
                if new.email != old.email {
                    if let Some((_, existing)) = email_holder(&ctx.kv, &new.email)? {
                        return Err(conflict(&new.email, existing));
                    }
                    batch.remove(email_key(&old.email));
                    batch.insert(email_key(&new.email), holder_value(org, id));
                }
                batch.insert(ConsoleUser::key(org, id), encode(&new)?);
                ctx.apply(batch)?;
                Ok(new)
            })
            .await
    }

    /// Deletes a console user (its sessions stop working: every session read loads the user).
    ///
    /// # Errors
    /// [`StoreError::NotFound`], storage errors.
    pub async fn delete_console_user(&self, org: Id, id: Id) -> Result<ConsoleUser> {
        self.writer()
            .run(move |ctx| {
                let old: ConsoleUser = load(&ctx.kv, None, org, id)?;
                let mut batch = Batch::default();
                batch.remove(email_key(&old.email));
                batch.remove(ConsoleUser::key(org, id));
                ctx.apply(batch)?;
                Ok(old)
            })
            .await
    }

    /// Stores a new session under the hash of `session_id`.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn create_console_session(
        &self,
        session_id: &str,
        session: ConsoleSession,
    ) -> Result<()> {
        let key = session_key(session_id);
        self.writer()
            .run(move |ctx| {
                let mut batch = Batch::default();
                batch.insert(key.as_slice(), encode(&session)?);
                ctx.apply(batch)?;
                Ok(())
            })
            .await
    }

    /// The session of this id, if it exists and has not expired at `now`.
    ///
    /// # Errors
    /// Storage errors.
    pub fn console_session(&self, session_id: &str, now: Millis) -> Result<Option<ConsoleSession>> {
        let key = session_key(session_id);
        match self.kv().get(&key)? {
            Some(bytes) => {
                let session: ConsoleSession = decode(&key, &bytes)?;
                Ok((session.expires_at > now).then_some(session))
            }
            None => Ok(None),
        }
    }

    /// Ends a session (logout); ending an unknown one is not an error.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn delete_console_session(&self, session_id: &str) -> Result<()> {
        let key = session_key(session_id);
        self.writer()
            .run(move |ctx| {
                let mut batch = Batch::default();
                batch.remove(key.as_slice());
                ctx.apply(batch)?;
                Ok(())
            })
            .await
    }

    /// Removes every session that expired before `now`; returns how many. Sessions are few
    /// (one per login), so a scan of their keyspace is cheap.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn purge_console_sessions(&self, now: Millis) -> Result<u64> {
        self.writer()
            .run(move |ctx| {
                let mut batch = Batch::default();
                let mut removed = 0;
                for entry in ctx.kv.scan_prefix([space::CONSOLE_SESSION]) {
                    let (key, value) = entry?;
                    let session: ConsoleSession = decode(&key, &value)?;
                    if session.expires_at <= now {
                        batch.remove(key);
                        removed += 1;
                    }
                }
                ctx.apply(batch)?;
                Ok(removed)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;
    use crate::model::{ConsoleRole, Organization};

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    async fn store_with_orgs() -> (tempfile::TempDir, Store, Id, Id) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions::new(dir.path())).unwrap();
        let a = store
            .create_organization(Organization {
                name: "a".into(),
                is_active: true,
                ..Organization::default()
            })
            .await
            .unwrap()
            .id;
        let b = store
            .create_organization(Organization {
                name: "b".into(),
                is_active: true,
                ..Organization::default()
            })
            .await
            .unwrap()
            .id;
        (dir, store, a, b)
    }

    fn user(org: Id, email: &str) -> ConsoleUser {
        ConsoleUser {
            organization_id: org,
            email: email.into(),
            role: ConsoleRole::Admin,
            password_hash: HASH.into(),
            is_active: true,
            ..ConsoleUser::default()
        }
    }

    #[tokio::test]
    async fn emails_are_unique_across_organizations_and_users_stay_in_theirs() {
        let (_dir, store, a, b) = store_with_orgs().await;
        let ana = store
            .create_console_user(user(a, " Ana@Example.com "))
            .await
            .unwrap();
        assert_eq!(ana.email, "ana@example.com");
        assert_eq!(ana.name, "ana@example.com");
        let again = store.create_console_user(user(b, "ana@example.COM")).await;
        assert!(
            matches!(again, Err(StoreError::Conflict { existing_id, .. }) if existing_id == ana.id)
        );
        assert!(matches!(
            store.console_user(b, ana.id),
            Err(StoreError::NotFound { .. })
        ));
        let found = store
            .console_user_by_email("ANA@example.com")
            .unwrap()
            .unwrap();
        assert_eq!(found.id, ana.id);
        assert_eq!(
            store
                .list_console_users(b, PageRequest::default())
                .unwrap()
                .total,
            0
        );
        assert!(matches!(
            store.create_console_user(user(999_999, "x@y.z")).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            store.create_console_user(user(a, "not-an-email")).await,
            Err(StoreError::Invalid { field: "email", .. })
        ));
        let renamed = store
            .update_console_user(a, ana.id, |u| {
                u.email = "ana2@example.com".into();
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(renamed.email, "ana2@example.com");
        assert!(
            store
                .console_user_by_email("ana@example.com")
                .unwrap()
                .is_none()
        );
        store.delete_console_user(a, ana.id).await.unwrap();
        assert!(
            store
                .console_user_by_email("ana2@example.com")
                .unwrap()
                .is_none()
        );
        // The email is free again.
        store
            .create_console_user(user(b, "ana2@example.com"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn sessions_expire_and_are_stored_hashed() {
        let (_dir, store, a, _) = store_with_orgs().await;
        let session = ConsoleSession {
            user_id: 7,
            organization_id: a,
            csrf_token: "t".into(),
            created_at: 1,
            expires_at: 1_000,
        };
        store
            .create_console_session("secret-id", session.clone())
            .await
            .unwrap();
        assert_eq!(
            store.console_session("secret-id", 999).unwrap(),
            Some(session)
        );
        assert_eq!(store.console_session("secret-id", 1_000).unwrap(), None);
        assert_eq!(store.console_session("other", 1).unwrap(), None);
        // Nothing in the store holds the id itself.
        for entry in store.kv().scan_prefix([space::CONSOLE_SESSION]) {
            let (key, _) = entry.unwrap();
            assert!(!key.windows(9).any(|w| w == b"secret-id"));
        }
        assert_eq!(store.purge_console_sessions(999).await.unwrap(), 0);
        assert_eq!(store.purge_console_sessions(1_000).await.unwrap(), 1);
        store.delete_console_session("secret-id").await.unwrap();
    }
}
