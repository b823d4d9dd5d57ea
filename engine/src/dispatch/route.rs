//! The provider table: credit per provider, and the failover chain of an organization.

use sairex_store::model::{HealthStatus, Id, ProviderConfig};

use std::sync::Arc;

use crate::provider::SharedLink;

/// A provider the dispatcher may send through: its link and its configuration.
#[derive(Debug, Clone)]
pub struct ProviderEntry {
    /// The running provider.
    pub link: SharedLink,
    /// Its configuration from the store: organization (0 = shared system provider), priority,
    /// active flag and health. Refreshed from the store while the dispatcher runs.
    pub config: ProviderConfig,
}

#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) link: SharedLink,
    pub(crate) config: ProviderConfig,
    /// Messages the provider said it can take and has not been handed yet.
    pub(crate) credit: u32,
    /// For a system provider: the organizations it serves (`settings.organizations`); `None`
    /// serves all.
    allowed: Option<Vec<Id>>,
}

/// `settings.organizations` of a system provider: the organization ids it is limited to.
fn allowed_orgs(config: &ProviderConfig) -> Option<Vec<Id>> {
    let list = config.settings.get("organizations")?.as_array()?;
    Some(list.iter().filter_map(serde_json::Value::as_u64).collect())
}

impl Slot {
    fn new(link: SharedLink, config: ProviderConfig) -> Self {
        Self {
            allowed: allowed_orgs(&config),
            link,
            config,
            credit: 0,
        }
    }

    fn set_config(&mut self, config: ProviderConfig) {
        self.allowed = allowed_orgs(&config);
        self.config = config;
    }

    /// Whether it is in `org`'s failover chain: active, not DOWN, serving the organization.
    fn usable_for(&self, org: Id) -> bool {
        self.config.is_active && self.config.health_status != HealthStatus::Down && self.serves(org)
    }

    /// Whether messages of `org` may go through this provider.
    fn serves(&self, org: Id) -> bool {
        let c = &self.config;
        c.organization_id == org
            || (c.organization_id == 0
                && self.allowed.as_ref().is_none_or(|list| list.contains(&org)))
    }

    pub(crate) fn id(&self) -> Id {
        self.config.id
    }

    /// Whether it splits text the way `layout` names (any provider when `None`): the missing
    /// parts of a partly accepted message may only go where they come out the same.
    fn splits_as(&self, layout: Option<&str>) -> bool {
        layout.is_none_or(|l| self.link.part_layout().as_deref() == Some(l))
    }

    fn describe(&self) -> String {
        format!(
            "provider {} \"{}\" (priority {})",
            self.config.id, self.config.display_name, self.config.priority
        )
    }
}

/// Where a message can go now.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Choice {
    /// This slot (index into the table), and why it was chosen.
    Send { slot: usize, reason: String },
    /// Providers not yet tried exist and are up, but none has credit now.
    NoCredit,
    /// Every usable provider of the chain was tried (or there is none).
    Exhausted,
}

#[derive(Debug, Default)]
pub(crate) struct Providers {
    slots: Vec<Slot>,
}

impl Providers {
    pub(crate) fn new(entries: Vec<ProviderEntry>) -> Self {
        Self {
            slots: entries
                .into_iter()
                .map(|e| Slot::new(e.link, e.config))
                .collect(),
        }
    }

    pub(crate) fn slot_mut(&mut self, index: usize) -> Option<&mut Slot> {
        self.slots.get_mut(index)
    }

    pub(crate) fn by_id(&self, id: Id) -> Option<&Slot> {
        self.slots.iter().find(|s| s.id() == id)
    }

    fn by_id_mut(&mut self, id: Id) -> Option<&mut Slot> {
        self.slots.iter_mut().find(|s| s.id() == id)
    }

    pub(crate) fn configs(&self) -> impl Iterator<Item = &ProviderConfig> {
        self.slots.iter().map(|s| &s.config)
    }

    /// Replaces a provider's configuration (a refresh from the store), keeping its credit.
    pub(crate) fn set_config(&mut self, config: ProviderConfig) {
        if let Some(slot) = self.by_id_mut(config.id) {
            slot.set_config(config);
        }
    }

    /// Adds a provider, or replaces the one with its id. Returns whether the link is new (its
    /// credit starts at zero and must be announced again); the same link keeps its credit (a
    /// configuration change: priority, organization, health).
    pub(crate) fn insert(&mut self, entry: ProviderEntry) -> bool {
        match self.by_id_mut(entry.config.id) {
            Some(old) if Arc::ptr_eq(&old.link, &entry.link) => {
                old.set_config(entry.config);
                false
            }
            Some(old) => {
                *old = Slot::new(entry.link, entry.config);
                true
            }
            None => {
                self.slots.push(Slot::new(entry.link, entry.config));
                true
            }
        }
    }

    /// Removes a provider.
    pub(crate) fn remove(&mut self, id: Id) {
        self.slots.retain(|s| s.id() != id);
    }

    /// Sets a provider's health (what the health monitor measured).
    pub(crate) fn set_health(&mut self, id: Id, status: HealthStatus) {
        if let Some(slot) = self.by_id_mut(id) {
            slot.config.health_status = status;
        }
    }

    /// More credit from a provider (unknown providers are ignored).
    pub(crate) fn add_credit(&mut self, id: Id, n: u32) -> bool {
        match self.by_id_mut(id) {
            Some(slot) => {
                slot.credit = slot.credit.saturating_add(n);
                true
            }
            None => false,
        }
    }

    /// The provider can take nothing now: its credit is void.
    pub(crate) fn unavailable(&mut self, id: Id) {
        if let Some(slot) = self.by_id_mut(id) {
            slot.credit = 0;
        }
    }

    /// Credit of all providers together.
    pub(crate) fn total_credit(&self) -> u64 {
        self.slots.iter().map(|s| u64::from(s.credit)).sum()
    }

    /// The organization's failover chain: its own active providers and the shared ones, by
    /// priority; at equal priority HEALTHY/unknown before DEGRADED, own before shared, then id.
    /// DOWN providers are left out.
    pub(crate) fn chain(&self, org: Id) -> Vec<usize> {
        let mut chain: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].usable_for(org))
            .collect();
        chain.sort_by_key(|&i| {
            let c = &self.slots[i].config;
            (
                c.priority,
                c.health_status == HealthStatus::Degraded,
                c.organization_id == 0,
                c.id,
            )
        });
        chain
    }

    /// Credit the organization can use now.
    pub(crate) fn usable_credit(&self, org: Id) -> u64 {
        self.chain(org)
            .into_iter()
            .map(|i| u64::from(self.slots[i].credit))
            .sum()
    }

    /// The first provider of the organization's chain not in `tried` that has credit (and
    /// splits text as `layout` says, when given), with the reason for the timeline.
    pub(crate) fn choose(&self, org: Id, tried: &[Id], layout: Option<&str>) -> Choice {
        let mut skipped = Vec::new();
        let mut untried = false;
        for i in self.chain(org) {
            let slot = &self.slots[i];
            if tried.contains(&slot.id()) || !slot.splits_as(layout) {
                continue;
            }
            untried = true;
            if slot.credit == 0 {
                skipped.push(format!("{} has no credit", slot.id()));
                continue;
            }
            let mut reason = format!("routed to {}", slot.describe());
            if slot.config.health_status == HealthStatus::Degraded {
                reason.push_str(", DEGRADED");
            }
            if !skipped.is_empty() {
                reason.push_str("; skipped: ");
                reason.push_str(&skipped.join(", "));
            }
            return Choice::Send { slot: i, reason };
        }
        if untried {
            Choice::NoCredit
        } else {
            Choice::Exhausted
        }
    }

    /// As [`Self::choose`], but the requested provider (with why, for the timeline) while it
    /// serves the organization, splits as `layout` says, is not DOWN and was not tried yet: it
    /// is waited for when it has no credit now (the sender asked for it, or it took the first
    /// parts); once it failed the message, or when it cannot be used, the chain decides.
    pub(crate) fn choose_requested(
        &self,
        org: Id,
        requested: Option<(Id, &str)>,
        tried: &[Id],
        layout: Option<&str>,
    ) -> Choice {
        // The requested slot is looked up alone: building the whole chain here and again in
        // `choose` would sort the providers twice per message.
        if let Some((wanted, why)) = requested
            && !tried.contains(&wanted)
            && let Some(i) = self.slots.iter().position(|slot| {
                slot.id() == wanted && slot.usable_for(org) && slot.splits_as(layout)
            })
        {
            if self.slots[i].credit == 0 {
                return Choice::NoCredit;
            }
            return Choice::Send {
                slot: i,
                reason: format!("routed to {} ({why})", self.slots[i].describe()),
            };
        }
        self.choose(org, tried, layout)
    }

    pub(crate) fn describe(&self, id: Id) -> String {
        self.by_id(id)
            .map_or_else(|| format!("provider {id}"), Slot::describe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{LinkError, Outbound, ProviderLink};
    use std::sync::Arc;

    /// A link that takes nothing; it splits text as its layout says, if it has one.
    #[derive(Debug)]
    struct Null(Id, Option<&'static str>);
    impl ProviderLink for Null {
        fn provider_id(&self) -> Id {
            self.0
        }
        fn send(&self, message: Outbound) -> Result<(), (LinkError, Outbound)> {
            Err((LinkError::Closed(self.0), message))
        }
        fn part_layout(&self) -> Option<String> {
            self.1.map(str::to_owned)
        }
    }

    fn entry(id: Id, org: Id, priority: i32, health: HealthStatus) -> ProviderEntry {
        ProviderEntry {
            link: Arc::new(Null(id, None)),
            config: ProviderConfig {
                id,
                organization_id: org,
                priority,
                health_status: health,
                ..ProviderConfig::default()
            },
        }
    }

    #[test]
    fn chain_orders_by_priority_skips_down_and_other_orgs() {
        let p = Providers::new(vec![
            entry(1, 7, 2, HealthStatus::Healthy),
            entry(2, 0, 1, HealthStatus::Healthy),
            entry(3, 7, 1, HealthStatus::Down),
            entry(4, 8, 0, HealthStatus::Healthy),
            entry(5, 7, 1, HealthStatus::Degraded),
            entry(6, 7, 1, HealthStatus::Unknown),
        ]);
        let ids: Vec<Id> = p.chain(7).iter().map(|&i| p.slots[i].id()).collect();
        assert_eq!(ids, vec![6, 2, 5, 1]);
    }

    #[test]
    fn a_system_provider_limited_to_some_organizations_serves_only_them() {
        let mut limited = entry(1, 0, 1, HealthStatus::Healthy);
        limited.config.settings = serde_json::json!({"organizations": [7, 9]});
        let p = Providers::new(vec![limited, entry(2, 0, 2, HealthStatus::Healthy)]);
        let ids = |org| -> Vec<Id> { p.chain(org).iter().map(|&i| p.slots[i].id()).collect() };
        assert_eq!(ids(7), vec![1, 2]);
        assert_eq!(ids(9), vec![1, 2]);
        assert_eq!(ids(8), vec![2]);
    }

    #[test]
    fn a_requested_provider_goes_first_then_the_chain() {
        let mut p = Providers::new(vec![
            entry(1, 7, 1, HealthStatus::Healthy),
            entry(2, 7, 2, HealthStatus::Healthy),
            entry(3, 8, 0, HealthStatus::Healthy),
            entry(4, 7, 3, HealthStatus::Down),
        ]);
        for id in 1..=4 {
            p.add_credit(id, 1);
        }
        assert!(matches!(
            p.choose_requested(7, Some((2, "requested")), &[], None),
            Choice::Send { slot: 1, ref reason } if reason.contains("(requested)")
        ));
        // Tried already, another organization's, or DOWN: the chain decides.
        assert!(matches!(
            p.choose_requested(7, Some((2, "requested")), &[2], None),
            Choice::Send { slot: 0, .. }
        ));
        assert!(matches!(
            p.choose_requested(7, Some((3, "requested")), &[], None),
            Choice::Send { slot: 0, .. }
        ));
        assert!(matches!(
            p.choose_requested(7, Some((4, "requested")), &[], None),
            Choice::Send { slot: 0, .. }
        ));
        // Usable but busy: waited for, not bypassed.
        p.unavailable(2);
        assert_eq!(
            p.choose_requested(7, Some((2, "requested")), &[], None),
            Choice::NoCredit
        );
    }

    #[test]
    fn choose_takes_the_first_untried_with_credit() {
        let mut p = Providers::new(vec![
            entry(1, 7, 1, HealthStatus::Healthy),
            entry(2, 7, 2, HealthStatus::Healthy),
        ]);
        assert_eq!(p.choose(7, &[], None), Choice::NoCredit);
        p.add_credit(2, 1);
        assert!(
            matches!(p.choose(7, &[], None), Choice::Send { slot: 1, ref reason } if reason.contains("1 has no credit"))
        );
        p.add_credit(1, 1);
        assert!(matches!(
            p.choose(7, &[], None),
            Choice::Send { slot: 0, .. }
        ));
        assert!(matches!(
            p.choose(7, &[1], None),
            Choice::Send { slot: 1, .. }
        ));
        assert_eq!(p.choose(7, &[1, 2], None), Choice::Exhausted);
        assert_eq!(p.usable_credit(7), 2);
        p.unavailable(1);
        assert_eq!(p.usable_credit(7), 1);
    }

    #[test]
    fn the_rest_of_a_partly_sent_message_goes_only_where_it_splits_the_same() {
        let layout_entry = |id: Id, priority: i32, layout: Option<&'static str>| ProviderEntry {
            link: Arc::new(Null(id, layout)),
            ..entry(id, 7, priority, HealthStatus::Healthy)
        };
        let mut p = Providers::new(vec![
            layout_entry(1, 1, Some("smpp/udh8/auto/unpacked")),
            layout_entry(2, 0, None),
            layout_entry(3, 2, Some("smpp/udh16/auto/unpacked")),
            layout_entry(4, 3, Some("smpp/udh8/auto/unpacked")),
        ]);
        for id in 1..=4 {
            p.add_credit(id, 1);
        }
        let udh8 = Some("smpp/udh8/auto/unpacked");
        assert!(matches!(
            p.choose(7, &[], None),
            Choice::Send { slot: 1, .. }
        ));
        assert!(
            matches!(p.choose(7, &[], udh8), Choice::Send { slot: 0, .. }),
            "not the HTTP provider of priority 0"
        );
        assert!(
            matches!(p.choose(7, &[1], udh8), Choice::Send { slot: 3, .. }),
            "not the one that splits with a 16-bit reference"
        );
        assert_eq!(p.choose(7, &[1, 4], udh8), Choice::Exhausted);
        assert!(matches!(
            p.choose_requested(7, Some((4, "it took the first parts")), &[], udh8),
            Choice::Send { slot: 3, ref reason } if reason.contains("(it took the first parts)")
        ));
        assert!(
            matches!(
                p.choose_requested(7, Some((3, "it took the first parts")), &[], udh8),
                Choice::Send { slot: 0, .. }
            ),
            "a requested provider that splits otherwise is passed over"
        );
    }
}
