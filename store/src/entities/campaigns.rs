//! Campaigns. A campaign may refer only to its organization's template and group; its
//! delivery counters move only through [`Store::add_campaign_stats`], on the writer, so
//! concurrent increments never lose one.

use crate::error::Result;
use crate::keys::space;
use crate::messages::{Page, PageRequest};
use crate::model::{Campaign, CampaignStatus, Group, Id, Millis, Template};
use crate::{Store, now_ms};

use super::{
    Record, clean_name, create_op, delete_op, list, load, not_found, record_fields, rewrite_op,
    update_op,
};

/// Increments of a campaign's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CampaignStats {
    /// Added to `sentCount`.
    pub sent: u64,
    /// Added to `deliveredCount`.
    pub delivered: u64,
    /// Added to `failedCount`.
    pub failed: u64,
    /// Added to `rejectedCount`.
    pub rejected: u64,
}

impl Record for Campaign {
    const ENTITY: &'static str = "campaign";
    const SPACE: u8 = space::CAMPAIGN;

    record_fields!();

    fn keep_owned(&mut self, old: &Self) {
        self.sent_count = old.sent_count;
        self.delivered_count = old.delivered_count;
        self.failed_count = old.failed_count;
        self.rejected_count = old.rejected_count;
    }

    fn validate(&mut self) -> Result<()> {
        self.name = clean_name("name", &self.name)?;
        Ok(())
    }

    fn check_refs(&self, tree: &sled::Tree) -> Result<()> {
        // Another organization's template or group would leak its text or its members into
        // this campaign's messages: it is "not found", like one that does not exist.
        let org = self.organization_id;
        if let Some(template) = self.template_id
            && !tree.contains_key(Template::key(org, template))?
        {
            return Err(not_found(Template::ENTITY, template));
        }
        if let Some(group) = self.group_id
            && !tree.contains_key(Group::key(org, group))?
        {
            return Err(not_found(Group::ENTITY, group));
        }
        Ok(())
    }
}

impl Store {
    /// Creates a campaign; the store assigns `id` and times. Its counters start as given.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound) for a template or group the
    /// organization does not have; [`StoreError::Invalid`](crate::StoreError::Invalid) for a
    /// missing name; storage errors.
    pub async fn create_campaign(&self, campaign: Campaign) -> Result<Campaign> {
        self.writer()
            .run(move |ctx| create_op(ctx, None, campaign, now_ms()))
            .await
    }

    /// A campaign of the organization.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), also for another organization's.
    pub fn campaign(&self, org: Id, id: Id) -> Result<Campaign> {
        load(self.tree(), None, org, id)
    }

    /// Changes a campaign (status, schedule, audience, runner state); the counters are kept
    /// (see [`Store::add_campaign_stats`]).
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), validation errors, or what
    /// `change` returns.
    pub async fn update_campaign(
        &self,
        org: Id,
        id: Id,
        change: impl FnOnce(&mut Campaign) -> Result<()> + Send + 'static,
    ) -> Result<Campaign> {
        self.writer()
            .run(move |ctx| update_op(ctx, None, org, id, now_ms(), change))
            .await
    }

    /// Adds to a campaign's counters, atomically with respect to every other change.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), storage errors.
    pub async fn add_campaign_stats(
        &self,
        org: Id,
        id: Id,
        stats: CampaignStats,
    ) -> Result<Campaign> {
        self.writer()
            .run(move |ctx| {
                rewrite_op(ctx, None, org, id, now_ms(), |c: &mut Campaign| {
                    c.sent_count = c.sent_count.saturating_add(stats.sent);
                    c.delivered_count = c.delivered_count.saturating_add(stats.delivered);
                    c.failed_count = c.failed_count.saturating_add(stats.failed);
                    c.rejected_count = c.rejected_count.saturating_add(stats.rejected);
                    Ok(())
                })
            })
            .await
    }

    /// Deletes a campaign (its messages stay, with their `campaignId`).
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), storage errors.
    pub async fn delete_campaign(&self, org: Id, id: Id) -> Result<Campaign> {
        self.writer()
            .run(move |ctx| delete_op(ctx, None, org, id, |_, _, _: &Campaign| Ok(())))
            .await
    }

    /// The organization's campaigns, newest first, optionally only those in one status.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_campaigns(
        &self,
        org: Id,
        status: Option<CampaignStatus>,
        page: PageRequest,
    ) -> Result<Page<Campaign>> {
        match status {
            None => list(self.tree(), None, org, page, None),
            Some(status) => {
                let keep = |c: &Campaign| c.status == status;
                list(self.tree(), None, org, page, Some(&keep))
            }
        }
    }
}
