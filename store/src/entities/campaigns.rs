//! Campaigns. A campaign may refer only to its organization's template and group; its
//! delivery counters move only through [`Store::add_campaign_stats`], on the writer, so
//! concurrent increments never lose one.

use crate::error::Result;
use crate::keys::space;
use crate::kv::Kv;
use crate::messages::{Page, PageRequest};
use crate::model::{Campaign, CampaignStatus, Group, Id, Millis, Template};
use crate::{Store, now_ms};

use super::{
    Record, clean_name, create_op, delete_op, invalid, list, load, not_found, record_fields,
    rewrite_op, update_op,
};

/// Most A/B variants of one campaign (a message names its variant in one byte).
pub const MAX_VARIANTS: usize = 10;

/// Checks a campaign's variants (the runner relies on the shares summing to 100) and names
/// the unnamed ones "A", "B", … by position.
fn validate_variants(campaign: &mut Campaign) -> Result<()> {
    let variants = &mut campaign.variants;
    if variants.is_empty() {
        return Ok(());
    }
    if campaign.template_id.is_some() || campaign.message_body.is_some() {
        return Err(invalid(
            "variants",
            "a campaign with variants takes its bodies from them: leave templateId and \
             messageBody out",
        ));
    }
    if !(2..=MAX_VARIANTS).contains(&variants.len()) {
        return Err(invalid(
            "variants",
            format!("2 to {MAX_VARIANTS} of them, or none"),
        ));
    }
    let mut total = 0u32;
    for (i, v) in variants.iter_mut().enumerate() {
        if v.name.trim().is_empty() {
            // i < MAX_VARIANTS, so a letter.
            v.name = char::from(b'A' + u8::try_from(i).unwrap_or(25)).to_string();
        }
        v.name = clean_name("variants", &v.name)?;
        if !(1..=100).contains(&v.percent) {
            return Err(invalid(
                "variants",
                format!("variant {}: percent must be 1 to 100", v.name),
            ));
        }
        total += u32::from(v.percent);
        match (v.message_body.as_deref().map(str::trim), v.template_id) {
            (Some(""), None) => {
                return Err(invalid(
                    "variants",
                    format!("variant {}: messageBody is empty", v.name),
                ));
            }
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return Err(invalid(
                    "variants",
                    format!(
                        "variant {}: give exactly one of messageBody and templateId",
                        v.name
                    ),
                ));
            }
        }
    }
    let names: std::collections::HashSet<String> =
        variants.iter().map(|v| v.name.to_lowercase()).collect();
    if names.len() != variants.len() {
        return Err(invalid("variants", "names must differ"));
    }
    if total != 100 {
        return Err(invalid(
            "variants",
            format!("percentages must sum to 100, not {total}"),
        ));
    }
    Ok(())
}

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
        validate_variants(self)
    }

    fn check_refs(&self, tree: &Kv) -> Result<()> {
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
        for template in self.variants.iter().filter_map(|v| v.template_id) {
            if !tree.contains_key(Template::key(org, template))? {
                return Err(not_found(Template::ENTITY, template));
            }
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
        load(self.kv(), None, org, id)
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
            None => list(self.kv(), None, org, page, None),
            Some(status) => {
                let keep = |c: &Campaign| c.status == status;
                list(self.kv(), None, org, page, Some(&keep))
            }
        }
    }
}
