//! The audience check the API makes before a campaign starts: every recipient's message must
//! render, or the campaign is refused with the placeholder's name. Without it the runner can
//! only skip such recipients (counted as invalid) after the user pressed start.

use sairex_store::model::{Campaign, Id};
use sairex_store::{Store, StoreError, render_template};

use super::{CheckError, Target, content};

/// Recipients read per store call while checking.
const CHUNK: usize = 1_000;

/// A placeholder some recipients have no value (and no default) for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfilled {
    /// The placeholder's name (`name` for `{{name}}`).
    pub variable: String,
    /// How many recipients lack a value for it (or another placeholder).
    pub recipients: u64,
    /// The audience's size, as checked.
    pub checked: u64,
}

/// The first placeholder that some recipient of `campaign` cannot fill, rendering each
/// recipient's body (its A/B variant's) with the variables the runner would use: its own
/// (inline or uploaded), then its contact's fields. Opted-out contacts are skipped, as the
/// runner skips them. Reads the whole audience, a chunk at a time.
///
/// # Errors
/// [`CheckError::Blocked`] when a template is gone or refused (as [`super::check_campaign`]),
/// or a store error.
pub fn unfilled_variable(
    store: &Store,
    campaign: &Campaign,
    dlt_enabled: bool,
) -> Result<Option<Unfilled>, CheckError> {
    let content = content(store, campaign, dlt_enabled)?;
    if !content.bodies.iter().any(|b| b.contains("{{")) {
        return Ok(None);
    }
    let org = campaign.organization_id;
    let mut first: Option<String> = None;
    let mut missing = 0u64;
    let mut checked = 0u64;
    let mut check = |target: &Target| {
        if target.phone.is_none() || target.opted_out {
            return;
        }
        checked += 1;
        let (_, body) = content.pick(&target.key);
        if let Err(name) = render_template(body, Some(&target.variables)) {
            missing += 1;
            first.get_or_insert(name);
        }
    };
    match campaign.group_id {
        Some(group) => {
            let mut after: Option<Id> = None;
            loop {
                let ids = store.group_member_ids_after(group, after, CHUNK)?;
                for &id in &ids {
                    match store.contact(org, id) {
                        Ok(c) => check(&Target::contact(campaign.id, c)),
                        Err(StoreError::NotFound { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                after = ids.last().copied();
                if ids.len() < CHUNK {
                    break;
                }
            }
        }
        None => {
            let mut after: Option<String> = None;
            loop {
                let batch =
                    store.campaign_recipients_after(campaign.id, after.as_deref(), CHUNK)?;
                let full = batch.len() == CHUNK;
                for r in batch {
                    after = Some(r.phone.clone());
                    let contact = store.contact_by_phone(org, &r.phone)?;
                    check(&Target::recipient(campaign.id, r, contact));
                }
                if !full {
                    break;
                }
            }
        }
    }
    Ok(first.map(|variable| Unfilled {
        variable,
        recipients: missing,
        checked,
    }))
}
