//! Organizations (tenants): created, read, listed and updated by administrators. Id 0 is never
//! assigned: it stands for the system in provider configurations.

use crate::error::Result;
use crate::keys::{self, space};
use crate::kv::Kv;
use crate::messages::{Page, PageRequest, next_id};
use crate::model::{Id, Organization};
use crate::value::{decode, encode};
use crate::writer::Ctx;
use crate::{Store, now_ms};

use super::{clean_name, invalid, not_found, page_of};

const ENTITY: &str = "organization";

fn validate(org: &mut Organization) -> Result<()> {
    org.name = clean_name("name", &org.name)?;
    if !super::is_country_code(&org.default_country) {
        return Err(invalid(
            "defaultCountry",
            "must be an ISO 3166-1 alpha-2 code such as PK",
        ));
    }
    Ok(())
}

fn load(tree: &Kv, id: Id) -> Result<Organization> {
    let key = keys::organization(id);
    match tree.get(&key)? {
        Some(bytes) => decode(&key, &bytes),
        None => Err(not_found(ENTITY, id)),
    }
}

fn create_op(ctx: &mut Ctx, mut org: Organization) -> Result<Organization> {
    validate(&mut org)?;
    let now = now_ms();
    org.id = next_id(ctx)?;
    if org.created_at == 0 {
        org.created_at = now;
    }
    org.updated_at = now;
    ctx.kv.insert(keys::organization(org.id), encode(&org)?)?;
    Ok(org)
}

fn update_op(
    ctx: &mut Ctx,
    id: Id,
    change: impl FnOnce(&mut Organization) -> Result<()>,
) -> Result<Organization> {
    let old = load(&ctx.kv, id)?;
    let mut new = old.clone();
    change(&mut new)?;
    new.id = old.id;
    new.created_at = old.created_at;
    new.updated_at = now_ms();
    validate(&mut new)?;
    ctx.kv.insert(keys::organization(id), encode(&new)?)?;
    Ok(new)
}

impl Store {
    /// Creates an organization (`name` required); the store assigns `id` (never 0) and times.
    ///
    /// # Errors
    /// [`StoreError::Invalid`](crate::StoreError::Invalid) for a missing name or a bad country,
    /// storage errors.
    pub async fn create_organization(&self, org: Organization) -> Result<Organization> {
        self.writer().run(move |ctx| create_op(ctx, org)).await
    }

    /// An organization.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound).
    pub fn organization(&self, id: Id) -> Result<Organization> {
        load(self.kv(), id)
    }

    /// Changes an organization: `change` edits a copy; `id` and `createdAt` cannot change.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), validation errors, or what
    /// `change` returns (nothing is written then).
    pub async fn update_organization(
        &self,
        id: Id,
        change: impl FnOnce(&mut Organization) -> Result<()> + Send + 'static,
    ) -> Result<Organization> {
        self.writer()
            .run(move |ctx| update_op(ctx, id, change))
            .await
    }

    /// Every organization, newest first (administrators only: it crosses tenants).
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_organizations(&self, page: PageRequest) -> Result<Page<Organization>> {
        page_of(self.kv(), &[space::ORG], page, decode, None)
    }

    /// Every organization, newest first, for jobs that visit them all (retention, provider
    /// start-up); not for requests.
    ///
    /// # Errors
    /// Storage errors.
    pub fn all_organizations(&self) -> Result<Vec<Organization>> {
        let mut all = Vec::new();
        loop {
            let page = self.list_organizations(PageRequest {
                offset: all.len() as u64,
                limit: crate::MAX_PAGE,
            })?;
            let empty = page.items.is_empty();
            all.extend(page.items);
            if empty || all.len() as u64 >= page.total {
                return Ok(all);
            }
        }
    }
}
