//! Campaigns: CRUD, an audience (a group, inline recipients, or a CSV uploaded to
//! `…/recipients`), a template or a raw body, now or at `scheduledAt`; start, pause, resume
//! and cancel are status changes the engine's campaign runner acts on (it polls the store and
//! resumes from the cursor it keeps in the campaign); stats are counted from the store's
//! campaign index, exact at the moment of asking. A campaign may carry A/B `variants` (a body
//! or template each, shares summing to 100) instead of one body or template; its stats then
//! break down per variant.
//!
//! Starting or resuming a campaign checks its templates first (they exist, and DLT accepts
//! them when the organization has it enabled: 422 `DLT_TEMPLATE_NOT_APPROVED`, the same rule
//! as `POST /api/sms/send`); the runner checks again before every chunk and pauses the
//! campaign with the reason (`haltReason`) if something changed since.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use sairex_engine::campaigns::{CheckError, Halt, RunState, unfilled_variable};
use sairex_store::model::{Campaign, CampaignStatus, CampaignVariant, Id};
use sairex_store::{CampaignCounts, MAX_VARIANTS, Recipient, StoreError, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::contacts::{normalise_phone, store_error};
use super::{ApiJson, ApiQuery, need, parse_id};
use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult, envelope, ok};
use crate::listing::{self, ListParams};
use crate::state::AppState;
use crate::{text, time};

/// Most inline recipients of one request (larger audiences are a group or an upload).
const MAX_INLINE: usize = 10_000;

/// A campaign as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CampaignView {
    id: Id,
    name: String,
    description: Option<String>,
    template_id: Option<Id>,
    group_id: Option<Id>,
    message_body: Option<String>,
    from: Option<String>,
    status: CampaignStatus,
    scheduled_at: Option<String>,
    started_at: Option<String>,
    completed_at: Option<String>,
    total_recipients: u64,
    sent_count: u64,
    delivered_count: u64,
    failed_count: u64,
    rejected_count: u64,
    queued: u64,
    skipped_opted_out: u64,
    skipped_invalid: u64,
    csv_file_name: Option<String>,
    csv_row_count: Option<u64>,
    variants: Vec<VariantView>,
    /// Why the runner paused it, until it is resumed.
    halt_reason: Option<HaltView>,
    created_by: String,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VariantView {
    index: usize,
    name: String,
    percent: u8,
    message_body: Option<String>,
    template_id: Option<Id>,
}

fn variant_views(variants: &[CampaignVariant]) -> Vec<VariantView> {
    variants
        .iter()
        .enumerate()
        .map(|(index, v)| VariantView {
            index,
            name: v.name.clone(),
            percent: v.percent,
            message_body: v.message_body.clone(),
            template_id: v.template_id,
        })
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HaltView {
    code: String,
    message: String,
    at: String,
}

/// The audience's size now: the group's `memberCount`, or the own audience's entries.
fn audience_size(state: &AppState, c: &Campaign) -> u64 {
    match c.group_id {
        Some(g) => state
            .store()
            .group(c.organization_id, g)
            .map(|g| g.member_count)
            .unwrap_or(0),
        None => state.store().campaign_recipient_count(c.id).unwrap_or(0),
    }
}

fn view(state: &AppState, c: Campaign) -> CampaignView {
    let run = RunState::of(&c);
    // A halt outlives nothing but the pause it caused.
    let halt_reason = Halt::of(&c)
        .filter(|_| c.status == CampaignStatus::Paused)
        .map(|h| HaltView {
            code: h.code,
            message: h.message,
            at: time::format(h.at),
        });
    // Once sending starts the runner keeps the total; before, it is the audience's size.
    let total = match c.status {
        CampaignStatus::Draft | CampaignStatus::Scheduled => audience_size(state, &c),
        _ => c.total_recipients,
    };
    CampaignView {
        id: c.id,
        from: c
            .extra
            .as_ref()
            .and_then(|e| e.get("from"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        name: c.name,
        description: c.description,
        template_id: c.template_id,
        group_id: c.group_id,
        message_body: c.message_body,
        status: c.status,
        scheduled_at: c.scheduled_at.map(time::format),
        started_at: c.started_at.map(time::format),
        completed_at: c.completed_at.map(time::format),
        total_recipients: total,
        sent_count: c.sent_count,
        delivered_count: c.delivered_count,
        failed_count: c.failed_count,
        rejected_count: c.rejected_count,
        queued: run.queued,
        skipped_opted_out: run.skipped_opted_out,
        skipped_invalid: run.skipped_invalid,
        csv_file_name: c.csv_file_name,
        csv_row_count: c.csv_row_count,
        variants: variant_views(&c.variants),
        halt_reason,
        created_by: c.created_by,
        created_at: time::format(c.created_at),
        updated_at: time::format(c.updated_at),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct InlineRecipient {
    to: Option<String>,
    phone: Option<String>,
    variables: Option<Map<String, Value>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct CampaignBody {
    name: Option<String>,
    description: Option<String>,
    template_id: Option<Id>,
    group_id: Option<Id>,
    message_body: Option<String>,
    body: Option<String>,
    from: Option<String>,
    scheduled_at: Option<String>,
    recipients: Option<Vec<InlineRecipient>>,
    /// A/B variants; `[]` removes them.
    variants: Option<Vec<VariantBody>>,
    /// Start it at once (now, or at `scheduledAt`).
    start: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct VariantBody {
    name: Option<String>,
    percent: Option<u64>,
    message_body: Option<String>,
    body: Option<String>,
    template_id: Option<Id>,
}

/// The request's variants, each body checked like a campaign's; the store checks the rest
/// (shares summing to 100, one source each, names, templates of the organization).
fn parse_variants(raw: Vec<VariantBody>) -> Result<Vec<CampaignVariant>, ApiError> {
    if raw.len() > MAX_VARIANTS {
        return Err(ApiError::invalid(format!(
            "variants: 2 to {MAX_VARIANTS} of them, or none"
        )));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, v)| {
            let percent = v
                .percent
                .and_then(|p| u8::try_from(p).ok())
                .filter(|p| (1..=100).contains(p))
                .ok_or_else(|| {
                    ApiError::invalid(format!("variants[{i}].percent: an integer from 1 to 100"))
                })?;
            let message_body = v.message_body.or(v.body);
            if let Some(b) = &message_body {
                text::check_body(&text::strip_controls(b)).map_err(|e| {
                    ApiError::bad_request(e.code, format!("variants[{i}].{}", e.message))
                })?;
            }
            Ok(CampaignVariant {
                name: v.name.unwrap_or_default(),
                percent,
                message_body,
                template_id: v.template_id,
            })
        })
        .collect()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RecipientError {
    index: usize,
    to: Option<String>,
    reason: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Created {
    #[serde(flatten)]
    campaign: CampaignView,
    recipients_added: u64,
    duplicates: u64,
    recipient_errors: Vec<RecipientError>,
}

fn check_from(from: Option<&str>) -> Result<(), ApiError> {
    match from {
        Some(f)
            if f.trim().is_empty() || f.chars().count() > 20 || f.chars().any(char::is_control) =>
        {
            Err(ApiError::invalid(
                "from: a sender id or number of 1 to 20 characters",
            ))
        }
        _ => Ok(()),
    }
}

fn parse_when(raw: Option<&str>) -> Result<Option<u64>, ApiError> {
    raw.map(|s| time::parse_schedule(s, now_ms())).transpose()
}

fn set_from(c: &mut Campaign, from: Option<String>) {
    if let Some(from) = from {
        let mut extra = match c.extra.take() {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        extra.insert("from".into(), Value::String(from.trim().to_owned()));
        c.extra = Some(Value::Object(extra));
    }
}

/// Normalises inline recipients; the valid ones go into the campaign's own audience.
async fn add_inline(
    state: &AppState,
    principal: &Principal,
    campaign: Id,
    recipients: Vec<InlineRecipient>,
) -> Result<(u64, u64, Vec<RecipientError>), ApiError> {
    let mut good = Vec::with_capacity(recipients.len());
    let mut errors = Vec::new();
    for (index, r) in recipients.into_iter().enumerate() {
        let raw = r.to.or(r.phone);
        match normalise_phone(raw.as_deref().unwrap_or(""), principal.org.default_country) {
            Ok((phone, _)) => good.push(Recipient {
                phone,
                variables: r.variables.map(Value::Object),
                seq: 0,
            }),
            Err(reason) => errors.push(RecipientError {
                index,
                to: raw,
                reason,
            }),
        }
    }
    let (added, duplicates) = state
        .store()
        .add_campaign_recipients(principal.org_id(), campaign, good)
        .await?;
    Ok((added, duplicates, errors))
}

/// `POST /api/sms/campaigns`.
pub(crate) async fn create(
    State(state): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<CampaignBody>,
) -> ApiResult {
    need(&principal, Scope::CampaignsWrite)?;
    let scheduled_at = parse_when(body.scheduled_at.as_deref())?;
    check_from(body.from.as_deref())?;
    let message_body = body.message_body.or(body.body);
    if let Some(b) = &message_body {
        text::check_body(&text::strip_controls(b))?;
    }
    let inline = body.recipients.unwrap_or_default();
    if inline.len() > MAX_INLINE {
        return Err(ApiError::invalid(format!(
            "recipients: at most {MAX_INLINE} inline (use a group or upload a CSV)"
        )));
    }
    if body.group_id.is_some() && !inline.is_empty() {
        return Err(ApiError::invalid("give groupId or recipients, not both"));
    }
    let variants = parse_variants(body.variants.unwrap_or_default())?;
    let mut campaign = Campaign {
        organization_id: principal.org_id(),
        name: body.name.unwrap_or_default(),
        description: body.description,
        template_id: body.template_id,
        group_id: body.group_id,
        message_body,
        scheduled_at,
        variants,
        status: CampaignStatus::Draft,
        created_by: principal.created_by(),
        ..Campaign::default()
    };
    set_from(&mut campaign, body.from);
    if body.start == Some(true) {
        // Refused before anything is stored, so a refused send-now leaves no draft behind. A
        // template the organization does not have is the store's 404, as without `start`.
        match check_sendable(&state, &campaign) {
            Err(e) if e.code != "TEMPLATE_NOT_FOUND" => return Err(e),
            _ => {}
        }
    }
    let campaign = match state.store().create_campaign(campaign).await {
        Ok(c) => c,
        Err(e) => return Ok(store_error(e)),
    };
    let (added, duplicates, errors) = if inline.is_empty() {
        (0, 0, Vec::new())
    } else {
        add_inline(&state, &principal, campaign.id, inline).await?
    };
    let campaign = if body.start == Some(true) {
        start_campaign(&state, principal.org_id(), campaign.id).await?
    } else {
        state.store().campaign(principal.org_id(), campaign.id)?
    };
    Ok(envelope(
        StatusCode::CREATED,
        &Created {
            campaign: view(&state, campaign),
            recipients_added: added,
            duplicates,
            recipient_errors: errors,
        },
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ListQuery {
    status: Option<String>,
    cursor: Option<String>,
    page: Option<u64>,
    limit: Option<u32>,
}

fn parse_status(raw: &str) -> Result<CampaignStatus, ApiError> {
    serde_json::from_value(Value::String(raw.to_ascii_uppercase())).map_err(|_| {
        ApiError::invalid(
            "status: one of DRAFT, SCHEDULED, IN_PROGRESS, COMPLETED, CANCELLED, PAUSED",
        )
    })
}

/// `GET /api/sms/campaigns?status=&cursor=&limit=`.
pub(crate) async fn list(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult {
    need(&principal, Scope::ContactsRead)?;
    let request = ListParams {
        cursor: q.cursor.clone(),
        limit: q.limit,
        page: q.page,
    }
    .request()?;
    let status = q.status.as_deref().map(parse_status).transpose()?;
    let listed = listing::fetch(
        request,
        |page| {
            state
                .store()
                .list_campaigns(principal.org_id(), status, page)
        },
        |c| c.id,
    )?;
    Ok(ok(&listed.map(|c| view(&state, c))))
}

/// `GET /api/sms/campaigns/{campaignId}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::ContactsRead)?;
    let id = parse_id(&id, "campaign")?;
    let campaign = state.store().campaign(principal.org_id(), id)?;
    Ok(ok(&view(&state, campaign)))
}

fn status_name(status: CampaignStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn invalid_state(c: &Campaign, action: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "INVALID_STATE",
        format!(
            "campaign {} is {}; it cannot be {action}",
            c.id,
            status_name(c.status)
        ),
    )
}

/// The fields a `PUT` changes (absent ones stay).
#[derive(Debug, Clone)]
struct Changes {
    name: Option<String>,
    description: Option<String>,
    template_id: Option<Id>,
    group_id: Option<Id>,
    message_body: Option<String>,
    variants: Option<Vec<CampaignVariant>>,
    scheduled_at: Option<u64>,
    from: Option<String>,
}

impl Changes {
    fn apply(self, c: &mut Campaign) {
        if let Some(name) = self.name {
            c.name = name;
        }
        if self.description.is_some() {
            c.description = self.description;
        }
        // A campaign sends either its variants or a template and/or a body: giving one kind
        // replaces the other.
        if self.template_id.is_some() || self.message_body.is_some() {
            c.variants.clear();
        }
        if self.template_id.is_some() {
            c.template_id = self.template_id;
        }
        if self.group_id.is_some() {
            c.group_id = self.group_id;
        }
        if self.message_body.is_some() {
            c.message_body = self.message_body;
        }
        if let Some(variants) = self.variants {
            if !variants.is_empty() {
                c.template_id = None;
                c.message_body = None;
            }
            c.variants = variants;
        }
        if self.scheduled_at.is_some() {
            c.scheduled_at = self.scheduled_at;
        }
        set_from(c, self.from);
    }
}

/// `PUT /api/sms/campaigns/{campaignId}`: only a DRAFT or SCHEDULED campaign changes.
pub(crate) async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CampaignBody>,
) -> ApiResult {
    need(&principal, Scope::CampaignsWrite)?;
    let id = parse_id(&id, "campaign")?;
    let org = principal.org_id();
    let current = state.store().campaign(org, id)?;
    if !matches!(
        current.status,
        CampaignStatus::Draft | CampaignStatus::Scheduled
    ) {
        return Err(invalid_state(&current, "changed"));
    }
    let scheduled_at = parse_when(body.scheduled_at.as_deref())?;
    check_from(body.from.as_deref())?;
    let message_body = body.message_body.or(body.body);
    if let Some(b) = &message_body {
        text::check_body(&text::strip_controls(b))?;
    }
    let inline = body.recipients.unwrap_or_default();
    if inline.len() > MAX_INLINE {
        return Err(ApiError::invalid(format!(
            "recipients: at most {MAX_INLINE}"
        )));
    }
    let variants = body.variants.map(parse_variants).transpose()?;
    if variants.as_ref().is_some_and(|v| !v.is_empty())
        && (body.template_id.is_some() || message_body.is_some())
    {
        return Err(ApiError::invalid(
            "variants: a campaign with variants takes its bodies from them: leave templateId \
             and messageBody out",
        ));
    }
    let changes = Changes {
        name: body.name,
        description: body.description,
        template_id: body.template_id,
        group_id: body.group_id,
        message_body,
        variants,
        scheduled_at,
        from: body.from,
    };
    // A scheduled campaign is already started: a change that it could not send with is
    // refused now, as a start would be, rather than found by the runner at its time.
    let mut probe = current;
    changes.clone().apply(&mut probe);
    if probe.status == CampaignStatus::Scheduled {
        match check_sendable(&state, &probe) {
            // Not the organization's template at all: the store's 404 below.
            Err(e) if e.code != "TEMPLATE_NOT_FOUND" => return Err(e),
            _ => {}
        }
    }
    let result = state
        .store()
        .update_campaign(org, id, move |c| {
            if !matches!(c.status, CampaignStatus::Draft | CampaignStatus::Scheduled) {
                return Err(StoreError::InvalidState(
                    "the campaign started while it was being changed".into(),
                ));
            }
            changes.apply(c);
            Ok(())
        })
        .await;
    let campaign = match result {
        Ok(c) => c,
        Err(StoreError::InvalidState(m)) => {
            return Err(ApiError::new(StatusCode::CONFLICT, "INVALID_STATE", m));
        }
        Err(e) => return Ok(store_error(e)),
    };
    if !inline.is_empty() {
        add_inline(&state, &principal, id, inline).await?;
    }
    Ok(ok(&view(&state, campaign)))
}

/// `DELETE /api/sms/campaigns/{campaignId}`: not while it is being sent (pause or cancel it
/// first); its messages stay, and those a pause held back fail as cancelled (nothing could
/// resume them any more).
pub(crate) async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::CampaignsWrite)?;
    let id = parse_id(&id, "campaign")?;
    let org = principal.org_id();
    let current = state.store().campaign(org, id)?;
    if current.status == CampaignStatus::InProgress {
        return Err(invalid_state(&current, "deleted"));
    }
    state.store().cancel_campaign_messages(org, id).await?;
    let campaign = state.store().delete_campaign(org, id).await?;
    state.store().clear_campaign_recipients(id).await?;
    Ok(ok(&view(&state, campaign)))
}

/// Checks a campaign can be sent (a body or template, an audience), then makes it
/// IN_PROGRESS (SCHEDULED while its `scheduledAt` is ahead). Shared with `send-bulk`.
pub(crate) async fn start_campaign(
    state: &AppState,
    org: Id,
    id: Id,
) -> Result<Campaign, ApiError> {
    let current = state.store().campaign(org, id)?;
    if current.template_id.is_none()
        && current.message_body.is_none()
        && current.variants.is_empty()
    {
        return Err(ApiError::invalid(
            "the campaign has no templateId, messageBody or variants",
        ));
    }
    if current.group_id.is_none() && state.store().campaign_recipient_count(id)? == 0 {
        return Err(ApiError::invalid(
            "the campaign has no audience: give groupId, recipients, or upload a CSV",
        ));
    }
    if current.status == CampaignStatus::Draft {
        check_sendable(state, &current)?;
    }
    transition(
        state,
        org,
        id,
        vec![CampaignStatus::Draft],
        "started",
        |c, now| {
            Halt::clear(c);
            if c.scheduled_at.is_some_and(|at| at > now) {
                c.status = CampaignStatus::Scheduled;
            } else {
                c.status = CampaignStatus::InProgress;
                c.started_at.get_or_insert(now);
            }
        },
    )
    .await
}

/// The runner's check (`check_campaign`), asked up front: a template gone or refused by
/// DLT is a 422 now rather than a campaign paused later; so is a recipient whose message
/// would keep an unfilled `{{placeholder}}` (the runner could only skip it).
fn check_sendable(state: &AppState, campaign: &Campaign) -> Result<(), ApiError> {
    let dlt_enabled = state.org(campaign.organization_id, now_ms())?.dlt_enabled;
    match unfilled_variable(state.store(), campaign, dlt_enabled) {
        Ok(None) => Ok(()),
        Ok(Some(unfilled)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "MISSING_VARIABLE",
            format!(
                "{} of {} recipients have no value for {{{{{}}}}} (give it in their variables \
                 or contact fields, or write {{{{{}|default}}}} in the body)",
                unfilled.recipients, unfilled.checked, unfilled.variable, unfilled.variable
            ),
        )),
        Err(CheckError::Blocked(blocker)) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            blocker.code(),
            blocker.to_string(),
        )),
        Err(CheckError::Store(e)) => Err(e.into()),
    }
}

async fn transition(
    state: &AppState,
    org: Id,
    id: Id,
    from: Vec<CampaignStatus>,
    action: &'static str,
    change: impl FnOnce(&mut Campaign, u64) + Send + 'static,
) -> Result<Campaign, ApiError> {
    let (campaign, changed) = state
        .store()
        .transition_campaign(org, id, from, move |c| {
            change(c, now_ms());
            Ok(())
        })
        .await?;
    if !changed {
        return Err(invalid_state(&campaign, action));
    }
    Ok(campaign)
}

/// `POST /api/sms/campaigns/{campaignId}/start`.
pub(crate) async fn start(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::CampaignsWrite)?;
    let id = parse_id(&id, "campaign")?;
    let campaign = start_campaign(&state, principal.org_id(), id).await?;
    Ok(envelope(StatusCode::ACCEPTED, &view(&state, campaign)))
}

/// `POST /api/sms/campaigns/{campaignId}/pause`: the runner stops expanding (messages
/// already queued still go).
pub(crate) async fn pause(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::CampaignsWrite)?;
    let id = parse_id(&id, "campaign")?;
    let campaign = transition(
        &state,
        principal.org_id(),
        id,
        vec![CampaignStatus::InProgress, CampaignStatus::Scheduled],
        "paused",
        |c, _| c.status = CampaignStatus::Paused,
    )
    .await?;
    // What the runner queued ahead stops too, not only the expansion.
    state
        .store()
        .hold_campaign_messages(principal.org_id(), id)
        .await?;
    Ok(ok(&view(&state, campaign)))
}

/// `POST /api/sms/campaigns/{campaignId}/resume`: on from the stored cursor.
pub(crate) async fn resume(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::CampaignsWrite)?;
    let id = parse_id(&id, "campaign")?;
    let current = state.store().campaign(principal.org_id(), id)?;
    if current.status == CampaignStatus::Paused {
        check_sendable(&state, &current)?;
    }
    let campaign = transition(
        &state,
        principal.org_id(),
        id,
        vec![CampaignStatus::Paused],
        "resumed",
        |c, now| {
            Halt::clear(c);
            if c.started_at.is_none() && c.scheduled_at.is_some_and(|at| at > now) {
                c.status = CampaignStatus::Scheduled;
            } else {
                c.status = CampaignStatus::InProgress;
                c.started_at.get_or_insert(now);
            }
        },
    )
    .await?;
    state
        .store()
        .release_campaign_messages(principal.org_id(), id)
        .await?;
    Ok(ok(&view(&state, campaign)))
}

/// `POST /api/sms/campaigns/{campaignId}/cancel`: stopped for good.
pub(crate) async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::CampaignsWrite)?;
    let id = parse_id(&id, "campaign")?;
    let campaign = transition(
        &state,
        principal.org_id(),
        id,
        vec![
            CampaignStatus::Draft,
            CampaignStatus::Scheduled,
            CampaignStatus::InProgress,
            CampaignStatus::Paused,
        ],
        "cancelled",
        |c, now| {
            c.status = CampaignStatus::Cancelled;
            c.completed_at = Some(now);
        },
    )
    .await?;
    state
        .store()
        .cancel_campaign_messages(principal.org_id(), id)
        .await?;
    Ok(ok(&view(&state, campaign)))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    campaign_id: Id,
    status: CampaignStatus,
    total_recipients: u64,
    queued: u64,
    sent: u64,
    delivered: u64,
    failed: u64,
    rejected: u64,
    messages: sairex_store::CampaignCounts,
    skipped_opted_out: u64,
    skipped_invalid: u64,
    expanded: bool,
    progress: f64,
    delivery_rate: f64,
    /// Per A/B variant, in the campaign's order; empty without variants.
    variants: Vec<VariantStats>,
}

/// The figures of [`Stats`] for one variant (or the whole campaign): sent = handed to a
/// provider, failed = failed or expired, rate = delivered / sent.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VariantStats {
    index: usize,
    name: String,
    percent: u8,
    messages: u64,
    queued: u64,
    sent: u64,
    delivered: u64,
    failed: u64,
    rejected: u64,
    delivery_rate: f64,
}

impl VariantStats {
    fn new(index: usize, v: &CampaignVariant, c: &CampaignCounts) -> Self {
        Self {
            index,
            name: v.name.clone(),
            percent: v.percent,
            messages: c.total,
            queued: c.queued,
            sent: c.handed_over(),
            delivered: c.delivered,
            failed: c.failed_or_expired(),
            rejected: c.rejected,
            delivery_rate: c.delivery_rate(),
        }
    }
}

/// `GET /api/sms/campaigns/{campaignId}/stats`: live, from the store's campaign index.
pub(crate) async fn stats(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    need(&principal, Scope::ContactsRead)?;
    let id = parse_id(&id, "campaign")?;
    let org = principal.org_id();
    let campaign = state.store().campaign(org, id)?;
    let counts = state.store().campaign_counts(org, id)?;
    let variants = if campaign.variants.is_empty() {
        Vec::new()
    } else {
        // At most MAX_VARIANTS, so it fits the byte messages name their variant with.
        let n = u8::try_from(campaign.variants.len()).unwrap_or(u8::MAX);
        let per = state.store().campaign_variant_counts(org, id, n)?;
        campaign
            .variants
            .iter()
            .zip(&per)
            .enumerate()
            .map(|(i, (v, c))| VariantStats::new(i, v, c))
            .collect()
    };
    let run = RunState::of(&campaign);
    let status = campaign.status;
    let audience = view(&state, campaign).total_recipients;
    let finished = counts.delivered + counts.failed + counts.rejected + counts.expired;
    #[allow(clippy::cast_precision_loss)] // Ratios for display.
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Ok(ok(&Stats {
        campaign_id: id,
        status,
        total_recipients: audience,
        queued: counts.queued,
        sent: counts.handed_over(),
        delivered: counts.delivered,
        failed: counts.failed_or_expired(),
        rejected: counts.rejected,
        messages: counts,
        skipped_opted_out: run.skipped_opted_out,
        skipped_invalid: run.skipped_invalid,
        expanded: run.done,
        progress: ratio(
            finished + run.skipped_opted_out + run.skipped_invalid,
            audience,
        )
        .min(1.0),
        delivery_rate: counts.delivery_rate(),
        variants,
    }))
}

/// `POST /api/sms/campaigns/{campaignId}/recipients`: a CSV upload (as the contact import:
/// `text/csv` or multipart, `mapping` naming the phone column and `custom` columns as
/// template variables, `preview=true`) added to the campaign's own audience.
pub(crate) async fn upload(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<super::import::ImportQuery>,
    request: Request,
) -> ApiResult {
    need(&principal, Scope::CampaignsWrite)?;
    let id = parse_id(&id, "campaign")?;
    let current = state.store().campaign(principal.org_id(), id)?;
    if matches!(
        current.status,
        CampaignStatus::Completed | CampaignStatus::Cancelled
    ) {
        return Err(invalid_state(&current, "given recipients"));
    }
    super::import::run(
        state,
        principal,
        query,
        request,
        super::import::Sink::Campaign(id),
    )
    .await
}
