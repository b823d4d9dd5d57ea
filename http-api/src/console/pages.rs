//! The console's pages. Each reads and writes through the JSON API's handlers (called in the
//! process with the user's [`Principal`](crate::auth::Principal)), so the rules are the API's.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::layout::{self, csrf, dir_of, notice, shell, status_pill, text, when};
use super::{Console, PageError, PageResult, WithConsole, users};
use crate::error::{ApiError, ApiResult};
use crate::listing::ListParams;
use crate::routes::import::MAX_IMPORT_BYTES;
use crate::routes::{
    ApiJson, ApiQuery, admin, campaigns, contacts, events, groups, read, send, templates,
};
use crate::state::AppState;
use crate::text as body_text;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/", get(dashboard))
        .route("/console/events", get(live))
        .route("/console/send", get(send_page).post(send_one))
        .route("/console/send/bulk", post(send_bulk))
        .route("/console/preview", post(preview))
        .route("/console/inbox", get(inbox))
        .route("/console/inbox/reply", post(reply))
        .route("/console/messages", get(messages))
        .route("/console/messages/{id}", get(message))
        .route("/console/messages/{id}/status", get(message_status))
        .route("/console/contacts", get(contacts_page).post(add_contact))
        .route("/console/contacts/groups", get(groups_page).post(add_group))
        // The import's own limit, as on the API's import routes (the router's is 1 MiB).
        .route(
            "/console/contacts/import",
            post(import_contacts).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
        .route("/console/contacts/export", get(export_contacts))
        .route(
            "/console/campaigns/{id}/recipients",
            post(upload_recipients).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES)),
        )
        .route("/console/settings/providers", post(add_provider))
        .route("/console/templates", get(templates_page).post(add_template))
        .route("/console/campaigns", get(campaigns_page).post(add_campaign))
        .route("/console/campaigns/{id}", get(campaign))
        .route("/console/campaigns/{id}/{action}", post(campaign_action))
        .route("/console/reports", get(reports))
        .route("/console/settings", get(settings))
        .route("/console/settings/api-keys", post(add_key))
        .route("/console/settings/api-keys/{id}/revoke", post(revoke_key))
        .route("/console/settings/webhooks", post(add_webhook))
        .route("/console/settings/providers/{id}/test", post(test_provider))
        .route("/console/settings/users", get(users_page).post(add_user))
        .route("/console/settings/users/{id}/delete", post(delete_user))
        .merge(super::settings::routes())
}

/// The `data` of an API handler's answer, or its error.
pub(super) async fn data(result: ApiResult) -> Result<Value, ApiError> {
    let response = result?;
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .map_err(ApiError::internal)?;
    let mut v: Value = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
    if status.is_success() {
        Ok(v["data"].take())
    } else {
        let message = text(&v["error"]["message"]);
        Err(ApiError::new(status, "API_ERROR", message))
    }
}

/// A request type of the API from JSON built by a form.
pub(super) fn req<T: DeserializeOwned>(v: Value) -> Result<T, ApiError> {
    serde_json::from_value(v).map_err(|e| ApiError::invalid(e.to_string()))
}

/// The fields of a urlencoded form (a field may repeat).
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    pub(super) fn parse(bytes: &[u8]) -> Self {
        Self(
            form_urlencoded::parse(bytes)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
    pub(super) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
    /// A JSON string, or null when empty.
    pub(super) fn json(&self, name: &str) -> Value {
        self.get(name).map_or(Value::Null, |v| json!(v))
    }
}

pub(super) fn page(console: &Console, active: &str, title: &str, body: Markup) -> Response {
    shell(console, active, title, body).into_response()
}

/// A `datetime-local` value, taken in the organization's zone, in RFC 3339 (as typed when
/// it does not read as a time, for the API to refuse), or null.
fn local_time(raw: Option<&str>, console: &Console) -> Value {
    raw.map_or(Value::Null, |t| {
        json!(crate::zone::from_local(t, &console.zone).unwrap_or_else(|| t.to_owned()))
    })
}

/// The zone's name for form labels.
fn zone_name(console: &Console) -> &str {
    console.zone.iana_name().unwrap_or("UTC")
}

// ---- Dashboard -------------------------------------------------------------------------

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PeriodQuery {
    period: Option<String>,
}

async fn dashboard(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<PeriodQuery>,
) -> PageResult {
    let p = console.principal.clone();
    let period = match q.period.as_deref() {
        Some(p @ ("last_7_days" | "last_30_days" | "last_90_days")) => p.to_owned(),
        _ => "last_7_days".to_owned(),
    };
    let analytics = if console.is_admin() {
        let q = req(json!({ "period": period })).page(&console)?;
        Some(
            data(read::analytics(State(state.clone()), p.clone(), ApiQuery(q)).await)
                .await
                .page(&console)?,
        )
    } else {
        None
    };
    let recent = data(
        read::list_messages(
            State(state.clone()),
            p.clone(),
            ApiQuery(req(json!({ "limit": 20 })).page(&console)?),
        )
        .await,
    )
    .await
    .page(&console)?;
    let queued = state.store().ready_count(p.org_id()).unwrap_or(0);
    let providers = if console.is_admin() {
        Some(
            data(
                admin::list_providers(
                    State(state.clone()),
                    p.clone(),
                    ApiQuery(req(json!({ "limit": 100 })).page(&console)?),
                )
                .await,
            )
            .await
            .page(&console)?,
        )
    } else {
        None
    };
    let body = html! {
        h1 { "Dashboard" }
        @if let Some(a) = &analytics {
            form method="get" action="/console/" {
                label for="period" { "Period" }
                select #period name="period" {
                    @for (v, l) in [("last_7_days", "Last 7 days"), ("last_30_days", "Last 30 days"), ("last_90_days", "Last 90 days")] {
                        option value=(v) selected[v == period] { (l) }
                    }
                }
                " " button.secondary type="submit" { "Show" }
            }
            @let s = &a["summary"];
            div.cards {
                div.card { div.k { "Sent" } div.v #kpi-sent { (text(&s["totalSent"])) } }
                div.card { div.k { "Delivered" } div.v #kpi-delivered { (text(&s["totalDelivered"])) } }
                div.card { div.k { "Delivery rate" } div.v { (text(&s["deliveryRate"])) "%" } }
                div.card { div.k { "Failed" } div.v { (text(&s["totalFailed"])) } }
                div.card { div.k { "Cost" } div.v { (text(&s["costCurrency"])) " " (text(&s["totalCost"])) } }
                div.card { div.k { "Inbound" } div.v { (text(&s["totalInbound"])) } }
                div.card { div.k { "Waiting in queue" } div.v { (queued) } }
            }
            section.panel {
                h2 { "Delivery trend" }
                @let mut days: Vec<(String, u64, u64, u64)> = a["dailyBreakdown"].as_array().map(|d| d.iter().map(|d| (text(&d["date"]), d["sent"].as_u64().unwrap_or(0), d["delivered"].as_u64().unwrap_or(0), d["failed"].as_u64().unwrap_or(0))).collect()).unwrap_or_default();
                @if days.is_empty() { p.hint { "No messages in this period yet." } } @else {
                    ({ days.reverse(); layout::trend_chart(&days) })
                }
            }
            section.panel {
                h2 { "Top campaigns" }
                @if a["topCampaigns"].as_array().is_none_or(Vec::is_empty) { p.hint { "No campaign sent in this period." } }
                table { tbody {
                    @for c in a["topCampaigns"].as_array().into_iter().flatten() {
                        tr { td { a href={ "/console/campaigns/" (text(&c["id"])) } { (text(&c["name"])) } }
                             td { (text(&c["sent"])) " sent, " (text(&c["delivered"])) " delivered" }
                             td { (text(&c["deliveryRate"])) "%" } }
                    }
                } }
            }
        } @else {
            div.cards { div.card { div.k { "Waiting in queue" } div.v { (queued) } } }
        }
        @if let Some(providers) = &providers {
            section.panel {
                h2 { "Provider health" }
                table { tbody {
                    @for pr in providers["items"].as_array().into_iter().flatten() {
                        tr { td { (text(&pr["displayName"])) } td { (status_pill(&text(&pr["healthStatus"]), None)) }
                             td.hint { "last check " (when(&pr["lastHealthCheck"], &console.zone)) } }
                    }
                } }
            }
        }
        section.panel {
            h2 { "Recent messages" }
            (message_table(&recent["items"], &console.zone))
        }
    };
    Ok(page(&console, "/console/", "Dashboard", body))
}

fn message_table(messages: &Value, zone: &jiff::tz::TimeZone) -> Markup {
    html! {
        table { thead { tr { th { "Time" } th { "Direction" } th { "Number" } th { "Message" } th { "Status" } } }
        tbody {
            @for m in messages.as_array().into_iter().flatten() {
                @let inbound = m["direction"] == "INBOUND";
                tr {
                    td { a href={ "/console/messages/" (text(&m["messageId"])) } { (when(&m["createdAt"], zone)) } }
                    td { @if inbound { "in" } @else { "out" } }
                    td { @if inbound { (text(&m["from"])) } @else { (text(&m["to"])) } }
                    td dir=(dir_of(&text(&m["body"]))) { (text(&m["body"]).chars().take(60).collect::<String>()) }
                    td { (status_pill(&text(&m["status"]), m["messageId"].as_u64())) }
                }
            }
        } }
    }
}

/// `GET /console/events`: the organization's event stream, for the live parts of pages (the
/// browser's EventSource resumes with `Last-Event-ID` by itself).
async fn live(
    State(state): State<AppState>,
    console: Console,
    headers: axum::http::HeaderMap,
) -> Response {
    match events::stream(State(state), console.principal.clone(), headers).await {
        Ok(r) => r,
        Err(e) => PageError::from(e).into_response(),
    }
}

// ---- Send ------------------------------------------------------------------------------

async fn send_page(State(state): State<AppState>, console: Console) -> PageResult {
    send_view(&state, &console, None, StatusCode::OK).await
}

async fn send_view(
    state: &AppState,
    console: &Console,
    note: Option<(bool, String)>,
    status: StatusCode,
) -> PageResult {
    let p = console.principal.clone();
    let templates = data(
        templates::list(
            State(state.clone()),
            p.clone(),
            ApiQuery(req(json!({ "limit": 100 })).page(console)?),
        )
        .await,
    )
    .await
    .page(console)?;
    let groups = data(
        groups::list(
            State(state.clone()),
            p,
            ApiQuery(req(json!({ "limit": 100 })).page(console)?),
        )
        .await,
    )
    .await
    .page(console)?;
    let body = html! {
        h1 { "Send message" }
        (notice(note.as_ref()))
        section.panel {
            h2 { "One message" }
            form method="post" action="/console/send" {
                (csrf(console))
                label for="to" { "To (phone number)" }
                input #to type="tel" name="to" required placeholder="+923001234567";
                label for="body" { "Message" }
                textarea #body name="body" data-preview="preview" dir="auto" {}
                p.hint #preview aria-live="polite" {}
                label for="templateId" { "Or a template" }
                select #templateId name="templateId" {
                    option value="" { "— none —" }
                    @for t in templates["items"].as_array().into_iter().flatten() {
                        option value=(text(&t["id"])) { (text(&t["name"])) }
                    }
                }
                label for="variables" { "Template variables (name=value, one per line)" }
                textarea #variables name="variables" {}
                label for="from" { "Sender ID (optional)" }
                input #from type="text" name="from";
                label for="scheduledAt" { "Send later (" (zone_name(console)) ", optional)" }
                input #scheduledAt type="datetime-local" name="scheduledAt";
                div { button type="submit" { "Send" } }
            }
        }
        section.panel {
            h2 { "Many numbers or a group" }
            form method="post" action="/console/send/bulk" {
                (csrf(console))
                label for="numbers" { "Numbers (one per line)" }
                textarea #numbers name="numbers" {}
                label for="groupId" { "Or a group" }
                select #groupId name="groupId" {
                    option value="" { "— none —" }
                    @for g in groups["items"].as_array().into_iter().flatten() {
                        option value=(text(&g["id"])) { (text(&g["name"])) " (" (text(&g["memberCount"])) ")" }
                    }
                }
                label for="bulk-body" { "Message" }
                textarea #bulk-body name="body" data-preview="bulk-preview" dir="auto" required {}
                p.hint #bulk-preview aria-live="polite" {}
                label for="bulk-scheduledAt" { "Send later (" (zone_name(console)) ", optional)" }
                input #bulk-scheduledAt type="datetime-local" name="scheduledAt";
                div { button type="submit" { "Send to all" } }
            }
        }
    };
    let mut response = page(console, "/console/send", "Send message", body);
    *response.status_mut() = status;
    Ok(response)
}

/// `name=value` lines as a JSON object.
fn variables(raw: Option<&str>) -> Option<Map<String, Value>> {
    let map: Map<String, Value> = raw?
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), json!(v.trim())))
        .collect();
    (!map.is_empty()).then_some(map)
}

async fn send_one(State(state): State<AppState>, console: Console, body: Bytes) -> PageResult {
    let f = Form::parse(&body);
    let request = json!({
        "to": f.json("to"), "body": f.json("body"), "from": f.json("from"),
        "templateId": f.get("templateId").and_then(|v| v.parse::<u64>().ok()),
        "variables": variables(f.get("variables")),
        "scheduledAt": local_time(f.get("scheduledAt"), &console),
    });
    let request: send::SendRequest = req(request).page(&console)?;
    match send::accept_one(&state, &console.principal, &HeaderMap::new(), request).await {
        Ok(one) => {
            let body = html! {
                h1 { "Message queued" }
                p.ok role="status" {
                    "Message " a href={ "/console/messages/" (one.message.id) } { (one.message.id) }
                    " to " (one.message.to_number) ": "
                    (status_pill("QUEUED", Some(one.message.id)))
                    " · " (one.analysis.encoding) ", " (one.analysis.segments) " segment(s), "
                    (one.message.cost_currency) " " (body_text::money(one.cost))
                }
                p { a href="/console/send" { "Send another" } }
            };
            Ok(page(&console, "/console/send", "Message queued", body))
        }
        Err(e) => {
            send_view(
                &state,
                &console,
                Some((true, e.message.to_string())),
                e.status,
            )
            .await
        }
    }
}

async fn send_bulk(State(state): State<AppState>, console: Console, body: Bytes) -> PageResult {
    let f = Form::parse(&body);
    let scheduled = local_time(f.get("scheduledAt"), &console);
    if let Some(group) = f.get("groupId").and_then(|v| v.parse::<u64>().ok()) {
        // A group: a campaign started now (the campaign runner expands the group).
        let request = json!({
            "name": format!("Console send to group {group}"), "groupId": group,
            "messageBody": f.json("body"), "scheduledAt": scheduled, "start": true,
        });
        let created = data(
            campaigns::create(
                State(state.clone()),
                console.principal.clone(),
                ApiJson(req(request).page(&console)?),
            )
            .await,
        )
        .await;
        return match created {
            Ok(c) => {
                Ok(Redirect::to(&format!("/console/campaigns/{}", text(&c["id"]))).into_response())
            }
            Err(e) => {
                send_view(
                    &state,
                    &console,
                    Some((true, e.message.to_string())),
                    e.status,
                )
                .await
            }
        };
    }
    let recipients: Vec<Value> = f
        .get("numbers")
        .unwrap_or("")
        .split(['\n', ',', ';'])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|n| json!({ "to": n }))
        .collect();
    let request =
        json!({ "recipients": recipients, "body": f.json("body"), "scheduledAt": scheduled });
    let request: send::BulkRequest = req(request).page(&console)?;
    match send::accept_bulk(&state, &console.principal, request).await {
        Ok(send::BulkOutcome::Accepted(a)) => {
            let body = html! {
                h1 { "Bulk send queued" }
                p.ok role="status" { (a.accepted) " accepted, " (a.rejected) " rejected · "
                    a href={ "/console/campaigns/" (a.campaign_id) } { "follow it" } }
                @if !a.errors.is_empty() {
                    table { thead { tr { th { "Number" } th { "Problem" } } }
                    tbody { @for e in &a.errors { tr { td { (e.to.clone().unwrap_or_default()) } td { (e.reason) } } } } }
                }
            };
            Ok(page(&console, "/console/send", "Bulk send", body))
        }
        Ok(send::BulkOutcome::Started(_)) => Ok(Redirect::to("/console/campaigns").into_response()),
        Err(e) => {
            send_view(
                &state,
                &console,
                Some((true, e.message.to_string())),
                e.status,
            )
            .await
        }
    }
}

/// `POST /console/preview`: encoding, segments and cost of a body, by the API's preview.
async fn preview(State(state): State<AppState>, console: Console, body: Bytes) -> Response {
    let f = Form::parse(&body);
    let request = match req(json!({ "body": f.get("body").unwrap_or("") })) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.message.into_owned()).into_response(),
    };
    match data(send::preview(State(state), console.principal.clone(), ApiJson(request)).await).await
    {
        Ok(p) => format!(
            "{} · {} segment(s) · {} characters · {} {}",
            text(&p["encoding"]),
            text(&p["segments"]),
            text(&p["characters"]),
            text(&p["currency"]),
            text(&p["estimatedCost"])
        )
        .into_response(),
        Err(e) => (e.status, e.message.into_owned()).into_response(),
    }
}

// ---- Inbox -----------------------------------------------------------------------------

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct PhoneQuery {
    phone: Option<String>,
}

async fn inbox(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<PhoneQuery>,
) -> PageResult {
    inbox_view(&state, &console, q.phone, None).await
}

async fn inbox_view(
    state: &AppState,
    console: &Console,
    phone: Option<String>,
    note: Option<(bool, String)>,
) -> PageResult {
    let p = console.principal.clone();
    let list = data(
        read::inbox(
            State(state.clone()),
            p.clone(),
            ApiQuery(req(json!({ "limit": 100 })).page(console)?),
        )
        .await,
    )
    .await
    .page(console)?;
    let thread = match &phone {
        Some(phone) => Some(
            data(
                read::inbox(
                    State(state.clone()),
                    p,
                    ApiQuery(req(json!({ "phone": phone })).page(console)?),
                )
                .await,
            )
            .await
            .page(console)?,
        ),
        None => None,
    };
    let body = html! {
        h1 { "Inbox" }
        (notice(note.as_ref()))
        div.columns {
            section.panel aria-label="Conversations" {
                h2 { "Conversations" }
                @let conversations = list["items"].as_array().cloned().unwrap_or_default();
                @if conversations.is_empty() { p.hint { "No inbound messages yet." } }
                ul {
                    @for c in &conversations {
                        li {
                            a href={ "/console/inbox?phone=" (urlencode(&text(&c["phone"]))) } { (text(&c["phone"])) }
                            @if c["unreadCount"].as_u64().unwrap_or(0) > 0 { " " span.badge { (text(&c["unreadCount"])) } }
                            div.hint dir=(dir_of(&text(&c["lastMessage"]["body"]))) { (text(&c["lastMessage"]["body"]).chars().take(40).collect::<String>()) }
                        }
                    }
                }
            }
            section.panel aria-label="Chat" {
                @if let (Some(phone), Some(thread)) = (&phone, &thread) {
                    h2 { (phone) }
                    form method="post" action="/console/inbox/reply" {
                        (csrf(console))
                        input type="hidden" name="to" value=(phone);
                        label for="reply" { "Reply" }
                        textarea #reply name="body" data-preview="reply-preview" dir="auto" required {}
                        p.hint #reply-preview aria-live="polite" {}
                        button type="submit" { "Send reply" }
                    }
                    div.thread data-phone=(phone) {
                        @for m in thread["items"].as_array().into_iter().flatten() {
                            @let out = m["direction"] == "OUTBOUND";
                            div class={ "bubble " (if out { "out" } else { "in" }) } dir=(dir_of(&text(&m["body"]))) {
                                (text(&m["body"]))
                                span.meta dir="ltr" { (when(&m["createdAt"], &console.zone)) " " @if out { (status_pill(&text(&m["status"]), m["messageId"].as_u64())) } }
                            }
                        }
                    }
                } @else {
                    p.hint { "Choose a conversation." }
                }
            }
        }
    };
    Ok(page(console, "/console/inbox", "Inbox", body))
}

pub(super) fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn reply(State(state): State<AppState>, console: Console, body: Bytes) -> PageResult {
    let f = Form::parse(&body);
    let to = f.get("to").unwrap_or("").to_owned();
    let request: send::SendRequest =
        req(json!({ "to": to, "body": f.json("body") })).page(&console)?;
    match send::accept_one(&state, &console.principal, &HeaderMap::new(), request).await {
        Ok(_) => {
            Ok(Redirect::to(&format!("/console/inbox?phone={}", urlencode(&to))).into_response())
        }
        Err(e) => {
            let mut r = inbox_view(
                &state,
                &console,
                Some(to),
                Some((true, e.message.to_string())),
            )
            .await?;
            *r.status_mut() = e.status;
            Ok(r)
        }
    }
}

// ---- Messages --------------------------------------------------------------------------

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct MessagesQuery {
    status: Option<String>,
    direction: Option<String>,
    phone: Option<String>,
    from: Option<String>,
    to: Option<String>,
    /// The API's `nextCursor` of the page before.
    cursor: Option<String>,
}

/// A query string of the non-empty `pairs`.
fn query_string(pairs: &[(&str, Option<&str>)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
            s.append_pair(k, v);
        }
    }
    format!("?{}", s.finish())
}

async fn messages(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<MessagesQuery>,
) -> PageResult {
    let clean = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let query = json!({
        "status": clean(&q.status), "direction": clean(&q.direction), "phone": clean(&q.phone),
        "from": clean(&q.from), "to": clean(&q.to), "cursor": clean(&q.cursor), "limit": 50,
    });
    let list = data(
        read::list_messages(
            State(state),
            console.principal.clone(),
            ApiQuery(req(query).page(&console)?),
        )
        .await,
    )
    .await
    .page(&console)?;
    let total = list["total"].as_u64().unwrap_or(0);
    // Pages follow the API's cursor (stable while messages arrive), filters kept.
    let filters = [
        ("status", q.status.as_deref()),
        ("direction", q.direction.as_deref()),
        ("phone", q.phone.as_deref()),
        ("from", q.from.as_deref()),
        ("to", q.to.as_deref()),
    ];
    let newest = query_string(&filters);
    let older = list["nextCursor"].as_str().map(|cursor| {
        let mut pairs = filters.to_vec();
        pairs.push(("cursor", Some(cursor)));
        query_string(&pairs)
    });
    let body = html! {
        h1 { "Messages" }
        form method="get" action="/console/messages" {
            label for="status" { "Status" }
            select #status name="status" {
                option value="" { "any" }
                @for s in ["QUEUED", "SUBMITTED", "SENT", "DELIVERED", "FAILED", "REJECTED", "EXPIRED", "RECEIVED"] {
                    option value=(s) selected[q.status.as_deref() == Some(s)] { (s) }
                }
            }
            label for="direction" { "Direction" }
            select #direction name="direction" {
                option value="" { "both" }
                option value="OUTBOUND" selected[q.direction.as_deref() == Some("OUTBOUND")] { "outbound" }
                option value="INBOUND" selected[q.direction.as_deref() == Some("INBOUND")] { "inbound" }
            }
            label for="phone" { "Number" }
            input #phone type="tel" name="phone" value=[q.phone.as_deref()];
            div { button type="submit" { "Filter" } }
        }
        p.hint { (total) " message(s)" }
        section.panel { (message_table(&list["items"], &console.zone)) }
        @if clean(&q.cursor).is_some() { a href={ "/console/messages" (newest) } { "← newest" } " " }
        @if let Some(older) = &older { a href={ "/console/messages" (older) } { "older →" } }
    };
    Ok(page(&console, "/console/messages", "Messages", body))
}

/// `GET /console/messages/{id}/status`: the status alone, for the script to catch up on
/// changes made before its event stream connected.
async fn message_status(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Response {
    match data(read::status(State(state), console.principal.clone(), Path(id)).await).await {
        Ok(m) => text(&m["status"]).into_response(),
        Err(e) => (e.status, e.message.into_owned()).into_response(),
    }
}

async fn message(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> PageResult {
    let m = data(read::status(State(state), console.principal.clone(), Path(id)).await)
        .await
        .page(&console)?;
    let body = html! {
        h1 { "Message " (text(&m["messageId"])) }
        section.panel {
            p { "Status: " (status_pill(&text(&m["status"]), m["messageId"].as_u64())) }
            p { "From " (text(&m["from"])) " to " (text(&m["to"])) }
            p dir=(dir_of(&text(&m["body"]))) { (text(&m["body"])) }
            p.hint { (text(&m["encoding"])) ", " (text(&m["segments"])) " segment(s)"
                @if !m["provider"].is_null() { ", via " (text(&m["provider"])) } }
        }
        section.panel {
            h2 { "Timeline" }
            ol { @for e in m["timeline"].as_array().into_iter().flatten() {
                li { (when(&e["at"], &console.zone)) " — " (text(&e["status"])) " (" (text(&e["event"])) ")"
                     @if !e["detail"].is_null() { ": " (text(&e["detail"])) } }
            } }
        }
    };
    Ok(page(&console, "/console/messages", "Message", body))
}

// ---- Contacts and groups ---------------------------------------------------------------

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct SearchQuery {
    search: Option<String>,
    /// The API's `nextCursor` of the page before.
    cursor: Option<String>,
}

async fn contacts_page(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<SearchQuery>,
) -> PageResult {
    contacts_view(&state, &console, q, None).await
}

async fn contacts_view(
    state: &AppState,
    console: &Console,
    q: SearchQuery,
    note: Option<(bool, String)>,
) -> PageResult {
    let search = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let cursor = q.cursor.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let list = data(
        contacts::list(
            State(state.clone()),
            console.principal.clone(),
            ApiQuery(
                req(json!({ "search": search, "cursor": cursor, "limit": 50 })).page(console)?,
            ),
        )
        .await,
    )
    .await
    .page(console)?;
    let body = html! {
        h1 { "Contacts" }
        p { a href="/console/contacts/groups" { "Groups" } }
        (notice(note.as_ref()))
        form method="get" action="/console/contacts" {
            label for="search" { "Search" }
            input #search type="text" name="search" value=[search];
            " " button.secondary type="submit" { "Search" }
        }
        section.panel {
            p.hint { (text(&list["total"])) " contact(s)" }
            table { thead { tr { th { "Phone" } th { "Name" } th { "Opted out" } } }
            tbody { @for c in list["items"].as_array().into_iter().flatten() {
                tr { td { (text(&c["phoneNumber"])) } td { (text(&c["displayName"])) }
                     td { @if c["isOptedOut"] == true { span.pill.failed { "opted out" } } } }
            } } }
            @if cursor.is_some() { a href={ "/console/contacts" (query_string(&[("search", search)])) } { "← first" } " " }
            @if let Some(next) = list["nextCursor"].as_str() {
                a href={ "/console/contacts" (query_string(&[("search", search), ("cursor", Some(next))])) } { "more →" }
            }
        }
        section.panel {
            h2 { "Add a contact" }
            form method="post" action="/console/contacts" {
                (csrf(console))
                label for="phoneNumber" { "Phone number" }
                input #phoneNumber type="tel" name="phoneNumber" required;
                label for="displayName" { "Name" }
                input #displayName type="text" name="displayName";
                label for="email" { "Email" }
                input #email type="email" name="email";
                div { button type="submit" { "Add contact" } }
            }
        }
        section.panel {
            h2 { "Import a CSV" }
            form method="post" enctype="multipart/form-data" action={ "/console/contacts/import?_csrf=" (console.csrf) } data-progress="import-progress" {
                label for="preview" { input #preview type="checkbox" name="preview" value="true" checked; " Preview the first 10 rows only" }
                label for="file" { "CSV file (columns such as phone, name, email; others become variables)" }
                input #file type="file" name="file" accept=".csv,text/csv" required;
                div { button type="submit" { "Upload" } }
                (upload_progress("import-progress"))
            }
            p { a href="/console/contacts/export" download { "Export every contact as CSV" } }
        }
    };
    Ok(page(console, "/console/contacts", "Contacts", body))
}

async fn add_contact(State(state): State<AppState>, console: Console, body: Bytes) -> PageResult {
    let f = Form::parse(&body);
    let request = json!({ "phoneNumber": f.json("phoneNumber"), "displayName": f.json("displayName"), "email": f.json("email") });
    let result = data(
        contacts::create(
            State(state.clone()),
            console.principal.clone(),
            ApiJson(req(request).page(&console)?),
        )
        .await,
    )
    .await;
    let (note, status) = match result {
        Ok(c) => (
            (false, format!("Added {}.", text(&c["phoneNumber"]))),
            StatusCode::OK,
        ),
        Err(e) => ((true, e.message.to_string()), e.status),
    };
    let mut r = contacts_view(&state, &console, SearchQuery::default(), Some(note)).await?;
    *r.status_mut() = status;
    Ok(r)
}

async fn groups_page(State(state): State<AppState>, console: Console) -> PageResult {
    groups_view(&state, &console, None, StatusCode::OK).await
}

async fn groups_view(
    state: &AppState,
    console: &Console,
    note: Option<(bool, String)>,
    status: StatusCode,
) -> PageResult {
    let list = data(
        groups::list(
            State(state.clone()),
            console.principal.clone(),
            ApiQuery(req(json!({ "limit": 100 })).page(console)?),
        )
        .await,
    )
    .await
    .page(console)?;
    let body = html! {
        h1 { "Groups" }
        (notice(note.as_ref()))
        section.panel {
            table { thead { tr { th { "Name" } th { "Members" } th { "Description" } } }
            tbody { @for g in list["items"].as_array().into_iter().flatten() {
                tr { td { (text(&g["name"])) } td { (text(&g["memberCount"])) } td { (text(&g["description"])) } }
            } } }
        }
        section.panel {
            h2 { "New group" }
            form method="post" action="/console/contacts/groups" {
                (csrf(console))
                label for="name" { "Name" }
                input #name type="text" name="name" required;
                label for="description" { "Description" }
                input #description type="text" name="description";
                div { button type="submit" { "Create group" } }
            }
        }
    };
    let mut r = page(console, "/console/contacts", "Groups", body);
    *r.status_mut() = status;
    Ok(r)
}

async fn add_group(State(state): State<AppState>, console: Console, body: Bytes) -> PageResult {
    let f = Form::parse(&body);
    let request = json!({ "name": f.json("name"), "description": f.json("description") });
    match data(
        groups::create(
            State(state.clone()),
            console.principal.clone(),
            ApiJson(req(request).page(&console)?),
        )
        .await,
    )
    .await
    {
        Ok(g) => {
            groups_view(
                &state,
                &console,
                Some((false, format!("Created {}.", text(&g["name"])))),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            groups_view(
                &state,
                &console,
                Some((true, e.message.to_string())),
                e.status,
            )
            .await
        }
    }
}

/// `POST /console/contacts/import` (multipart, `?_csrf=`): the API's streaming import.
async fn import_contacts(
    State(state): State<AppState>,
    console: Console,
    request: Request,
) -> PageResult {
    let q = req(json!({})).page(&console)?;
    let report = data(
        crate::routes::import::import(
            State(state),
            console.principal.clone(),
            ApiQuery(q),
            request,
        )
        .await,
    )
    .await
    .page(&console)?;
    let body = html! {
        h1 { "Contact import" }
        (import_report(&report, None))
        p { a href="/console/contacts" { "Back to contacts" } }
    };
    Ok(page(&console, "/console/contacts", "Contact import", body))
}

/// The progress bar of a CSV upload form (`data-progress`): the script shows it and moves
/// it as the file is sent. The import reads the upload no faster than it stores the rows
/// (bounded channels between the socket, the parser and the store), so the bytes sent follow
/// the rows imported; at the end the bar waits for the report.
fn upload_progress(id: &str) -> Markup {
    html! {
        div.upload-progress hidden {
            label for=(id) { "Importing…" }
            progress id=(id) max="100" value="0" { "0%" }
            span.hint aria-live="polite" {}
        }
    }
}

/// An import's preview (the first rows, rendered into `template` when given) or report.
fn import_report(report: &Value, template: Option<&str>) -> Markup {
    html! {
        @if let Some(rows) = report["rows"].as_array() {
            p.ok role="status" { "Preview: columns " (report["columns"].as_array().map(|c| c.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) ". Nothing was saved." }
            table { thead { tr { th { "Row" } th { "Phone" } th { "Name" } th { @if template.is_some() { "Message" } @else { "Variables" } } th { "Problem" } } }
            tbody { @for r in rows {
                @let vars = r["metadata"].as_object().cloned().unwrap_or_default();
                tr { td { (text(&r["row"])) } td { (text(&r["phoneNumber"])) } td { (text(&r["displayName"])) }
                     td dir="auto" { @if let Some(t) = template {
                            @let mut vars = vars.clone();
                            @if let Some(name) = r["displayName"].as_str() { ({ vars.entry("name").or_insert(json!(name)); "" }) }
                            (body_text::render(t, Some(&vars)).unwrap_or_else(|missing| format!("(no value for {{{{{missing}}}}})")))
                        } @else { (Value::Object(vars).to_string()) } }
                     td { (text(&r["error"])) } }
            } } }
        } @else {
            p.ok role="status" { (text(&report["created"])) " created, " (text(&report["updated"])) " updated, "
                (text(&report["skipped"])) " skipped of " (text(&report["rows"])) " row(s)"
                @if !report["duplicates"].is_null() { ", " (text(&report["duplicates"])) " duplicate(s)" } "." }
            @if report["errors"].as_array().is_some_and(|e| !e.is_empty()) {
                table { thead { tr { th { "Row" } th { "Problem" } } }
                tbody { @for e in report["errors"].as_array().into_iter().flatten() { tr { td { (text(&e["row"])) } td { (text(&e["reason"])) } } } } }
            }
        }
    }
}

/// `GET /console/contacts/export`: the API's streamed CSV export.
async fn export_contacts(State(state): State<AppState>, console: Console) -> Response {
    match contacts::export(State(state), console.principal.clone()).await {
        Ok(r) => r,
        Err(e) => PageError::from(e).into_response(),
    }
}

/// `POST /console/campaigns/{id}/recipients` (multipart, `?_csrf=`): the campaign's audience
/// from a CSV, through the API's upload; a preview shows the first rendered messages.
async fn upload_recipients(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    request: Request,
) -> PageResult {
    let p = console.principal.clone();
    let c = data(campaigns::get(State(state.clone()), p.clone(), Path(id.clone())).await)
        .await
        .page(&console)?;
    let q = req(json!({})).page(&console)?;
    let report =
        data(campaigns::upload(State(state), p, Path(id.clone()), ApiQuery(q), request).await)
            .await
            .page(&console)?;
    let template = c["messageBody"].as_str().map(str::to_owned);
    let body = html! {
        h1 { "Recipients of " (text(&c["name"])) }
        (import_report(&report, template.as_deref()))
        p { a href={ "/console/campaigns/" (text(&c["id"])) } { "Back to the campaign" } }
    };
    Ok(page(
        &console,
        "/console/campaigns",
        "Campaign recipients",
        body,
    ))
}

// ---- Templates -------------------------------------------------------------------------

async fn templates_page(State(state): State<AppState>, console: Console) -> PageResult {
    templates_view(&state, &console, None, StatusCode::OK).await
}

async fn templates_view(
    state: &AppState,
    console: &Console,
    note: Option<(bool, String)>,
    status: StatusCode,
) -> PageResult {
    let list = data(
        templates::list(
            State(state.clone()),
            console.principal.clone(),
            ApiQuery(req(json!({ "limit": 100 })).page(console)?),
        )
        .await,
    )
    .await
    .page(console)?;
    let body = html! {
        h1 { "Templates" }
        (notice(note.as_ref()))
        section.panel {
            table { thead { tr { th { "Name" } th { "Body" } th { "Variables" } th { "Category" } th { "DLT" } } }
            tbody { @for t in list["items"].as_array().into_iter().flatten() {
                tr { td { (text(&t["name"])) } td dir=(dir_of(&text(&t["body"]))) { (text(&t["body"])) }
                     td { (t["variables"].as_array().map(|v| v.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                     td { (text(&t["category"])) }
                     td { (text(&t["dltTemplateId"])) @if t["isApproved"] == true { " " span.pill.delivered { "approved" } } } }
            } } }
        }
        section.panel {
            h2 { "New template" }
            form method="post" action="/console/templates" {
                (csrf(console))
                label for="name" { "Name" }
                input #name type="text" name="name" required;
                label for="tbody" { "Body (use {{name}} for variables)" }
                textarea #tbody name="body" data-preview="tpreview" dir="auto" required {}
                p.hint #tpreview aria-live="polite" {}
                label for="category" { "Category" }
                select #category name="category" { option { "TRANSACTIONAL" } option { "PROMOTIONAL" } option { "OTP" } }
                label for="dltTemplateId" { "DLT template id (optional)" }
                input #dltTemplateId type="text" name="dltTemplateId";
                div { button type="submit" { "Create template" } }
            }
        }
    };
    let mut r = page(console, "/console/templates", "Templates", body);
    *r.status_mut() = status;
    Ok(r)
}

async fn add_template(State(state): State<AppState>, console: Console, body: Bytes) -> PageResult {
    let f = Form::parse(&body);
    let request = json!({ "name": f.json("name"), "body": f.json("body"), "category": f.json("category"), "dltTemplateId": f.json("dltTemplateId") });
    match data(
        templates::create(
            State(state.clone()),
            console.principal.clone(),
            ApiJson(req(request).page(&console)?),
        )
        .await,
    )
    .await
    {
        Ok(t) => {
            templates_view(
                &state,
                &console,
                Some((false, format!("Created {}.", text(&t["name"])))),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            templates_view(
                &state,
                &console,
                Some((true, e.message.to_string())),
                e.status,
            )
            .await
        }
    }
}

// ---- Campaigns -------------------------------------------------------------------------

fn progress(done: u64, total: u64) -> Markup {
    let pct = (done.min(total) * 100).checked_div(total).unwrap_or(0);
    html! {
        div.progress role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=(pct) aria-label="Progress" {
            span style={ "width:" (pct) "%" } {}
        }
    }
}

async fn campaigns_page(State(state): State<AppState>, console: Console) -> PageResult {
    campaigns_view(&state, &console, None, StatusCode::OK).await
}

async fn campaigns_view(
    state: &AppState,
    console: &Console,
    note: Option<(bool, String)>,
    status: StatusCode,
) -> PageResult {
    let p = console.principal.clone();
    let list = data(
        campaigns::list(
            State(state.clone()),
            p.clone(),
            ApiQuery(req(json!({ "limit": 100 })).page(console)?),
        )
        .await,
    )
    .await
    .page(console)?;
    let groups = data(
        groups::list(
            State(state.clone()),
            p.clone(),
            ApiQuery(req(json!({ "limit": 100 })).page(console)?),
        )
        .await,
    )
    .await
    .page(console)?;
    let templates = data(
        templates::list(
            State(state.clone()),
            p,
            ApiQuery(req(json!({ "limit": 100 })).page(console)?),
        )
        .await,
    )
    .await
    .page(console)?;
    let body = html! {
        h1 { "Campaigns" }
        (notice(note.as_ref()))
        section.panel {
            table { thead { tr { th { "Name" } th { "Status" } th { "Progress" } th { "Recipients" } } }
            tbody { @for c in list["items"].as_array().into_iter().flatten() {
                @let total = c["totalRecipients"].as_u64().unwrap_or(0);
                @let done = c["sentCount"].as_u64().unwrap_or(0) + c["failedCount"].as_u64().unwrap_or(0);
                tr { td { a href={ "/console/campaigns/" (text(&c["id"])) } { (text(&c["name"])) } }
                     td { (status_pill(&text(&c["status"]), None)) }
                     td { (progress(done, total)) }
                     td { (total) } }
            } } }
        }
        section.panel {
            h2 { "New campaign" }
            form method="post" action="/console/campaigns" {
                (csrf(console))
                label for="name" { "Name" }
                input #name type="text" name="name" required;
                label for="groupId" { "Group" }
                select #groupId name="groupId" {
                    option value="" { "— none: upload a CSV on the next page —" }
                    @for g in groups["items"].as_array().into_iter().flatten() {
                        option value=(text(&g["id"])) { (text(&g["name"])) " (" (text(&g["memberCount"])) ")" }
                    }
                }
                label for="cbody" { "Message (leave empty for an A/B test)" }
                textarea #cbody name="messageBody" data-preview="cpreview" dir="auto" {}
                p.hint #cpreview aria-live="polite" {}
                details.variants {
                    summary { "A/B test: variants (optional)" }
                    p.hint { "2 to " (VARIANT_ROWS) " variants whose shares add up to 100%; each with its own message or template. Each recipient always gets the same variant." }
                    table {
                        thead { tr { th { "Name" } th { "Share %" } th { "Message" } th { "or template" } } }
                        tbody { @for i in 0..VARIANT_ROWS {
                            tr {
                                td { input id={ "vname" (i) } type="text" name="variantName" aria-label={ "Variant " (i + 1) " name" } placeholder=(char::from(b'A' + u8::try_from(i).unwrap_or(0))); }
                                td { input id={ "vpercent" (i) } type="number" name="variantPercent" min="1" max="100" aria-label={ "Variant " (i + 1) " share in percent" }; }
                                td { textarea id={ "vbody" (i) } name="variantBody" dir="auto" rows="2" aria-label={ "Variant " (i + 1) " message" } {} }
                                td { select id={ "vtemplate" (i) } name="variantTemplateId" aria-label={ "Variant " (i + 1) " template" } {
                                    option value="" { "—" }
                                    @for t in templates["items"].as_array().into_iter().flatten() {
                                        option value=(text(&t["id"])) { (text(&t["name"])) }
                                    }
                                } }
                            }
                        } }
                    }
                }
                label for="scheduledAt" { "Schedule (" (zone_name(console)) ", optional)" }
                input #scheduledAt type="datetime-local" name="scheduledAt";
                label { input type="checkbox" name="start" value="true"; " Start now (otherwise saved as a draft)" }
                div { button type="submit" { "Create campaign" } }
            }
        }
    };
    let mut r = page(console, "/console/campaigns", "Campaigns", body);
    *r.status_mut() = status;
    Ok(r)
}

/// Rows of the variant table in the new-campaign form.
const VARIANT_ROWS: usize = 4;

/// The A/B variants of the new-campaign form: its filled rows, in order, as the API's
/// `variants` (a number the API cannot read goes as given, for the API to refuse).
fn form_variants(f: &Form) -> Vec<Value> {
    let (names, percents, bodies, templates) = (
        f.all("variantName"),
        f.all("variantPercent"),
        f.all("variantBody"),
        f.all("variantTemplateId"),
    );
    let cell = |v: &[String], i: usize| v.get(i).map(|s| s.trim().to_owned()).unwrap_or_default();
    let number = |raw: String| raw.parse::<u64>().map_or_else(|_| json!(raw), |n| json!(n));
    (0..percents.len().max(bodies.len()).max(templates.len()))
        .filter_map(|i| {
            let (name, percent, body, template) = (
                cell(&names, i),
                cell(&percents, i),
                cell(&bodies, i),
                cell(&templates, i),
            );
            if percent.is_empty() && body.is_empty() && template.is_empty() {
                return None;
            }
            let mut v = Map::new();
            if !name.is_empty() {
                v.insert("name".into(), json!(name));
            }
            v.insert(
                "percent".into(),
                if percent.is_empty() {
                    Value::Null
                } else {
                    number(percent)
                },
            );
            if !body.is_empty() {
                v.insert("messageBody".into(), json!(body));
            }
            if !template.is_empty() {
                v.insert("templateId".into(), number(template));
            }
            Some(Value::Object(v))
        })
        .collect()
}

async fn add_campaign(State(state): State<AppState>, console: Console, body: Bytes) -> PageResult {
    let f = Form::parse(&body);
    let mut request = json!({
        "name": f.json("name"), "messageBody": f.json("messageBody"),
        "groupId": f.get("groupId").and_then(|v| v.parse::<u64>().ok()),
        "scheduledAt": local_time(f.get("scheduledAt"), &console), "start": f.get("start") == Some("true"),
    });
    let variants = form_variants(&f);
    if !variants.is_empty() {
        request["variants"] = Value::Array(variants);
    }
    match data(
        campaigns::create(
            State(state.clone()),
            console.principal.clone(),
            ApiJson(req(request).page(&console)?),
        )
        .await,
    )
    .await
    {
        Ok(c) => {
            Ok(Redirect::to(&format!("/console/campaigns/{}", text(&c["id"]))).into_response())
        }
        Err(e) => {
            campaigns_view(
                &state,
                &console,
                Some((true, e.message.to_string())),
                e.status,
            )
            .await
        }
    }
}

async fn campaign(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> PageResult {
    let p = console.principal.clone();
    let c = data(campaigns::get(State(state.clone()), p.clone(), Path(id.clone())).await)
        .await
        .page(&console)?;
    let s = data(campaigns::stats(State(state.clone()), p.clone(), Path(id.clone())).await)
        .await
        .page(&console)?;
    let recipients = data(
        read::list_messages(
            State(state),
            p,
            ApiQuery(req(json!({ "campaignId": c["id"], "limit": 50 })).page(&console)?),
        )
        .await,
    )
    .await
    .page(&console)?;
    let total = s["total"]
        .as_u64()
        .or(c["totalRecipients"].as_u64())
        .unwrap_or(0);
    let done = ["delivered", "failed", "rejected", "expired"]
        .iter()
        .map(|k| s[*k].as_u64().unwrap_or(0))
        .sum::<u64>();
    let status = text(&c["status"]);
    let body = html! {
        h1 { (text(&c["name"])) }
        section.panel {
            p { (status_pill(&status, None)) }
            (progress(done, total))
            table.stats { tbody {
                @for k in ["total", "queued", "submitted", "sent", "delivered", "failed", "rejected", "expired", "deliveryRate"] {
                    @if !s[k].is_null() { tr { th { (k) } td #{ "stat-" (k) } { (text(&s[k])) } } }
                }
            } }
            @for (action, label, allowed) in [("start", "Start", status == "DRAFT" || status == "SCHEDULED"), ("pause", "Pause", status == "IN_PROGRESS"), ("resume", "Resume", status == "PAUSED"), ("cancel", "Cancel", status != "COMPLETED" && status != "CANCELLED")] {
                @if allowed {
                    form.inline method="post" action={ "/console/campaigns/" (text(&c["id"])) "/" (action) } {
                        (csrf(&console)) button type="submit" { (label) }
                    } " "
                }
            }
        }
        @if let Some(variants) = s["variants"].as_array().filter(|v| !v.is_empty()) {
            section.panel {
                h2 { "A/B variants" }
                table #variant-stats {
                    thead { tr { th { "Variant" } th { "Share" } th { "Message" } th { "Messages" } th { "Queued" } th { "Sent" } th { "Delivered" } th { "Failed" } th { "Rejected" } th { "Delivery rate" } } }
                    tbody { @for v in variants {
                        @let def = &c["variants"][v["index"].as_u64().and_then(|i| usize::try_from(i).ok()).unwrap_or(usize::MAX)];
                        tr data-variant=(text(&v["index"])) {
                            td { (text(&v["name"])) } td { (text(&v["percent"])) "%" }
                            td dir=(dir_of(&text(&def["messageBody"]))) {
                                @if def["messageBody"].is_null() { "template #" (text(&def["templateId"])) } @else { (text(&def["messageBody"])) }
                            }
                            @for k in ["messages", "queued", "sent", "delivered", "failed", "rejected"] {
                                td class={ "v-" (k) } { (text(&v[k])) }
                            }
                            td { (format!("{:.1}", v["deliveryRate"].as_f64().unwrap_or(0.0) * 100.0)) "%" }
                        }
                    } }
                }
            }
        }
        @if status == "DRAFT" || status == "SCHEDULED" || status == "PAUSED" {
            section.panel {
                h2 { "Upload recipients (CSV)" }
                form method="post" enctype="multipart/form-data" action={ "/console/campaigns/" (text(&c["id"])) "/recipients?_csrf=" (console.csrf) } data-progress="upload-progress" {
                    label for="mapping" { "Column mapping (optional JSON, e.g. {\"phone\": \"mobile_num\", \"name\": \"student_name\"})" }
                    input #mapping type="text" name="mapping";
                    label { input type="checkbox" name="preview" value="true" checked; " Preview the first 10 messages only" }
                    label for="file" { "CSV file" }
                    input #file type="file" name="file" accept=".csv,text/csv" required;
                    div { button type="submit" { "Upload" } }
                    (upload_progress("upload-progress"))
                }
            }
        }
        section.panel {
            h2 { "Recipients (newest 50)" }
            (message_table(&recipients["items"], &console.zone))
        }
    };
    Ok(page(&console, "/console/campaigns", "Campaign", body))
}

async fn campaign_action(
    State(state): State<AppState>,
    console: Console,
    Path((id, action)): Path<(String, String)>,
) -> PageResult {
    let p = console.principal.clone();
    let s = State(state);
    let result = match action.as_str() {
        "start" => campaigns::start(s, p, Path(id.clone())).await,
        "pause" => campaigns::pause(s, p, Path(id.clone())).await,
        "resume" => campaigns::resume(s, p, Path(id.clone())).await,
        "cancel" => campaigns::cancel(s, p, Path(id.clone())).await,
        _ => Err(ApiError::not_found("action")),
    };
    data(result).await.page(&console)?;
    Ok(Redirect::to(&format!("/console/campaigns/{}", urlencode(&id))).into_response())
}

// ---- Reports ---------------------------------------------------------------------------

async fn reports(
    State(state): State<AppState>,
    console: Console,
    Query(q): Query<PeriodQuery>,
) -> PageResult {
    let period = q.period.unwrap_or_else(|| "last_30_days".to_owned());
    let analytics = if console.is_admin() {
        Some(
            data(
                read::analytics(
                    State(state),
                    console.principal.clone(),
                    ApiQuery(req(json!({ "period": period })).page(&console)?),
                )
                .await,
            )
            .await
            .page(&console)?,
        )
    } else {
        None
    };
    let body = html! {
        h1 { "Reports" }
        p { a href="/console/messages" { "Message log with filters" } }
        @if let Some(a) = &analytics {
            section.panel {
                h2 { "Per provider (" (period) ")" }
                table { thead { tr { th { "Provider" } th { "Sent" } th { "Delivered" } th { "Delivery rate" } } }
                tbody { @for pr in a["providerBreakdown"].as_array().into_iter().flatten() {
                    tr { td { (text(&pr["provider"])) } td { (text(&pr["sent"])) } td { (text(&pr["delivered"])) } td { (text(&pr["deliveryRate"])) "%" } }
                } } }
                p.hint { "Total cost: " (text(&a["summary"]["costCurrency"])) " " (text(&a["summary"]["totalCost"])) }
            }
        }
    };
    Ok(page(&console, "/console/reports", "Reports", body))
}

// ---- Settings (ADMIN) ------------------------------------------------------------------

async fn settings(State(state): State<AppState>, console: Console) -> PageResult {
    settings_view(&state, &console, None, None, StatusCode::OK).await
}

async fn settings_view(
    state: &AppState,
    console: &Console,
    note: Option<(bool, String)>,
    secret: Option<(&str, String)>,
    status: StatusCode,
) -> PageResult {
    console.require_admin()?;
    let p = console.principal.clone();
    let q = || req::<ListParams>(json!({ "limit": 100 }));
    let keys = data(
        admin::list_keys(
            State(state.clone()),
            p.clone(),
            ApiQuery(q().page(console)?),
        )
        .await,
    )
    .await
    .page(console)?;
    let hooks = data(
        admin::list_webhooks(
            State(state.clone()),
            p.clone(),
            ApiQuery(q().page(console)?),
        )
        .await,
    )
    .await
    .page(console)?;
    let providers =
        data(admin::list_providers(State(state.clone()), p, ApiQuery(q().page(console)?)).await)
            .await
            .page(console)?;
    // In the dispatcher's order: priority, then id.
    let mut ordered = providers["items"].as_array().cloned().unwrap_or_default();
    ordered.sort_by_key(|p| {
        (
            p["priority"].as_i64().unwrap_or(0),
            p["id"].as_u64().unwrap_or(0),
        )
    });
    let body = html! {
        h1 { "Settings" }
        p { a href="/console/settings/users" { "Users" } " · " a href="/console/settings/organization" { "Organization" } }
        (notice(note.as_ref()))
        @if let Some((what, value)) = &secret {
            div.panel role="status" {
                p { "Your new " (what) " — copy it now, it is shown only once:" }
                p.secret #secret { (value) }
                button.secondary type="button" data-copy="secret" { "Copy" }
            }
        }
        section.panel #providers {
            h2 { "Providers" }
            table { thead { tr { th { "Name" } th { "Kind" } th { "Priority" } th { "Order" } th { "Health" } th { "Test" } } }
            tbody { @for pr in &ordered {
                @let pid = text(&pr["id"]);
                tr data-provider=(pid) { td { a href={ "/console/settings/providers/" (pid) } { (text(&pr["displayName"])) } } td { (text(&pr["providerName"])) } td.priority { (text(&pr["priority"])) }
                     td { @for (dir, label, name) in [("up", "↑", "earlier"), ("down", "↓", "later")] {
                        form.inline method="post" action={ "/console/settings/providers/" (pid) "/move?dir=" (dir) } {
                            (csrf(console)) button.secondary type="submit" aria-label={ "Try " (text(&pr["displayName"])) " " (name) } { (label) }
                        } " "
                     } }
                     td { (status_pill(&text(&pr["healthStatus"]), None)) }
                     td { form.inline method="post" action={ "/console/settings/providers/" (text(&pr["id"])) "/test" } {
                        (csrf(console))
                        label for={ "test-" (text(&pr["id"])) } { "Number" }
                        input id={ "test-" (text(&pr["id"])) } type="tel" name="to" required;
                        button type="submit" { "Send test" } } } }
            } } }
            h2 { "Add a provider" }
            form method="post" action="/console/settings/providers" {
                (csrf(console))
                label for="providerName" { "Kind" }
                select #providerName name="providerName" {
                    option value="smpp" { "SMPP" } option value="twilio" { "Twilio" } option value="vonage" { "Vonage" } option value="veevo" { "Veevo Tech" }
                }
                label for="displayName" { "Display name" }
                input #displayName type="text" name="displayName" required;
                label for="ppriority" { "Priority (lower is tried first)" }
                input #ppriority type="number" name="priority" value="1";
                fieldset { legend { "SMPP" }
                    label for="host" { "Host" } input #host type="text" name="host";
                    label for="port" { "Port" } input #port type="number" name="port" value="2775";
                    label for="systemId" { "System id" } input #systemId type="text" name="systemId";
                    label for="ppassword" { "Password" } input #ppassword type="password" name="password" autocomplete="off";
                }
                fieldset { legend { "Twilio" }
                    label for="accountSid" { "Account SID" } input #accountSid type="text" name="accountSid";
                    label for="authToken" { "Auth token" } input #authToken type="password" name="authToken" autocomplete="off";
                }
                fieldset { legend { "Vonage" }
                    label for="apiKey" { "API key" } input #apiKey type="text" name="apiKey";
                    label for="apiSecret" { "API secret" } input #apiSecret type="password" name="apiSecret" autocomplete="off";
                }
                fieldset { legend { "Veevo Tech" }
                    label for="hash" { "Hash" } input #hash type="password" name="hash" autocomplete="off";
                }
                label for="fromNumber" { "From number or sender id (optional)" }
                input #fromNumber type="text" name="fromNumber";
                div { button type="submit" { "Add provider" } }
            }
        }
        section.panel #api-keys {
            h2 { "API keys" }
            table { thead { tr { th { "Name" } th { "Prefix" } th { "Scopes" } th { "Last used" } th { "State" } th {} } }
            tbody { @for k in keys["items"].as_array().into_iter().flatten() {
                tr { td { a href={ "/console/settings/api-keys/" (text(&k["id"])) } { (text(&k["name"])) } } td { code { (text(&k["keyPrefix"])) "…" } }
                     td { (k["scopes"].as_array().map(|v| v.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                     td { (when(&k["lastUsedAt"], &console.zone)) }
                     td { @if k["isActive"] == true { "active" } @else { "revoked" } }
                     td { @if k["isActive"] == true {
                        form.inline method="post" action={ "/console/settings/api-keys/" (text(&k["id"])) "/revoke" } {
                            (csrf(console)) button.secondary type="submit" { "Revoke" } } } } }
            } } }
            form method="post" action="/console/settings/api-keys" {
                (csrf(console))
                label for="keyname" { "New key name" }
                input #keyname type="text" name="name" required;
                fieldset { legend { "Scopes" }
                    @for s in ["sms:send", "sms:read", "contacts:read", "contacts:write", "campaigns:write", "admin"] {
                        label { input type="checkbox" name="scopes" value=(s) checked[s == "sms:send" || s == "sms:read"]; " " (s) }
                    }
                }
                label for="rpm" { "Requests per minute (optional)" }
                input #rpm type="number" name="rateLimitPerMin" min="1";
                div { button type="submit" { "Create key" } }
            }
        }
        section.panel #webhooks {
            h2 { "Webhooks" }
            table { thead { tr { th { "URL" } th { "Events" } th { "Failures in a row" } } }
            tbody { @for w in hooks["items"].as_array().into_iter().flatten() {
                tr { td { a href={ "/console/settings/webhooks/" (text(&w["id"])) } { (text(&w["url"])) } } td { (w["events"].as_array().map(|v| v.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) }
                     td { (text(&w["consecutiveFails"])) } }
            } } }
            form method="post" action="/console/settings/webhooks" {
                (csrf(console))
                label for="url" { "URL" }
                input #url type="url" name="url" required;
                fieldset { legend { "Events" }
                    @for e in admin::WEBHOOK_EVENTS {
                        label { input type="checkbox" name="events" value=(e) checked; " " (e) }
                    }
                }
                div { button type="submit" { "Add webhook" } }
            }
        }
    };
    let mut r = page(console, "/console/settings", "Settings", body);
    *r.status_mut() = status;
    Ok(r)
}

async fn add_key(State(state): State<AppState>, console: Console, body: Bytes) -> PageResult {
    console.require_admin()?;
    let f = Form::parse(&body);
    let request = json!({
        "name": f.json("name"), "scopes": f.all("scopes"),
        "rateLimitPerMin": f.get("rateLimitPerMin").and_then(|v| v.parse::<u32>().ok()),
    });
    match data(
        admin::create_key(
            State(state.clone()),
            console.principal.clone(),
            ApiJson(req(request).page(&console)?),
        )
        .await,
    )
    .await
    {
        Ok(k) => {
            settings_view(
                &state,
                &console,
                None,
                Some(("API key", text(&k["key"]))),
                StatusCode::CREATED,
            )
            .await
        }
        Err(e) => {
            settings_view(
                &state,
                &console,
                Some((true, e.message.to_string())),
                None,
                e.status,
            )
            .await
        }
    }
}

async fn revoke_key(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> PageResult {
    console.require_admin()?;
    data(admin::revoke_key(State(state.clone()), console.principal.clone(), Path(id)).await)
        .await
        .page(&console)?;
    settings_view(
        &state,
        &console,
        Some((false, "Key revoked.".into())),
        None,
        StatusCode::OK,
    )
    .await
}

async fn add_webhook(State(state): State<AppState>, console: Console, body: Bytes) -> PageResult {
    console.require_admin()?;
    let f = Form::parse(&body);
    let request = json!({ "url": f.json("url"), "events": f.all("events") });
    match data(
        admin::create_webhook(
            State(state.clone()),
            console.principal.clone(),
            ApiJson(req(request).page(&console)?),
        )
        .await,
    )
    .await
    {
        Ok(w) => {
            settings_view(
                &state,
                &console,
                None,
                Some(("webhook signing secret", text(&w["secret"]))),
                StatusCode::CREATED,
            )
            .await
        }
        Err(e) => {
            settings_view(
                &state,
                &console,
                Some((true, e.message.to_string())),
                None,
                e.status,
            )
            .await
        }
    }
}

async fn add_provider(State(state): State<AppState>, console: Console, body: Bytes) -> PageResult {
    console.require_admin()?;
    let f = Form::parse(&body);
    let kind = f.get("providerName").unwrap_or("smpp").to_owned();
    // Only the chosen kind's fields; the API checks them.
    let mut credentials = Map::new();
    let fields: &[&str] = match kind.as_str() {
        "smpp" => &["host", "systemId", "password"],
        "twilio" => &["accountSid", "authToken", "fromNumber"],
        "vonage" => &["apiKey", "apiSecret", "fromNumber"],
        _ => &["hash", "senderId"],
    };
    for name in fields {
        if let Some(v) = f.get(name) {
            credentials.insert((*name).to_owned(), json!(v));
        }
    }
    if kind == "smpp" {
        credentials.insert(
            "port".into(),
            f.get("port")
                .and_then(|p| p.parse::<u64>().ok())
                .map_or(Value::Null, |p| json!(p)),
        );
    }
    if kind == "veevo"
        && let Some(from) = f.get("fromNumber")
    {
        credentials.insert("senderId".into(), json!(from));
    }
    let request = json!({
        "providerName": kind, "displayName": f.json("displayName"),
        "priority": f.get("priority").and_then(|p| p.parse::<i32>().ok()), "credentials": credentials,
    });
    match data(
        admin::create_provider(
            State(state.clone()),
            console.principal.clone(),
            ApiJson(req(request).page(&console)?),
        )
        .await,
    )
    .await
    {
        Ok(p) => {
            settings_view(
                &state,
                &console,
                Some((
                    false,
                    format!("Added provider {}.", text(&p["displayName"])),
                )),
                None,
                StatusCode::CREATED,
            )
            .await
        }
        Err(e) => {
            settings_view(
                &state,
                &console,
                Some((true, e.message.to_string())),
                None,
                e.status,
            )
            .await
        }
    }
}

async fn test_provider(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    console.require_admin()?;
    let f = Form::parse(&body);
    let request = req(json!({ "to": f.json("to") })).page(&console)?;
    match data(
        admin::test_provider(
            State(state.clone()),
            console.principal.clone(),
            Path(id),
            ApiJson(request),
        )
        .await,
    )
    .await
    {
        Ok(t) => {
            settings_view(
                &state,
                &console,
                Some((
                    false,
                    format!("Test message {} queued.", text(&t["messageId"])),
                )),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            settings_view(
                &state,
                &console,
                Some((true, e.message.to_string())),
                None,
                e.status,
            )
            .await
        }
    }
}

async fn users_page(State(state): State<AppState>, console: Console) -> PageResult {
    users_view(&state, &console, None, StatusCode::OK).await
}

async fn users_view(
    state: &AppState,
    console: &Console,
    note: Option<(bool, String)>,
    status: StatusCode,
) -> PageResult {
    console.require_admin()?;
    let org = console.principal.org_id();
    let list = state
        .store()
        .list_console_users(
            org,
            sairex_store::PageRequest {
                offset: 0,
                limit: 200,
            },
        )
        .map_err(ApiError::from)
        .page(console)?;
    let body = html! {
        h1 { "Users" }
        (notice(note.as_ref()))
        section.panel {
            table { thead { tr { th { "Name" } th { "Email" } th { "Role" } th { "Last login" } th {} } }
            tbody { @for u in &list.items {
                tr { td { (u.name) } td { (u.email) } td { (format!("{:?}", u.role).to_uppercase()) }
                     td { (u.last_login_at.map(|t| crate::zone::display(t, &console.zone)).unwrap_or_default()) }
                     td { @if u.id != console.user.id {
                        form.inline method="post" action={ "/console/settings/users/" (u.id) "/delete" } {
                            (csrf(console)) button.secondary type="submit" { "Remove" } } } } }
            } } }
        }
        section.panel {
            h2 { "Add a user" }
            form method="post" action="/console/settings/users" {
                (csrf(console))
                label for="uname" { "Name" }
                input #uname type="text" name="name";
                label for="uemail" { "Email" }
                input #uemail type="email" name="email" required;
                label for="urole" { "Role" }
                select #urole name="role" { option value="member" { "Member" } option value="admin" { "Admin" } }
                label for="upassword" { "Password (at least " (users::MIN_PASSWORD) " characters)" }
                input #upassword type="password" name="password" autocomplete="new-password" required;
                div { button type="submit" { "Add user" } }
            }
        }
    };
    let mut r = page(console, "/console/settings/users", "Users", body);
    *r.status_mut() = status;
    Ok(r)
}

async fn add_user(State(state): State<AppState>, console: Console, body: Bytes) -> PageResult {
    console.require_admin()?;
    let f = Form::parse(&body);
    let Some(role) = users::parse_role(f.get("role").unwrap_or("member")) else {
        return users_view(
            &state,
            &console,
            Some((true, "role: admin or member".into())),
            StatusCode::BAD_REQUEST,
        )
        .await;
    };
    let created = users::create_user(
        state.store(),
        console.principal.org_id(),
        f.get("email").unwrap_or(""),
        f.get("name").unwrap_or(""),
        role,
        f.0.iter()
            .find(|(k, _)| k == "password")
            .map_or("", |(_, v)| v.as_str()),
    )
    .await;
    match created {
        Ok(u) => {
            users_view(
                &state,
                &console,
                Some((false, format!("Added {}.", u.email))),
                StatusCode::CREATED,
            )
            .await
        }
        Err(e) => {
            users_view(
                &state,
                &console,
                Some((true, e.message.to_string())),
                e.status,
            )
            .await
        }
    }
}

async fn delete_user(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> PageResult {
    console.require_admin()?;
    let id = crate::routes::parse_id(&id, "user").page(&console)?;
    if id == console.user.id {
        return users_view(
            &state,
            &console,
            Some((true, "You cannot remove yourself.".into())),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    state
        .store()
        .delete_console_user(console.principal.org_id(), id)
        .await
        .map_err(ApiError::from)
        .page(&console)?;
    users_view(
        &state,
        &console,
        Some((false, "User removed.".into())),
        StatusCode::OK,
    )
    .await
}
