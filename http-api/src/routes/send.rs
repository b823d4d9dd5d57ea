//! `POST /api/sms/send`, `POST /api/sms/send-bulk` and `POST /api/sms/preview`.

use std::borrow::Cow;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use sairex_engine::compliance;
use sairex_store::model::{Campaign, CampaignStatus, Id, Message, Micros, Millis, Priority};
use sairex_store::{Enqueued, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ApiJson, need};
use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult, envelope, ok};
use crate::state::{AppState, DepthTicket, OrgInfo};
use crate::text::{self, Analysis};
use crate::{idempotency, phone, ssrf, time};

/// Longest sender id or number.
const MAX_FROM: usize = 20;
/// Largest `metadata`, serialised.
const MAX_METADATA: usize = 4096;
/// Longest validity period.
const MAX_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);
/// Most recipients of one bulk request.
pub(crate) const MAX_BULK: usize = 10_000;

/// The fields `send` and `send-bulk` share.
#[derive(Debug, Default)]
pub(crate) struct Options {
    from: Option<String>,
    provider: Option<Value>,
    priority: Option<String>,
    scheduled_at: Option<String>,
    validity_period: Option<Value>,
    callback_url: Option<String>,
    metadata: Option<Value>,
    template_id: Option<Id>,
}

/// The fields of [`Options`] again, flat: `#[serde(flatten)]` would buffer the whole body in
/// an intermediate tree on the hot path.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct SendRequest {
    to: Option<String>,
    body: Option<String>,
    variables: Option<Map<String, Value>>,
    idempotency_key: Option<String>,
    from: Option<String>,
    provider: Option<Value>,
    priority: Option<String>,
    scheduled_at: Option<String>,
    validity_period: Option<Value>,
    callback_url: Option<String>,
    metadata: Option<Value>,
    template_id: Option<Id>,
}

impl SendRequest {
    fn take_options(&mut self) -> Options {
        Options {
            from: self.from.take(),
            provider: self.provider.take(),
            priority: self.priority.take(),
            scheduled_at: self.scheduled_at.take(),
            validity_period: self.validity_period.take(),
            callback_url: self.callback_url.take(),
            metadata: self.metadata.take(),
            template_id: self.template_id.take(),
        }
    }
}

/// The options, checked once per request.
#[derive(Default)]
pub(crate) struct Checked {
    pub(crate) from: String,
    pub(crate) provider_id: Option<Id>,
    pub(crate) priority: Priority,
    pub(crate) scheduled_at: Option<Millis>,
    pub(crate) expires_at: Option<Millis>,
    pub(crate) callback_url: Option<String>,
    pub(crate) metadata: Option<Value>,
    /// The template's body, when `templateId` was given.
    pub(crate) template: Option<String>,
}

fn parse_priority(raw: Option<&str>, default: Priority) -> Result<Priority, ApiError> {
    match raw.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("otp") => Ok(Priority::OTP),
        Some("transactional") => Ok(Priority::TRANSACTIONAL),
        Some("bulk") => Ok(Priority::BULK),
        Some(_) => Err(ApiError::invalid(
            "priority: one of otp, transactional, bulk",
        )),
    }
}

fn parse_validity(raw: &Value) -> Result<Duration, ApiError> {
    let bad = || {
        ApiError::invalid(
            "validityPeriod: seconds (a number) or a duration such as \"2h\", at most 30 days",
        )
    };
    let period = match raw {
        Value::Number(n) => Duration::from_secs(n.as_u64().ok_or_else(bad)?),
        Value::String(s) => humantime::parse_duration(s).map_err(|_| bad())?,
        _ => return Err(bad()),
    };
    if period.is_zero() || period > MAX_VALIDITY {
        return Err(bad());
    }
    Ok(period)
}

/// Checks the shared options (the provider and template are read from the store, the callback
/// URL resolved for the SSRF rule).
async fn check_options(
    state: &AppState,
    principal: &Principal,
    options: Options,
    default_priority: Priority,
    now: Millis,
) -> Result<Checked, ApiError> {
    let org = principal.org_id();
    let from = match options.from {
        Some(from) => {
            let from = from.trim().to_owned();
            if from.is_empty()
                || from.chars().count() > MAX_FROM
                || from.chars().any(char::is_control)
            {
                return Err(ApiError::invalid(format!(
                    "from: a sender id or number of 1 to {MAX_FROM} characters"
                )));
            }
            from
        }
        None => String::new(),
    };
    let provider_id = match options.provider {
        None | Some(Value::Null) => None,
        Some(wanted) => Some(find_provider(state, org, &wanted)?),
    };
    let priority = parse_priority(options.priority.as_deref(), default_priority)?;
    let scheduled_at = match options.scheduled_at {
        Some(s) => Some(time::parse_schedule(&s, now)?),
        None => None,
    };
    let expires_at = match options.validity_period {
        None | Some(Value::Null) => None,
        Some(v) => {
            let period = parse_validity(&v)?;
            let start = scheduled_at.unwrap_or(now).max(now);
            Some(start.saturating_add(u64::try_from(period.as_millis()).unwrap_or(u64::MAX)))
        }
    };
    let callback_url = match options.callback_url {
        Some(url) => {
            ssrf::check_target_url(&url, state.settings().allow_private_webhook_targets)
                .await
                .map_err(|e| ApiError::invalid(format!("callbackUrl: {e}")))?;
            Some(url)
        }
        None => None,
    };
    let metadata = match options.metadata {
        None | Some(Value::Null) => None,
        Some(m @ Value::Object(_)) => {
            if m.to_string().len() > MAX_METADATA {
                return Err(ApiError::invalid(format!(
                    "metadata: at most {MAX_METADATA} bytes of JSON"
                )));
            }
            Some(m)
        }
        Some(_) => return Err(ApiError::invalid("metadata: a JSON object")),
    };
    let template = match options.template_id {
        Some(id) => {
            let template = state
                .store()
                .template(org, id)
                .map_err(|_| ApiError::invalid(format!("templateId: no template {id}")))?;
            check_dlt(state, org, now, &template, priority)?;
            Some(template.body)
        }
        None => None,
    };
    Ok(Checked {
        from,
        provider_id,
        priority,
        scheduled_at,
        expires_at,
        callback_url,
        metadata,
        template,
    })
}

/// DLT (blueprint §6.4; the rule is [`check_dlt`](sairex_engine::compliance::check_dlt), in
/// the engine so that campaigns can apply it too): 422 when the organization has DLT enabled
/// and this transactional send's template is not approved and registered.
fn check_dlt(
    state: &AppState,
    org: Id,
    now: Millis,
    template: &sairex_store::model::Template,
    priority: Priority,
) -> Result<(), ApiError> {
    let dlt_enabled = state.org(org, now)?.dlt_enabled;
    compliance::check_dlt(dlt_enabled, template, priority).map_err(|refusal| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            compliance::DLT_TEMPLATE_NOT_APPROVED,
            format!("templateId: {refusal}"),
        )
    })
}

/// The organization's provider named by id, provider name ("smpp") or display name.
fn find_provider(state: &AppState, org: Id, wanted: &Value) -> Result<Id, ApiError> {
    let providers = state.store().active_providers(org)?;
    let found = match wanted {
        Value::Number(n) => n
            .as_u64()
            .and_then(|id| providers.iter().find(|p| p.id == id)),
        Value::String(s) => providers.iter().find(|p| {
            p.id.to_string() == *s
                || super::admin::provider_name(p.provider_kind) == s.to_ascii_lowercase()
                || p.display_name.eq_ignore_ascii_case(s)
        }),
        _ => None,
    };
    found.map(|p| p.id).ok_or_else(|| {
        ApiError::invalid("provider: no active provider of this organization by that name")
    })
}

/// One message ready to enqueue, and what it costs.
pub(crate) struct Draft {
    pub(crate) message: Message,
    pub(crate) analysis: Analysis,
    pub(crate) cost: Micros,
}

/// Builds one message: the body (template filled, control characters stripped, checked), the
/// number (E.164), the contact's opt-out (422). The SMPP server builds its messages here too
/// (with no API key), so both doors apply the same rules.
pub(crate) fn draft(
    state: &AppState,
    org: &OrgInfo,
    key_id: Option<Id>,
    to: Option<&str>,
    body: Option<&str>,
    variables: Option<&Map<String, Value>>,
    checked: &Checked,
) -> Result<Draft, ApiError> {
    // A placeholder is filled or refused whether `variables` is given or not: a literal
    // `{{name}}` must never reach a handset.
    let raw_body: Cow<'_, str> = match (checked.template.as_deref(), body) {
        (Some(template), _) => {
            Cow::Owned(text::render(template, variables).map_err(text::missing_variable)?)
        }
        (None, Some(body)) if body.contains("{{") => {
            Cow::Owned(text::render(body, variables).map_err(text::missing_variable)?)
        }
        (None, Some(body)) => Cow::Borrowed(body),
        (None, None) => {
            return Err(ApiError::bad_request(
                "EMPTY_BODY",
                "body: the message is empty (give body or templateId)",
            ));
        }
    };
    let body = text::strip_controls(&raw_body);
    text::check_body(&body)?;
    let to = phone::normalise(to.unwrap_or(""), org.default_country)?;
    let contact = state.store().contact_by_phone(org.id, &to)?;
    if contact.as_ref().is_some_and(|c| c.is_opted_out) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "OPTED_OUT",
            format!("{to} has opted out of messages from this organization"),
        ));
    }
    let analysis = text::analyse(&body);
    let cost = org
        .cost_per_segment
        .saturating_mul(i64::from(analysis.segments));
    let message = Message {
        organization_id: org.id,
        from_number: checked.from.clone(),
        to_number: to,
        contact_id: contact.map(|c| c.id),
        body: body.into_owned(),
        encoding: analysis.encoding.to_owned(),
        segments: analysis.segments,
        api_key_id: key_id,
        provider_id: checked.provider_id,
        cost_per_segment: Some(org.cost_per_segment),
        total_cost: Some(cost),
        cost_currency: org.currency.clone(),
        priority: checked.priority,
        expires_at: checked.expires_at,
        scheduled_at: checked.scheduled_at,
        metadata: checked.metadata.clone(),
        callback_url: checked.callback_url.clone(),
        ..Message::default()
    };
    Ok(Draft {
        message,
        analysis,
        cost,
    })
}

pub(crate) fn check_credit(org: &OrgInfo, cost: Micros) -> Result<(), ApiError> {
    match org.credit_balance {
        Some(balance) if balance < cost => Err(ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "INSUFFICIENT_CREDIT",
            format!(
                "the organization's credit ({} {}) does not cover this send ({} {})",
                text::money(balance),
                org.currency,
                text::money(cost),
                org.currency
            ),
        )),
        _ => Ok(()),
    }
}

pub(crate) fn queue_full(state: &AppState) -> Result<DepthTicket, ApiError> {
    let (full, ticket) = state.queue_full();
    if full {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "QUEUE_FULL",
            "the gateway's queue is full; try again shortly",
        )
        .retry_after(state.settings().queue_full_retry_after));
    }
    Ok(ticket)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted<'a> {
    message_id: Id,
    status: &'static str,
    to: &'a str,
    segments: u32,
    encoding: &'a str,
    estimated_cost: String,
    currency: &'a str,
    queued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    scheduled_at: Option<String>,
}

/// One accepted message, and what it costs.
pub(crate) struct AcceptedOne {
    pub(crate) message: Message,
    pub(crate) analysis: Analysis,
    pub(crate) cost: Micros,
    /// The idempotency key's earlier message, answered again (`Idempotent-Replayed`).
    pub(crate) replayed: bool,
}

/// `POST /api/sms/send`.
pub(crate) async fn send(
    State(state): State<AppState>,
    principal: Principal,
    headers: HeaderMap,
    ApiJson(request): ApiJson<SendRequest>,
) -> ApiResult {
    let one = accept_one(&state, &principal, &headers, request).await?;
    let mut response = accepted(&one);
    if one.replayed {
        response.headers_mut().insert(
            idempotency::REPLAYED,
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// The rules of one send (scope, idempotency key, options, template and DLT, body, number,
/// opt-out, credit, queue depth), then the durable enqueue and the engine told: what
/// `POST /api/sms/send` and the console's Send page and inbox reply both run. `headers` give
/// the `Idempotency-Key` (the console passes none).
pub(crate) async fn accept_one(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    mut request: SendRequest,
) -> Result<AcceptedOne, ApiError> {
    need(principal, Scope::SmsSend)?;
    let now = now_ms();
    // The header's key and the body's are one key space: the message carries either.
    let idempotency_key = idempotency::key_of(headers, request.idempotency_key.take().as_deref())?;
    let checked = check_options(
        state,
        principal,
        request.take_options(),
        Priority::TRANSACTIONAL,
        now,
    )
    .await?;
    let org = &principal.org;
    let mut draft = draft(
        state,
        org,
        principal.api_key_id(),
        request.to.as_deref(),
        request.body.as_deref(),
        request.variables.as_ref(),
        &checked,
    )?;
    check_credit(org, draft.cost)?;
    let ticket = queue_full(state)?;
    draft.message.idempotency_key = idempotency_key;
    // What a retry must match (only keyed sends can be duplicates).
    let asked = draft
        .message
        .idempotency_key
        .as_ref()
        .map(|_| (draft.message.to_number.clone(), draft.message.body.clone()));
    let message = match state
        .store()
        .enqueue(std::mem::take(&mut draft.message))
        .await?
    {
        Enqueued::Created(m) => m,
        // The key's message exists but its stored response does not (expired, or lost to a
        // crash between the two writes): the same send is answered from the message, as the
        // first answer was; another send with the key is refused.
        Enqueued::Duplicate(existing) => {
            if asked.is_none_or(|(to, body)| existing.to_number != to || existing.body != body) {
                let mut e = idempotency::reused();
                e.message_id = Some(existing.id);
                return Err(e);
            }
            return Ok(AcceptedOne {
                message: existing,
                analysis: draft.analysis,
                cost: draft.cost,
                replayed: true,
            });
        }
    };
    state.accepted(ticket, 1);
    state.engine().nudge();
    Ok(AcceptedOne {
        message,
        analysis: draft.analysis,
        cost: draft.cost,
        replayed: false,
    })
}

/// The 202 of a send.
fn accepted(one: &AcceptedOne) -> Response {
    let message = &one.message;
    envelope(
        StatusCode::ACCEPTED,
        &Accepted {
            message_id: message.id,
            status: "QUEUED",
            to: &message.to_number,
            segments: one.analysis.segments,
            encoding: one.analysis.encoding,
            estimated_cost: text::money(one.cost),
            currency: &message.cost_currency,
            queued_at: time::format(message.queued_at),
            scheduled_at: message.scheduled_at.map(time::format),
        },
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Recipient {
    to: Option<String>,
    variables: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct BulkRequest {
    recipients: Option<Vec<Recipient>>,
    body: Option<String>,
    name: Option<String>,
    campaign_id: Option<Value>,
    idempotency_key: Option<String>,
    // The fields of [`Options`], flat: `#[serde(flatten)]` hides unknown fields from the
    // strict parser (and buffers the body).
    from: Option<String>,
    provider: Option<Value>,
    priority: Option<String>,
    scheduled_at: Option<String>,
    validity_period: Option<Value>,
    callback_url: Option<String>,
    metadata: Option<Value>,
    template_id: Option<Id>,
}

impl BulkRequest {
    fn take_options(&mut self) -> Options {
        Options {
            from: self.from.take(),
            provider: self.provider.take(),
            priority: self.priority.take(),
            scheduled_at: self.scheduled_at.take(),
            validity_period: self.validity_period.take(),
            callback_url: self.callback_url.take(),
            metadata: self.metadata.take(),
            template_id: self.template_id.take(),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecipientError {
    pub(crate) index: usize,
    pub(crate) to: Option<String>,
    pub(crate) code: &'static str,
    pub(crate) reason: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BulkAccepted {
    pub(crate) campaign_id: Id,
    pub(crate) job_id: Id,
    pub(crate) status: CampaignStatus,
    pub(crate) total_recipients: usize,
    pub(crate) accepted: usize,
    pub(crate) rejected: usize,
    pub(crate) segments: u64,
    pub(crate) estimated_cost: String,
    pub(crate) currency: String,
    pub(crate) scheduled_at: Option<String>,
    pub(crate) message_ids: Vec<Id>,
    pub(crate) errors: Vec<RecipientError>,
}

/// `POST /api/sms/send-bulk`: every recipient is checked; the valid ones are enqueued under a
/// new campaign (the job) and the invalid ones reported by index.
pub(crate) async fn send_bulk(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(request): ApiJson<BulkRequest>,
) -> ApiResult {
    match accept_bulk(&state, &principal, request).await? {
        BulkOutcome::Started(value) => Ok(envelope(StatusCode::ACCEPTED, &value)),
        BulkOutcome::Accepted(accepted) => Ok(envelope(StatusCode::ACCEPTED, &accepted)),
    }
}

/// What [`accept_bulk`] did.
pub(crate) enum BulkOutcome {
    /// A saved campaign was started (`campaignId`).
    Started(Value),
    /// The recipients were checked and the valid ones enqueued.
    Accepted(BulkAccepted),
}

/// The rules of a bulk send, recipient by recipient, then the enqueues under a new campaign:
/// what `POST /api/sms/send-bulk` and the console's bulk send both run.
pub(crate) async fn accept_bulk(
    state: &AppState,
    principal: &Principal,
    mut request: BulkRequest,
) -> Result<BulkOutcome, ApiError> {
    need(principal, Scope::SmsSend)?;
    if let Some(raw) = &request.campaign_id {
        // A saved campaign: started here, expanded by the campaign runner.
        let id = raw
            .as_u64()
            .or_else(|| raw.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| ApiError::invalid("campaignId: a campaign id"))?;
        let campaign = super::campaigns::start_campaign(state, principal.org_id(), id).await?;
        return Ok(BulkOutcome::Started(serde_json::json!({
                "campaignId": campaign.id,
                "totalRecipients": campaign.total_recipients.max(
                    match campaign.group_id {
                        Some(g) => state.store().group(campaign.organization_id, g).map(|g| g.member_count).unwrap_or(0),
                        None => state.store().campaign_recipient_count(campaign.id).unwrap_or(0),
                    }
                ),
                "status": campaign.status,
                "scheduledAt": campaign.scheduled_at.map(time::format),
        })));
    }
    let recipients = request.recipients.take().unwrap_or_default();
    if recipients.is_empty() || recipients.len() > MAX_BULK {
        return Err(ApiError::invalid(format!("recipients: 1 to {MAX_BULK}")));
    }
    let now = now_ms();
    let template_id = request.template_id;
    let options = request.take_options();
    let checked = check_options(state, principal, options, Priority::BULK, now).await?;
    let org = &principal.org;
    let mut drafts = Vec::with_capacity(recipients.len());
    let mut errors = Vec::new();
    for (index, r) in recipients.iter().enumerate() {
        match draft(
            state,
            org,
            principal.api_key_id(),
            r.to.as_deref(),
            request.body.as_deref(),
            r.variables.as_ref(),
            &checked,
        ) {
            Ok(d) => drafts.push(d),
            Err(e) => errors.push(RecipientError {
                index,
                to: r.to.clone(),
                code: e.code,
                reason: e.message.into_owned(),
            }),
        }
    }
    if drafts.is_empty() {
        let first = errors
            .first()
            .map(|e| format!("; recipient {}: {}", e.index, e.reason));
        return Err(ApiError::invalid(format!(
            "no valid recipient{}",
            first.unwrap_or_default()
        )));
    }
    let cost: Micros = drafts
        .iter()
        .map(|d| d.cost)
        .fold(0, Micros::saturating_add);
    check_credit(org, cost)?;
    let ticket = queue_full(state)?;
    let status = if checked.scheduled_at.is_some_and(|at| at > now) {
        CampaignStatus::Scheduled
    } else {
        CampaignStatus::InProgress
    };
    let campaign = state
        .store()
        .create_campaign(Campaign {
            organization_id: org.id,
            name: request
                .name
                .unwrap_or_else(|| format!("API bulk send {}", time::format(now))),
            template_id,
            message_body: request.body.clone(),
            scheduled_at: checked.scheduled_at,
            started_at: (status == CampaignStatus::InProgress).then_some(now),
            total_recipients: drafts.len() as u64,
            status,
            created_by: principal.created_by(),
            ..Campaign::default()
        })
        .await?;
    let segments: u64 = drafts.iter().map(|d| u64::from(d.analysis.segments)).sum();
    // Every enqueue is handed to the store's writer at once, so they share group commits.
    let writes = drafts.into_iter().map(|mut d| {
        d.message.campaign_id = Some(campaign.id);
        state.store().enqueue(d.message)
    });
    let results = futures::future::join_all(writes).await;
    let mut message_ids = Vec::with_capacity(results.len());
    for result in results {
        message_ids.push(result?.message().id);
    }
    state.accepted(ticket, message_ids.len() as u64);
    state.engine().nudge();
    Ok(BulkOutcome::Accepted(BulkAccepted {
        campaign_id: campaign.id,
        job_id: campaign.id,
        status,
        total_recipients: recipients.len(),
        accepted: message_ids.len(),
        rejected: errors.len(),
        segments,
        estimated_cost: text::money(cost),
        currency: org.currency.clone(),
        scheduled_at: checked.scheduled_at.map(time::format),
        message_ids,
        errors,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct PreviewRequest {
    body: Option<String>,
    template_id: Option<Id>,
    variables: Option<Map<String, Value>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Preview {
    body: String,
    encoding: &'static str,
    segments: u32,
    characters: usize,
    ucs2_characters: Vec<String>,
    estimated_cost: String,
    currency: String,
}

/// `POST /api/sms/preview`: what a body would cost, without sending.
pub(crate) async fn preview(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(request): ApiJson<PreviewRequest>,
) -> ApiResult<Response> {
    need(&principal, Scope::SmsSend)?;
    let body = match (request.template_id, request.body) {
        (Some(id), _) => {
            let template = state
                .store()
                .template(principal.org_id(), id)
                .map_err(|_| ApiError::invalid(format!("templateId: no template {id}")))?;
            text::render(&template.body, request.variables.as_ref())
                .map_err(text::missing_variable)?
        }
        (None, Some(body)) => {
            text::render(&body, request.variables.as_ref()).map_err(text::missing_variable)?
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "EMPTY_BODY",
                "body: the message is empty",
            ));
        }
    };
    let body = text::strip_controls(&body).into_owned();
    text::check_body(&body)?;
    let analysis = text::analyse(&body);
    let org = &principal.org;
    Ok(ok(&Preview {
        encoding: analysis.encoding,
        segments: analysis.segments,
        characters: analysis.units,
        ucs2_characters: text::ucs2_forcing(&body),
        estimated_cost: text::money(
            org.cost_per_segment
                .saturating_mul(i64::from(analysis.segments)),
        ),
        currency: org.currency.clone(),
        body,
    }))
}
