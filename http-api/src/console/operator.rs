//! The superadmin's console: a sign-in with the `[admin]` token, and the operator view of
//! blueprint §5 (organizations, every provider's binds live, queue depths, the store's size).
//!
//! The superadmin is no console user of an organization: it is whoever holds the token, as on
//! `/api/admin/*`. Its session is a console session of organization [`OPERATOR_ORG`] (no real
//! organization has id 0) whose `user_id` is a fingerprint of the token it signed in with, so
//! changing the token in the config ends every operator session at its next request. An
//! operator session opens only these pages; an organization's session never opens them.
//!
//! Every figure and form goes through the admin API's handlers (`routes::admin::status`,
//! `list_organizations`, `create_organization`, `update_organization`, the users route), so
//! the rules are theirs.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use sairex_store::model::{ConsoleSession, Id};
use sairex_store::now_ms;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::layout::{self, text};
use super::{
    LOGIN_COOKIE, PageError, SESSION_COOKIE, checked_csrf, client_ip, cookie, origin_ok, same,
    set_cookie,
};
use crate::Secret;
use crate::auth::base62_32;
use crate::error::ApiError;
use crate::routes::{ApiJson, ApiQuery, admin};
use crate::state::AppState;

/// The organization id of operator sessions (ids of organizations start at 1).
pub(super) const OPERATOR_ORG: Id = 0;
/// Where the operator signs in.
const LOGIN_PATH: &str = "/console/operator/login";
/// How often the live part of the view reloads itself, in seconds.
const REFRESH_SECONDS: u32 = 3;

/// The operator session's `user_id`: 64 bits of a domain-separated SHA-256 of the token.
fn fingerprint(token: &Secret) -> Id {
    let digest = Sha256::new()
        .chain_update(b"sairex console operator session\0")
        .chain_update(token.expose().as_bytes())
        .finalize();
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(bytes)
}

/// A signed-in operator: put in the request by [`require_operator`].
#[derive(Clone)]
pub(super) struct Operator {
    csrf: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Operator {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Operator>()
            .cloned()
            .ok_or_else(|| Redirect::to(LOGIN_PATH).into_response())
    }
}

pub(super) fn router(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .route("/console/operator", get(view))
        .route("/console/operator/live", get(live))
        .route("/console/operator/organizations", post(add_organization))
        .route(
            "/console/operator/organizations/{id}",
            get(organization_page).post(edit_organization),
        )
        .route(
            "/console/operator/organizations/{id}/active",
            post(set_active),
        )
        .route("/console/operator/users", post(add_user))
        .route_layer(from_fn_with_state(state, require_operator));
    Router::new()
        .route(LOGIN_PATH, get(login_page).post(login))
        .merge(protected)
}

fn to_login() -> Response {
    Redirect::to(LOGIN_PATH).into_response()
}

/// Loads the operator session of the cookie (an operator session of the current token), checks
/// CSRF of state-changing requests, and puts an [`Operator`] in the request.
async fn require_operator(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(token) = state.settings().admin_token.clone() else {
        return to_login();
    };
    let Some(session_id) = cookie(request.headers(), SESSION_COOKIE).map(str::to_owned) else {
        return to_login();
    };
    let session = match state.store().console_session(&session_id, now_ms()) {
        Ok(Some(s)) if s.organization_id == OPERATOR_ORG && s.user_id == fingerprint(&token) => s,
        Ok(_) => return to_login(),
        Err(e) => return PageError::from(ApiError::from(e)).into_response(),
    };
    let mut request = request;
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        request = match checked_csrf(&state, request, &session.csrf_token).await {
            Ok(request) => request,
            Err(refused) => return refused,
        };
    }
    request.extensions_mut().insert(Operator {
        csrf: session.csrf_token,
    });
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    response
}

// ---- Sign-in ---------------------------------------------------------------------------

fn login_response(state: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let token = base62_32(rand::random());
    let body = html! {
        main.login {
            h1 { "Sairex SMS operator" }
            p { "Sign in with the superadmin token (" code { "[admin] token" } " of the configuration)." }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form method="post" action=(LOGIN_PATH) {
                input type="hidden" name="_csrf" value=(token);
                label for="token" { "Superadmin token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Sign in" }
            }
            p.hint { a href="/console/login" { "Organization users sign in here." } }
        }
    };
    let mut response = (status, layout::bare("Operator sign-in", body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, &token, LOGIN_PATH, 3600),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn login_page(State(state): State<AppState>) -> Response {
    login_response(&state, StatusCode::OK, None)
}

const BAD_TOKEN: &str = "Wrong superadmin token.";

/// `POST /console/operator/login`: the token, compared in constant time (as its SHA-256, so
/// its length does not show), throttled per address like the users' sign-in.
async fn login(State(state): State<AppState>, request: Request) -> Response {
    let now = now_ms();
    let ip = client_ip(&request);
    let login_cookie = cookie(request.headers(), LOGIN_COOKIE).map(str::to_owned);
    if !origin_ok(request.headers()) {
        return login_response(
            &state,
            StatusCode::FORBIDDEN,
            Some("Cross-site request refused."),
        );
    }
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), 64 * 1024).await else {
        return login_response(&state, StatusCode::BAD_REQUEST, Some(BAD_TOKEN));
    };
    let (mut given, mut csrf) = (String::new(), String::new());
    for (k, v) in form_urlencoded::parse(&bytes) {
        match k.as_ref() {
            "token" => given = v.into_owned(),
            "_csrf" => csrf = v.into_owned(),
            _ => {}
        }
    }
    if !login_cookie.is_some_and(|t| same(&t, &csrf)) {
        return login_response(
            &state,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired; please try again."),
        );
    }
    // The token cannot be guessed, so only addresses are throttled: a per-account lock would
    // let anyone lock the operator out.
    let account = format!(
        "#operator {}",
        ip.map(|i| i.to_string()).unwrap_or_default()
    );
    if let Some(wait) = state.console_throttle().locked(&account, ip, now) {
        return login_response(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "Too many failed sign-ins; try again in {} minutes.",
                wait.div_ceil(60)
            )),
        );
    }
    let Some(token) = state.settings().admin_token.clone() else {
        return login_response(
            &state,
            StatusCode::UNAUTHORIZED,
            Some("No superadmin token is configured."),
        );
    };
    let matches = bool::from(subtle::ConstantTimeEq::ct_eq(
        Sha256::digest(given.trim().as_bytes()).as_slice(),
        Sha256::digest(token.expose().as_bytes()).as_slice(),
    ));
    if given.trim().is_empty() || !matches {
        state.console_throttle().failed(&account, ip, now);
        return login_response(&state, StatusCode::UNAUTHORIZED, Some(BAD_TOKEN));
    }
    state.console_throttle().succeeded(&account);
    let session_id = base62_32(rand::random());
    let ttl = state.settings().console_session_ttl_ms;
    let session = ConsoleSession {
        user_id: fingerprint(&token),
        organization_id: OPERATOR_ORG,
        csrf_token: base62_32(rand::random()),
        created_at: now,
        expires_at: now.saturating_add(ttl),
    };
    if let Err(e) = state
        .store()
        .create_console_session(&session_id, session)
        .await
    {
        return PageError::from(ApiError::from(e)).into_response();
    }
    let _ = state.store().purge_console_sessions(now).await;
    let mut response = Redirect::to("/console/operator").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &session_id, "/console", ttl / 1000),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_COOKIE, "", LOGIN_PATH, 0),
    );
    response
}

// ---- The view --------------------------------------------------------------------------

fn shell(op: &Operator, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (layout::head("Operator"))
            // No data-csrf: the script then opens no organization event stream here.
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "Sairex SMS" }
                    span.org { "Operator" }
                    span.user { "superadmin" }
                    form.logout method="post" action="/console/logout" {
                        input type="hidden" name="_csrf" value=(op.csrf);
                        button type="submit" { "Sign out" }
                    }
                }
                nav aria-label="Main" {
                    ul { li { a href="/console/operator" aria-current="page" { "Operator view" } } }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// The `data` of an admin handler's answer, or its error.
async fn data(result: crate::error::ApiResult) -> Result<Value, ApiError> {
    super::pages::data(result).await
}

fn op_error(op: &Operator, e: &ApiError) -> Response {
    let body = html! {
        h1 { "Not done" }
        p.error role="alert" { (e.message) }
        p { a href="/console/operator" { "Back to the operator view" } }
    };
    (e.status, shell(op, body)).into_response()
}

/// Bytes as KiB, MiB or GiB.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    #[allow(clippy::cast_precision_loss)] // For display.
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// The live part: providers and their binds, queue depths, the store's size, from
/// `GET /api/admin/status`.
async fn live_part(state: &AppState) -> Result<Markup, ApiError> {
    let s = data(admin::status(State(state.clone())).await).await?;
    let providers = s["providers"].as_array().cloned().unwrap_or_default();
    let queues = s["queues"].as_array().cloned().unwrap_or_default();
    Ok(html! {
        div #operator-live data-refresh="/console/operator/live" data-every=(REFRESH_SECONDS) {
            @if s["ok"] == json!(true) {
                p.ok role="status" #gateway-state { "All providers up; the engine is running." }
            } @else {
                div.error role="alert" #gateway-state {
                    "Problems:"
                    ul { @for p in s["problems"].as_array().into_iter().flatten() { li { (text(p)) } } }
                }
            }
            div.cards {
                div.card { div.k { "Store size" } div.v #store-size { (size(s["store"]["sizeBytes"].as_u64().unwrap_or(0))) } }
                div.card { div.k { "Ready messages" } div.v #ready-total { (queues.iter().filter_map(|q| q["ready"].as_u64()).sum::<u64>()) } }
                div.card { div.k { "Providers up" } div.v { (providers.iter().filter(|p| p["state"] == "up").count()) " / " (providers.iter().filter(|p| p["isActive"] == json!(true)).count()) } }
            }
            section.panel {
                h2 { "Providers and SMPP binds" }
                table #binds {
                    thead { tr { th { "Provider" } th { "Org" } th { "State" } th { "Bind" } th { "Window in use" } th { "Reconnects" } th { "Throughput" } th { "Last error" } } }
                    tbody {
                        @for p in &providers {
                            @let binds = p["binds"].as_array().cloned().unwrap_or_default();
                            @let rate = p["throughput"].as_f64().map_or_else(|| "measuring…".to_owned(), |r| format!("{r:.1} msg/s"));
                            @let label = format!("{} ({}, #{})", text(&p["displayName"]), text(&p["providerName"]), text(&p["id"]));
                            @let org = if p["organizationId"] == json!(0) { "system".to_owned() } else { text(&p["organizationId"]) };
                            @if binds.is_empty() {
                                tr data-provider=(text(&p["id"])) {
                                    td { (label) } td { (org) }
                                    td { span class={ "pill " (text(&p["state"])) } { (text(&p["state"])) } }
                                    td { "—" } td { "—" } td { "—" }
                                    td.rate { (rate) } td { }
                                }
                            }
                            @for b in &binds {
                                tr data-provider=(text(&p["id"])) data-bind=(text(&b["index"])) {
                                    td { (label) } td { (org) }
                                    td { span class={ "pill " (text(&p["state"])) } { (text(&p["state"])) } }
                                    td.bind-state { span class={ "pill " (text(&b["state"])) } { (text(&b["state"])) } }
                                    td.window { (text(&b["windowInUse"])) " / " (text(&b["window"])) }
                                    td { (text(&b["reconnects"])) }
                                    td.rate { (rate) }
                                    td { (text(&b["lastError"])) }
                                }
                            }
                        }
                    }
                }
                @if providers.is_empty() { p.hint { "No providers are configured." } }
                p.hint { "Throughput: messages the provider accepted per second, over up to the last minute. This part reloads every " (REFRESH_SECONDS) " seconds." }
            }
            section.panel {
                h2 { "Queue depths" }
                table #queues {
                    thead { tr { th { "Organization" } th { "Priority" } th { "Ready" } } }
                    tbody { @for q in &queues {
                        tr { td { (text(&q["organization"])) " (#" (text(&q["organizationId"])) ")" } td { (text(&q["priorityName"])) } td.ready { (text(&q["ready"])) } }
                    } }
                }
                @if queues.is_empty() { p.hint { "No messages are waiting." } }
            }
        }
    })
}

/// `GET /console/operator/live`: the live part alone, for the page's refresh.
async fn live(State(state): State<AppState>, op: Operator) -> Response {
    match live_part(&state).await {
        Ok(part) => part.into_response(),
        Err(e) => op_error(&op, &e),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct CursorQuery {
    cursor: Option<String>,
}

/// `GET /console/operator` (`?cursor=`: the next page of organizations).
async fn view(
    State(state): State<AppState>,
    op: Operator,
    Query(q): Query<CursorQuery>,
) -> Response {
    render_page(&state, &op, None, StatusCode::OK, q.cursor).await
}

async fn render(
    state: &AppState,
    op: &Operator,
    note: Option<Markup>,
    status: StatusCode,
) -> Response {
    render_page(state, op, note, status, None).await
}

async fn render_page(
    state: &AppState,
    op: &Operator,
    note: Option<Markup>,
    status: StatusCode,
    cursor: Option<String>,
) -> Response {
    let live = match live_part(state).await {
        Ok(part) => part,
        Err(e) => return op_error(op, &e),
    };
    let orgs = match data(
        admin::list_organizations(
            State(state.clone()),
            ApiQuery(
                match super::pages::req(json!({ "limit": 100, "cursor": cursor })) {
                    Ok(q) => q,
                    Err(e) => return op_error(op, &e),
                },
            ),
        )
        .await,
    )
    .await
    {
        Ok(v) => v,
        Err(e) => return op_error(op, &e),
    };
    let csrf = html! { input type="hidden" name="_csrf" value=(op.csrf); };
    let body = html! {
        h1 { "Operator view" }
        @if let Some(note) = note { (note) }
        (live)
        section.panel {
            h2 { "Organizations (" (text(&orgs["total"])) ")" }
            table #organizations {
                thead { tr { th { "Id" } th { "Name" } th { "Country" } th { "Time zone" } th { "Credit" } th { "Active" } } }
                tbody { @for o in orgs["items"].as_array().into_iter().flatten() {
                    @let id = text(&o["id"]);
                    @let active = o["isActive"] == json!(true);
                    tr data-org=(id) {
                        td { (id) } td { a href={ "/console/operator/organizations/" (id) } { (text(&o["name"])) } } td { (text(&o["defaultCountry"])) } td { (text(&o["timezone"])) }
                        td { @if o["creditBalance"].is_null() { "no limit" } @else { (text(&o["currency"])) " " (text(&o["creditBalance"])) } }
                        td {
                            (if active { "yes" } else { "no" }) " "
                            form.inline method="post" action={ "/console/operator/organizations/" (id) "/active" } {
                                (csrf) input type="hidden" name="active" value=(if active { "false" } else { "true" });
                                button.secondary type="submit" { (if active { "Deactivate" } else { "Activate" }) }
                            }
                        }
                    }
                } }
            }
            @if let Some(next) = orgs["nextCursor"].as_str() {
                p { a href={ "/console/operator?cursor=" (super::pages::urlencode(next)) } { "more →" } }
            }
        }
        section.panel {
            h2 { "Add a console user" }
            form method="post" action="/console/operator/users" {
                (csrf)
                label for="user-org" { "Organization" }
                select #user-org name="organizationId" required {
                    @for o in orgs["items"].as_array().into_iter().flatten() {
                        option value=(text(&o["id"])) { (text(&o["name"])) " (#" (text(&o["id"])) ")" }
                    }
                }
                label for="user-email" { "Email" }
                input #user-email type="email" name="email" required;
                label for="user-name" { "Name" }
                input #user-name type="text" name="name";
                label for="user-role" { "Role" }
                select #user-role name="role" { option value="ADMIN" { "Admin" } option value="MEMBER" { "Member" } }
                label for="user-password" { "Password (at least 8 characters)" }
                input #user-password type="password" name="password" autocomplete="new-password" required;
                button type="submit" { "Add user" }
            }
        }
        section.panel {
            h2 { "New organization" }
            form method="post" action="/console/operator/organizations" {
                (csrf)
                label for="org-name" { "Name" }
                input #org-name type="text" name="name" required;
                label for="org-country" { "Default country (ISO code)" }
                input #org-country type="text" name="defaultCountry" value="PK" required;
                label for="org-timezone" { "Time zone (IANA, optional: the country's)" }
                input #org-timezone type="text" name="timezone";
                button type="submit" { "Create organization" }
            }
        }
    };
    let mut response = shell(op, body).into_response();
    *response.status_mut() = status;
    response
}

/// The fields of a urlencoded form.
fn fields(body: &Bytes) -> Vec<(String, String)> {
    form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), v.trim().to_owned()))
        .collect()
}

fn field<'a>(f: &'a [(String, String)], name: &str) -> Option<&'a str> {
    f.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

/// `POST /console/operator/organizations`: `POST /api/admin/organizations`; the first admin
/// key is shown once.
async fn add_organization(State(state): State<AppState>, op: Operator, body: Bytes) -> Response {
    let f = fields(&body);
    let request = json!({
        "name": field(&f, "name"), "defaultCountry": field(&f, "defaultCountry"),
        "timezone": field(&f, "timezone"),
    });
    let result = match super::pages::req(request) {
        Ok(r) => data(admin::create_organization(State(state.clone()), ApiJson(r)).await).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(org) => {
            let note = html! {
                div.ok role="status" {
                    p { "Organization " strong { (text(&org["name"])) } " created (id " (text(&org["id"])) "). Its admin API key, shown once:" }
                    p.secret #new-org-key { (text(&org["apiKey"]["key"])) }
                    button.secondary type="button" data-copy="new-org-key" { "Copy" }
                }
            };
            render(&state, &op, Some(note), StatusCode::CREATED).await
        }
        Err(e) => {
            let note = html! { p.error role="alert" { (e.message) } };
            render(&state, &op, Some(note), e.status).await
        }
    }
}

/// `GET /console/operator/organizations/{id}`: its settings in a form.
async fn organization_page(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
) -> Response {
    organization_view(&state, &op, &id, None, StatusCode::OK).await
}

async fn organization_view(
    state: &AppState,
    op: &Operator,
    id: &str,
    note: Option<Markup>,
    status: StatusCode,
) -> Response {
    let o = match data(admin::get_organization(State(state.clone()), Path(id.to_owned())).await)
        .await
    {
        Ok(o) => o,
        Err(e) => return op_error(op, &e),
    };
    let q = &o["quietHours"];
    let body = html! {
        h1 { "Organization " (text(&o["name"])) }
        @if let Some(note) = note { (note) }
        section.panel {
            form method="post" action={ "/console/operator/organizations/" (text(&o["id"])) } {
                input type="hidden" name="_csrf" value=(op.csrf);
                label for="o-name" { "Name" }
                input #o-name type="text" name="name" value=(text(&o["name"])) required;
                label for="o-country" { "Default country (ISO code)" }
                input #o-country type="text" name="defaultCountry" value=(text(&o["defaultCountry"])) required;
                label for="o-timezone" { "Time zone (IANA; empty: the country's)" }
                input #o-timezone type="text" name="timezone" value=(text(&o["timezone"]));
                fieldset { legend { "Quiet hours (campaigns wait them out; all empty: none)" }
                    label for="o-qstart" { "From (HH:MM)" }
                    input #o-qstart type="text" name="quietStart" value=(text(&q["start"])) placeholder="21:00";
                    label for="o-qend" { "To (HH:MM)" }
                    input #o-qend type="text" name="quietEnd" value=(text(&q["end"])) placeholder="08:00";
                    label for="o-qzone" { "In time zone" }
                    input #o-qzone type="text" name="quietTimeZone" value=(text(&q["timeZone"])) placeholder="Asia/Karachi";
                }
                label { input type="checkbox" name="dltEnabled" value="true" checked[o["dltEnabled"] == true]; " DLT rules (registered templates and entity ids)" }
                label for="o-retention" { "Message retention in days (empty: the gateway's default)" }
                input #o-retention type="number" name="retentionDays" min="1" value=(text(&o["retentionDays"]));
                label for="o-credit" { "Credit balance (empty: no limit)" }
                input #o-credit type="text" name="creditBalance" value=(text(&o["creditBalance"])) inputmode="decimal";
                label for="o-currency" { "Currency" }
                input #o-currency type="text" name="currency" value=(text(&o["currency"]));
                button type="submit" { "Save" }
            }
        }
        p { a href="/console/operator" { "← Operator view" } }
    };
    let mut response = shell(op, body).into_response();
    *response.status_mut() = status;
    response
}

/// `POST /console/operator/organizations/{id}`: `PATCH /api/admin/organizations/{id}` with
/// every field of the form (an empty optional field is `null`: cleared).
async fn edit_organization(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let f = fields(&body);
    let opt = |name: &str| field(&f, name).map_or(Value::Null, |v| json!(v));
    let quiet = match (
        field(&f, "quietStart"),
        field(&f, "quietEnd"),
        field(&f, "quietTimeZone"),
    ) {
        (None, None, None) => Value::Null,
        (start, end, zone) => json!({ "start": start, "end": end, "timeZone": zone }),
    };
    let retention = field(&f, "retentionDays").map_or(Value::Null, |v| {
        v.parse::<u64>().map_or_else(|_| json!(v), |n| json!(n))
    });
    let request = json!({
        "name": opt("name"), "defaultCountry": opt("defaultCountry"), "timezone": opt("timezone"),
        "quietHours": quiet, "dltEnabled": field(&f, "dltEnabled") == Some("true"),
        "retentionDays": retention, "creditBalance": opt("creditBalance"), "currency": opt("currency"),
    });
    let result = match super::pages::req(request) {
        Ok(r) => {
            data(
                admin::update_organization(State(state.clone()), Path(id.clone()), ApiJson(r))
                    .await,
            )
            .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => {
            let note = html! { p.ok role="status" { "Saved." } };
            organization_view(&state, &op, &id, Some(note), StatusCode::OK).await
        }
        Err(e) => {
            let note = html! { p.error role="alert" { (e.message) } };
            organization_view(&state, &op, &id, Some(note), e.status).await
        }
    }
}

/// `POST /console/operator/organizations/{id}/active`: `PATCH …/organizations/{id}` with
/// `isActive`.
async fn set_active(
    State(state): State<AppState>,
    op: Operator,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let f = fields(&body);
    let request = json!({ "isActive": field(&f, "active") == Some("true") });
    let result = match super::pages::req(request) {
        Ok(r) => {
            data(admin::update_organization(State(state.clone()), Path(id), ApiJson(r)).await).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Redirect::to("/console/operator").into_response(),
        Err(e) => op_error(&op, &e),
    }
}

/// `POST /console/operator/users`: `POST /api/admin/organizations/{organizationId}/users`.
async fn add_user(State(state): State<AppState>, op: Operator, body: Bytes) -> Response {
    let f = fields(&body);
    let id = field(&f, "organizationId").unwrap_or_default().to_owned();
    let request = json!({
        "email": field(&f, "email"), "name": field(&f, "name"),
        "role": field(&f, "role"), "password": f.iter().find(|(k, _)| k == "password").map(|(_, v)| v.as_str()),
    });
    let result = match super::pages::req(request) {
        Ok(r) => {
            data(super::users::admin_create_user(State(state.clone()), Path(id), ApiJson(r)).await)
                .await
        }
        Err(e) => Err(e),
    };
    let note = match &result {
        Ok(u) => {
            html! { p.ok role="status" { "User " (text(&u["email"])) " added to organization " (text(&u["organizationId"])) "." } }
        }
        Err(e) => html! { p.error role="alert" { (e.message) } },
    };
    let status = match &result {
        Ok(_) => StatusCode::CREATED,
        Err(e) => e.status,
    };
    render(&state, &op, Some(note), status).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units_and_the_fingerprint_follows_the_token() {
        assert_eq!(size(512), "512 bytes");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 * 1024 * 1024 * 1024), "3.0 GiB");
        let a = fingerprint(&Secret::new("one"));
        assert_eq!(a, fingerprint(&Secret::new("one")));
        assert_ne!(a, fingerprint(&Secret::new("two")));
    }
}
