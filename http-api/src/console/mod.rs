//! The web console (blueprint §5): server-rendered pages under `/console/`, on the API's
//! listener, for people who do not use curl.
//!
//! # How it keeps to one implementation of each rule
//! A console user acts through a [`Principal`] of its organization (ADMIN: every scope; MEMBER:
//! every scope but `admin`), and every page and form calls the JSON API's own handler or its
//! core function with it (`routes::send::accept_one`, `routes::contacts::create`, …), then
//! renders the handler's answer. So validation, opt-out, DLT, credit, queue limits and tenant
//! scoping are the API's, not a second copy. Every state-changing request is also counted by
//! the API's rate limiter ([`Limiter::check_user`](crate::limits::Limiter::check_user)).
//!
//! # Sessions (blueprint §6.1)
//! A login creates a random 256-bit session id, sent in an HttpOnly, SameSite=Lax cookie
//! (Secure when `public_base_url` is https) and stored only as its SHA-256 with a fixed expiry.
//! Every state-changing request must carry the session's CSRF token (a hidden `_csrf` field, or
//! the `X-CSRF-Token` header, or `?_csrf=` for multipart forms), and a cross-site `Origin` is
//! refused. The login form has its own token (double-submit cookie). Failed logins are
//! throttled per account and per address; the error never says which part was wrong.
//!
//! # Layout
//! - `users`: passwords, user creation, the superadmin JSON routes, the login throttle.
//! - `layout`: the page shell (maud), navigation, small view helpers; `assets`: CSS and JS.
//! - `pages`: one function per page and form; `settings`: the pages of one provider, API key
//!   or webhook, and the organization's settings.
//! - `operator`: the superadmin's sign-in (with the `[admin]` token) and operator view.

mod assets;
mod layout;
mod operator;
mod pages;
mod settings;
pub(crate) mod users;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use sairex_store::model::{ConsoleRole, ConsoleSession, ConsoleUser, Millis};
use sairex_store::now_ms;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::auth::{Principal, base62_32};
use crate::error::ApiError;
use crate::limits::Verdict;
use crate::state::AppState;

pub use users::{MIN_PASSWORD, create_user, hash_password, parse_role};

/// The session cookie.
const SESSION_COOKIE: &str = "sairex_session";
/// The login form's CSRF cookie.
const LOGIN_COOKIE: &str = "sairex_login";
/// How long a session lasts from login, unless [`ApiSettings::console_session_ttl_ms`] says.
pub const DEFAULT_SESSION_TTL_MS: Millis = 12 * 3600 * 1000;

/// Who is using the console: put in the request by [`require_session`].
#[derive(Clone)]
pub(crate) struct Console {
    pub(crate) user: ConsoleUser,
    pub(crate) org_name: String,
    /// The organization's time zone.
    pub(crate) zone: jiff::tz::TimeZone,
    pub(crate) principal: Principal,
    pub(crate) csrf: String,
}

impl Console {
    pub(crate) fn is_admin(&self) -> bool {
        self.user.role == ConsoleRole::Admin
    }

    /// 403 for a MEMBER on an ADMIN page (its own organization's page: nothing to hide).
    pub(crate) fn require_admin(&self) -> Result<(), PageError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(PageError {
                status: StatusCode::FORBIDDEN,
                message: "This page is for organization admins.".into(),
                console: Some(Box::new(self.clone())),
            })
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Console>()
            .cloned()
            .ok_or_else(|| Redirect::to("/console/login").into_response())
    }
}

/// An error shown as a page (inside the shell when the user is known).
pub(crate) struct PageError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
    pub(crate) console: Option<Box<Console>>,
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        Self {
            status: e.status,
            message: e.message.into_owned(),
            console: None,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = match self.status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            _ => "Something went wrong",
        };
        let body = html! {
            h1 { (title) }
            p.error role="alert" { (self.message) }
            p { a href="/console/" { "Back to the dashboard" } }
        };
        let page = match &self.console {
            Some(console) => layout::shell(console, "", title, body),
            None => layout::bare(title, body),
        };
        (self.status, page).into_response()
    }
}

/// What page handlers return.
pub(crate) type PageResult = Result<Response, PageError>;

/// Attaches the user to an API error, so the error page keeps the navigation.
pub(crate) trait WithConsole<T> {
    fn page(self, console: &Console) -> Result<T, PageError>;
}

impl<T, E: Into<PageError>> WithConsole<T> for Result<T, E> {
    fn page(self, console: &Console) -> Result<T, PageError> {
        self.map_err(|e| {
            let mut e = e.into();
            e.console = Some(Box::new(console.clone()));
            e
        })
    }
}

/// The console's routes; `/` redirects to it.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    let protected = pages::routes().route_layer(from_fn_with_state(state.clone(), require_session));
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/assets/console.css", get(assets::css))
        .route("/console/assets/console.js", get(assets::js))
        .merge(operator::router(state))
        .merge(protected)
}

/// A cookie of the request.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn secure(state: &AppState) -> bool {
    state
        .settings()
        .public_base_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
}

fn set_cookie(state: &AppState, name: &str, value: &str, path: &str, max_age: u64) -> HeaderValue {
    let secure = if secure(state) { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn same(a: &str, b: &str) -> bool {
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Refuses a cross-site `Origin` (a browser sends one on every cross-origin POST).
fn origin_ok(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    origin_host.eq_ignore_ascii_case(host)
}

fn client_ip(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The form field `name` of a urlencoded body.
fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn forbidden_page(message: &str) -> Response {
    PageError {
        status: StatusCode::FORBIDDEN,
        message: message.to_owned(),
        console: None,
    }
    .into_response()
}

fn to_login() -> Response {
    Redirect::to("/console/login").into_response()
}

/// A state-changing request with the session's CSRF token (the `X-CSRF-Token` header,
/// `?_csrf=`, or the `_csrf` field of a urlencoded form, whose body is read and put back) and
/// no cross-site `Origin`; otherwise the 403 page.
async fn checked_csrf(
    state: &AppState,
    request: Request,
    expected: &str,
) -> Result<Request, Response> {
    if !origin_ok(request.headers()) {
        return Err(forbidden_page("Cross-site request refused."));
    }
    let (parts, body) = request.into_parts();
    let header_token = parts
        .headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let query_token = parts
        .uri
        .query()
        .and_then(|q| form_field(q.as_bytes(), "_csrf"));
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let (token, body) = match (header_token.or(query_token), is_form) {
        (Some(token), _) => (Some(token), body),
        (None, true) => {
            let limit = state.settings().body_limit;
            let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
                return Err(forbidden_page("The form could not be read."));
            };
            (form_field(&bytes, "_csrf"), Body::from(bytes))
        }
        (None, false) => (None, body),
    };
    if !token.is_some_and(|t| same(&t, expected)) {
        return Err(forbidden_page(
            "This form has expired or did not come from this console; reload the page and try again.",
        ));
    }
    Ok(Request::from_parts(parts, body))
}

/// Loads the session of the cookie, its user and organization; checks CSRF and rate limits of
/// state-changing requests; puts a [`Console`] in the request.
async fn require_session(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let now = now_ms();
    let Some(session_id) = cookie(request.headers(), SESSION_COOKIE).map(str::to_owned) else {
        return to_login();
    };
    let session = match state.store().console_session(&session_id, now) {
        Ok(Some(session)) => session,
        Ok(None) => return to_login(),
        Err(e) => return PageError::from(ApiError::from(e)).into_response(),
    };
    // The superadmin's session opens the operator view, never an organization's pages.
    if session.organization_id == operator::OPERATOR_ORG {
        return Redirect::to("/console/operator").into_response();
    }
    let user = match state
        .store()
        .console_user(session.organization_id, session.user_id)
    {
        Ok(user) if user.is_active => user,
        _ => return to_login(),
    };
    let org = match state.org(user.organization_id, now) {
        Ok(org) if org.is_active => org,
        _ => return to_login(),
    };
    // The organization's time zone: the console shows times, and reads the times typed into
    // its forms, in it.
    let (org_name, zone) = state
        .store()
        .organization(org.id)
        .map(|o| (o.name.clone(), crate::zone::of(&o)))
        .unwrap_or_else(|_| (String::new(), jiff::tz::TimeZone::UTC));
    let mut request = request;
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        request = match checked_csrf(&state, request, &session.csrf_token).await {
            Ok(request) => request,
            Err(refused) => return refused,
        };
        let verdict = state.limiter().check_user(
            user.id,
            (
                state.settings().default_key_per_minute,
                state.settings().default_key_per_day,
            ),
            org.id,
            (
                state.settings().org_per_minute,
                state.settings().org_per_day,
            ),
            now,
        );
        if let Verdict::Limited { retry_after, .. } = verdict {
            let mut response = PageError {
                status: StatusCode::TOO_MANY_REQUESTS,
                message: format!("Too many requests; try again in {retry_after} seconds."),
                console: None,
            }
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return response;
        }
    }
    let admin = user.role == ConsoleRole::Admin;
    let console = Console {
        principal: Principal::console(user.id, Arc::clone(&org), admin),
        user,
        org_name,
        zone,
        csrf: session.csrf_token,
    };
    request.extensions_mut().insert(console);
    let mut response = next.run(request).await;
    // Pages hold tenant data: never cached, never framed.
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    response
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LoginForm {
    email: String,
    password: String,
    #[serde(rename = "_csrf")]
    csrf: String,
}

fn login_form(token: &str, error: Option<&str>) -> Markup {
    html! {
        main.login {
            h1 { "Sairex SMS" }
            p { "Sign in to the console." }
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            form method="post" action="/console/login" {
                input type="hidden" name="_csrf" value=(token);
                label for="email" { "Email" }
                input #email type="email" name="email" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        }
    }
}

/// The login page, with a fresh token in a cookie and the form (double submit).
fn login_response(state: &AppState, status: StatusCode, error: Option<&str>) -> Response {
    let token = base62_32(rand::random());
    let mut response = (status, layout::bare("Sign in", login_form(&token, error))).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, &token, "/console/login", 3600),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn login_page(State(state): State<AppState>) -> Response {
    login_response(&state, StatusCode::OK, None)
}

/// One message for every wrong email or password: no user enumeration.
const BAD_LOGIN: &str = "Wrong email or password.";

async fn login(State(state): State<AppState>, request: Request) -> Response {
    let now = now_ms();
    let ip = client_ip(&request);
    let cookie_token = cookie(request.headers(), LOGIN_COOKIE).map(str::to_owned);
    if !origin_ok(request.headers()) {
        return login_response(
            &state,
            StatusCode::FORBIDDEN,
            Some("Cross-site request refused."),
        );
    }
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), 64 * 1024).await else {
        return login_response(&state, StatusCode::BAD_REQUEST, Some(BAD_LOGIN));
    };
    let form: LoginForm = serde_urlencoded_form(&bytes);
    if !cookie_token.is_some_and(|t| same(&t, &form.csrf)) {
        return login_response(
            &state,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired; please try again."),
        );
    }
    let email = form.email.trim().to_lowercase();
    if let Some(wait) = state.console_throttle().locked(&email, ip, now) {
        return login_response(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!(
                "Too many failed sign-ins; try again in {} minutes.",
                wait.div_ceil(60)
            )),
        );
    }
    let user = state.store().console_user_by_email(&email).ok().flatten();
    // Verify on a blocking thread: argon2id takes tens of milliseconds by design.
    let (hash, password) = (
        user.as_ref().map_or_else(
            || users::dummy_hash().to_owned(),
            |u| u.password_hash.clone(),
        ),
        form.password,
    );
    let matches = tokio::task::spawn_blocking(move || users::verify_password(&hash, &password))
        .await
        .unwrap_or(false);
    let user = match user {
        Some(user) if matches && user.is_active => user,
        _ => {
            state.console_throttle().failed(&email, ip, now);
            return login_response(&state, StatusCode::UNAUTHORIZED, Some(BAD_LOGIN));
        }
    };
    if !state
        .org(user.organization_id, now)
        .is_ok_and(|o| o.is_active)
    {
        state.console_throttle().failed(&email, ip, now);
        return login_response(&state, StatusCode::UNAUTHORIZED, Some(BAD_LOGIN));
    }
    state.console_throttle().succeeded(&email);
    let session_id = base62_32(rand::random());
    let ttl = state.settings().console_session_ttl_ms;
    let session = ConsoleSession {
        user_id: user.id,
        organization_id: user.organization_id,
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
    let (org, id) = (user.organization_id, user.id);
    let _ = state
        .store()
        .update_console_user(org, id, move |u| {
            u.last_login_at = Some(now);
            Ok(())
        })
        .await;
    // Expired sessions go when someone logs in: no timer needed, and they are few.
    let _ = state.store().purge_console_sessions(now).await;
    let mut response = Redirect::to("/console/").into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, &session_id, "/console", ttl / 1000),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_COOKIE, "", "/console/login", 0),
    );
    response
}

/// Parses a urlencoded login form (unknown fields ignored, missing ones empty).
fn serde_urlencoded_form(bytes: &[u8]) -> LoginForm {
    let mut form = LoginForm::default();
    for (k, v) in form_urlencoded::parse(bytes) {
        match k.as_ref() {
            "email" => form.email = v.into_owned(),
            "password" => form.password = v.into_owned(),
            "_csrf" => form.csrf = v.into_owned(),
            _ => {}
        }
    }
    form
}

/// `POST /console/logout`: ends the session (its CSRF token is required like any form).
async fn logout(State(state): State<AppState>, request: Request) -> Response {
    let now = now_ms();
    let session_id = cookie(request.headers(), SESSION_COOKIE).map(str::to_owned);
    let header_token = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), 64 * 1024).await else {
        return forbidden_page("The form could not be read.");
    };
    let token = header_token.or_else(|| form_field(&bytes, "_csrf"));
    if let Some(id) = &session_id
        && let Ok(Some(session)) = state.store().console_session(id, now)
    {
        if !token.is_some_and(|t| same(&t, &session.csrf_token)) {
            return forbidden_page("This form has expired; reload the page and try again.");
        }
        if let Err(e) = state.store().delete_console_session(id).await {
            return PageError::from(ApiError::from(e)).into_response();
        }
    }
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", "/console", 0),
    );
    response
}
