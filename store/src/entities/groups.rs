//! Contact groups. The name is unique within the organization; membership is two keys,
//! `[GROUP_MEMBER][group][contact]` and `[CONTACT_GROUP][contact][group]`, and `memberCount` is
//! exact: every operation that writes or removes a membership key changes the count in the same
//! batch, and only when the key really appears or disappears.

use std::collections::HashSet;

use crate::kv::{Batch, Kv};

use crate::error::{Result, StoreError};
use crate::keys::{self, prefix_end, space, trailing_id};
use crate::messages::{Page, PageRequest};
use crate::model::{Contact, Group, Id, Millis};
use crate::writer::Ctx;
use crate::{MAX_PAGE, Store, now_ms};

use super::{
    Record, clean_name, create_op, delete_op, encode_record, invalid, list, load, record_fields,
    update_op,
};

/// Most contact ids one add or remove call takes (one batch).
pub const MAX_MEMBERS_PER_CALL: usize = 10_000;

/// What adding or removing members did, id by id (each id once, in the order given).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MembershipChange {
    /// The group after the change (its `memberCount` is exact).
    pub group: Group,
    /// Ids added (or removed).
    pub changed: Vec<Id>,
    /// Ids of the organization's contacts that were already members (or were not members).
    pub unchanged: Vec<Id>,
    /// Ids that are not contacts of the organization: nothing was done with them.
    pub unknown: Vec<Id>,
}

impl Record for Group {
    const ENTITY: &'static str = "group";
    const SPACE: u8 = space::GROUP;

    record_fields!();

    fn keep_owned(&mut self, old: &Self) {
        self.member_count = old.member_count;
    }

    fn validate(&mut self) -> Result<()> {
        self.name = clean_name("name", &self.name)?;
        Ok(())
    }

    fn unique_key(&self) -> Option<(Vec<u8>, String)> {
        Some((
            keys::unique(space::GROUP_BY_NAME, self.organization_id, &self.name),
            format!("name {}", self.name),
        ))
    }
}

fn put_group(batch: &mut Batch, group: &Group) -> Result<()> {
    let key = Group::key(group.organization_id, group.id);
    batch.insert(key.as_slice(), encode_record(None, &key, group)?);
    Ok(())
}

/// Removes a contact being deleted from every group, one count down for each membership.
pub(crate) fn forget_contact(
    tree: &Kv,
    batch: &mut Batch,
    org: Id,
    contact: Id,
    now: Millis,
) -> Result<()> {
    let prefix = keys::contact_groups(contact);
    for entry in tree.range(prefix.clone()..prefix_end(&prefix)) {
        let (key, _) = entry?;
        let Some(group_id) = trailing_id(&key) else {
            continue;
        };
        batch.remove(key);
        batch.remove(keys::group_member(group_id, contact));
        match load::<Group>(tree, None, org, group_id) {
            Ok(mut group) => {
                group.member_count = group.member_count.saturating_sub(1);
                group.updated_at = now;
                put_group(batch, &group)?;
            }
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Removes every membership of a group being deleted.
fn forget_group(tree: &Kv, batch: &mut Batch, group: Id) -> Result<()> {
    let prefix = keys::group_members(group);
    for entry in tree.range(prefix.clone()..prefix_end(&prefix)) {
        let (key, _) = entry?;
        if let Some(contact) = trailing_id(&key) {
            batch.remove(keys::contact_group(contact, group));
        }
        batch.remove(key);
    }
    Ok(())
}

fn change_members_op(
    ctx: &mut Ctx,
    org: Id,
    group_id: Id,
    ids: Vec<Id>,
    add: bool,
    now: Millis,
) -> Result<MembershipChange> {
    let mut group: Group = load(&ctx.kv, None, org, group_id)?;
    let mut change = MembershipChange::default();
    let mut batch = Batch::default();
    // Reads do not see this batch, so an id given twice is handled once.
    let mut seen = HashSet::with_capacity(ids.len());
    for contact in ids.into_iter().filter(|id| seen.insert(*id)) {
        let member = keys::group_member(group_id, contact);
        let is_member = ctx.kv.contains_key(&member)?;
        if is_member == add {
            change.unchanged.push(contact);
        } else if !ctx.kv.contains_key(Contact::key(org, contact))? {
            change.unknown.push(contact);
        } else if add {
            batch.insert(member, now.to_be_bytes());
            batch.insert(keys::contact_group(contact, group_id), []);
            change.changed.push(contact);
        } else {
            batch.remove(member);
            batch.remove(keys::contact_group(contact, group_id));
            change.changed.push(contact);
        }
    }
    // A membership key can only exist for a contact of the organization (adds check it, and
    // deleting a contact removes its keys), so an already-member id is never unknown; an id
    // that is neither a member nor a contact is reported unknown, also on removal.
    let unchanged = std::mem::take(&mut change.unchanged);
    for contact in unchanged {
        if add || ctx.kv.contains_key(Contact::key(org, contact))? {
            change.unchanged.push(contact);
        } else {
            change.unknown.push(contact);
        }
    }
    if !change.changed.is_empty() {
        let n = change.changed.len() as u64;
        group.member_count = if add {
            group.member_count.saturating_add(n)
        } else {
            group.member_count.saturating_sub(n)
        };
        group.updated_at = now;
        put_group(&mut batch, &group)?;
        ctx.apply(batch)?;
    }
    change.group = group;
    Ok(change)
}

impl Store {
    /// Creates a group (no members: `memberCount` is 0); the store assigns `id` and times.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when the organization has a group of that name;
    /// [`StoreError::Invalid`] for a missing name; storage errors.
    pub async fn create_group(&self, mut group: Group) -> Result<Group> {
        group.member_count = 0;
        self.writer()
            .run(move |ctx| create_op(ctx, None, group, now_ms()))
            .await
    }

    /// A group of the organization.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], also for another organization's group.
    pub fn group(&self, org: Id, id: Id) -> Result<Group> {
        load(self.kv(), None, org, id)
    }

    /// Changes a group (name, description, colour); `memberCount` is kept.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Conflict`] for a name another group of the
    /// organization has; validation errors; what `change` returns.
    pub async fn update_group(
        &self,
        org: Id,
        id: Id,
        change: impl FnOnce(&mut Group) -> Result<()> + Send + 'static,
    ) -> Result<Group> {
        self.writer()
            .run(move |ctx| update_op(ctx, None, org, id, now_ms(), change))
            .await
    }

    /// Deletes a group and its memberships (the contacts stay).
    ///
    /// # Errors
    /// [`StoreError::NotFound`], storage errors.
    pub async fn delete_group(&self, org: Id, id: Id) -> Result<Group> {
        self.writer()
            .run(move |ctx| {
                delete_op(ctx, None, org, id, |tree, batch, _: &Group| {
                    forget_group(tree, batch, id)
                })
            })
            .await
    }

    /// The organization's groups, newest first.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_groups(&self, org: Id, page: PageRequest) -> Result<Page<Group>> {
        list(self.kv(), None, org, page, None)
    }

    /// Adds the organization's contacts to a group. Idempotent: members stay members and are
    /// counted once; ids that are not the organization's contacts are reported and skipped.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for the group; [`StoreError::Invalid`] for more than
    /// [`MAX_MEMBERS_PER_CALL`] ids; storage errors.
    pub async fn add_group_members(
        &self,
        org: Id,
        group: Id,
        contacts: Vec<Id>,
    ) -> Result<MembershipChange> {
        self.change_members(org, group, contacts, true).await
    }

    /// Removes contacts from a group. Idempotent, like [`Store::add_group_members`].
    ///
    /// # Errors
    /// As [`Store::add_group_members`].
    pub async fn remove_group_members(
        &self,
        org: Id,
        group: Id,
        contacts: Vec<Id>,
    ) -> Result<MembershipChange> {
        self.change_members(org, group, contacts, false).await
    }

    async fn change_members(
        &self,
        org: Id,
        group: Id,
        contacts: Vec<Id>,
        add: bool,
    ) -> Result<MembershipChange> {
        if contacts.len() > MAX_MEMBERS_PER_CALL {
            return Err(invalid(
                "contactIds",
                format!("at most {MAX_MEMBERS_PER_CALL} per call"),
            ));
        }
        self.writer()
            .run(move |ctx| change_members_op(ctx, org, group, contacts, add, now_ms()))
            .await
    }

    /// One page of a group's members, newest contact first; the total is `memberCount`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for the group (also another organization's), storage errors.
    pub fn group_members(&self, org: Id, group: Id, page: PageRequest) -> Result<Page<Contact>> {
        let group_record = self.group(org, group)?;
        let limit = page.limit.clamp(1, MAX_PAGE);
        let prefix = keys::group_members(group);
        let mut items = Vec::new();
        let ids = self
            .kv()
            .range(prefix.clone()..prefix_end(&prefix))
            .rev()
            .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
            .take(limit as usize);
        for entry in ids {
            let (key, _) = entry?;
            if let Some(contact) = trailing_id(&key) {
                items.push(self.contact(org, contact)?);
            }
        }
        Ok(Page {
            items,
            total: group_record.member_count,
            offset: page.offset,
            limit,
        })
    }

    /// The groups a contact of the organization belongs to, oldest group first.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for the contact, storage errors.
    pub fn contact_groups(&self, org: Id, contact: Id) -> Result<Vec<Group>> {
        self.contact(org, contact)?;
        let prefix = keys::contact_groups(contact);
        self.kv()
            .range(prefix.clone()..prefix_end(&prefix))
            .filter_map(|entry| match entry {
                Ok((key, _)) => trailing_id(&key).map(|g| self.group(org, g)),
                Err(e) => Some(Err(e)),
            })
            .collect()
    }
}
