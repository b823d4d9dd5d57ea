//! Reads: a message's status and timeline, message lists, the inbox, analytics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;

use axum::extract::{Path, State};
use sairex_store::model::{Direction, Id, Message, MessageStatus, Micros, Millis};
use sairex_store::{MessageFilter, PageRequest, Store, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{ApiQuery, parse_id};
use crate::auth::{Principal, Scope};
use crate::error::{ApiError, ApiResult, ok};
use crate::listing::{self, ListParams, MAX_LIMIT};
use crate::state::AppState;
use crate::{phone, text, time, zone};

/// Most messages of each direction the inbox looks at (the newest) to build conversations.
const INBOX_SCAN: usize = 5_000;

/// A message as lists show it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageView {
    message_id: Id,
    direction: Direction,
    status: MessageStatus,
    from: String,
    to: String,
    body: String,
    segments: u32,
    encoding: String,
    campaign_id: Option<Id>,
    provider_id: Option<Id>,
    provider_msg_id: Option<String>,
    status_message: Option<String>,
    error_code: Option<String>,
    metadata: Option<Value>,
    cost: Option<Cost>,
    created_at: String,
    queued_at: String,
    submitted_at: Option<String>,
    delivered_at: Option<String>,
    scheduled_at: Option<String>,
}

#[derive(Serialize)]
struct Cost {
    amount: String,
    currency: String,
}

impl From<Message> for MessageView {
    fn from(m: Message) -> Self {
        Self {
            message_id: m.id,
            direction: m.direction,
            status: m.status,
            cost: m.total_cost.map(|c| Cost {
                amount: text::money(c),
                currency: m.cost_currency.clone(),
            }),
            from: m.from_number,
            to: m.to_number,
            body: m.body,
            segments: m.segments,
            encoding: m.encoding,
            campaign_id: m.campaign_id,
            provider_id: m.provider_id,
            provider_msg_id: m.provider_msg_id,
            status_message: m.status_message,
            error_code: m.error_code,
            metadata: m.metadata,
            created_at: time::format(m.created_at),
            queued_at: time::format(m.queued_at),
            submitted_at: m.submitted_at.map(time::format),
            delivered_at: m.delivered_at.map(time::format),
            scheduled_at: m.scheduled_at.map(time::format),
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TimelineEntry {
    event: String,
    status: MessageStatus,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusView {
    #[serde(flatten)]
    message: MessageView,
    provider: Option<String>,
    retry_count: u32,
    timeline: Vec<TimelineEntry>,
}

/// A provider's name for display: its display name, read from the organization's providers or
/// the system's.
fn provider_label(store: &Store, org: Id, id: Id) -> Option<String> {
    store
        .provider(org, id)
        .or_else(|_| store.provider(0, id))
        .ok()
        .map(|p| p.display_name)
}

/// `GET /api/sms/status/{messageId}`.
pub(crate) async fn status(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult {
    if principal.require(Scope::SmsRead).is_err() {
        principal.require(Scope::SmsSend)?;
    }
    let id = parse_id(&id, "message")?;
    let org = principal.org_id();
    let message = state.store().message(org, id)?;
    let events = state.store().events(org, id)?;
    let provider = message
        .provider_id
        .and_then(|p| provider_label(state.store(), org, p));
    let retry_count = message.retry_count;
    Ok(ok(&StatusView {
        provider,
        retry_count,
        timeline: events
            .into_iter()
            .map(|e| TimelineEntry {
                event: e.event_type,
                status: e.status,
                at: time::format(e.occurred_at),
                detail: e.detail,
            })
            .collect(),
        message: message.into(),
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct ListQuery {
    direction: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    phone: Option<String>,
    campaign_id: Option<Id>,
    cursor: Option<String>,
    page: Option<u64>,
    limit: Option<u32>,
}

fn parse_direction(raw: &str) -> Result<Direction, ApiError> {
    match raw.to_ascii_uppercase().as_str() {
        "OUTBOUND" => Ok(Direction::Outbound),
        "INBOUND" => Ok(Direction::Inbound),
        _ => Err(ApiError::invalid("direction: OUTBOUND or INBOUND")),
    }
}

fn parse_status(raw: &str) -> Result<MessageStatus, ApiError> {
    let upper = raw.to_ascii_uppercase();
    MessageStatus::ALL
        .into_iter()
        .find(|s| s.as_str() == upper)
        .ok_or_else(|| {
            ApiError::invalid(
                "status: QUEUED, SUBMITTED, SENT, DELIVERED, FAILED, REJECTED, EXPIRED or RECEIVED",
            )
        })
}

fn parse_time(field: &str, raw: &str) -> Result<Millis, ApiError> {
    time::parse(raw).ok_or_else(|| {
        ApiError::invalid(format!("{field}: a date (2026-02-15) or an RFC 3339 time"))
    })
}

/// A phone filter in E.164 when it reads as a number, else as given.
fn phone_filter(principal: &Principal, raw: &str) -> String {
    phone::normalise(raw, principal.org.default_country).unwrap_or_else(|_| raw.trim().to_owned())
}

/// `GET /api/sms/messages`.
pub(crate) async fn list_messages(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult {
    principal.require(Scope::SmsRead)?;
    let request = ListParams {
        cursor: q.cursor.clone(),
        limit: q.limit,
        page: q.page,
    }
    .request()?;
    let mut filter = MessageFilter {
        direction: q.direction.as_deref().map(parse_direction).transpose()?,
        status: q.status.as_deref().map(parse_status).transpose()?,
        campaign_id: q.campaign_id,
        created_from: q
            .from
            .as_deref()
            .map(|s| parse_time("from", s))
            .transpose()?,
        created_to: q.to.as_deref().map(|s| parse_time("to", s)).transpose()?,
        ..MessageFilter::default()
    };
    // A bare date as the end means "through that day".
    if let (Some(raw), Some(to)) = (q.to.as_deref(), filter.created_to.as_mut())
        && raw.trim().len() == 10
    {
        *to += 86_400_000;
    }
    filter.to_number = q.phone.as_deref().map(|p| phone_filter(&principal, p));
    let org = principal.org_id();
    let store = state.store().clone();
    let listed = tokio::task::spawn_blocking(move || {
        listing::fetch(
            request,
            |page| store.list_messages(org, &filter, page),
            |m| m.id,
        )
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(ok(&listed.map(MessageView::from)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct InboxQuery {
    phone: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Conversation {
    phone: String,
    contact_id: Option<Id>,
    last_message: MessageView,
    unread_count: u64,
    message_count: u64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Thread {
    phone: String,
    items: Vec<MessageView>,
    /// Always null: a thread is one page, its newest `limit` messages.
    next_cursor: Option<String>,
    limit: u32,
    total: u64,
}

/// The other party of a message: the sender of an inbound one, the recipient of an outbound.
fn counterpart(m: &Message) -> &str {
    match m.direction {
        Direction::Inbound => &m.from_number,
        Direction::Outbound => &m.to_number,
    }
}

/// The newest messages of one direction, up to `max` (and for one phone, when given).
fn newest(
    store: &Store,
    org: Id,
    direction: Direction,
    max: usize,
    phone: Option<&str>,
) -> Result<Vec<Message>, ApiError> {
    let mut out = Vec::new();
    store.scan_messages(org, direction, 0, Millis::MAX, |m| {
        if phone.is_none_or(|p| counterpart(&m) == p) {
            out.push(m);
        }
        if out.len() >= max {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })?;
    Ok(out)
}

/// `GET /api/sms/inbox`: conversations with the numbers that wrote in, newest first, with
/// their last message (either way) and unread count — inbound messages after the last reply
/// (the store keeps no per-reader state); `?phone=` gives one thread, both directions, newest
/// first. Built from the newest 5,000 messages of each direction.
pub(crate) async fn inbox(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> ApiResult {
    principal.require(Scope::SmsRead)?;
    let limit = q.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ApiError::invalid(format!("limit: 1 to {MAX_LIMIT}")));
    }
    let limit = limit as usize;
    let org = principal.org_id();
    let store = state.store().clone();
    if let Some(raw) = q.phone.as_deref() {
        let phone = phone_filter(&principal, raw);
        let wanted = phone.clone();
        let messages = tokio::task::spawn_blocking(move || -> Result<Vec<Message>, ApiError> {
            let mut all = newest(&store, org, Direction::Inbound, limit, Some(&wanted))?;
            let filter = MessageFilter {
                to_number: Some(wanted.clone()),
                direction: Some(Direction::Outbound),
                ..MessageFilter::default()
            };
            let page = PageRequest {
                offset: 0,
                limit: u32::try_from(limit).unwrap_or(MAX_LIMIT),
            };
            all.extend(store.list_messages(org, &filter, page)?.items);
            all.sort_by_key(|m| std::cmp::Reverse((m.created_at, m.id)));
            all.truncate(limit);
            Ok(all)
        })
        .await
        .map_err(ApiError::internal)??;
        return Ok(ok(&Thread {
            phone,
            total: messages.len() as u64,
            items: messages.into_iter().map(MessageView::from).collect(),
            next_cursor: None,
            limit: limit as u32,
        }));
    }
    let (conversations, total) =
        tokio::task::spawn_blocking(move || -> Result<(Vec<Conversation>, u64), ApiError> {
            let inbound = newest(&store, org, Direction::Inbound, INBOX_SCAN, None)?;
            let outbound = newest(&store, org, Direction::Outbound, INBOX_SCAN, None)?;
            // Last reply to each number.
            let mut last_reply: HashMap<&str, Millis> = HashMap::new();
            for m in &outbound {
                let at = last_reply.entry(counterpart(m)).or_insert(0);
                *at = (*at).max(m.created_at);
            }
            struct Acc<'a> {
                last: &'a Message,
                unread: u64,
                count: u64,
                contact: Option<Id>,
            }
            let mut by_phone: HashMap<&str, Acc<'_>> = HashMap::new();
            for m in &inbound {
                let replied = last_reply.get(counterpart(m)).copied().unwrap_or(0);
                let acc = by_phone.entry(counterpart(m)).or_insert(Acc {
                    last: m,
                    unread: 0,
                    count: 0,
                    contact: None,
                });
                acc.count += 1;
                if m.created_at > replied {
                    acc.unread += 1;
                }
                if (m.created_at, m.id) > (acc.last.created_at, acc.last.id) {
                    acc.last = m;
                }
                acc.contact = acc.contact.or(m.contact_id);
            }
            for m in &outbound {
                if let Some(acc) = by_phone.get_mut(counterpart(m)) {
                    acc.count += 1;
                    if (m.created_at, m.id) > (acc.last.created_at, acc.last.id) {
                        acc.last = m;
                    }
                }
            }
            let mut list: Vec<(&str, Acc<'_>)> = by_phone.into_iter().collect();
            list.sort_by(|a, b| {
                (b.1.last.created_at, b.1.last.id).cmp(&(a.1.last.created_at, a.1.last.id))
            });
            let total = list.len() as u64;
            list.truncate(limit);
            let items = list
                .into_iter()
                .map(|(phone, acc)| Conversation {
                    phone: phone.to_owned(),
                    contact_id: acc.contact,
                    last_message: acc.last.clone().into(),
                    unread_count: acc.unread,
                    message_count: acc.count,
                })
                .collect();
            Ok((items, total))
        })
        .await
        .map_err(ApiError::internal)??;
    // The list shape of every list; the inbox is one page (the newest conversations).
    Ok(ok(&listing::Listed {
        items: conversations,
        next_cursor: None,
        limit: limit as u32,
        total,
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct AnalyticsQuery {
    period: Option<String>,
}

#[derive(Default)]
struct Tally {
    sent: u64,
    delivered: u64,
    failed: u64,
}

impl Tally {
    fn add(&mut self, status: MessageStatus) {
        self.sent += 1;
        match status {
            MessageStatus::Delivered => self.delivered += 1,
            MessageStatus::Failed | MessageStatus::Rejected | MessageStatus::Expired => {
                self.failed += 1;
            }
            _ => {}
        }
    }

    fn rate(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)] // counts far below 2^52
        let rate = self.delivered as f64 * 100.0 / self.sent as f64;
        (rate * 100.0).round() / 100.0
    }
}

/// A 0-to-1 ratio as a percentage with two decimals, as the blueprint shows rates.
fn percent(ratio: f64) -> f64 {
    (ratio * 10_000.0).round() / 100.0
}

/// The period's start: `today`, `last_7_days`, `last_30_days` (the default) or
/// `last_90_days`, in whole days of the organization's time zone (today's included).
fn period_start(period: &str, now: Millis, tz: &jiff::tz::TimeZone) -> Option<Millis> {
    let days_back = match period {
        "today" => 0,
        "last_7_days" => 6,
        "last_30_days" => 29,
        "last_90_days" => 89,
        _ => return None,
    };
    Some(zone::day_start(now, days_back, tz))
}

/// `GET /api/sms/analytics?period=`: outbound messages created in the period (sent), of which
/// delivered and failed (FAILED, REJECTED, EXPIRED); delivery rate = delivered / sent, in
/// percent; inbound received; costs summed. Reads every message of the period.
/// `topCampaigns` are the campaigns with messages in the period, ranked by messages sent,
/// with each campaign's own stats (sent = handed to a provider, failed = failed or expired,
/// rejected apart, rate = delivered / sent), so they equal what its stats route shows.
pub(crate) async fn analytics(
    State(state): State<AppState>,
    principal: Principal,
    ApiQuery(q): ApiQuery<AnalyticsQuery>,
) -> ApiResult {
    principal.require(Scope::Admin)?;
    let period = q.period.unwrap_or_else(|| "last_30_days".to_owned());
    let now = now_ms();
    // Days begin at the organization's midnight, not UTC's.
    let org_record = state.store().organization(principal.org_id())?;
    let tz = zone::of(&org_record);
    let Some(from) = period_start(&period, now, &tz) else {
        return Err(ApiError::invalid(
            "period: today, last_7_days, last_30_days or last_90_days",
        ));
    };
    let org = principal.org_id();
    let currency = principal.org.currency.clone();
    let store = state.store().clone();
    let data = tokio::task::spawn_blocking(move || -> Result<Value, ApiError> {
        let mut total = Tally::default();
        let mut cost: Micros = 0;
        // Keyed by local date: "2026-03-01" sorts as the days do.
        let mut daily: BTreeMap<String, Tally> = BTreeMap::new();
        let mut providers: HashMap<Id, Tally> = HashMap::new();
        let mut campaigns: HashSet<Id> = HashSet::new();
        store.scan_messages(org, Direction::Outbound, from, Millis::MAX, |m| {
            total.add(m.status);
            cost = cost.saturating_add(m.total_cost.unwrap_or(0));
            daily
                .entry(zone::date(m.created_at, &tz))
                .or_default()
                .add(m.status);
            if let Some(p) = m.provider_id {
                providers.entry(p).or_default().add(m.status);
            }
            if let Some(c) = m.campaign_id {
                campaigns.insert(c);
            }
            ControlFlow::Continue(())
        })?;
        let inbound = store.scan_messages(org, Direction::Inbound, from, Millis::MAX, |_| {
            ControlFlow::Continue(())
        })?;
        let daily: Vec<Value> = daily
            .iter()
            .rev()
            .map(|(day, t)| {
                serde_json::json!({
                    "date": day,
                    "sent": t.sent, "delivered": t.delivered, "failed": t.failed,
                })
            })
            .collect();
        let mut providers: Vec<(Id, Tally)> = providers.into_iter().collect();
        providers.sort_by(|a, b| b.1.sent.cmp(&a.1.sent).then(a.0.cmp(&b.0)));
        let providers: Vec<Value> = providers
            .iter()
            .map(|(id, t)| {
                serde_json::json!({
                    "providerId": id,
                    "provider": provider_label(&store, org, *id).unwrap_or_else(|| format!("provider {id}")),
                    "sent": t.sent, "delivered": t.delivered, "deliveryRate": t.rate(),
                })
            })
            .collect();
        // The campaigns active in the period, with the figures of their own stats
        // (`GET …/campaigns/{id}/stats`, from the campaign index): the same sent, delivered,
        // failed, rejected and rate, not a recount of the period's messages.
        let mut ranked = Vec::with_capacity(campaigns.len());
        for id in campaigns {
            ranked.push((id, store.campaign_counts(org, id)?));
        }
        ranked.sort_by(|a, b| {
            (b.1.handed_over(), b.1.total)
                .cmp(&(a.1.handed_over(), a.1.total))
                .then(a.0.cmp(&b.0))
        });
        ranked.truncate(5);
        let campaigns: Vec<Value> = ranked
            .iter()
            .map(|(id, c)| {
                serde_json::json!({
                    "id": id,
                    // A deleted campaign keeps its messages (and its place here), not its name.
                    "name": store.campaign(org, *id).map(|c| c.name).unwrap_or_default(),
                    "sent": c.handed_over(), "delivered": c.delivered,
                    "failed": c.failed_or_expired(), "rejected": c.rejected,
                    "deliveryRate": percent(c.delivery_rate()),
                })
            })
            .collect();
        Ok(serde_json::json!({
            "period": period,
            "from": zone::format(from, &tz),
            "timezone": zone::name_of(&org_record),
            "summary": {
                "totalSent": total.sent,
                "totalDelivered": total.delivered,
                "totalFailed": total.failed,
                "deliveryRate": total.rate(),
                "totalInbound": inbound,
                "totalCost": text::money(cost),
                "costCurrency": currency,
            },
            "dailyBreakdown": daily,
            "providerBreakdown": providers,
            "topCampaigns": campaigns,
        }))
    })
    .await
    .map_err(ApiError::internal)??;
    Ok(ok(&data))
}
