//! `/api/sms/smpp-accounts`: the organization's SMPP accounts, for customers that bind to the
//! SMPP server (docs/smpp-server.md). The password is shown once (when generated or set) and
//! stored as an argon2id hash only.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use sairex_store::model::{Id, Priority};
use sairex_store::{ReceiptIdFormat, SmppAccount, SmppBindType, StoreError};
use serde::{Deserialize, Serialize};

use super::{ApiJson, ApiQuery, done, parse_id};
use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult, envelope, ok};
use crate::listing::{self, ListParams};
use crate::smpp_server::password;
use crate::state::AppState;
use crate::time;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountView {
    id: Id,
    system_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    description: String,
    bind_types: Vec<SmppBindType>,
    max_binds: u32,
    allowed_ips: Vec<String>,
    tps: Option<u32>,
    max_window: u32,
    sender_ids: Vec<String>,
    default_priority: &'static str,
    receipt_id_format: ReceiptIdFormat,
    mo_numbers: Vec<String>,
    is_active: bool,
    bound_sessions: usize,
    created_at: String,
    updated_at: String,
}

fn priority_name(p: Priority) -> &'static str {
    match p.0 {
        0..=2 => "otp",
        3..=7 => "transactional",
        _ => "bulk",
    }
}

fn view(state: &AppState, a: &SmppAccount, password: Option<String>) -> AccountView {
    AccountView {
        id: a.id,
        system_id: a.system_id.clone(),
        password,
        description: a.description.clone(),
        bind_types: a.bind_types.clone(),
        max_binds: a.max_binds,
        allowed_ips: a.allowed_ips.clone(),
        tps: a.tps,
        max_window: a.max_window,
        sender_ids: a.sender_ids.clone(),
        default_priority: priority_name(a.default_priority),
        receipt_id_format: a.receipt_id_format,
        mo_numbers: a.mo_numbers.clone(),
        is_active: a.is_active,
        bound_sessions: state.smpp_sessions().bound(a.id),
        created_at: time::format(a.created_at),
        updated_at: time::format(a.updated_at),
    }
}

/// The body of create and change; on change, absent fields stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub(crate) struct AccountRequest {
    system_id: Option<String>,
    /// A password to set (1 to 8 printable characters, SMPP 3.4's limit); absent on create,
    /// or `regeneratePassword: true` on change: one is generated.
    password: Option<String>,
    regenerate_password: Option<bool>,
    description: Option<String>,
    bind_types: Option<Vec<SmppBindType>>,
    max_binds: Option<u32>,
    allowed_ips: Option<Vec<String>>,
    #[serde(deserialize_with = "nullable")]
    tps: Option<Option<u32>>,
    max_window: Option<u32>,
    sender_ids: Option<Vec<String>>,
    default_priority: Option<String>,
    receipt_id_format: Option<ReceiptIdFormat>,
    mo_numbers: Option<Vec<String>>,
    is_active: Option<bool>,
}

fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

fn parse_priority(raw: &str) -> Result<Priority, ApiError> {
    match raw.to_ascii_lowercase().as_str() {
        "otp" => Ok(Priority::OTP),
        "transactional" => Ok(Priority::TRANSACTIONAL),
        "bulk" => Ok(Priority::BULK),
        _ => Err(ApiError::invalid(
            "defaultPriority: one of otp, transactional, bulk",
        )),
    }
}

fn check_cidrs(list: &[String]) -> Result<(), ApiError> {
    for entry in list {
        password::parse_cidr(entry).ok_or_else(|| {
            ApiError::invalid(format!(
                "allowedIps: {entry:?} is not an address range such as 203.0.113.0/24"
            ))
        })?;
    }
    Ok(())
}

/// The password to set and show, if the request sets one.
fn new_password(r: &AccountRequest, creating: bool) -> Result<Option<String>, ApiError> {
    match (&r.password, r.regenerate_password.unwrap_or(false)) {
        (Some(p), _) => {
            password::check_password(p).map_err(ApiError::invalid)?;
            Ok(Some(p.clone()))
        }
        (None, true) => Ok(Some(password::generate())),
        (None, false) if creating => Ok(Some(password::generate())),
        (None, false) => Ok(None),
    }
}

/// Applies the request's fields to `a` (what the store validates is left to it).
fn apply(r: AccountRequest, a: &mut SmppAccount, hash: Option<String>) -> Result<(), ApiError> {
    if let Some(v) = r.system_id {
        a.system_id = v;
    }
    if let Some(h) = hash {
        a.password_hash = h;
    }
    if let Some(v) = r.description {
        a.description = v;
    }
    if let Some(v) = r.bind_types {
        a.bind_types = v;
    }
    if let Some(v) = r.max_binds {
        a.max_binds = v;
    }
    if let Some(v) = r.allowed_ips {
        check_cidrs(&v)?;
        a.allowed_ips = v;
    }
    if let Some(v) = r.tps {
        a.tps = v;
    }
    if let Some(v) = r.max_window {
        a.max_window = v;
    }
    if let Some(v) = r.sender_ids {
        a.sender_ids = v;
    }
    if let Some(v) = r.default_priority {
        a.default_priority = parse_priority(&v)?;
    }
    if let Some(v) = r.receipt_id_format {
        a.receipt_id_format = v;
    }
    if let Some(v) = r.mo_numbers {
        a.mo_numbers = v;
    }
    if let Some(v) = r.is_active {
        a.is_active = v;
    }
    Ok(())
}

async fn hash(password: Option<&str>) -> Result<Option<String>, ApiError> {
    match password {
        Some(p) => {
            let p = p.to_owned();
            // argon2id is deliberately slow: off the async workers.
            let hashed = tokio::task::spawn_blocking(move || password::hash(&p))
                .await
                .map_err(|_| ApiError::internal("hashing failed"))?
                .map_err(|_| ApiError::internal("hashing failed"))?;
            Ok(Some(hashed))
        }
        None => Ok(None),
    }
}

/// `GET /api/sms/smpp-accounts`.
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let request = q.request()?;
    let accounts = state.store().smpp_accounts(principal.org_id())?;
    let listed = listing::from_vec(request, accounts, |a| a.id);
    Ok(ok(&listed.map(|a| view(&state, &a, None))))
}

/// `POST /api/sms/smpp-accounts`: the password (generated unless given) is in this answer
/// only.
pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(r): ApiJson<AccountRequest>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    if r.system_id.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return Err(ApiError::invalid("systemId: is required"));
    }
    let password = new_password(&r, true)?;
    let hashed = hash(password.as_deref()).await?;
    let mut account = SmppAccount {
        organization_id: principal.org_id(),
        ..SmppAccount::default()
    };
    apply(r, &mut account, hashed)?;
    let created = state.store().create_smpp_account(account).await?;
    Ok(envelope(
        StatusCode::CREATED,
        &view(&state, &created, password),
    ))
}

/// `GET /api/sms/smpp-accounts/{accountId}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "SMPP account")?;
    let account = state.store().smpp_account(principal.org_id(), id)?;
    Ok(ok(&view(&state, &account, None)))
}

/// `PATCH /api/sms/smpp-accounts/{accountId}`: a new password (given, or generated with
/// `regeneratePassword: true`) is in this answer only. Sessions bound with the old settings
/// are unbound, so the change applies at their next bind.
pub(crate) async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<AccountRequest>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "SMPP account")?;
    let org = principal.org_id();
    state.store().smpp_account(org, id)?;
    let password = new_password(&r, false)?;
    let hashed = hash(password.as_deref()).await?;
    // Checked before the write, so that a bad field is a 400 of its own, not a store error.
    apply_checked(&r)?;
    let updated = state
        .store()
        .update_smpp_account(org, id, move |a| {
            apply(r, a, hashed).map_err(|e| StoreError::Invalid {
                field: "request",
                problem: e.message.into_owned(),
            })
        })
        .await?;
    state.smpp_sessions().account_changed(updated.id);
    Ok(ok(&view(&state, &updated, password)))
}

/// The checks of [`apply`] that can fail, run on a copy first.
fn apply_checked(r: &AccountRequest) -> Result<(), ApiError> {
    if let Some(v) = &r.allowed_ips {
        check_cidrs(v)?;
    }
    if let Some(v) = &r.default_priority {
        parse_priority(v)?;
    }
    Ok(())
}

/// `DELETE /api/sms/smpp-accounts/{accountId}`: its sessions are unbound and what it was owed
/// is dropped.
pub(crate) async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "SMPP account")?;
    state
        .store()
        .delete_smpp_account(principal.org_id(), id)
        .await?;
    state.smpp_sessions().account_changed(id);
    Ok(done())
}
