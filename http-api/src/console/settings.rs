//! Settings pages of one object (ADMIN): a provider (edit, health, priority order), an API
//! key (scopes and limits, rotation), a webhook (delivery log, test event), and the
//! organization's settings. Each goes through the JSON API's handler, as `pages` does.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::{get, post};
use maud::html;
use serde_json::{Map, Value, json};

use super::layout::{csrf, notice, status_pill, text, when};
use super::pages::{Form, data, page, req, urlencode};
use super::{Console, PageResult, WithConsole};
use crate::auth::Scope;
use crate::error::ApiError;
use crate::listing::ListParams;
use crate::routes::{ApiJson, ApiQuery, admin};
use crate::state::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/settings/organization", get(organization))
        .route(
            "/console/settings/providers/{id}",
            get(provider_page).post(edit_provider),
        )
        .route("/console/settings/providers/{id}/move", post(move_provider))
        .route(
            "/console/settings/api-keys/{id}",
            get(key_page).post(edit_key),
        )
        .route("/console/settings/api-keys/{id}/rotate", post(rotate_key))
        .route(
            "/console/settings/webhooks/{id}",
            get(webhook_page).post(edit_webhook),
        )
        .route(
            "/console/settings/webhooks/{id}/rotate-secret",
            post(rotate_webhook_secret),
        )
        .route("/console/settings/webhooks/{id}/test", post(test_webhook))
}

const ACTIVE: &str = "/console/settings";

// ---- Organization ----------------------------------------------------------------------

/// `GET /console/settings/organization`: the organization's settings as the superadmin set
/// them. The API lets only the superadmin change them (`PATCH /api/admin/organizations/…`),
/// so here they are read-only; the operator view edits them.
async fn organization(State(state): State<AppState>, console: Console) -> PageResult {
    console.require_admin()?;
    let o = data(
        admin::get_organization(State(state), Path(console.principal.org_id().to_string())).await,
    )
    .await
    .page(&console)?;
    let quiet = &o["quietHours"];
    let body = html! {
        h1 { "Organization" }
        section.panel {
            table.stats #org-settings { tbody {
                tr { th { "Name" } td { (text(&o["name"])) } }
                tr { th { "Default country" } td #org-country { (text(&o["defaultCountry"])) } }
                tr { th { "Time zone" } td #org-timezone { (text(&o["timezone"])) } }
                tr { th { "Quiet hours" } td #org-quiet {
                    @if quiet.is_null() { "none" } @else { (text(&quiet["start"])) "–" (text(&quiet["end"])) " (" (text(&quiet["timeZone"])) ")" }
                } }
                tr { th { "DLT rules" } td #org-dlt { @if o["dltEnabled"] == true { "on" } @else { "off" } } }
                tr { th { "Message retention" } td #org-retention {
                    @if o["retentionDays"].is_null() { "the gateway's default" } @else { (text(&o["retentionDays"])) " days" }
                } }
                tr { th { "Credit" } td {
                    @if o["creditBalance"].is_null() { "no limit" } @else { (text(&o["currency"])) " " (text(&o["creditBalance"])) }
                } }
            } }
            p.hint { "These are set by the gateway's operator (superadmin); ask them to change one." }
        }
    };
    Ok(page(&console, ACTIVE, "Organization", body))
}

// ---- Providers -------------------------------------------------------------------------

/// The credential fields of a provider kind the form edits (secrets are never shown back).
fn credential_fields(kind: &str) -> &'static [(&'static str, &'static str, bool)] {
    match kind {
        "smpp" => &[
            ("host", "Host", false),
            ("port", "Port", false),
            ("systemId", "System id", true),
            ("password", "Password", true),
        ],
        "twilio" => &[
            ("accountSid", "Account SID", true),
            ("authToken", "Auth token", true),
            ("fromNumber", "From number", true),
        ],
        "vonage" => &[
            ("apiKey", "API key", true),
            ("apiSecret", "API secret", true),
            ("fromNumber", "From number", true),
        ],
        _ => &[("hash", "Hash", true), ("senderId", "Sender id", true)],
    }
}

async fn provider_page(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> PageResult {
    provider_view(&state, &console, &id, None, StatusCode::OK).await
}

async fn provider_view(
    state: &AppState,
    console: &Console,
    id: &str,
    note: Option<(bool, String)>,
    status: StatusCode,
) -> PageResult {
    console.require_admin()?;
    let p = data(
        admin::get_provider(
            State(state.clone()),
            console.principal.clone(),
            Path(id.to_owned()),
        )
        .await,
    )
    .await
    .page(console)?;
    let kind = text(&p["providerName"]);
    let action = format!("/console/settings/providers/{}", text(&p["id"]));
    let body = html! {
        h1 { (text(&p["displayName"])) }
        (notice(note.as_ref()))
        section.panel #health {
            h2 { "Health" }
            table.stats { tbody {
                tr { th { "Status" } td #health-status { (status_pill(&text(&p["healthStatus"]), None)) } }
                tr { th { "Failed checks in a row" } td #health-failures { (text(&p["failureCount"])) } }
                tr { th { "Last check" } td { @if p["lastHealthCheck"].is_null() { "not checked yet" } @else { (when(&p["lastHealthCheck"], &console.zone)) } } }
            } }
            p.hint { "The health monitor checks the provider periodically; three failed checks in a row mark it DOWN and the dispatcher fails over to the next provider." }
        }
        section.panel {
            h2 { "Edit" }
            form method="post" action=(action) {
                (csrf(console))
                label for="displayName" { "Display name" }
                input #displayName type="text" name="displayName" value=(text(&p["displayName"])) required;
                label for="priority" { "Priority (lower is tried first)" }
                input #priority type="number" name="priority" value=(text(&p["priority"]));
                label { input type="checkbox" name="isActive" value="true" checked[p["isActive"] == true]; " Active" }
                label for="costPerSegment" { "Cost per segment (optional)" }
                input #costPerSegment type="text" name="costPerSegment" value=(text(&p["costPerSegment"])) inputmode="decimal";
                fieldset { legend { "Credentials (" (kind) "; leave a field empty to keep it)" }
                    @for (name, label, secret) in credential_fields(&kind) {
                        @let shown = if *secret { String::new() } else { text(&p["credentials"][*name]) };
                        label for={ "c-" (name) } { (label) }
                        input id={ "c-" (name) } type=(if *secret { "password" } else { "text" }) name=(name) value=(shown) autocomplete="off";
                    }
                }
                div { button type="submit" { "Save" } }
            }
        }
        p { a href="/console/settings#providers" { "← All providers" } }
    };
    let mut r = page(console, ACTIVE, "Provider", body);
    *r.status_mut() = status;
    Ok(r)
}

/// `POST /console/settings/providers/{id}`: `PUT /api/sms/providers/{id}` with the form's
/// fields; empty credential fields are left out, so the stored ones stay.
async fn edit_provider(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    console.require_admin()?;
    let f = Form::parse(&body);
    let current = data(
        admin::get_provider(
            State(state.clone()),
            console.principal.clone(),
            Path(id.clone()),
        )
        .await,
    )
    .await
    .page(&console)?;
    let mut credentials = Map::new();
    for (name, _, _) in credential_fields(&text(&current["providerName"])) {
        if let Some(v) = f.get(name) {
            let v = if *name == "port" {
                v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n))
            } else {
                json!(v)
            };
            credentials.insert((*name).to_owned(), v);
        }
    }
    let mut request = json!({
        "displayName": f.json("displayName"),
        "isActive": f.get("isActive") == Some("true"),
        "costPerSegment": f.json("costPerSegment"),
    });
    if let Some(priority) = f.get("priority") {
        // A priority that is no integer is the API's 400, with its message.
        request["priority"] = priority
            .parse::<i32>()
            .map_or_else(|_| json!(priority), |n| json!(n));
    }
    if !credentials.is_empty() {
        request["credentials"] = Value::Object(credentials);
    }
    let result = match req(request) {
        Ok(r) => {
            data(
                admin::update_provider(
                    State(state.clone()),
                    console.principal.clone(),
                    Path(id.clone()),
                    ApiJson(r),
                )
                .await,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            provider_view(
                &state,
                &console,
                &id,
                Some((false, "Saved.".into())),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            let status = e.status;
            provider_view(
                &state,
                &console,
                &id,
                Some((true, e.message.into_owned())),
                status,
            )
            .await
        }
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct MoveQuery {
    dir: Option<String>,
}

/// `POST /console/settings/providers/{id}/move?dir=up|down`: swaps the provider with its
/// neighbour in the dispatch order (priority, then id) and numbers the organization's
/// providers 1, 2, … in that order, each change through `PUT /api/sms/providers/{id}`.
async fn move_provider(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Query(q): Query<MoveQuery>,
) -> PageResult {
    console.require_admin()?;
    let up = match q.dir.as_deref() {
        Some("up") => true,
        Some("down") => false,
        _ => return Err(ApiError::invalid("dir: up or down")).page(&console),
    };
    let mut all: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut query = json!({ "limit": 100 });
        if let Some(c) = &cursor {
            query["cursor"] = json!(c);
        }
        let listed = data(
            admin::list_providers(
                State(state.clone()),
                console.principal.clone(),
                ApiQuery(req::<ListParams>(query).page(&console)?),
            )
            .await,
        )
        .await
        .page(&console)?;
        all.extend(listed["items"].as_array().cloned().unwrap_or_default());
        match listed["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    all.sort_by_key(|p| {
        (
            p["priority"].as_i64().unwrap_or(0),
            p["id"].as_u64().unwrap_or(0),
        )
    });
    let at = all
        .iter()
        .position(|p| text(&p["id"]) == id)
        .ok_or_else(|| ApiError::not_found("provider"))
        .page(&console)?;
    let other = if up { at.checked_sub(1) } else { Some(at + 1) };
    if let Some(other) = other.filter(|o| *o < all.len()) {
        all.swap(at, other);
    }
    for (i, p) in all.iter().enumerate() {
        let want = i64::try_from(i + 1).unwrap_or(i64::MAX);
        if p["priority"].as_i64() != Some(want) {
            data(
                admin::update_provider(
                    State(state.clone()),
                    console.principal.clone(),
                    Path(text(&p["id"])),
                    ApiJson(req(json!({ "priority": want })).page(&console)?),
                )
                .await,
            )
            .await
            .page(&console)?;
        }
    }
    Ok(Redirect::to("/console/settings#providers").into_response())
}

// ---- API keys --------------------------------------------------------------------------

/// The organization's key `id` as `GET /api/sms/api-keys` lists it (the API has no single
/// key route), paging through the list.
async fn find_key(state: &AppState, console: &Console, id: &str) -> Result<Value, ApiError> {
    let mut cursor: Option<String> = None;
    loop {
        let mut query = json!({ "limit": 100 });
        if let Some(c) = &cursor {
            query["cursor"] = json!(c);
        }
        let listed = data(
            admin::list_keys(
                State(state.clone()),
                console.principal.clone(),
                ApiQuery(req::<ListParams>(query)?),
            )
            .await,
        )
        .await?;
        if let Some(k) = listed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|k| text(&k["id"]) == id)
        {
            return Ok(k.clone());
        }
        match listed["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Err(ApiError::not_found("api key")),
        }
    }
}

async fn key_page(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> PageResult {
    key_view(&state, &console, &id, None, StatusCode::OK).await
}

async fn key_view(
    state: &AppState,
    console: &Console,
    id: &str,
    note: Option<(bool, String)>,
    status: StatusCode,
) -> PageResult {
    console.require_admin()?;
    let k = find_key(state, console, id).await.page(console)?;
    let kid = text(&k["id"]);
    let scopes: Vec<String> = k["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(text)
        .collect();
    let active = k["isActive"] == true;
    let body = html! {
        h1 { "API key " (text(&k["name"])) }
        (notice(note.as_ref()))
        section.panel {
            table.stats { tbody {
                tr { th { "Prefix" } td { code { (text(&k["keyPrefix"])) "…" } } }
                tr { th { "State" } td #key-state { @if active { "active" } @else { "revoked" } } }
                tr { th { "Last used" } td { @if k["lastUsedAt"].is_null() { "never" } @else { (when(&k["lastUsedAt"], &console.zone)) } } }
                tr { th { "Created" } td { (when(&k["createdAt"], &console.zone)) } }
            } }
        }
        @if active {
            section.panel {
                h2 { "Scopes and limits" }
                form method="post" action={ "/console/settings/api-keys/" (kid) } {
                    (csrf(console))
                    label for="kname" { "Name" }
                    input #kname type="text" name="name" value=(text(&k["name"])) required;
                    fieldset { legend { "Scopes" }
                        @for s in Scope::ALL {
                            label { input type="checkbox" name="scopes" value=(s.name()) checked[scopes.iter().any(|x| x == s.name())]; " " (s.name()) }
                        }
                    }
                    label for="krpm" { "Requests per minute" }
                    input #krpm type="number" name="rateLimitPerMin" min="1" value=(text(&k["rateLimitPerMin"]));
                    label for="krpd" { "Requests per day" }
                    input #krpd type="number" name="rateLimitPerDay" min="1" value=(text(&k["rateLimitPerDay"]));
                    div { button type="submit" { "Save" } }
                }
            }
            section.panel {
                h2 { "Rotate" }
                p { "A new key with the same name, scopes and limits replaces this one, which stops working at once." }
                form method="post" action={ "/console/settings/api-keys/" (kid) "/rotate" } {
                    (csrf(console)) button type="submit" { "Rotate key" }
                }
            }
        }
        p { a href="/console/settings#api-keys" { "← All API keys" } }
    };
    let mut r = page(console, ACTIVE, "API key", body);
    *r.status_mut() = status;
    Ok(r)
}

/// A form number as JSON: the integer, or the text for the API to refuse.
fn number(f: &Form, name: &str) -> Option<Value> {
    f.get(name)
        .map(|v| v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n)))
}

/// `POST /console/settings/api-keys/{id}`: `PUT /api/sms/api-keys/{id}`.
async fn edit_key(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    console.require_admin()?;
    let f = Form::parse(&body);
    let mut request = json!({ "name": f.json("name"), "scopes": f.all("scopes") });
    for field in ["rateLimitPerMin", "rateLimitPerDay"] {
        if let Some(v) = number(&f, field) {
            request[field] = v;
        }
    }
    let result = match req(request) {
        Ok(r) => {
            data(
                admin::update_key(
                    State(state.clone()),
                    console.principal.clone(),
                    Path(id.clone()),
                    ApiJson(r),
                )
                .await,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let (note, status) = match result {
        Ok(_) => ((false, "Saved.".to_owned()), StatusCode::OK),
        Err(e) => ((true, e.message.into_owned()), e.status),
    };
    key_view(&state, &console, &id, Some(note), status).await
}

/// `POST /console/settings/api-keys/{id}/rotate`: the new key, shown once.
async fn rotate_key(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> PageResult {
    console.require_admin()?;
    let k = data(
        admin::rotate_key(
            State(state.clone()),
            console.principal.clone(),
            Path(id.clone()),
        )
        .await,
    )
    .await
    .page(&console)?;
    let body = html! {
        h1 { "Key rotated" }
        div.panel role="status" {
            p { "The old key no longer works. The new key — copy it now, it is shown only once:" }
            p.secret #secret { (text(&k["key"])) }
            button.secondary type="button" data-copy="secret" { "Copy" }
        }
        p { a href={ "/console/settings/api-keys/" (text(&k["id"])) } { "The new key's settings" } }
    };
    let mut r = page(&console, ACTIVE, "Key rotated", body);
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

// ---- Webhooks --------------------------------------------------------------------------

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct CursorQuery {
    cursor: Option<String>,
}

async fn webhook_page(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Query(q): Query<CursorQuery>,
) -> PageResult {
    webhook_view(&state, &console, &id, q.cursor, None, StatusCode::OK).await
}

/// A webhook with its delivery log (newest first, 50 a page, by the API's cursor).
async fn webhook_view(
    state: &AppState,
    console: &Console,
    id: &str,
    cursor: Option<String>,
    note: Option<(bool, String)>,
    status: StatusCode,
) -> PageResult {
    console.require_admin()?;
    let w = data(
        admin::get_webhook(
            State(state.clone()),
            console.principal.clone(),
            Path(id.to_owned()),
        )
        .await,
    )
    .await
    .page(console)?;
    let mut query = json!({ "limit": 50 });
    if let Some(c) = &cursor {
        query["cursor"] = json!(c);
    }
    let log = data(
        admin::webhook_deliveries(
            State(state.clone()),
            console.principal.clone(),
            Path(id.to_owned()),
            ApiQuery(req::<ListParams>(query).page(console)?),
        )
        .await,
    )
    .await
    .page(console)?;
    let wid = text(&w["id"]);
    let body = html! {
        h1 { "Webhook" }
        (notice(note.as_ref()))
        section.panel {
            table.stats { tbody {
                tr { th { "URL" } td { (text(&w["url"])) } }
                tr { th { "Events" } td { (w["events"].as_array().map(|v| v.iter().map(text).collect::<Vec<_>>().join(", ")).unwrap_or_default()) } }
                tr { th { "State" } td { @if w["isActive"] == true { "active" } @else { "disabled" } } }
                tr { th { "Failures in a row" } td { (text(&w["consecutiveFails"])) } }
            } }
            form method="post" action={ "/console/settings/webhooks/" (wid) "/test" } {
                (csrf(console)) button type="submit" { "Send test event" }
            }
        }
        section.panel {
            h2 { "Edit" }
            @let events: Vec<String> = w["events"].as_array().into_iter().flatten().map(text).collect();
            form method="post" action={ "/console/settings/webhooks/" (wid) } {
                (csrf(console))
                label for="wurl" { "URL" }
                input #wurl type="url" name="url" value=(text(&w["url"])) required;
                fieldset { legend { "Events" }
                    @for e in admin::WEBHOOK_EVENTS {
                        label { input type="checkbox" name="events" value=(e) checked[events.iter().any(|x| x == e || x == "*")]; " " (e) }
                    }
                }
                label { input type="checkbox" name="isActive" value="true" checked[w["isActive"] == true]; " Active (re-enabling starts the failure count over)" }
                div { button type="submit" { "Save" } }
            }
            form method="post" action={ "/console/settings/webhooks/" (wid) "/rotate-secret" } {
                (csrf(console))
                p.hint { "A new signing secret replaces the current one at once; update the receiver." }
                button.secondary type="submit" { "Rotate signing secret" }
            }
        }
        section.panel {
            h2 { "Delivery log (" (text(&log["total"])) ")" }
            table #deliveries {
                thead { tr { th { "When" } th { "Event" } th { "Attempt" } th { "Result" } th { "HTTP" } th { "Latency" } th { "Response" } } }
                tbody { @for d in log["items"].as_array().into_iter().flatten() {
                    tr data-delivery=(text(&d["id"])) {
                        td { (when(&d["createdAt"], &console.zone)) }
                        td { (text(&d["eventType"])) }
                        td { (text(&d["attempt"])) }
                        td { @if d["success"] == true { span.pill.delivered { "ok" } } @else { span.pill.failed { "failed" } } }
                        td { (text(&d["httpStatus"])) }
                        td { @if !d["latencyMs"].is_null() { (text(&d["latencyMs"])) " ms" } }
                        td { code { (text(&d["responseBody"]).chars().take(200).collect::<String>()) } }
                    }
                } }
            }
            @if let Some(next) = log["nextCursor"].as_str() {
                p { a href={ "/console/settings/webhooks/" (wid) "?cursor=" (urlencode(next)) } { "older →" } }
            }
        }
        p { a href="/console/settings#webhooks" { "← All webhooks" } }
    };
    let mut r = page(console, ACTIVE, "Webhook", body);
    *r.status_mut() = status;
    Ok(r)
}

/// `POST /console/settings/webhooks/{id}`: `PUT /api/sms/webhooks/{id}` with the URL, the
/// events and whether it is active.
async fn edit_webhook(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    console.require_admin()?;
    let f = Form::parse(&body);
    let request = json!({
        "url": f.json("url"), "events": f.all("events"),
        "isActive": f.get("isActive") == Some("true"),
    });
    let result = match req(request) {
        Ok(r) => {
            data(
                admin::update_webhook(
                    State(state.clone()),
                    console.principal.clone(),
                    Path(id.clone()),
                    ApiJson(r),
                )
                .await,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let (note, status) = match result {
        Ok(_) => ((false, "Saved.".to_owned()), StatusCode::OK),
        Err(e) if e.status == StatusCode::NOT_FOUND => return Err(e).page(&console),
        Err(e) => ((true, e.message.into_owned()), e.status),
    };
    webhook_view(&state, &console, &id, None, Some(note), status).await
}

/// `POST /console/settings/webhooks/{id}/rotate-secret`: the new secret, shown once.
async fn rotate_webhook_secret(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> PageResult {
    console.require_admin()?;
    let w = data(
        admin::update_webhook(
            State(state.clone()),
            console.principal.clone(),
            Path(id.clone()),
            ApiJson(req(json!({ "rotateSecret": true })).page(&console)?),
        )
        .await,
    )
    .await
    .page(&console)?;
    let body = html! {
        h1 { "Signing secret rotated" }
        div.panel role="status" {
            p { "The new signing secret — copy it now, it is shown only once:" }
            p.secret #secret { (text(&w["secret"])) }
            button.secondary type="button" data-copy="secret" { "Copy" }
        }
        p { a href={ "/console/settings/webhooks/" (text(&w["id"])) } { "Back to the webhook" } }
    };
    Ok(page(&console, ACTIVE, "Secret rotated", body))
}

/// `POST /console/settings/webhooks/{id}/test`: `POST /api/sms/webhooks/{id}/test`; the
/// attempt is in the delivery log below the answer.
async fn test_webhook(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> PageResult {
    console.require_admin()?;
    let result = data(
        admin::test_webhook(
            State(state.clone()),
            console.principal.clone(),
            Path(id.clone()),
        )
        .await,
    )
    .await;
    let (note, status) = match result {
        Ok(t) if t["success"] == true => (
            (
                false,
                format!(
                    "Test event delivered: HTTP {} in {} ms.",
                    text(&t["httpStatus"]),
                    text(&t["latencyMs"])
                ),
            ),
            StatusCode::OK,
        ),
        Ok(t) => (
            (
                true,
                format!(
                    "Test event not accepted: {}",
                    if t["error"].is_null() {
                        format!("HTTP {}", text(&t["httpStatus"]))
                    } else {
                        text(&t["error"])
                    }
                ),
            ),
            StatusCode::OK,
        ),
        Err(e) if e.status == StatusCode::NOT_FOUND => return Err(e).page(&console),
        Err(e) => ((true, e.message.into_owned()), e.status),
    };
    webhook_view(&state, &console, &id, None, Some(note), status).await
}
