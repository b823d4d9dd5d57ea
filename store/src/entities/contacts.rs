//! Contacts: the phone is unique within the organization (`[CONTACT_BY_PHONE][org][phone]`),
//! opt-out has its own operations that keep both timestamps, and deleting a contact takes it
//! out of every group in the same batch.

use crate::crypto::Sealer;
use crate::error::{Result, StoreError};
use crate::keys::{self, space, u64_at};
use crate::kv::Kv;
use crate::messages::{Page, PageRequest};
use crate::model::{Contact, Id, Millis};
use crate::writer::Ctx;
use crate::{Store, now_ms};

use super::{
    Record, create_op, delete_op, groups, invalid, list, load, record_fields, rewrite_op, update_op,
};

/// Longest phone number kept, in bytes (E.164 is at most 16 with the '+').
const MAX_PHONE: usize = 32;

/// Which contacts to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactFilter {
    /// Only those whose display name (case-insensitive) or phone number contains this.
    pub search: Option<String>,
    /// Only opted-out contacts (`Some(true)`) or only reachable ones (`Some(false)`).
    pub opted_out: Option<bool>,
}

impl ContactFilter {
    fn is_empty(&self) -> bool {
        self.search.as_deref().is_none_or(str::is_empty) && self.opted_out.is_none()
    }

    fn matches(&self, contact: &Contact, needle: Option<&str>) -> bool {
        self.opted_out.is_none_or(|o| contact.is_opted_out == o)
            && needle.is_none_or(|needle| {
                contact.phone_number.contains(needle)
                    || contact
                        .display_name
                        .as_ref()
                        .is_some_and(|name| name.to_lowercase().contains(needle))
            })
    }
}

/// What [`Store::upsert_contact_by_phone`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Upserted {
    /// No contact had the phone: this one was created.
    Created(Contact),
    /// The contact with the phone, updated.
    Updated(Contact),
}

impl Upserted {
    /// The stored contact.
    pub fn contact(&self) -> &Contact {
        match self {
            Self::Created(c) | Self::Updated(c) => c,
        }
    }

    /// Whether it was created.
    pub fn is_created(&self) -> bool {
        matches!(self, Self::Created(_))
    }
}

pub(crate) fn check_phone(phone: &str) -> Result<()> {
    if phone.is_empty() {
        return Err(invalid("phoneNumber", "is required"));
    }
    if phone.len() > MAX_PHONE {
        return Err(invalid(
            "phoneNumber",
            format!("is longer than {MAX_PHONE} bytes"),
        ));
    }
    if phone.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            "phoneNumber",
            "contains spaces or control characters",
        ));
    }
    Ok(())
}

fn none_if_blank(value: &mut Option<String>) {
    if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
        *value = None;
    } else if let Some(v) = value {
        *v = v.trim().to_owned();
    }
}

impl Record for Contact {
    const ENTITY: &'static str = "contact";
    const SPACE: u8 = space::CONTACT;

    record_fields!();

    fn keep_owned(&mut self, old: &Self) {
        self.is_opted_out = old.is_opted_out;
        self.opted_out_at = old.opted_out_at;
        self.opted_in_at = old.opted_in_at;
    }

    fn validate(&mut self) -> Result<()> {
        check_phone(&self.phone_number)?;
        if !super::is_country_code(&self.country_code) {
            return Err(invalid(
                "countryCode",
                "must be an ISO 3166-1 alpha-2 code such as PK",
            ));
        }
        none_if_blank(&mut self.display_name);
        none_if_blank(&mut self.email);
        Ok(())
    }

    fn unique_key(&self) -> Option<(Vec<u8>, String)> {
        Some((
            phone_key(self.organization_id, &self.phone_number),
            format!("phone {}", self.phone_number),
        ))
    }
}

fn phone_key(org: Id, phone: &str) -> Vec<u8> {
    keys::unique(space::CONTACT_BY_PHONE, org, phone)
}

pub(super) fn id_by_phone(tree: &Kv, org: Id, phone: &str) -> Result<Option<Id>> {
    Ok(tree.get(phone_key(org, phone))?.and_then(|v| u64_at(&v, 0)))
}

/// An import row onto an existing contact: what the row has replaces what the contact has,
/// custom fields are merged key by key, and opt-out is never changed by an import.
pub(super) fn merge(contact: &mut Contact, row: Contact) {
    if !row.country_code.is_empty() {
        contact.country_code = row.country_code;
    }
    if row.display_name.is_some() {
        contact.display_name = row.display_name;
    }
    if row.email.is_some() {
        contact.email = row.email;
    }
    if row.student_id.is_some() {
        contact.student_id = row.student_id;
    }
    if row.user_id.is_some() {
        contact.user_id = row.user_id;
    }
    match (&mut contact.metadata, row.metadata) {
        (Some(serde_json::Value::Object(old)), Some(serde_json::Value::Object(new))) => {
            old.extend(new);
        }
        (old, Some(new)) => *old = Some(new),
        (_, None) => {}
    }
}

fn create_contact_op(ctx: &mut Ctx, mut contact: Contact, now: Millis) -> Result<Contact> {
    // A contact may be created opted out (an imported suppression list); it then says when.
    if contact.is_opted_out && contact.opted_out_at.is_none() {
        contact.opted_out_at = Some(now);
    }
    create_op(ctx, None, contact, now)
}

fn upsert_op(ctx: &mut Ctx, row: Contact, now: Millis) -> Result<Upserted> {
    check_phone(&row.phone_number)?;
    let org = row.organization_id;
    match id_by_phone(&ctx.kv, org, &row.phone_number)? {
        Some(id) => update_op(ctx, None, org, id, now, |c: &mut Contact| {
            merge(c, row);
            Ok(())
        })
        .map(Upserted::Updated),
        None => create_contact_op(ctx, row, now).map(Upserted::Created),
    }
}

fn set_opt_out(contact: &mut Contact, opted_out: bool, now: Millis) {
    // Repeating STOP keeps the first opt-out time; each timestamp records its own event, so
    // opting in keeps when the contact opted out, and the reverse.
    if opted_out && !contact.is_opted_out {
        contact.is_opted_out = true;
        contact.opted_out_at = Some(now);
    } else if !opted_out && contact.is_opted_out {
        contact.is_opted_out = false;
        contact.opted_in_at = Some(now);
    }
}

fn opt_phone_op(ctx: &mut Ctx, org: Id, phone: String, opted_out: bool) -> Result<Contact> {
    check_phone(&phone)?;
    let now = now_ms();
    match id_by_phone(&ctx.kv, org, &phone)? {
        Some(id) => rewrite_op(ctx, None, org, id, now, |c: &mut Contact| {
            set_opt_out(c, opted_out, now);
            Ok(())
        }),
        None => create_contact_op(
            ctx,
            Contact {
                organization_id: org,
                phone_number: phone,
                is_opted_out: opted_out,
                ..Contact::default()
            },
            now,
        ),
    }
}

fn no_sealer() -> Option<&'static Sealer> {
    None
}

impl Store {
    /// Creates a contact; the store assigns `id` and times.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] (with the holder's id) when the organization already has a
    /// contact with this phone; [`StoreError::Invalid`] for a missing or malformed phone;
    /// storage errors.
    pub async fn create_contact(&self, contact: Contact) -> Result<Contact> {
        self.writer()
            .run(move |ctx| create_contact_op(ctx, contact, now_ms()))
            .await
    }

    /// A contact of the organization.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], also for another organization's contact.
    pub fn contact(&self, org: Id, id: Id) -> Result<Contact> {
        load(self.kv(), no_sealer(), org, id)
    }

    /// The organization's contact with this phone number.
    ///
    /// # Errors
    /// Storage errors.
    pub fn contact_by_phone(&self, org: Id, phone: &str) -> Result<Option<Contact>> {
        match id_by_phone(self.kv(), org, phone)? {
            Some(id) => self.contact(org, id).map(Some),
            None => Ok(None),
        }
    }

    /// Changes a contact; opt-out fields are kept (see [`Store::opt_out_contact`]). A new phone
    /// moves the unique index entry in the same batch.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Conflict`] when another contact of the
    /// organization has the new phone; validation errors; what `change` returns.
    pub async fn update_contact(
        &self,
        org: Id,
        id: Id,
        change: impl FnOnce(&mut Contact) -> Result<()> + Send + 'static,
    ) -> Result<Contact> {
        self.writer()
            .run(move |ctx| update_op(ctx, None, org, id, now_ms(), change))
            .await
    }

    /// Creates the contact, or updates the organization's contact with its phone (CSV import):
    /// fields the row has replace the contact's, `metadata` objects are merged, and opt-out is
    /// never changed by an import.
    ///
    /// # Errors
    /// Validation errors, storage errors.
    pub async fn upsert_contact_by_phone(&self, row: Contact) -> Result<Upserted> {
        self.writer()
            .run(move |ctx| upsert_op(ctx, row, now_ms()))
            .await
    }

    /// Deletes a contact, its phone entry, and its memberships (fixing each group's count).
    ///
    /// # Errors
    /// [`StoreError::NotFound`], storage errors.
    pub async fn delete_contact(&self, org: Id, id: Id) -> Result<Contact> {
        self.writer()
            .run(move |ctx| {
                let now = now_ms();
                delete_op(ctx, None, org, id, |tree, batch, _: &Contact| {
                    groups::forget_contact(tree, batch, org, id, now)
                })
            })
            .await
    }

    /// One page of the organization's contacts matching `filter`, newest first. A search scans
    /// the organization's contacts.
    ///
    /// # Errors
    /// Storage errors.
    pub fn list_contacts(
        &self,
        org: Id,
        filter: &ContactFilter,
        page: PageRequest,
    ) -> Result<Page<Contact>> {
        if filter.is_empty() {
            return list(self.kv(), None, org, page, None);
        }
        let needle = filter
            .search
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase);
        let keep = |c: &Contact| filter.matches(c, needle.as_deref());
        list(self.kv(), None, org, page, Some(&keep))
    }

    /// Opts a contact out (`isOptedOut`, `optedOutAt`; an earlier opt-out time is kept).
    ///
    /// # Errors
    /// [`StoreError::NotFound`], storage errors.
    pub async fn opt_out_contact(&self, org: Id, id: Id) -> Result<Contact> {
        self.set_contact_opt_out(org, id, true).await
    }

    /// Opts a contact back in (`optedInAt`; `optedOutAt` is kept as history).
    ///
    /// # Errors
    /// [`StoreError::NotFound`], storage errors.
    pub async fn opt_in_contact(&self, org: Id, id: Id) -> Result<Contact> {
        self.set_contact_opt_out(org, id, false).await
    }

    async fn set_contact_opt_out(&self, org: Id, id: Id, opted_out: bool) -> Result<Contact> {
        self.writer()
            .run(move |ctx| {
                let now = now_ms();
                rewrite_op(ctx, None, org, id, now, |c: &mut Contact| {
                    set_opt_out(c, opted_out, now);
                    Ok(())
                })
            })
            .await
    }

    /// Opts a phone number out or in (an inbound STOP or START), creating the contact when the
    /// organization has none with that phone, so that the choice is kept.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a malformed phone, storage errors.
    pub async fn set_phone_opt_out(
        &self,
        org: Id,
        phone: &str,
        opted_out: bool,
    ) -> Result<Contact> {
        if org == 0 {
            return Err(StoreError::Invalid {
                field: "organizationId",
                problem: "must be set".into(),
            });
        }
        let phone = phone.to_owned();
        self.writer()
            .run(move |ctx| opt_phone_op(ctx, org, phone, opted_out))
            .await
    }
}

/// Column names of [`Contact::to_csv_row`], in order.
pub const CONTACT_CSV_HEADER: [&str; 9] = [
    "id",
    "phoneNumber",
    "countryCode",
    "displayName",
    "email",
    "isOptedOut",
    "optedOutAt",
    "createdAt",
    "metadata",
];

impl Contact {
    /// The contact as CSV fields, in [`CONTACT_CSV_HEADER`] order (times in ms since the
    /// epoch, metadata as JSON). Quoting is the CSV writer's job.
    pub fn to_csv_row(&self) -> Vec<String> {
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        vec![
            self.id.to_string(),
            self.phone_number.clone(),
            self.country_code.clone(),
            opt(&self.display_name),
            opt(&self.email),
            self.is_opted_out.to_string(),
            self.opted_out_at.map(|t| t.to_string()).unwrap_or_default(),
            self.created_at.to_string(),
            self.metadata
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ]
    }
}

/// What erasing a contact did.
#[derive(Debug, Clone, PartialEq)]
pub struct Erasure {
    /// The deleted contact.
    pub contact: Contact,
    /// Messages whose number was replaced by its salted hash.
    pub messages_anonymised: u64,
}

impl Store {
    /// Every contact of the organization, oldest first, read lazily from the store (for CSV
    /// export: nothing is held in memory but the current record).
    pub fn export_contacts(&self, org: Id) -> impl Iterator<Item = Result<Contact>> + '_ {
        let prefix = crate::keys::scoped_prefix(space::CONTACT, org);
        let end = crate::keys::prefix_end(&prefix);
        self.kv().range(prefix..end).map(|entry| {
            let (key, value) = entry?;
            crate::entities::decode_record(None, &key, &value)
        })
    }

    /// The right to erasure: anonymises the organization's messages to and from the contact's
    /// number (see [`Store::anonymise_messages`]; the body too when `clear_body`), then deletes
    /// the contact and its group memberships. Safe to repeat after a crash between the steps.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound) when the organization has no such
    /// contact.
    pub async fn erase_contact(&self, org: Id, id: Id, clear_body: bool) -> Result<Erasure> {
        let contact = self.contact(org, id)?;
        let messages_anonymised = self
            .anonymise_messages(org, &contact.phone_number, clear_body)
            .await?;
        let contact = self.delete_contact(org, id).await?;
        Ok(Erasure {
            contact,
            messages_anonymised,
        })
    }
}
