//! Provider configurations, of an organization or (organization 0) of the system. Credentials
//! are sealed at rest; health is the store's to change ([`Store::record_provider_health`]).

use crate::error::Result;
use crate::messages::{Page, PageRequest};
use crate::model::{HealthStatus, Id, Millis, ProviderConfig};
use crate::{Store, now_ms};

use super::{
    Record, all, clean_name, create_op, delete_op, invalid, load, record_fields, rewrite_op,
    update_op,
};
use crate::keys::space;

/// A provider's health, as the health monitor measured it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderHealth {
    /// HEALTHY, DEGRADED or DOWN.
    pub status: HealthStatus,
    /// Recent failures.
    pub failure_count: u32,
    /// When it was measured.
    pub checked_at: Millis,
}

impl Record for ProviderConfig {
    const ENTITY: &'static str = "provider";
    const SPACE: u8 = space::PROVIDER;
    const SYSTEM_ORG: bool = true;
    const SEALED: bool = true;

    record_fields!();

    fn keep_owned(&mut self, old: &Self) {
        self.last_health_check = old.last_health_check;
        self.health_status = old.health_status;
        self.failure_count = old.failure_count;
    }

    fn validate(&mut self) -> Result<()> {
        self.display_name = clean_name("displayName", &self.display_name)?;
        if !(self.credentials.is_null() || self.credentials.is_object()) {
            return Err(invalid("credentials", "must be a JSON object"));
        }
        if self.tps == Some(0) {
            return Err(invalid("tps", "must be at least 1"));
        }
        Ok(())
    }

    fn take_secret(&mut self) -> Result<Option<Vec<u8>>> {
        let credentials = std::mem::take(&mut self.credentials);
        if credentials.is_null() {
            return Ok(None);
        }
        serde_json::to_vec(&credentials)
            .map(Some)
            .map_err(|e| invalid("credentials", e.to_string()))
    }

    fn put_secret(&mut self, plain: Vec<u8>) -> Result<()> {
        self.credentials =
            serde_json::from_slice(&plain).map_err(|e| crate::StoreError::Corrupt {
                key: format!("provider {}", self.id),
                problem: format!("credentials are not JSON: {e}"),
            })?;
        Ok(())
    }
}

fn by_priority(providers: &mut [ProviderConfig]) {
    providers.sort_by_key(|p| (p.priority, p.id));
}

impl Store {
    /// Creates a provider configuration; organization 0 makes it system-level. `credentials`
    /// (a JSON object, or null) is sealed under the master key; health starts as given.
    ///
    /// # Errors
    /// [`StoreError::MasterKeyRequired`](crate::StoreError::MasterKeyRequired) when it has
    /// credentials and the store has no master key; [`StoreError::Invalid`](crate::StoreError::Invalid)
    /// for a missing display name or credentials that are not an object; storage errors.
    pub async fn create_provider(&self, provider: ProviderConfig) -> Result<ProviderConfig> {
        let sealer = self.sealer().cloned();
        self.writer()
            .run(move |ctx| create_op(ctx, sealer.as_ref(), provider, now_ms()))
            .await
    }

    /// A provider configuration of the organization (0: of the system), credentials in clear.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), also for another organization's.
    pub fn provider(&self, org: Id, id: Id) -> Result<ProviderConfig> {
        load(self.kv(), self.sealer(), org, id)
    }

    /// Changes a provider configuration; health fields are kept (see
    /// [`Store::record_provider_health`]). Changed credentials are sealed anew.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), validation errors, or what
    /// `change` returns.
    pub async fn update_provider(
        &self,
        org: Id,
        id: Id,
        change: impl FnOnce(&mut ProviderConfig) -> Result<()> + Send + 'static,
    ) -> Result<ProviderConfig> {
        let sealer = self.sealer().cloned();
        self.writer()
            .run(move |ctx| update_op(ctx, sealer.as_ref(), org, id, now_ms(), change))
            .await
    }

    /// Records a provider's health.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), storage errors.
    pub async fn record_provider_health(
        &self,
        org: Id,
        id: Id,
        health: ProviderHealth,
    ) -> Result<ProviderConfig> {
        let sealer = self.sealer().cloned();
        self.writer()
            .run(move |ctx| {
                rewrite_op(
                    ctx,
                    sealer.as_ref(),
                    org,
                    id,
                    now_ms(),
                    |p: &mut ProviderConfig| {
                        p.health_status = health.status;
                        p.failure_count = health.failure_count;
                        p.last_health_check = Some(health.checked_at);
                        Ok(())
                    },
                )
            })
            .await
    }

    /// Deletes a provider configuration.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), storage errors.
    pub async fn delete_provider(&self, org: Id, id: Id) -> Result<ProviderConfig> {
        let sealer = self.sealer().cloned();
        self.writer()
            .run(move |ctx| delete_op(ctx, sealer.as_ref(), org, id, |_, _, _| Ok(())))
            .await
    }

    /// The organization's provider configurations (0: the system's), by priority then id.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_providers(&self, org: Id, page: PageRequest) -> Result<Page<ProviderConfig>> {
        let mut providers: Vec<ProviderConfig> = all(self.kv(), self.sealer(), org)?;
        by_priority(&mut providers);
        let limit = page.limit.clamp(1, crate::MAX_PAGE);
        let total = providers.len() as u64;
        let items = providers
            .into_iter()
            .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
            .take(limit as usize)
            .collect();
        Ok(Page {
            items,
            total,
            offset: page.offset,
            limit,
        })
    }

    /// Every provider record: the system's (organization 0) and every organization's, for
    /// the engine's start and reloads and the callback index.
    ///
    /// # Errors
    /// Storage errors.
    pub fn all_providers(&self) -> Result<Vec<ProviderConfig>> {
        let mut records: Vec<ProviderConfig> = all(self.kv(), self.sealer(), 0)?;
        for org in self.all_organizations()? {
            records.extend(all::<ProviderConfig>(self.kv(), self.sealer(), org.id)?);
        }
        Ok(records)
    }

    /// The active providers an organization sends through, in failover order: its own and the
    /// system-level ones together, by priority; at equal priority its own first, then by id.
    ///
    /// # Errors
    /// Storage errors.
    pub fn active_providers(&self, org: Id) -> Result<Vec<ProviderConfig>> {
        let own: Vec<ProviderConfig> = all(self.kv(), self.sealer(), org)?;
        let system: Vec<ProviderConfig> = if org == 0 {
            Vec::new()
        } else {
            all(self.kv(), self.sealer(), 0)?
        };
        let mut ranked: Vec<(u8, ProviderConfig)> = own
            .into_iter()
            .map(|p| (0, p))
            .chain(system.into_iter().map(|p| (1, p)))
            .filter(|(_, p)| p.is_active)
            .collect();
        ranked.sort_by_key(|(rank, p)| (p.priority, *rank, p.id));
        Ok(ranked.into_iter().map(|(_, p)| p).collect())
    }
}
