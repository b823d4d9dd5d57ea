//! Admin JSON: organizations (superadmin), and for an organization's `admin` keys its API
//! keys, providers and webhooks. Secrets (keys, credentials, webhook secrets) are shown once,
//! at creation, and masked after.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use sairex_store::model::{
    ApiKey, Id, Message, Micros, Organization, Priority, ProviderConfig, ProviderKind, QuietHours,
    Webhook,
};
use sairex_store::{Enqueued, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{ApiJson, ApiQuery, done, parse_id};
use crate::auth::{Principal, Scope, generate_api_key, generate_webhook_secret};
use crate::error::{ApiError, ApiResult, envelope, ok};
use crate::listing::{self, ListParams};
use crate::state::AppState;
use crate::{phone, ssrf, text, time, zone};

/// What masked secrets read as.
const MASK: &str = "********";

/// Events a webhook may subscribe to.
pub(crate) const WEBHOOK_EVENTS: [&str; 5] = [
    "message.queued",
    "message.sent",
    "message.delivered",
    "message.failed",
    "message.inbound",
];

// ---------------------------------------------------------------------------------------------
// Organizations (superadmin)

/// The fields of `POST` and `PATCH /api/admin/organizations…`. In a `PATCH` an absent field
/// stays as it is, and `null` clears the nullable ones (credit, currency, retention, quiet
/// hours).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OrganizationRequest {
    name: Option<String>,
    default_country: Option<String>,
    /// IANA zone; `null` goes back to the country's.
    #[serde(deserialize_with = "nullable")]
    timezone: Option<Option<String>>,
    #[serde(deserialize_with = "nullable")]
    credit_balance: Option<Option<Value>>,
    #[serde(deserialize_with = "nullable")]
    currency: Option<Option<String>>,
    dlt_enabled: Option<bool>,
    is_active: Option<bool>,
    #[serde(deserialize_with = "nullable")]
    retention_days: Option<Option<u64>>,
    #[serde(deserialize_with = "nullable")]
    quiet_hours: Option<Option<QuietHoursBody>>,
}

/// Present fields: `Some(None)` for `null`, `Some(Some(v))` for a value (absent is `None`,
/// from `default`).
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct QuietHoursBody {
    start: Option<String>,
    end: Option<String>,
    time_zone: Option<String>,
}

/// An organization request, checked: applying it cannot fail.
#[derive(Debug, Clone, Default)]
struct OrganizationChanges {
    name: Option<String>,
    default_country: Option<String>,
    /// `Some("")`: follow the country.
    time_zone: Option<String>,
    credit_balance: Option<Option<Micros>>,
    currency: Option<Option<String>>,
    dlt_enabled: Option<bool>,
    is_active: Option<bool>,
    retention_days: Option<Option<u32>>,
    quiet_hours: Option<Option<QuietHours>>,
}

/// Longest retention: as the config file's `retention_days` (100 years).
const MAX_RETENTION_DAYS: u64 = 36_500;

/// "21:30" → minutes after midnight.
fn parse_clock(field: &str, raw: Option<&str>) -> Result<u16, ApiError> {
    let bad = || ApiError::invalid(format!("{field}: a time of day such as \"21:30\""));
    let (h, m) = raw.and_then(|r| r.trim().split_once(':')).ok_or_else(bad)?;
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn format_clock(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

impl OrganizationRequest {
    fn check(self) -> Result<OrganizationChanges, ApiError> {
        let default_country = match self.default_country {
            Some(c) => {
                let c = c.trim().to_ascii_uppercase();
                if c.parse::<phonenumber::country::Id>().is_err() {
                    return Err(ApiError::invalid(
                        "defaultCountry: an ISO 3166-1 alpha-2 code such as PK",
                    ));
                }
                Some(c)
            }
            None => None,
        };
        let credit_balance = match self.credit_balance {
            Some(Some(v)) => Some(Some(parse_money("creditBalance", &v)?)),
            Some(None) => Some(None),
            None => None,
        };
        let currency = match self.currency {
            Some(Some(c)) => {
                let c = c.trim().to_ascii_uppercase();
                if c.len() != 3 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                    return Err(ApiError::invalid("currency: an ISO 4217 code such as PKR"));
                }
                Some(Some(c))
            }
            other => other,
        };
        let retention_days = match self.retention_days {
            Some(Some(d)) => Some(Some(
                u32::try_from(d)
                    .ok()
                    .filter(|d| (1..=MAX_RETENTION_DAYS).contains(&u64::from(*d)))
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "retentionDays: 1 to {MAX_RETENTION_DAYS}, or null for the default"
                        ))
                    })?,
            )),
            Some(None) => Some(None),
            None => None,
        };
        let quiet_hours = match self.quiet_hours {
            Some(Some(q)) => {
                let zone = q.time_zone.unwrap_or_default().trim().to_owned();
                // An unknown zone would be read as UTC at send time: refused here instead.
                if !sairex_engine::campaigns::is_known_time_zone(&zone) {
                    return Err(ApiError::invalid(
                        "quietHours.timeZone: an IANA time zone such as Asia/Karachi",
                    ));
                }
                Some(Some(QuietHours {
                    start_minute: parse_clock("quietHours.start", q.start.as_deref())?,
                    end_minute: parse_clock("quietHours.end", q.end.as_deref())?,
                    time_zone: zone,
                }))
            }
            Some(None) => Some(None),
            None => None,
        };
        let time_zone = match self.timezone {
            Some(Some(name)) => Some(zone::check("timezone", &name)?),
            Some(None) => Some(String::new()),
            None => None,
        };
        Ok(OrganizationChanges {
            name: self.name,
            default_country,
            time_zone,
            credit_balance,
            currency,
            dlt_enabled: self.dlt_enabled,
            is_active: self.is_active,
            retention_days,
            quiet_hours,
        })
    }
}

impl OrganizationChanges {
    fn apply(self, o: &mut Organization) {
        if let Some(name) = self.name {
            o.name = name;
        }
        if let Some(country) = self.default_country {
            o.default_country = country;
        }
        if let Some(zone) = self.time_zone {
            o.time_zone = zone;
        }
        if let Some(credit) = self.credit_balance {
            o.credit_balance = credit;
        }
        if let Some(currency) = self.currency {
            o.currency = currency;
        }
        if let Some(dlt) = self.dlt_enabled {
            o.dlt_enabled = dlt;
        }
        if let Some(active) = self.is_active {
            o.is_active = active;
        }
        if let Some(days) = self.retention_days {
            o.retention_days = days;
        }
        if let Some(quiet) = self.quiet_hours {
            o.quiet_hours = quiet;
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QuietHoursView {
    start: String,
    end: String,
    time_zone: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrganizationView {
    id: Id,
    name: String,
    default_country: String,
    /// IANA zone of its days: its own, else its country's.
    timezone: String,
    credit_balance: Option<String>,
    currency: Option<String>,
    dlt_enabled: bool,
    is_active: bool,
    /// Null: the gateway's default.
    retention_days: Option<u32>,
    quiet_hours: Option<QuietHoursView>,
    created_at: String,
    updated_at: String,
}

impl From<&Organization> for OrganizationView {
    fn from(o: &Organization) -> Self {
        Self {
            id: o.id,
            name: o.name.clone(),
            default_country: o.default_country.clone(),
            timezone: zone::name_of(o),
            credit_balance: o.credit_balance.map(text::money),
            currency: o.currency.clone(),
            dlt_enabled: o.dlt_enabled,
            is_active: o.is_active,
            retention_days: o.retention_days,
            quiet_hours: o.quiet_hours.as_ref().map(|q| QuietHoursView {
                start: format_clock(q.start_minute),
                end: format_clock(q.end_minute),
                time_zone: q.time_zone.clone(),
            }),
            created_at: time::format(o.created_at),
            updated_at: time::format(o.updated_at),
        }
    }
}

/// A money amount given as a decimal string ("12.50") or a number, in millionths.
fn parse_money(field: &str, v: &Value) -> Result<Micros, ApiError> {
    let bad = || ApiError::invalid(format!("{field}: an amount such as \"12.50\""));
    let s = match v {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        _ => return Err(bad()),
    };
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.as_str()),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty()
        || frac.len() > 6
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = format!("{frac:0<6}").parse().map_err(|_| bad())?;
    let micros = whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(bad)?;
    Ok(if neg { -micros } else { micros })
}

/// `POST /api/admin/organizations`: the organization and its first admin key, shown once.
pub(crate) async fn create_organization(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<OrganizationRequest>,
) -> ApiResult {
    let mut changes = body.check()?;
    changes
        .default_country
        .get_or_insert_with(|| "PK".to_owned());
    let mut org = Organization::default();
    changes.apply(&mut org);
    let org = state.store().create_organization(org).await?;
    let raw = generate_api_key();
    let key = state
        .store()
        .create_api_key(
            ApiKey {
                organization_id: org.id,
                name: "Admin key".into(),
                scopes: vec![Scope::Admin.name().to_owned()],
                rate_limit_per_min: state.settings().default_key_per_minute,
                rate_limit_per_day: state.settings().default_key_per_day,
                ..ApiKey::default()
            },
            &raw,
        )
        .await?;
    let mut view =
        serde_json::to_value(OrganizationView::from(&org)).map_err(ApiError::internal)?;
    view["apiKey"] =
        json!({ "id": key.id, "key": raw, "keyPrefix": key.key_prefix, "scopes": key.scopes });
    Ok(envelope(StatusCode::CREATED, &view))
}

/// `GET /api/admin/organizations/{organizationId}`.
pub(crate) async fn get_organization(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult {
    let id = parse_id(&id, "organization")?;
    Ok(ok(&OrganizationView::from(
        &state.store().organization(id)?,
    )))
}

/// `PATCH /api/admin/organizations/{organizationId}`: the fields given change (null clears
/// the nullable ones); the API's cached copy is dropped, so the next request of the
/// organization sees the change (DLT, credit, disabling), and the campaign runner reads the
/// store before every chunk.
pub(crate) async fn update_organization(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<OrganizationRequest>,
) -> ApiResult {
    let id = parse_id(&id, "organization")?;
    let changes = body.check()?;
    let updated = state
        .store()
        .update_organization(id, move |o| {
            changes.apply(o);
            Ok(())
        })
        .await?;
    state.forget_org(id);
    Ok(ok(&OrganizationView::from(&updated)))
}

/// `GET /api/admin/organizations`.
pub(crate) async fn list_organizations(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult {
    let listed = listing::fetch(
        q.request()?,
        |page| state.store().list_organizations(page),
        |o| o.id,
    )?;
    Ok(ok(&listed.map(|o| OrganizationView::from(&o))))
}

// ---------------------------------------------------------------------------------------------
// API keys

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct KeyView {
    id: Id,
    name: String,
    key_prefix: String,
    scopes: Vec<String>,
    rate_limit_per_min: u32,
    rate_limit_per_day: u32,
    is_active: bool,
    last_used_at: Option<String>,
    expires_at: Option<String>,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
}

fn key_view(k: &ApiKey, raw: Option<String>) -> KeyView {
    KeyView {
        id: k.id,
        name: k.name.clone(),
        key_prefix: k.key_prefix.clone(),
        scopes: k.scopes.clone(),
        rate_limit_per_min: k.rate_limit_per_min,
        rate_limit_per_day: k.rate_limit_per_day,
        is_active: k.is_active,
        last_used_at: k.last_used_at.map(time::format),
        expires_at: k.expires_at.map(time::format),
        created_at: time::format(k.created_at),
        key: raw,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct KeyRequest {
    name: Option<String>,
    scopes: Option<Vec<String>>,
    rate_limit_per_min: Option<u32>,
    rate_limit_per_day: Option<u32>,
    expires_at: Option<Value>,
    is_active: Option<bool>,
}

fn check_scopes(scopes: &[String]) -> Result<(), ApiError> {
    if scopes.is_empty() {
        return Err(ApiError::invalid("scopes: at least one"));
    }
    if let Some(bad) = scopes.iter().find(|s| Scope::parse(s).is_none()) {
        let known: Vec<&str> = Scope::ALL.iter().map(|s| s.name()).collect();
        return Err(ApiError::invalid(format!(
            "scopes: unknown scope {bad:?}; known: {}",
            known.join(", ")
        )));
    }
    Ok(())
}

/// `expiresAt`: absent leaves it, null clears it, a time sets it.
fn parse_expiry(v: &Value) -> Result<Option<u64>, ApiError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => time::parse(s)
            .map(Some)
            .ok_or_else(|| ApiError::invalid("expiresAt: an RFC 3339 time")),
        _ => Err(ApiError::invalid("expiresAt: an RFC 3339 time or null")),
    }
}

fn apply_key_request(k: &mut ApiKey, r: &KeyRequest) -> Result<(), ApiError> {
    if let Some(name) = &r.name {
        k.name.clone_from(name);
    }
    if let Some(scopes) = &r.scopes {
        check_scopes(scopes)?;
        k.scopes.clone_from(scopes);
    }
    if let Some(n) = r.rate_limit_per_min {
        k.rate_limit_per_min = n;
    }
    if let Some(n) = r.rate_limit_per_day {
        k.rate_limit_per_day = n;
    }
    if let Some(v) = &r.expires_at {
        k.expires_at = parse_expiry(v)?;
    }
    if let Some(active) = r.is_active {
        k.is_active = active;
    }
    Ok(())
}

/// `GET /api/sms/api-keys`: prefixes only.
pub(crate) async fn list_keys(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let listed = listing::fetch(
        q.request()?,
        |page| state.store().list_api_keys(principal.org_id(), page),
        |k| k.id,
    )?;
    Ok(ok(&listed.map(|k| key_view(&k, None))))
}

/// `POST /api/sms/api-keys`: the key is in this answer only.
pub(crate) async fn create_key(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(r): ApiJson<KeyRequest>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let mut key = ApiKey {
        organization_id: principal.org_id(),
        rate_limit_per_min: state.settings().default_key_per_minute,
        rate_limit_per_day: state.settings().default_key_per_day,
        scopes: vec![
            Scope::SmsSend.name().to_owned(),
            Scope::SmsRead.name().to_owned(),
        ],
        ..ApiKey::default()
    };
    apply_key_request(&mut key, &r)?;
    let raw = generate_api_key();
    let key = state.store().create_api_key(key, &raw).await?;
    Ok(envelope(StatusCode::CREATED, &key_view(&key, Some(raw))))
}

/// `POST /api/admin/organizations/{organizationId}/api-keys` (superadmin): a new key of the
/// organization (admin scope unless `scopes` says otherwise), shown once. The operator's way to
/// a key when the organization's own are lost (the demo prints this route on a restart).
pub(crate) async fn create_org_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<KeyRequest>,
) -> ApiResult {
    let org = parse_id(&id, "organization")?;
    state.store().organization(org)?;
    let mut key = ApiKey {
        organization_id: org,
        name: "admin".to_owned(),
        rate_limit_per_min: state.settings().default_key_per_minute,
        rate_limit_per_day: state.settings().default_key_per_day,
        scopes: vec![Scope::Admin.name().to_owned()],
        ..ApiKey::default()
    };
    apply_key_request(&mut key, &r)?;
    let raw = generate_api_key();
    let key = state.store().create_api_key(key, &raw).await?;
    Ok(envelope(StatusCode::CREATED, &key_view(&key, Some(raw))))
}

/// `PUT /api/sms/api-keys/{keyId}`.
pub(crate) async fn update_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<KeyRequest>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "api key")?;
    // Validated here so that the store's closure cannot fail on the caller's input.
    let mut probe = state.store().api_key(principal.org_id(), id)?;
    apply_key_request(&mut probe, &r)?;
    let updated = state
        .store()
        .update_api_key(principal.org_id(), id, move |k| {
            *k = probe;
            Ok(())
        })
        .await?;
    state.keys().invalidate(&updated.key_hash);
    Ok(ok(&key_view(&updated, None)))
}

/// `DELETE /api/sms/api-keys/{keyId}`: revokes it (it stays listed, inactive).
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "api key")?;
    let revoked = state.store().revoke_api_key(principal.org_id(), id).await?;
    state.keys().invalidate(&revoked.key_hash);
    Ok(ok(&key_view(&revoked, None)))
}

/// `POST /api/sms/api-keys/{keyId}/rotate`: a new key with the same name, scopes, limits and
/// expiry; the old one is revoked. The new key is in this answer only.
pub(crate) async fn rotate_key(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "api key")?;
    let org = principal.org_id();
    let old = state.store().api_key(org, id)?;
    if !old.is_active {
        return Err(ApiError::invalid("this key is revoked; create a new one"));
    }
    let raw = generate_api_key();
    let new = state
        .store()
        .create_api_key(
            ApiKey {
                organization_id: org,
                name: old.name.clone(),
                scopes: old.scopes.clone(),
                rate_limit_per_min: old.rate_limit_per_min,
                rate_limit_per_day: old.rate_limit_per_day,
                expires_at: old.expires_at,
                ..ApiKey::default()
            },
            &raw,
        )
        .await?;
    let revoked = state.store().revoke_api_key(org, id).await?;
    state.keys().invalidate(&revoked.key_hash);
    let mut view = serde_json::to_value(key_view(&new, Some(raw))).map_err(ApiError::internal)?;
    view["replaces"] = json!(id);
    Ok(envelope(StatusCode::CREATED, &view))
}

// ---------------------------------------------------------------------------------------------
// Providers

/// The blueprint's `providerName` of a kind.
pub(crate) fn provider_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Smpp => "smpp",
        ProviderKind::Twilio => "twilio",
        ProviderKind::Vonage => "vonage",
        ProviderKind::Veevo => "veevo",
    }
}

fn parse_provider_name(name: &str) -> Result<ProviderKind, ApiError> {
    match name.trim().to_ascii_lowercase().as_str() {
        "smpp" | "smpp_gateway" => Ok(ProviderKind::Smpp),
        "twilio" => Ok(ProviderKind::Twilio),
        "vonage" => Ok(ProviderKind::Vonage),
        "veevo" => Ok(ProviderKind::Veevo),
        _ => Err(ApiError::invalid(
            "providerName: smpp (or smpp_gateway), twilio, vonage or veevo",
        )),
    }
}

/// Credential keys that say where a provider is, not how to log in to it: shown as they are,
/// so an operator can see which SMSC a record points at.
const NOT_SECRET: [&str; 3] = ["host", "port", "systemType"];

/// Credentials with every secret value masked, keys kept (so a client sees what is set).
fn mask(credentials: &Value) -> Value {
    match credentials {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let shown = if NOT_SECRET.contains(&k.as_str()) && !v.is_object() {
                        v.clone()
                    } else {
                        Value::String(MASK.to_owned())
                    };
                    (k.clone(), shown)
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderView {
    id: Id,
    provider_name: &'static str,
    display_name: String,
    priority: i32,
    is_active: bool,
    is_default: bool,
    credentials: Value,
    settings: Value,
    tps: Option<u32>,
    cost_per_segment: Option<String>,
    cost_currency: Option<String>,
    registered_sender_ids: Vec<String>,
    health_status: sairex_store::model::HealthStatus,
    failure_count: u32,
    last_health_check: Option<String>,
    created_at: String,
    updated_at: String,
}

fn provider_view(p: &ProviderConfig) -> ProviderView {
    ProviderView {
        id: p.id,
        provider_name: provider_name(p.provider_kind),
        display_name: p.display_name.clone(),
        priority: p.priority,
        is_active: p.is_active,
        is_default: p.is_default,
        credentials: mask(&p.credentials),
        settings: p.settings.clone(),
        tps: p.tps,
        cost_per_segment: p.cost_per_segment.map(text::money),
        cost_currency: p.cost_currency.clone(),
        registered_sender_ids: p.registered_sender_ids.clone(),
        health_status: p.health_status,
        failure_count: p.failure_count,
        last_health_check: p.last_health_check.map(time::format),
        created_at: time::format(p.created_at),
        updated_at: time::format(p.updated_at),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ProviderRequest {
    provider_name: Option<String>,
    display_name: Option<String>,
    priority: Option<i32>,
    is_active: Option<bool>,
    is_default: Option<bool>,
    credentials: Option<Value>,
    settings: Option<Value>,
    cost_per_segment: Option<Value>,
    cost_currency: Option<String>,
    registered_sender_ids: Option<Vec<String>>,
}

/// Checks the SMPP credentials the engine needs: host, port, systemId (≤ 15), password (≤ 8).
fn check_smpp_credentials(c: &Map<String, Value>) -> Result<(), ApiError> {
    let text_field = |name: &str, max: usize| -> Result<(), ApiError> {
        match c.get(name) {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= max => Ok(()),
            _ => Err(ApiError::invalid(format!(
                "credentials.{name}: a string of 1 to {max} characters"
            ))),
        }
    };
    text_field("host", 253)?;
    text_field("systemId", 15)?;
    text_field("password", 8)?;
    match c.get("port").and_then(Value::as_u64) {
        Some(1..=65535) => {}
        _ => return Err(ApiError::invalid("credentials.port: 1 to 65535")),
    }
    if let Some(t) = c.get("systemType")
        && !(t.is_null() || t.as_str().is_some_and(|s| s.len() <= 12))
    {
        return Err(ApiError::invalid(
            "credentials.systemType: at most 12 characters",
        ));
    }
    Ok(())
}

/// Applies a request to a provider; credentials are merged key by key (a masked value leaves
/// the stored one), so a client can send back what it read.
fn apply_provider_request(p: &mut ProviderConfig, r: ProviderRequest) -> Result<(), ApiError> {
    if let Some(name) = &r.provider_name {
        p.provider_kind = parse_provider_name(name)?;
    }
    if let Some(name) = r.display_name {
        p.display_name = name;
    }
    if let Some(priority) = r.priority {
        p.priority = priority;
    }
    if let Some(active) = r.is_active {
        p.is_active = active;
    }
    if let Some(default) = r.is_default {
        p.is_default = default;
    }
    if let Some(creds) = r.credentials {
        let Value::Object(given) = creds else {
            return Err(ApiError::invalid("credentials: a JSON object"));
        };
        let mut merged = match std::mem::take(&mut p.credentials) {
            Value::Object(old) => old,
            _ => Map::new(),
        };
        for (k, v) in given {
            if v.as_str() != Some(MASK) {
                merged.insert(k, v);
            }
        }
        p.credentials = Value::Object(merged);
    }
    if let Some(settings) = r.settings {
        if !(settings.is_object() || settings.is_null()) {
            return Err(ApiError::invalid("settings: a JSON object"));
        }
        p.tps = match settings.get("tps") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or_else(|| ApiError::invalid("settings.tps: a positive integer"))?,
            ),
        };
        p.settings = settings;
    }
    if let Some(cost) = r.cost_per_segment {
        p.cost_per_segment = if cost.is_null() {
            None
        } else {
            Some(parse_money("costPerSegment", &cost)?)
        };
    }
    if let Some(currency) = r.cost_currency {
        p.cost_currency = Some(currency);
    }
    if let Some(ids) = r.registered_sender_ids {
        p.registered_sender_ids = ids;
    }
    if p.provider_kind == ProviderKind::Smpp {
        match &p.credentials {
            Value::Object(c) => check_smpp_credentials(c)?,
            _ => {
                return Err(ApiError::invalid(
                    "credentials: required for an SMPP provider",
                ));
            }
        }
        // A tenant must not make the server read its files: paths are for the config file.
        if let Some(tls) = p.settings.get("tls") {
            for key in ["caFile", "clientCertFile", "clientKeyFile"] {
                if tls.get(key).is_some() {
                    return Err(ApiError::invalid(format!(
                        "settings.tls.{key}: not accepted over the API; give the PEM inline \
                         (caPem, clientCertPem, credentials.tls.clientKeyPem)"
                    )));
                }
            }
        }
        // The engine's own reading of the record: what it would refuse at bind time is a
        // 400 now, with the key named, rather than a provider that silently never starts.
        if let Err(e) = sairex_engine::provider::settings::smpp_config(p) {
            return Err(ApiError::invalid(e.problem));
        }
    } else {
        // The same for the HTTP kinds: an unknown or mistyped settings key, a missing
        // credential. The callback base URL does not change what is valid, so none is given.
        // The engine's errors never contain a credential.
        if let Err(e) = sairex_engine::provider::http::settings::http_config(p, None) {
            return Err(ApiError::invalid(e.problem));
        }
    }
    Ok(())
}

fn provider_changed(state: &AppState, org: Id) {
    state.forget_org(org);
    state.engine().providers_changed();
}

/// `GET /api/sms/providers`: the organization's own providers.
pub(crate) async fn list_providers(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let listed = listing::fetch(
        q.request()?,
        |page| state.store().list_providers(principal.org_id(), page),
        |p| p.id,
    )?;
    Ok(ok(&listed.map(|p| provider_view(&p))))
}

/// `POST /api/sms/providers`.
pub(crate) async fn create_provider(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(r): ApiJson<ProviderRequest>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    if r.provider_name.is_none() {
        return Err(ApiError::invalid("providerName: required"));
    }
    let mut p = ProviderConfig {
        organization_id: principal.org_id(),
        ..ProviderConfig::default()
    };
    apply_provider_request(&mut p, r)?;
    let created = state.store().create_provider(p).await?;
    provider_changed(&state, principal.org_id());
    Ok(envelope(StatusCode::CREATED, &provider_view(&created)))
}

/// `GET /api/sms/providers/{providerId}`.
pub(crate) async fn get_provider(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "provider")?;
    Ok(ok(&provider_view(
        &state.store().provider(principal.org_id(), id)?,
    )))
}

/// `PUT /api/sms/providers/{providerId}`.
pub(crate) async fn update_provider(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ProviderRequest>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "provider")?;
    let org = principal.org_id();
    let mut changed = state.store().provider(org, id)?;
    apply_provider_request(&mut changed, r)?;
    let updated = state
        .store()
        .update_provider(org, id, move |p| {
            *p = changed;
            Ok(())
        })
        .await?;
    provider_changed(&state, org);
    Ok(ok(&provider_view(&updated)))
}

/// `DELETE /api/sms/providers/{providerId}`.
pub(crate) async fn delete_provider(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "provider")?;
    state
        .store()
        .delete_provider(principal.org_id(), id)
        .await?;
    provider_changed(&state, principal.org_id());
    Ok(done())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ProviderTest {
    to: Option<String>,
    body: Option<String>,
}

/// `POST /api/sms/providers/{providerId}/test`: queues a test message (OTP priority) asking
/// for this provider (`providerId` on the message).
pub(crate) async fn test_provider(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<ProviderTest>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "provider")?;
    let org = &principal.org;
    let provider = state.store().provider(org.id, id)?;
    let to = phone::normalise(r.to.as_deref().unwrap_or(""), org.default_country)?;
    let body = r
        .body
        .unwrap_or_else(|| format!("Sairex test message via {}", provider.display_name));
    let body = text::strip_controls(&body).into_owned();
    text::check_body(&body)?;
    let analysis = text::analyse(&body);
    let message = Message {
        organization_id: org.id,
        to_number: to,
        body,
        encoding: analysis.encoding.to_owned(),
        segments: analysis.segments,
        api_key_id: principal.api_key_id(),
        provider_id: Some(provider.id),
        priority: Priority::OTP,
        metadata: Some(json!({ "providerTest": provider.id })),
        cost_currency: org.currency.clone(),
        ..Message::default()
    };
    let (_, ticket) = state.queue_full();
    let message = match state.store().enqueue(message).await? {
        Enqueued::Created(m) | Enqueued::Duplicate(m) => m,
    };
    state.accepted(ticket, 1);
    state.engine().nudge();
    Ok(envelope(
        StatusCode::ACCEPTED,
        &json!({
            "messageId": message.id,
            "status": "QUEUED",
            "to": message.to_number,
            "providerId": provider.id,
            "queuedAt": time::format(message.queued_at),
        }),
    ))
}

// ---------------------------------------------------------------------------------------------
// Webhooks

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookView {
    id: Id,
    url: String,
    events: Vec<String>,
    is_active: bool,
    secret: String,
    last_triggered_at: Option<String>,
    consecutive_fails: u32,
    created_at: String,
    updated_at: String,
}

/// `secret` is shown in full only when `reveal` (creation, rotation).
fn webhook_view(w: &Webhook, reveal: bool) -> WebhookView {
    WebhookView {
        id: w.id,
        url: w.url.clone(),
        events: w.events.clone(),
        is_active: w.is_active,
        secret: if reveal {
            w.secret.clone()
        } else {
            format!("whsec_{MASK}")
        },
        last_triggered_at: w.last_triggered_at.map(time::format),
        consecutive_fails: w.consecutive_fails,
        created_at: time::format(w.created_at),
        updated_at: time::format(w.updated_at),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct WebhookRequest {
    url: Option<String>,
    events: Option<Vec<String>>,
    is_active: Option<bool>,
    rotate_secret: Option<bool>,
}

/// The events a webhook may list, as docs/webhooks.md promises: the known ones, `"*"` for all
/// of them (the engine's `ALL_EVENTS`), or none at all (`[]`: a webhook kept only for its
/// secret, which signs `callbackUrl` deliveries).
fn check_events(events: &[String]) -> Result<(), ApiError> {
    if let Some(bad) = events.iter().find(|e| {
        !WEBHOOK_EVENTS.contains(&e.as_str())
            && e.as_str() != sairex_engine::webhooks::payload::ALL_EVENTS
    }) {
        return Err(ApiError::invalid(format!(
            "events: unknown event {bad:?}; known: \"*\" (all), {}",
            WEBHOOK_EVENTS.join(", ")
        )));
    }
    Ok(())
}

async fn check_url(state: &AppState, url: &str) -> Result<(), ApiError> {
    ssrf::check_target_url(url, state.settings().allow_private_webhook_targets)
        .await
        .map_err(|e| ApiError::invalid(format!("url: {e}")))
}

/// `GET /api/sms/webhooks`.
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let listed = listing::fetch(
        q.request()?,
        |page| state.store().list_webhooks(principal.org_id(), page),
        |w| w.id,
    )?;
    Ok(ok(&listed.map(|w| webhook_view(&w, false))))
}

/// `POST /api/sms/webhooks`: the generated secret is in this answer only.
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(r): ApiJson<WebhookRequest>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let url = r.url.unwrap_or_default();
    check_url(&state, &url).await?;
    let events = r
        .events
        .unwrap_or_else(|| WEBHOOK_EVENTS.iter().map(|e| (*e).to_owned()).collect());
    check_events(&events)?;
    let created = state
        .store()
        .create_webhook(Webhook {
            organization_id: principal.org_id(),
            url,
            secret: generate_webhook_secret(),
            events,
            is_active: r.is_active.unwrap_or(true),
            ..Webhook::default()
        })
        .await?;
    Ok(envelope(StatusCode::CREATED, &webhook_view(&created, true)))
}

/// `GET /api/sms/webhooks/{webhookId}`.
pub(crate) async fn get_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "webhook")?;
    Ok(ok(&webhook_view(
        &state.store().webhook(principal.org_id(), id)?,
        false,
    )))
}

/// `PUT /api/sms/webhooks/{webhookId}`; `rotateSecret: true` generates a new secret, shown in
/// this answer only.
pub(crate) async fn update_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(r): ApiJson<WebhookRequest>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "webhook")?;
    let org = principal.org_id();
    state.store().webhook(org, id)?;
    if let Some(url) = &r.url {
        check_url(&state, url).await?;
    }
    if let Some(events) = &r.events {
        check_events(events)?;
    }
    let rotate = r.rotate_secret.unwrap_or(false);
    let new_secret = rotate.then(generate_webhook_secret);
    let updated = state
        .store()
        .update_webhook(org, id, move |w| {
            if let Some(url) = r.url {
                w.url = url;
            }
            if let Some(events) = r.events {
                w.events = events;
            }
            if let Some(active) = r.is_active {
                w.is_active = active;
                if active {
                    // Re-enabled by hand: the failure streak that disabled it starts over.
                    w.consecutive_fails = 0;
                }
            }
            if let Some(secret) = new_secret {
                w.secret = secret;
            }
            Ok::<(), StoreError>(())
        })
        .await?;
    Ok(ok(&webhook_view(&updated, rotate)))
}

/// `DELETE /api/sms/webhooks/{webhookId}`.
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "webhook")?;
    state.store().delete_webhook(principal.org_id(), id).await?;
    Ok(done())
}

/// `POST /api/sms/webhooks/{webhookId}/test`: one signed test event, sent now by the engine.
pub(crate) async fn test_webhook(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "webhook")?;
    let org = principal.org_id();
    state.store().webhook(org, id)?;
    let result = state
        .engine()
        .send_test_webhook(org, id)
        .await
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "WEBHOOK_TEST_FAILED", e))?;
    Ok(ok(&result))
}

/// `GET /api/sms/webhooks/{webhookId}/deliveries`.
pub(crate) async fn webhook_deliveries(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let id = parse_id(&id, "webhook")?;
    let listed = listing::fetch(
        q.request()?,
        |page| {
            state
                .store()
                .webhook_deliveries(principal.org_id(), id, page)
        },
        |d| d.id,
    )?;
    Ok(ok(&listed.map(|d| {
        json!({
            "id": d.id,
            "eventType": d.event_type,
            "payload": d.payload,
            "httpStatus": d.http_status,
            "responseBody": d.response_body,
            "latencyMs": d.latency_ms,
            "attempt": d.attempt,
            "success": d.success,
            "createdAt": time::format(d.created_at),
        })
    })))
}

// ---------------------------------------------------------------------------------------------
// Superadmin views of one organization, and the gateway's status (`sairex admin`, `sairex
// status`)

/// `GET /api/admin/organizations/{organizationId}/api-keys`.
pub(crate) async fn list_org_keys(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult {
    let org = parse_id(&id, "organization")?;
    state.store().organization(org)?;
    let listed = listing::fetch(
        q.request()?,
        |page| state.store().list_api_keys(org, page),
        |k| k.id,
    )?;
    Ok(ok(&listed.map(|k| key_view(&k, None))))
}

/// `GET /api/admin/organizations/{organizationId}/webhooks`.
pub(crate) async fn list_org_webhooks(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListParams>,
) -> ApiResult {
    let org = parse_id(&id, "organization")?;
    state.store().organization(org)?;
    let listed = listing::fetch(
        q.request()?,
        |page| state.store().list_webhooks(org, page),
        |w| w.id,
    )?;
    Ok(ok(&listed.map(|w| webhook_view(&w, false))))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BindView {
    index: usize,
    /// `bound`, `binding` (connected, bind not answered yet) or `reconnecting`.
    state: &'static str,
    window_in_use: u32,
    window: u32,
    reconnects: u64,
    last_error: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderStatus {
    id: Id,
    /// 0 for the config file's system providers.
    organization_id: Id,
    display_name: String,
    provider_name: &'static str,
    is_active: bool,
    health_status: sairex_store::model::HealthStatus,
    running: bool,
    /// `up`, `degraded`, `down` or `inactive`.
    state: &'static str,
    binds: Vec<BindView>,
    /// Messages it accepted since the gateway started (null without metrics or when not
    /// running).
    sent_total: Option<u64>,
    /// Messages per second it accepted over up to the last minute of looks at the status
    /// (null on the first look).
    throughput: Option<f64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QueueStatus {
    organization_id: Id,
    organization: String,
    priority: u8,
    /// `otp` (1), `transactional` (5), `bulk` (10), or the number.
    priority_name: String,
    ready: u64,
}

fn priority_name(p: u8) -> String {
    match Priority(p) {
        Priority::OTP => "otp".to_owned(),
        Priority::TRANSACTIONAL => "transactional".to_owned(),
        Priority::BULK => "bulk".to_owned(),
        Priority(n) => n.to_string(),
    }
}

/// `GET /api/admin/status`: each provider with its binds, queue depths per organization and
/// priority, the store's size, and `ok` (false, with `problems`, when something is down: an
/// active provider not running, an SMPP provider with no bind up, an HTTP provider marked
/// DOWN, or the engine stopped).
pub(crate) async fn status(State(state): State<AppState>) -> ApiResult {
    let runtime = state.engine().runtime().await;
    let totals = runtime
        .iter()
        .filter_map(|r| Some((r.provider_id, r.sent_total?)))
        .collect();
    let rates = state.throughput().sample(sairex_store::now_ms(), totals);
    let store = state.store().clone();
    let engine_running = state.engine().is_running();
    let data = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
        let mut problems: Vec<String> = Vec::new();
        if !engine_running {
            problems.push("engine: not running".to_owned());
        }
        let mut providers = Vec::new();
        let mut records = store.all_providers()?;
        records.sort_by_key(|p| (p.organization_id, p.priority, p.id));
        for p in records {
            let live = runtime.iter().find(|r| r.provider_id == p.id);
            let binds: Vec<BindView> = live
                .map(|r| {
                    r.binds
                        .iter()
                        .enumerate()
                        .map(|(index, b)| BindView {
                            index,
                            state: match (b.bound, b.connected) {
                                (true, _) => "bound",
                                (false, true) => "binding",
                                (false, false) => "reconnecting",
                            },
                            window_in_use: b.window_in_use,
                            window: b.window,
                            reconnects: b.reconnects,
                            last_error: b.last_error.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let bound = binds.iter().filter(|b| b.state == "bound").count();
            let smpp = p.provider_kind == ProviderKind::Smpp;
            let label = format!("provider {} ({})", p.id, p.display_name);
            let provider_state = if !p.is_active {
                "inactive"
            } else if live.is_none() {
                problems.push(format!("{label}: not running"));
                "down"
            } else if smpp && bound == 0 {
                problems.push(format!("{label}: no bind up"));
                "down"
            } else if !smpp && p.health_status == sairex_store::model::HealthStatus::Down {
                problems.push(format!("{label}: health checks failing"));
                "down"
            } else if (smpp && bound < binds.len())
                || p.health_status == sairex_store::model::HealthStatus::Degraded
            {
                "degraded"
            } else {
                "up"
            };
            providers.push(ProviderStatus {
                id: p.id,
                organization_id: p.organization_id,
                display_name: p.display_name.clone(),
                provider_name: provider_name(p.provider_kind),
                is_active: p.is_active,
                health_status: p.health_status,
                running: live.is_some(),
                state: provider_state,
                binds,
                sent_total: live.and_then(|r| r.sent_total),
                throughput: rates.get(&p.id).map(|r| (r * 10.0).round() / 10.0),
            });
        }
        let mut queues = Vec::new();
        for org in store.all_organizations()? {
            for (priority, ready) in store.ready_by_priority(org.id)? {
                queues.push(QueueStatus {
                    organization_id: org.id,
                    organization: org.name.clone(),
                    priority,
                    priority_name: priority_name(priority),
                    ready,
                });
            }
        }
        queues.sort_by_key(|q| (q.organization_id, q.priority));
        Ok(json!({
            "ok": problems.is_empty(),
            "problems": problems,
            "providers": providers,
            "queues": queues,
            "store": { "sizeBytes": store.size_on_disk()? },
        }))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(ok(&data))
}
