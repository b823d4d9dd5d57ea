//! SMPP accounts: the customers (applications, resellers) that bind to Sairex's SMPP server.
//! One organization may have several; a `systemId` is unique across the gateway, claimed in
//! `[SMPP_ACCOUNT_BY_SYSTEM_ID][systemId]`. The password is stored as the API layer's argon2id
//! hash only.

use crate::error::Result;
use crate::keys::{Key, prefix_end, space, u64_at};
use crate::kv::Kv;
use crate::model::{Id, Millis, Priority};
use crate::{Store, now_ms};
use serde::{Deserialize, Serialize};

use super::{Record, all, create_op, delete_op, invalid, load, record_fields, update_op};

/// Longest system id: SMPP 3.4 `system_id` is a C-Octet String of at most 16 octets with NUL.
pub const MAX_SYSTEM_ID: usize = 15;
/// Most entries of each of an account's lists (IP ranges, sender ids, MO numbers).
const MAX_LIST: usize = 100;
/// Longest list entry, in bytes.
const MAX_ENTRY: usize = 64;

/// How a bind may use the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmppBindType {
    /// bind_transmitter: submits only.
    Transmitter,
    /// bind_receiver: receipts and MO only.
    Receiver,
    /// bind_transceiver: both.
    Transceiver,
}

/// How message ids are written to the customer (submit_sm_resp, receipts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReceiptIdFormat {
    /// Lower-case hexadecimal.
    #[default]
    Hex,
    /// Decimal digits.
    Decimal,
}

impl ReceiptIdFormat {
    /// Our id as the customer sees it.
    pub fn format(self, id: Id) -> String {
        match self {
            Self::Hex => format!("{id:x}"),
            Self::Decimal => id.to_string(),
        }
    }

    /// The id the customer wrote back (query_sm, cancel_sm), or `None` if it is not one.
    pub fn parse(self, text: &str) -> Option<Id> {
        match self {
            Self::Hex => Id::from_str_radix(text, 16).ok(),
            Self::Decimal => text.parse().ok(),
        }
    }
}

/// An SMPP account of an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SmppAccount {
    /// Its id.
    pub id: Id,
    /// The tenant.
    pub organization_id: Id,
    /// The bind's `system_id`, unique across the gateway.
    pub system_id: String,
    /// argon2id hash (PHC string) of the password; never shown.
    pub password_hash: String,
    /// A note for the operator.
    pub description: String,
    /// Bind types allowed.
    pub bind_types: Vec<SmppBindType>,
    /// Most sessions bound at once.
    pub max_binds: u32,
    /// Source address ranges (CIDR) binds may come from; empty: any.
    pub allowed_ips: Vec<String>,
    /// Submits per second over all its binds; above it `ESME_RTHROTTLED`. `None`: no limit.
    pub tps: Option<u32>,
    /// Most submits of one bind awaiting their answer; above it `ESME_RMSGQFUL`.
    pub max_window: u32,
    /// Sender ids (`source_addr`) it may use; empty: any.
    pub sender_ids: Vec<String>,
    /// Priority of its messages.
    pub default_priority: Priority,
    /// How ids are written to it.
    pub receipt_id_format: ReceiptIdFormat,
    /// Inbound messages to these numbers go to it as deliver_sm.
    pub mo_numbers: Vec<String>,
    /// Binds are refused while false.
    pub is_active: bool,
    /// When it was created.
    pub created_at: Millis,
    /// When it last changed.
    pub updated_at: Millis,
}

impl Default for SmppAccount {
    fn default() -> Self {
        Self {
            id: 0,
            organization_id: 0,
            system_id: String::new(),
            password_hash: String::new(),
            description: String::new(),
            bind_types: vec![
                SmppBindType::Transmitter,
                SmppBindType::Receiver,
                SmppBindType::Transceiver,
            ],
            max_binds: 4,
            allowed_ips: Vec::new(),
            tps: None,
            max_window: 64,
            sender_ids: Vec::new(),
            default_priority: Priority::TRANSACTIONAL,
            receipt_id_format: ReceiptIdFormat::Hex,
            mo_numbers: Vec::new(),
            is_active: true,
            created_at: 0,
            updated_at: 0,
        }
    }
}

fn system_id_key(system_id: &str) -> Vec<u8> {
    Key::new(space::SMPP_ACCOUNT_BY_SYSTEM_ID)
        .tail(system_id.as_bytes())
        .build()
}

fn check_list(field: &'static str, list: &mut Vec<String>) -> Result<()> {
    for entry in list.iter_mut() {
        *entry = entry.trim().to_owned();
        if entry.is_empty() || entry.len() > MAX_ENTRY || entry.chars().any(char::is_control) {
            return Err(invalid(
                field,
                format!("entries are 1 to {MAX_ENTRY} bytes without control characters"),
            ));
        }
    }
    if list.len() > MAX_LIST {
        return Err(invalid(field, format!("at most {MAX_LIST} entries")));
    }
    list.sort();
    list.dedup();
    Ok(())
}

impl Record for SmppAccount {
    const ENTITY: &'static str = "SMPP account";
    const SPACE: u8 = space::SMPP_ACCOUNT;

    record_fields!();

    fn validate(&mut self) -> Result<()> {
        self.system_id = self.system_id.trim().to_owned();
        if self.system_id.is_empty()
            || self.system_id.len() > MAX_SYSTEM_ID
            || !self.system_id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(invalid(
                "systemId",
                format!("1 to {MAX_SYSTEM_ID} printable ASCII characters"),
            ));
        }
        if self.password_hash.is_empty() {
            return Err(invalid("password", "is required"));
        }
        if self.description.len() > 500 {
            return Err(invalid("description", "at most 500 bytes"));
        }
        if self.bind_types.is_empty() {
            return Err(invalid("bindTypes", "at least one bind type"));
        }
        self.bind_types.sort_by_key(|t| *t as u8);
        self.bind_types.dedup();
        if !(1..=1000).contains(&self.max_binds) {
            return Err(invalid("maxBinds", "1 to 1000"));
        }
        if !(1..=10_000).contains(&self.max_window) {
            return Err(invalid("maxWindow", "1 to 10000"));
        }
        if self.tps == Some(0) {
            return Err(invalid("tps", "at least 1 (or null: no limit)"));
        }
        if !(1..=10).contains(&self.default_priority.0) {
            return Err(invalid("defaultPriority", "1 to 10"));
        }
        check_list("allowedIps", &mut self.allowed_ips)?;
        check_list("senderIds", &mut self.sender_ids)?;
        check_list("moNumbers", &mut self.mo_numbers)?;
        Ok(())
    }

    fn unique_key(&self) -> Option<(Vec<u8>, String)> {
        Some((
            system_id_key(&self.system_id),
            format!("systemId {}", self.system_id),
        ))
    }
}

/// Every account of every organization (binds are rare; accounts are few).
fn every_account(tree: &Kv) -> Result<Vec<SmppAccount>> {
    let prefix = [space::SMPP_ACCOUNT];
    tree.range(prefix.to_vec()..prefix_end(&prefix))
        .map(|entry| {
            let (key, value) = entry?;
            crate::value::decode(&key, &value)
        })
        .collect()
}

impl Store {
    /// Creates an SMPP account (its `passwordHash` already set by the caller).
    ///
    /// # Errors
    /// [`StoreError::Conflict`](crate::StoreError::Conflict) when the system id is taken (by any
    /// organization), [`StoreError::Invalid`](crate::StoreError::Invalid), storage errors.
    pub async fn create_smpp_account(&self, account: SmppAccount) -> Result<SmppAccount> {
        self.writer()
            .run(move |ctx| create_op(ctx, None, account, now_ms()))
            .await
    }

    /// An SMPP account of the organization.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), also for another organization's.
    pub fn smpp_account(&self, org: Id, id: Id) -> Result<SmppAccount> {
        load(self.kv(), None, org, id)
    }

    /// The organization's SMPP accounts, oldest first.
    ///
    /// # Errors
    /// Storage errors.
    pub fn smpp_accounts(&self, org: Id) -> Result<Vec<SmppAccount>> {
        all(self.kv(), None, org)
    }

    /// Every SMPP account of the gateway.
    ///
    /// # Errors
    /// Storage errors.
    pub fn all_smpp_accounts(&self) -> Result<Vec<SmppAccount>> {
        every_account(self.kv())
    }

    /// The account a bind names, if any.
    ///
    /// # Errors
    /// Storage errors.
    pub fn smpp_account_by_system_id(&self, system_id: &str) -> Result<Option<SmppAccount>> {
        let Some(id) = self
            .kv()
            .get(system_id_key(system_id))?
            .and_then(|v| u64_at(&v, 0))
        else {
            return Ok(None);
        };
        Ok(every_account(self.kv())?.into_iter().find(|a| a.id == id))
    }

    /// Changes an SMPP account.
    ///
    /// # Errors
    /// As [`Store::create_smpp_account`], and
    /// [`StoreError::NotFound`](crate::StoreError::NotFound).
    pub async fn update_smpp_account(
        &self,
        org: Id,
        id: Id,
        change: impl FnOnce(&mut SmppAccount) -> Result<()> + Send + 'static,
    ) -> Result<SmppAccount> {
        self.writer()
            .run(move |ctx| update_op(ctx, None, org, id, now_ms(), change))
            .await
    }

    /// Deletes an SMPP account and everything still owed to it.
    ///
    /// # Errors
    /// [`StoreError::NotFound`](crate::StoreError::NotFound), storage errors.
    pub async fn delete_smpp_account(&self, org: Id, id: Id) -> Result<SmppAccount> {
        self.writer()
            .run(move |ctx| {
                delete_op::<SmppAccount>(ctx, None, org, id, |tree, batch, account| {
                    super::smpp_outbox::forget_owed(tree, batch, account.id)
                })
            })
            .await
    }
}
