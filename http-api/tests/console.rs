//! The web console over real sockets against the real router: users and sessions (login,
//! throttling, CSRF, expiry, logout), roles, tenant isolation, and pages that go through the
//! JSON API's rules.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::{ADMIN_TOKEN, FakeEngine, settings};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use sairex_http_api::ApiSettings;
use sairex_store::model::{Contact, Id};
use sairex_store::{MasterKey, Store, StoreOptions};
use serde_json::{Value, json};

struct Console {
    base: String,
    client: reqwest::Client,
    store: Store,
    engine: Arc<FakeEngine>,
    _dir: tempfile::TempDir,
}

/// A page's answer.
struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    /// The value of a hidden `_csrf` field.
    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"_csrf\" value=\"")
            .expect("a CSRF field");
        let rest = &self.body[at + "name=\"_csrf\" value=\"".len()..];
        rest[..rest.find('"').unwrap()].to_owned()
    }
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }
}

/// A signed-in browser: its session cookie and CSRF token.
#[derive(Clone)]
struct Session {
    cookie: String,
    csrf: String,
}

impl Console {
    async fn start() -> Self {
        Self::start_with(settings()).await
    }

    async fn start_with(settings: ApiSettings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(StoreOptions::new(dir.path()).with_master_key(MasterKey::generate()))
                .unwrap();
        let engine = FakeEngine::new();
        let router = sairex_http_api::router(store.clone(), engine.clone(), settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        let client = sairex_engine::http_client::builder()
            .unwrap()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            base: format!("http://{addr}"),
            client,
            store,
            engine,
            _dir: dir,
        }
    }

    async fn page(&self, request: reqwest::RequestBuilder) -> Page {
        let response = request.send().await.unwrap();
        Page {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    async fn get(&self, path: &str, session: Option<&Session>) -> Page {
        let mut r = self.client.get(format!("{}{path}", self.base));
        if let Some(s) = session {
            r = r.header("cookie", &s.cookie);
        }
        self.page(r).await
    }

    /// A form post with the session's CSRF token (unless `fields` has its own `_csrf`).
    async fn post(&self, path: &str, session: &Session, fields: &[(&str, &str)]) -> Page {
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        if !fields.iter().any(|(k, _)| *k == "_csrf") {
            form.push(("_csrf", &session.csrf));
        }
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("cookie", &session.cookie)
            .form_body(&form);
        self.page(r).await
    }

    async fn admin(&self, method: reqwest::Method, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json_body(&body)
            .send()
            .await
            .unwrap();
        {
            let status = r.status();
            (
                status,
                serde_json::from_str(&r.text().await.unwrap()).unwrap(),
            )
        }
    }

    /// A new organization (through the superadmin API) and its first admin key.
    async fn org(&self, name: &str) -> (Id, String) {
        let (status, v) = self
            .admin(
                reqwest::Method::POST,
                "/api/admin/organizations",
                json!({ "name": name, "defaultCountry": "PK" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let id = v["data"]["organization"]["id"]
            .as_u64()
            .or(v["data"]["id"].as_u64())
            .unwrap_or_else(|| panic!("{v}"));
        let key = v["data"]["apiKey"]["key"]
            .as_str()
            .or(v["data"]["apiKey"].as_str())
            .unwrap_or_default()
            .to_owned();
        (id, key)
    }

    async fn user(&self, org: Id, email: &str, role: &str) {
        let (status, v) = self
            .admin(
                reqwest::Method::POST,
                &format!("/api/admin/organizations/{org}/users"),
                json!({ "email": email, "name": "Test user", "role": role, "password": "correct horse" }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        assert_eq!(v["data"]["email"], email);
        assert!(v["data"].get("passwordHash").is_none(), "{v}");
    }

    /// Signs in through the login form, as a browser does.
    async fn try_login(&self, email: &str, password: &str) -> Page {
        let form = self.get("/console/login", None).await;
        assert_eq!(form.status, StatusCode::OK);
        let login_cookie = form.cookie("sairex_login").unwrap();
        let pair = login_cookie.split(';').next().unwrap().to_owned();
        let r = self
            .client
            .post(format!("{}/console/login", self.base))
            .header("cookie", pair)
            .form_body(&[
                ("email", email),
                ("password", password),
                ("_csrf", &form.csrf()),
            ]);
        self.page(r).await
    }

    async fn login(&self, email: &str) -> Session {
        let page = self.try_login(email, "correct horse").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        let cookie = page.cookie("sairex_session").unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let mut session = Session {
            cookie,
            csrf: String::new(),
        };
        let home = self.get("/console/", Some(&session)).await;
        assert_eq!(home.status, StatusCode::OK, "{}", home.body);
        session.csrf = home.csrf();
        session
    }
}

/// The superadmin's list of an organization's console users has the API's one list shape,
/// newest first, pages by cursor, never shows a hash, and holds that organization's users only.
#[tokio::test]
async fn the_users_list_has_the_one_list_shape_and_pages_by_cursor() {
    let c = Console::start().await;
    let (org, _) = c.org("school").await;
    let (other, _) = c.org("college").await;
    for email in ["a@school.pk", "b@school.pk", "c@school.pk"] {
        c.user(org, email, "member").await;
    }
    c.user(other, "z@college.pk", "admin").await;
    let path = format!("/api/admin/organizations/{org}/users");
    let (status, first) = c
        .admin(
            reqwest::Method::GET,
            &format!("{path}?limit=2"),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let d = &first["data"];
    assert_eq!(d.as_object().unwrap().len(), 4, "{d}");
    assert_eq!(
        (d["limit"].as_u64(), d["total"].as_u64()),
        (Some(2), Some(3)),
        "{d}"
    );
    let emails = |d: &Value| -> Vec<String> {
        d["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                assert!(u.get("passwordHash").is_none(), "{u}");
                u["email"].as_str().unwrap().to_owned()
            })
            .collect()
    };
    assert_eq!(emails(d), ["c@school.pk", "b@school.pk"]);
    let cursor = d["nextCursor"].as_str().unwrap();
    let (status, second) = c
        .admin(
            reqwest::Method::GET,
            &format!("{path}?limit=2&cursor={cursor}"),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(emails(&second["data"]), ["a@school.pk"]);
    assert_eq!(second["data"]["nextCursor"], Value::Null);

    let (status, bad) = c
        .admin(
            reqwest::Method::GET,
            &format!("{path}?limit=0"),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    let (status, _) = c
        .admin(
            reqwest::Method::GET,
            "/api/admin/organizations/999999/users",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn login_gives_an_httponly_lax_session_and_refuses_bad_credentials_alike() {
    let c = Console::start().await;
    let (org, _) = c.org("school").await;
    c.user(org, "ana@school.pk", "admin").await;

    let root = c.get("/", None).await;
    assert!(root.status.is_redirection());
    assert_eq!(root.location(), "/console/");
    let anonymous = c.get("/console/", None).await;
    assert!(anonymous.status.is_redirection());
    assert_eq!(anonymous.location(), "/console/login");

    let form = c.get("/console/login", None).await;
    assert!(form.body.contains("name=\"email\""));
    assert!(form.body.contains("name=\"password\""));
    assert!(form.body.contains("<label for=\"email\">"));

    let wrong = c.try_login("ana@school.pk", "wrong password").await;
    let unknown = c.try_login("nobody@school.pk", "correct horse").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong email or password."));
    assert!(unknown.body.contains("Wrong email or password."));
    assert!(wrong.cookie("sairex_session").is_none());

    let ok = c.try_login("ANA@school.pk", "correct horse").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    let cookie = ok.cookie("sairex_session").unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(cookie.contains("Path=/console"), "{cookie}");
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");

    let session = c.login("ana@school.pk").await;
    let home = c.get("/console/", Some(&session)).await;
    assert!(home.body.contains("Dashboard"));
    assert!(home.body.contains("school"));
    assert!(home.body.contains("<nav aria-label=\"Main\">"));
    assert!(home.body.contains("href=\"/console/settings\""));
    assert_eq!(
        home.headers.get("cache-control").unwrap().to_str().unwrap(),
        "no-store"
    );
    // A forged login form (no matching cookie token) is refused.
    let forged = c
        .page(
            c.client
                .post(format!("{}/console/login", c.base))
                .form_body(&[
                    ("email", "ana@school.pk"),
                    ("password", "correct horse"),
                    ("_csrf", "x"),
                ]),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // Assets are embedded and served.
    let css = c.get("/console/assets/console.css", None).await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.body.contains("@media (max-width"));
    let js = c.get("/console/assets/console.js", None).await;
    assert!(js.body.contains("EventSource"));
}

#[tokio::test]
async fn secure_cookie_when_the_public_url_is_https() {
    let c = Console::start_with(ApiSettings {
        public_base_url: Some("https://sms.example.com".into()),
        ..settings()
    })
    .await;
    let (org, _) = c.org("school").await;
    c.user(org, "ana@school.pk", "admin").await;
    let ok = c.try_login("ana@school.pk", "correct horse").await;
    assert!(ok.cookie("sairex_session").unwrap().contains("; Secure"));
}

#[tokio::test]
async fn csrf_is_required_on_every_change_and_sessions_expire_and_end() {
    let c = Console::start_with(ApiSettings {
        console_session_ttl_ms: 3_000,
        ..settings()
    })
    .await;
    let (org, _) = c.org("school").await;
    c.user(org, "ana@school.pk", "admin").await;
    let session = c.login("ana@school.pk").await;

    let fields = [("name", "Parents")];
    let missing = c
        .page(
            c.client
                .post(format!("{}/console/contacts/groups", c.base))
                .header("cookie", &session.cookie)
                .form_body(&fields),
        )
        .await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    let wrong = c
        .post(
            "/console/contacts/groups",
            &session,
            &[("name", "Parents"), ("_csrf", "nope")],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let cross_site = c
        .page(
            c.client
                .post(format!("{}/console/contacts/groups", c.base))
                .header("cookie", &session.cookie)
                .header("origin", "https://evil.example")
                .form_body(&[("name", "Parents"), ("_csrf", session.csrf.as_str())]),
        )
        .await;
    assert_eq!(cross_site.status, StatusCode::FORBIDDEN);
    assert_eq!(c.store.list_groups(org, page()).unwrap().total, 0);

    let good = c.post("/console/contacts/groups", &session, &fields).await;
    assert_eq!(good.status, StatusCode::OK, "{}", good.body);
    assert!(good.body.contains("Created Parents."));
    assert_eq!(c.store.list_groups(org, page()).unwrap().total, 1);

    // Server-side expiry: the same cookie stops working.
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    let expired = c.get("/console/", Some(&session)).await;
    assert!(expired.status.is_redirection());
    assert_eq!(expired.location(), "/console/login");
    let expired_post = c
        .post("/console/contacts/groups", &session, &[("name", "B")])
        .await;
    assert!(expired_post.status.is_redirection());
    assert_eq!(c.store.list_groups(org, page()).unwrap().total, 1);

    // Logout ends the session on the server.
    let session = c.login("ana@school.pk").await;
    let out = c.post("/console/logout", &session, &[]).await;
    assert!(out.status.is_redirection());
    let after = c.get("/console/", Some(&session)).await;
    assert_eq!(after.location(), "/console/login");
}

fn page() -> sairex_store::PageRequest {
    sairex_store::PageRequest {
        offset: 0,
        limit: 100,
    }
}

#[tokio::test]
async fn failed_logins_are_throttled_per_account_without_saying_whether_it_exists() {
    let c = Console::start().await;
    let (org, _) = c.org("school").await;
    c.user(org, "ana@school.pk", "admin").await;
    for _ in 0..5 {
        assert_eq!(
            c.try_login("ana@school.pk", "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            c.try_login("ghost@school.pk", "guess").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked now, even with the right password; the unknown account reads the same.
    let locked = c.try_login("ana@school.pk", "correct horse").await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(locked.body.contains("Too many failed sign-ins"));
    let ghost = c.try_login("ghost@school.pk", "guess").await;
    assert_eq!(ghost.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn failed_logins_are_throttled_per_address() {
    let c = Console::start().await;
    let (org, _) = c.org("school").await;
    c.user(org, "ana@school.pk", "admin").await;
    for i in 0..20 {
        c.try_login(&format!("user{i}@school.pk"), "guess").await;
    }
    // Another account from the same address: refused before its password is looked at.
    let locked = c.try_login("ana@school.pk", "correct horse").await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn send_goes_through_the_api_rules() {
    let c = Console::start().await;
    let (org, _) = c.org("school").await;
    c.user(org, "ana@school.pk", "member").await;
    let s = c.login("ana@school.pk").await;
    c.store
        .create_contact(Contact {
            organization_id: org,
            phone_number: "+923001112223".into(),
            is_opted_out: true,
            ..Contact::default()
        })
        .await
        .unwrap();
    c.store
        .opt_out_contact(
            org,
            c.store
                .contact_by_phone(org, "+923001112223")
                .unwrap()
                .unwrap()
                .id,
        )
        .await
        .unwrap();

    let form = c.get("/console/send", Some(&s)).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains("<label for=\"to\">"));

    let bad = c
        .post("/console/send", &s, &[("to", "12"), ("body", "Hello")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(bad.body.contains("role=\"alert\""));
    let opted_out = c
        .post(
            "/console/send",
            &s,
            &[("to", "+923001112223"), ("body", "Hello")],
        )
        .await;
    assert_eq!(opted_out.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(opted_out.body.contains("opted out"), "{}", opted_out.body);

    let sent = c
        .post(
            "/console/send",
            &s,
            &[("to", "03001234567"), ("body", "Fee due: 5000")],
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert!(
        sent.body.contains("+923001234567"),
        "local number made E.164"
    );
    let listed = c
        .store
        .list_messages(org, &Default::default(), page())
        .unwrap();
    assert_eq!(listed.total, 1);
    let m = &listed.items[0];
    assert_eq!(m.body, "Fee due: 5000");
    assert_eq!(m.api_key_id, None, "sent by a user, not a key");

    // Bulk: one good number, one bad, reported per number.
    let bulk = c
        .post(
            "/console/send/bulk",
            &s,
            &[
                ("numbers", "+923001234568\nnot-a-number"),
                ("body", "Notice"),
            ],
        )
        .await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.body);
    assert!(
        bulk.body.contains("1 accepted, 1 rejected"),
        "{}",
        bulk.body
    );

    // The preview is the API's: encoding and segments.
    let preview = c
        .page(
            c.client
                .post(format!("{}/console/preview", c.base))
                .header("cookie", &s.cookie)
                .header("x-csrf-token", &s.csrf)
                .form_body(&[("body", "سلام")]),
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK);
    assert!(
        preview.body.starts_with("UCS-2 · 1 segment"),
        "{}",
        preview.body
    );

    // Messages list and detail with its timeline.
    let list = c.get("/console/messages", Some(&s)).await;
    assert!(list.body.contains("Fee due: 5000"));
    let detail = c
        .get(&format!("/console/messages/{}", m.id), Some(&s))
        .await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("Timeline"));
    assert!(detail.body.contains("QUEUED"));
}

#[tokio::test]
async fn members_cannot_open_settings_and_other_tenants_data_is_never_visible() {
    let c = Console::start().await;
    let (a, _) = c.org("school-a").await;
    let (b, key_b) = c.org("school-b").await;
    c.user(a, "admin@a.pk", "admin").await;
    c.user(a, "member@a.pk", "member").await;
    let member = c.login("member@a.pk").await;
    let admin = c.login("admin@a.pk").await;

    for path in ["/console/settings", "/console/settings/users"] {
        assert_eq!(
            c.get(path, Some(&member)).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
        assert_eq!(
            c.get(path, Some(&admin)).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    let home = c.get("/console/", Some(&member)).await;
    assert!(!home.body.contains("href=\"/console/settings\""));
    let forbidden = c
        .post(
            "/console/settings/api-keys",
            &member,
            &[("name", "x"), ("scopes", "admin")],
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let forbidden = c
        .post(
            "/console/settings/users",
            &member,
            &[
                ("email", "x@a.pk"),
                ("password", "long enough"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    assert!(c.store.console_user_by_email("x@a.pk").unwrap().is_none());

    // Organization B's message and campaign, by URL guessing.
    let r = c
        .client
        .post(format!("{}/api/sms/send", c.base))
        .bearer_auth(&key_b)
        .json_body(&json!({ "to": "+923009998887", "body": "B's secret" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let b_message: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let b_id = b_message["data"]["messageId"].as_u64().unwrap();
    let r = c
        .client
        .post(format!("{}/api/sms/campaigns", c.base))
        .bearer_auth(&key_b)
        .json_body(&json!({ "name": "B campaign", "messageBody": "x", "recipients": [{ "to": "+923009998887" }] }))
        .send()
        .await
        .unwrap();
    let b_campaign: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    let b_campaign = b_campaign["data"]["id"].as_u64().unwrap();
    for s in [&admin, &member] {
        let m = c.get(&format!("/console/messages/{b_id}"), Some(s)).await;
        assert_eq!(m.status, StatusCode::NOT_FOUND);
        assert!(!m.body.contains("B's secret"));
        let camp = c
            .get(&format!("/console/campaigns/{b_campaign}"), Some(s))
            .await;
        assert_eq!(camp.status, StatusCode::NOT_FOUND);
        let action = c
            .post(&format!("/console/campaigns/{b_campaign}/start"), s, &[])
            .await;
        assert_eq!(action.status, StatusCode::NOT_FOUND);
        for path in [
            "/console/messages",
            "/console/inbox",
            "/console/campaigns",
            "/console/",
        ] {
            let p = c.get(path, Some(s)).await;
            assert_eq!(p.status, StatusCode::OK, "{path}");
            assert!(!p.body.contains("B's secret"), "{path}");
            assert!(!p.body.contains("B campaign"), "{path}");
        }
    }
    assert_eq!(
        c.store.campaign(b, b_campaign).unwrap().status,
        sairex_store::model::CampaignStatus::Draft
    );
}

#[tokio::test]
async fn an_admin_creates_an_api_key_shown_once_and_users() {
    let c = Console::start().await;
    let (org, _) = c.org("school").await;
    c.user(org, "ana@school.pk", "admin").await;
    let s = c.login("ana@school.pk").await;

    let created = c
        .post(
            "/console/settings/api-keys",
            &s,
            &[
                ("name", "fees app"),
                ("scopes", "sms:send"),
                ("scopes", "sms:read"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let at = created
        .body
        .find("sk_live_")
        .expect("the new key, shown once");
    let key: String = created.body[at..]
        .chars()
        .take_while(char::is_ascii_alphanumeric_or_underscore)
        .collect();
    let r = c
        .client
        .get(format!("{}/api/sms/messages", c.base))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let again = c.get("/console/settings", Some(&s)).await;
    assert!(again.body.contains("fees app"));
    assert!(!again.body.contains(&key), "shown once only");

    // Settings → Users: a member added by the admin can sign in.
    let added = c
        .post(
            "/console/settings/users",
            &s,
            &[
                ("name", "Bilal"),
                ("email", "bilal@school.pk"),
                ("role", "member"),
                ("password", "correct horse"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let weak = c
        .post(
            "/console/settings/users",
            &s,
            &[
                ("email", "weak@school.pk"),
                ("role", "member"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    let bilal = c.login("bilal@school.pk").await;
    assert_eq!(
        c.get("/console/settings", Some(&bilal)).await.status,
        StatusCode::FORBIDDEN
    );
    let user = c
        .store
        .console_user_by_email("bilal@school.pk")
        .unwrap()
        .unwrap();
    assert!(user.password_hash.starts_with("$argon2id$"));
    // Removing the user ends its sessions.
    let removed = c
        .post(
            &format!("/console/settings/users/{}/delete", user.id),
            &s,
            &[],
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK);
    let gone = c.get("/console/", Some(&bilal)).await;
    assert_eq!(gone.location(), "/console/login");
}

#[tokio::test]
async fn contacts_templates_and_campaigns_pages_work_end_to_end() {
    let c = Console::start().await;
    let (org, _) = c.org("school").await;
    c.user(org, "ana@school.pk", "member").await;
    let s = c.login("ana@school.pk").await;

    let added = c
        .post(
            "/console/contacts",
            &s,
            &[
                ("phoneNumber", "+923001234567"),
                ("displayName", "Ali Khan"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert!(added.body.contains("Ali Khan"));
    let dup = c
        .post("/console/contacts", &s, &[("phoneNumber", "+923001234567")])
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT);

    let t = c
        .post(
            "/console/templates",
            &s,
            &[
                ("name", "fee"),
                ("body", "Dear {{name}}, fee {{amount}} due"),
                ("category", "TRANSACTIONAL"),
            ],
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert!(t.body.contains("name, amount"));

    let g = c
        .post("/console/contacts/groups", &s, &[("name", "Class 5")])
        .await;
    assert_eq!(g.status, StatusCode::OK);
    let group = c.store.list_groups(org, page()).unwrap().items[0].id;
    let contact = c
        .store
        .contact_by_phone(org, "+923001234567")
        .unwrap()
        .unwrap();
    c.store
        .add_group_members(org, group, vec![contact.id])
        .await
        .unwrap();

    let created = c
        .post(
            "/console/campaigns",
            &s,
            &[
                ("name", "Fees March"),
                ("groupId", &group.to_string()),
                ("messageBody", "Fee due"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let detail_path = created.location().to_owned();
    let detail = c.get(&detail_path, Some(&s)).await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(detail.body.contains("Fees March"));
    assert!(detail.body.contains("DRAFT"));
    let started = c.post(&format!("{detail_path}/start"), &s, &[]).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let id: Id = detail_path.rsplit('/').next().unwrap().parse().unwrap();
    assert_ne!(
        c.store.campaign(org, id).unwrap().status,
        sairex_store::model::CampaignStatus::Draft
    );
    let list = c.get("/console/campaigns", Some(&s)).await;
    assert!(list.body.contains("Fees March"));
    assert!(list.body.contains("role=\"progressbar\""));
}

trait Underscore {
    fn is_ascii_alphanumeric_or_underscore(&self) -> bool;
}

impl Underscore for char {
    fn is_ascii_alphanumeric_or_underscore(&self) -> bool {
        self.is_ascii_alphanumeric() || *self == '_'
    }
}

/// Form and JSON bodies (this reqwest is built without its `form` and `json` features).
trait Bodies {
    fn form_body(self, fields: &[(&str, &str)]) -> Self;
    fn json_body(self, v: &Value) -> Self;
}

impl Bodies for reqwest::RequestBuilder {
    fn form_body(self, fields: &[(&str, &str)]) -> Self {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(body)
    }
    fn json_body(self, v: &Value) -> Self {
        self.header("content-type", "application/json")
            .body(v.to_string())
    }
}

impl Console {
    /// A multipart upload with the CSRF token in the query, as the console's forms send it.
    async fn upload(
        &self,
        path: &str,
        session: &Session,
        texts: &[(&str, &str)],
        csv: &str,
    ) -> Page {
        let mut form = reqwest::multipart::Form::new();
        for (k, v) in texts {
            form = form.text(k.to_string(), v.to_string());
        }
        form = form.part(
            "file",
            reqwest::multipart::Part::text(csv.to_owned()).file_name("list.csv"),
        );
        let r = self
            .client
            .post(format!("{}{path}?_csrf={}", self.base, session.csrf))
            .header("cookie", &session.cookie)
            .multipart(form);
        self.page(r).await
    }
}

#[tokio::test]
async fn csv_import_with_preview_export_and_a_campaign_audience_with_rendered_preview() {
    let c = Console::start().await;
    let (org, _) = c.org("school").await;
    c.user(org, "ana@school.pk", "member").await;
    let s = c.login("ana@school.pk").await;
    let csv = "mobile,name,fee\n03001234567,Ali,5000\n+923009876543,Sara,7500\nbad,Nobody,1\n";

    // Without the token in the query a multipart form is refused.
    let no_token = c
        .page(
            c.client
                .post(format!("{}/console/contacts/import", c.base))
                .header("cookie", &s.cookie)
                .multipart(reqwest::multipart::Form::new().text("file", csv)),
        )
        .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);

    let preview = c
        .upload("/console/contacts/import", &s, &[("preview", "true")], csv)
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(preview.body.contains("Nothing was saved"));
    assert!(preview.body.contains("+923001234567"));
    assert_eq!(
        c.store
            .list_contacts(org, &Default::default(), page())
            .unwrap()
            .total,
        0
    );

    let imported = c.upload("/console/contacts/import", &s, &[], csv).await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.body);
    assert!(
        imported
            .body
            .contains("2 created, 0 updated, 1 skipped of 3 row(s)"),
        "{}",
        imported.body
    );
    let export = c.get("/console/contacts/export", Some(&s)).await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(export.body.contains("+923009876543"));

    // A draft campaign, its audience from a CSV: the preview renders the messages.
    let created = c
        .post(
            "/console/campaigns",
            &s,
            &[
                ("name", "Fees"),
                ("groupId", ""),
                ("messageBody", "Dear {{name}}, fee {{fee}} due"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let path = created.location().to_owned();
    let detail = c.get(&path, Some(&s)).await;
    assert!(detail.body.contains("Upload recipients (CSV)"));
    let preview = c
        .upload(
            &format!("{path}/recipients"),
            &s,
            &[("preview", "true")],
            csv,
        )
        .await;
    assert_eq!(preview.status, StatusCode::OK, "{}", preview.body);
    assert!(
        preview.body.contains("Dear Ali, fee 5000 due"),
        "{}",
        preview.body
    );
    assert!(preview.body.contains("Dear Sara, fee 7500 due"));
    let id: Id = path.rsplit('/').next().unwrap().parse().unwrap();
    assert_eq!(c.store.campaign_recipient_count(id).unwrap(), 0);
    let uploaded = c.upload(&format!("{path}/recipients"), &s, &[], csv).await;
    assert_eq!(uploaded.status, StatusCode::OK, "{}", uploaded.body);
    assert_eq!(c.store.campaign_recipient_count(id).unwrap(), 2);
}

#[tokio::test]
async fn an_admin_adds_a_provider_and_sends_a_test_message() {
    let c = Console::start().await;
    let (org, _) = c.org("school").await;
    c.user(org, "ana@school.pk", "admin").await;
    let s = c.login("ana@school.pk").await;
    let bad = c
        .post(
            "/console/settings/providers",
            &s,
            &[
                ("providerName", "smpp"),
                ("displayName", "Jazz"),
                ("host", "smsc.example.com"),
                ("port", "2775"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(bad.body.contains("credentials.systemId"), "{}", bad.body);
    let added = c
        .post(
            "/console/settings/providers",
            &s,
            &[
                ("providerName", "smpp"),
                ("displayName", "Jazz"),
                ("host", "smsc.example.com"),
                ("port", "2775"),
                ("systemId", "school"),
                ("password", "secret"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert!(added.body.contains("Added provider Jazz."));
    assert!(
        !added.body.contains("secret\""),
        "the password is not shown back"
    );
    let provider = c.store.active_providers(org).unwrap()[0].id;
    let test = c
        .post(
            &format!("/console/settings/providers/{provider}/test"),
            &s,
            &[("to", "+923001234567")],
        )
        .await;
    assert_eq!(test.status, StatusCode::OK, "{}", test.body);
    assert!(test.body.contains("Test message"), "{}", test.body);
    let listed = c
        .store
        .list_messages(org, &Default::default(), page())
        .unwrap();
    assert_eq!(listed.items[0].provider_id, Some(provider));
}

#[tokio::test]
async fn the_live_stream_carries_the_users_organization_only() {
    use futures::StreamExt;
    let c = Console::start().await;
    let (a, _) = c.org("school-a").await;
    let (b, _) = c.org("school-b").await;
    c.user(a, "ana@a.pk", "member").await;
    let s = c.login("ana@a.pk").await;
    let anonymous = c.get("/console/events", None).await;
    assert_eq!(anonymous.location(), "/console/login");
    let response = c
        .client
        .get(format!("{}/console/events", c.base))
        .header("cookie", &s.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut body = response.bytes_stream();
    // B's message changes first, then A's: real store changes, read from the outbox.
    let mut ids = Vec::new();
    for org in [b, a] {
        let m = c
            .store
            .enqueue(sairex_store::model::Message {
                organization_id: org,
                to_number: "+923001234567".into(),
                body: "live".into(),
                ..sairex_store::model::Message::default()
            })
            .await
            .unwrap();
        ids.push(m.message().id);
    }
    let (theirs, ours) = (ids[0], ids[1]);
    let mut seen = String::new();
    while !seen.contains(&format!("\"messageId\":{ours}")) || !seen.ends_with("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), body.next())
            .await
            .expect("an event")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: message.status"), "{seen}");
    assert!(seen.contains("\"status\":\"QUEUED\""), "{seen}");
    assert!(!seen.contains(&format!("\"messageId\":{theirs}")), "{seen}");
}

/// The console shows times in the organization's zone (a Pakistani one: Asia/Karachi, PKT),
/// reads a typed schedule in it, and the message log pages with the API's cursor.
#[tokio::test]
async fn times_follow_the_org_zone_and_the_message_log_pages_by_cursor() {
    let c = Console::start().await;
    let (org, _) = c.org("school").await;
    c.user(org, "ana@school.pk", "admin").await;
    let s = c.login("ana@school.pk").await;
    let form = c.get("/console/send", Some(&s)).await;
    assert!(
        form.body.contains("Send later (Asia/Karachi, optional)"),
        "{}",
        form.body
    );

    let karachi = jiff::tz::TimeZone::get("Asia/Karachi").unwrap();
    let day = jiff::Zoned::now()
        .with_time_zone(karachi.clone())
        .date()
        .tomorrow()
        .unwrap();
    let typed = format!("{day}T09:00");
    let numbers: Vec<String> = (0..55).map(|i| format!("+9230012{i:05}")).collect();
    let sent = c
        .post(
            "/console/send/bulk",
            &s,
            &[
                ("numbers", &numbers.join("\n")),
                ("body", "Exam on Monday"),
                ("scheduledAt", &typed),
            ],
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert!(sent.body.contains("55 accepted"), "{}", sent.body);
    let listed = c
        .store
        .list_messages(org, &Default::default(), page())
        .unwrap();
    assert_eq!(listed.total, 55);
    // 09:00 in Karachi (UTC+5) is 04:00 UTC.
    let nine_in_karachi = day
        .at(4, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap();
    let expected = u64::try_from(nine_in_karachi.timestamp().as_millisecond()).unwrap();
    assert!(
        listed
            .items
            .iter()
            .all(|m| m.scheduled_at == Some(expected)),
        "{:?}",
        listed.items[0].scheduled_at
    );

    let rows = |body: &str| body.matches("<time datetime=").count();
    let first = c.get("/console/messages", Some(&s)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(rows(&first.body), 50, "{}", first.body);
    assert!(first.body.contains(" PKT</time>"), "{}", first.body);
    assert!(!first.body.contains("← newest"));
    let at = first
        .body
        .find("href=\"/console/messages?cursor=")
        .expect("a link to older messages");
    let rest = &first.body[at + "href=\"".len()..];
    let older = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
    let second = c.get(&older, Some(&s)).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(rows(&second.body), 5, "{}", second.body);
    assert!(second.body.contains("← newest"));
    assert!(!second.body.contains("older →"));
}

impl Console {
    /// Signs in at the operator's login form with `token`.
    async fn try_operator_login(&self, token: &str) -> Page {
        let form = self.get("/console/operator/login", None).await;
        assert_eq!(form.status, StatusCode::OK);
        let login_cookie = form.cookie("sairex_login").unwrap();
        assert!(login_cookie.contains("Path=/console/operator/login"));
        let pair = login_cookie.split(';').next().unwrap().to_owned();
        let r = self
            .client
            .post(format!("{}/console/operator/login", self.base))
            .header("cookie", pair)
            .form_body(&[("token", token), ("_csrf", &form.csrf())]);
        self.page(r).await
    }

    async fn operator_login(&self) -> Session {
        let page = self.try_operator_login(ADMIN_TOKEN).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location(), "/console/operator");
        let cookie = page.cookie("sairex_session").unwrap();
        assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
        let mut session = Session {
            cookie: cookie.split(';').next().unwrap().to_owned(),
            csrf: String::new(),
        };
        let view = self.get("/console/operator", Some(&session)).await;
        assert_eq!(view.status, StatusCode::OK, "{}", view.body);
        session.csrf = view.csrf();
        session
    }
}

/// The text of the element with `id` (its first text run), for the operator view's figures.
fn by_id<'a>(body: &'a str, id: &str) -> &'a str {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let rest = &body[at..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    &rest[..rest.find('<').unwrap()]
}

/// The superadmin signs in with the `[admin]` token and sees every bind's state and window,
/// each provider's throughput (from the engine's sent counts), the queue depths and the
/// store's size; organizations and users it creates go through the admin API's rules.
#[tokio::test]
async fn the_superadmin_signs_in_with_the_token_and_sees_the_operator_view() {
    let c = Console::start().await;
    let (org, key) = c.org("school").await;
    c.user(org, "ana@school.pk", "admin").await;

    // Signed out, or with a wrong token: the operator's login form, saying only that.
    let out = c.get("/console/operator", None).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), "/console/operator/login");
    let wrong = c.try_operator_login("not-the-token").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("Wrong superadmin token."));
    assert!(wrong.cookie("sairex_session").is_none());
    // An organization's admin is no operator: its session does not open the view.
    let ana = c.login("ana@school.pk").await;
    let refused = c.get("/console/operator", Some(&ana)).await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert_eq!(refused.location(), "/console/operator/login");

    // One SMPP provider with two binds: one bound with 3 of 10 in flight, one reconnecting.
    let r = c
        .client
        .post(format!("{}/api/sms/providers", c.base))
        .bearer_auth(&key)
        .json_body(&json!({ "providerName": "smpp", "displayName": "Jazz",
            "credentials": { "host": "smsc.example.com", "port": 2775, "systemId": "school", "password": "secret" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let provider = c.store.active_providers(org).unwrap()[0].id;
    let bind = |bound: bool, in_use: u32, error: Option<&str>| sairex_http_api::BindRuntime {
        bound,
        connected: bound,
        window_in_use: in_use,
        window: 10,
        reconnects: u64::from(!bound),
        last_error: error.map(str::to_owned),
    };
    let set_runtime = |sent: u64| {
        *c.engine.runtime.lock().unwrap() = vec![sairex_http_api::ProviderRuntime {
            provider_id: provider,
            binds: vec![
                bind(true, 3, None),
                bind(false, 0, Some("connection refused")),
            ],
            sent_total: Some(sent),
        }];
    };
    set_runtime(100);
    // Two messages wait in the queue (the test engine takes none).
    for to in ["+923001234567", "+923001234568"] {
        let r = c
            .client
            .post(format!("{}/api/sms/send", c.base))
            .bearer_auth(&key)
            .json_body(&json!({ "to": to, "body": "Fee reminder" }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }

    let op = c.operator_login().await;
    let view = c.get("/console/operator", Some(&op)).await;
    assert_eq!(view.headers["cache-control"], "no-store");
    let row = |bind: u32| {
        let marker = format!("data-provider=\"{provider}\" data-bind=\"{bind}\"");
        let at = view
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("{marker}"));
        view.body[at..at + view.body[at..].find("</tr>").unwrap()].to_owned()
    };
    assert!(
        row(0).contains(">bound<") && row(0).contains("3 / 10"),
        "{}",
        row(0)
    );
    assert!(
        row(1).contains(">reconnecting<") && row(1).contains("connection refused"),
        "{}",
        row(1)
    );
    assert!(row(0).contains("measuring…"), "no rate on the first look");
    assert!(row(0).contains(">degraded<"), "one bind of two is up");
    assert_eq!(by_id(&view.body, "ready-total"), "2");
    assert!(
        view.body.contains("school (#"),
        "queue depth per organization"
    );
    let store_size = c.store.size_on_disk().unwrap();
    assert!(store_size > 0);
    assert!(
        by_id(&view.body, "store-size").ends_with("iB")
            || by_id(&view.body, "store-size").ends_with("bytes")
    );
    assert!(view.body.contains("data-org=\"") && view.body.contains(">school<"));
    assert!(
        !view.body.contains(ADMIN_TOKEN),
        "the token is never shown back"
    );

    // 60 more messages accepted over ~1.2 s: the live part shows about 50 msg/s.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    set_runtime(160);
    let live = c.get("/console/operator/live", Some(&op)).await;
    assert_eq!(live.status, StatusCode::OK);
    assert!(
        live.body.starts_with("<div id=\"operator-live\""),
        "a fragment: {}",
        &live.body[..80]
    );
    let rate: f64 = {
        let row0 = &live.body[live.body.find("data-bind=\"0\"").unwrap()..];
        let cell = &row0[row0.find("class=\"rate\">").unwrap() + 13..];
        cell[..cell.find(" msg/s").unwrap()].parse().unwrap()
    };
    assert!((30.0..=55.0).contains(&rate), "{rate}");
    // The JSON API reports the same figures.
    let (_, status) = c
        .admin(reqwest::Method::GET, "/api/admin/status", Value::Null)
        .await;
    let p = &status["data"]["providers"][0];
    assert_eq!(p["sentTotal"], 160);
    assert!(p["throughput"].as_f64().unwrap() > 0.0, "{p}");
    assert_eq!(p["binds"][0]["windowInUse"], 3);

    // The operator session opens no organization's pages.
    let home = c.get("/console/", Some(&op)).await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/console/operator");

    // Forms need the session's CSRF token.
    let forged = c
        .post(
            "/console/operator/organizations",
            &op,
            &[("name", "forged"), ("_csrf", "wrong")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // The API's rules: an unknown country is refused with the API's message.
    let bad = c
        .post(
            "/console/operator/organizations",
            &op,
            &[("name", "clinic"), ("defaultCountry", "XX")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(
        bad.body
            .contains("defaultCountry: an ISO 3166-1 alpha-2 code")
    );
    let made = c
        .post(
            "/console/operator/organizations",
            &op,
            &[
                ("name", "clinic"),
                ("defaultCountry", "pk"),
                ("timezone", "Asia/Karachi"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let clinic_key = by_id(&made.body, "new-org-key").to_owned();
    assert!(clinic_key.starts_with("sk_live_"), "{clinic_key}");
    let r = c
        .client
        .get(format!("{}/api/sms/messages", c.base))
        .bearer_auth(&clinic_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the key shown once works");
    let clinic = c
        .store
        .all_organizations()
        .unwrap()
        .into_iter()
        .find(|o| o.name == "clinic")
        .unwrap();
    assert_eq!(clinic.time_zone, "Asia/Karachi");

    // A user added from the operator view signs in to its organization.
    let short = c
        .post(
            "/console/operator/users",
            &op,
            &[
                ("organizationId", &clinic.id.to_string()),
                ("email", "doc@clinic.pk"),
                ("role", "MEMBER"),
                ("password", "short"),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::BAD_REQUEST);
    assert!(short.body.contains("password: at least 8 characters"));
    let added = c
        .post(
            "/console/operator/users",
            &op,
            &[
                ("organizationId", &clinic.id.to_string()),
                ("email", "doc@clinic.pk"),
                ("name", "Doctor"),
                ("role", "MEMBER"),
                ("password", "correct horse"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let doc = c.login("doc@clinic.pk").await;
    let home = c.get("/console/", Some(&doc)).await;
    assert!(home.body.contains("clinic"));

    // Deactivating the organization ends its users' console sessions.
    let off = c
        .post(
            &format!("/console/operator/organizations/{}/active", clinic.id),
            &op,
            &[("active", "false")],
        )
        .await;
    assert_eq!(off.status, StatusCode::SEE_OTHER, "{}", off.body);
    let gone = c.get("/console/", Some(&doc)).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(gone.location(), "/console/login");

    // Sign-out ends the operator session.
    let bye = c.post("/console/logout", &op, &[]).await;
    assert_eq!(bye.status, StatusCode::SEE_OTHER);
    let after = c.get("/console/operator", Some(&op)).await;
    assert_eq!(after.location(), "/console/operator/login");
}

/// Wrong tokens are throttled per address: the sixth try is refused even with the right one.
#[tokio::test]
async fn operator_sign_in_is_throttled_per_address() {
    let c = Console::start().await;
    for _ in 0..5 {
        let wrong = c.try_operator_login("guess").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let locked = c.try_operator_login(ADMIN_TOKEN).await;
    assert_eq!(
        locked.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        locked.body
    );
    assert!(locked.cookie("sairex_session").is_none());
}

/// Without a configured token there is no operator sign-in.
#[tokio::test]
async fn no_operator_without_a_token() {
    let c = Console::start_with(ApiSettings {
        admin_token: None,
        ..settings()
    })
    .await;
    let page = c.try_operator_login("").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.cookie("sairex_session").is_none());
}

#[derive(Default)]
struct QuietSink;

impl sairex_engine::campaigns::CampaignSink for QuietSink {
    fn nudge(&self) {}
}

/// A MEMBER creates an A/B campaign from the form (the API's rules refuse shares that do not
/// add up to 100); once the campaign runner has queued it, the detail page shows each
/// variant's counts as the store has them.
#[tokio::test]
async fn ab_variants_are_created_from_the_form_and_shown_per_variant() {
    let c = Console::start().await;
    let (org, _) = c.org("school").await;
    c.user(org, "mo@school.pk", "member").await;
    let s = c.login("mo@school.pk").await;
    let t = c
        .post(
            "/console/templates",
            &s,
            &[
                ("name", "long"),
                ("body", "Dear parent, the fee is due on Friday."),
            ],
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    let template = c.store.list_templates(org, page()).unwrap().items[0].id;
    let g = c
        .post("/console/contacts/groups", &s, &[("name", "Class 5")])
        .await;
    assert_eq!(g.status, StatusCode::OK);
    let group = c.store.list_groups(org, page()).unwrap().items[0].id;
    let mut ids = Vec::new();
    for i in 0..40u64 {
        let contact = c
            .store
            .create_contact(Contact {
                organization_id: org,
                phone_number: format!("+9230012{i:05}"),
                ..Contact::default()
            })
            .await
            .unwrap();
        ids.push(contact.id);
    }
    c.store.add_group_members(org, group, ids).await.unwrap();
    let form = c.get("/console/campaigns", Some(&s)).await;
    assert!(form.body.contains("name=\"variantPercent\""));
    assert!(
        form.body
            .contains(&format!("<option value=\"{template}\">long</option>"))
    );

    let group = group.to_string();
    let template = template.to_string();
    let with = |a: &'static str, b: &'static str| {
        vec![
            ("name", "AB"),
            ("groupId", group.as_str()),
            ("variantName", "short"),
            ("variantPercent", a),
            ("variantBody", "Fee due Friday"),
            ("variantTemplateId", ""),
            ("variantName", ""),
            ("variantPercent", b),
            ("variantBody", ""),
            ("variantTemplateId", template.as_str()),
            // An empty row is left out.
            ("variantName", ""),
            ("variantPercent", ""),
            ("variantBody", ""),
            ("variantTemplateId", ""),
        ]
    };
    let bad = c.post("/console/campaigns", &s, &with("50", "40")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert!(
        bad.body.contains("percentages must sum to 100, not 90"),
        "{}",
        bad.body
    );
    let created = c.post("/console/campaigns", &s, &with("30", "70")).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let path = created.location().to_owned();
    let id: Id = path.rsplit('/').next().unwrap().parse().unwrap();
    let stored = c.store.campaign(org, id).unwrap();
    assert_eq!(stored.variants.len(), 2);
    assert_eq!(stored.variants[0].name, "short");
    assert_eq!(stored.variants[1].name, "B", "the API's default name");
    assert_eq!(
        stored.variants[1].template_id,
        Some(template.parse().unwrap())
    );

    let sink = Arc::new(QuietSink);
    let runner = sairex_engine::campaigns::CampaignRunner::start(
        c.store.clone(),
        sink.clone(),
        sairex_engine::campaigns::RunnerConfig {
            poll_interval: Duration::from_millis(20),
            chunk: 25,
            queue_ahead: 100,
            stats_every: Duration::from_millis(50),
        },
    );
    let started = c.post(&format!("{path}/start"), &s, &[]).await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let queued = || {
        c.store
            .list_messages(
                org,
                &sairex_store::MessageFilter::default(),
                sairex_store::PageRequest::default(),
            )
            .unwrap()
            .total
    };
    while queued() < 40 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the runner queued the campaign"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    runner.shutdown().await;

    let detail = c.get(&path, Some(&s)).await;
    assert_eq!(detail.status, StatusCode::OK);
    let messages = c
        .store
        .list_messages(
            org,
            &sairex_store::MessageFilter {
                campaign_id: Some(id),
                ..Default::default()
            },
            sairex_store::PageRequest {
                offset: 0,
                limit: 100,
            },
        )
        .unwrap()
        .items;
    assert_eq!(messages.len(), 40);
    let mut total = 0;
    for (i, name) in [(0u8, "short"), (1, "B")] {
        let want = messages
            .iter()
            .filter(|m| m.campaign_variant == Some(i))
            .count();
        total += want;
        let at = detail
            .body
            .find(&format!("data-variant=\"{i}\""))
            .unwrap_or_else(|| panic!("variant {i}: {}", detail.body));
        let row = &detail.body[at..at + detail.body[at..].find("</tr>").unwrap()];
        assert!(row.contains(&format!("<td>{name}</td>")), "{row}");
        assert!(
            row.contains(&format!("<td class=\"v-messages\">{want}</td>")),
            "{want}: {row}"
        );
        assert!(
            row.contains(&format!("<td class=\"v-queued\">{want}</td>")),
            "{row}"
        );
        assert!(want > 0, "both variants have recipients");
    }
    assert_eq!(total, 40, "everyone in exactly one variant");
    assert!(detail.body.contains("Fee due Friday") && detail.body.contains("template #"));
}

/// The first `sk_live_…` key in a page.
fn key_in(body: &str) -> String {
    let at = body.find("sk_live_").expect("a key shown");
    body[at..]
        .chars()
        .take_while(char::is_ascii_alphanumeric_or_underscore)
        .collect()
}

/// Settings of one object: a provider edited (credentials kept when left empty, the API's
/// checks), reordered, with its health; an API key's scopes edited and the key rotated (the
/// old one refused at once); a webhook created with the API's events, its delivery log and a
/// test event; the organization's settings read-only for its admin and edited by the operator.
/// A MEMBER is refused and another organization's objects are 404 by URL.
#[tokio::test]
async fn settings_edit_providers_keys_webhooks_and_the_organization_through_the_api() {
    let c = Console::start().await;
    let (org, _) = c.org("school").await;
    let (other, other_key) = c.org("rival").await;
    c.user(org, "ana@school.pk", "admin").await;
    c.user(org, "mo@school.pk", "member").await;
    let s = c.login("ana@school.pk").await;
    let member = c.login("mo@school.pk").await;

    // Two providers at the same priority: in the dispatcher's order, by id.
    for name in ["Jazz", "Zong"] {
        let added = c
            .post(
                "/console/settings/providers",
                &s,
                &[
                    ("providerName", "smpp"),
                    ("displayName", name),
                    ("priority", "1"),
                    ("host", "smsc.example.com"),
                    ("port", "2775"),
                    ("systemId", "school"),
                    ("password", "secret"),
                ],
            )
            .await;
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    }
    let mut ps = c.store.active_providers(org).unwrap();
    ps.sort_by_key(|p| p.id);
    let (jazz, zong) = (ps[0].id, ps[1].id);
    let path = format!("/console/settings/providers/{zong}");
    let view = c.get(&path, Some(&s)).await;
    assert_eq!(view.status, StatusCode::OK, "{}", view.body);
    assert!(view.body.contains("not checked yet"));
    assert_eq!(by_id(&view.body, "health-failures"), "0");
    assert!(!view.body.contains("secret"), "no secret shown back");
    let bad = c
        .post(&path, &s, &[("displayName", "Zong"), ("priority", "first")])
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    let long = c
        .post(
            &path,
            &s,
            &[
                ("displayName", "Zong"),
                ("isActive", "true"),
                ("password", "toolong99"),
            ],
        )
        .await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST);
    assert!(
        long.body
            .contains("credentials.password: a string of 1 to 8"),
        "{}",
        long.body
    );
    let saved = c
        .post(
            &path,
            &s,
            &[
                ("displayName", "Zong 2"),
                ("priority", "1"),
                ("isActive", "true"),
                ("host", "smsc2.example.com"),
                ("port", "2776"),
                ("costPerSegment", "0.45"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let stored = c.store.provider(org, zong).unwrap();
    assert_eq!(stored.display_name, "Zong 2");
    assert_eq!(stored.credentials["host"], "smsc2.example.com");
    assert_eq!(stored.credentials["port"], 2776);
    assert_eq!(
        stored.credentials["password"], "secret",
        "empty keeps the stored"
    );
    assert_eq!(stored.cost_per_segment, Some(450_000));
    let before = c
        .engine
        .provider_changes
        .load(std::sync::atomic::Ordering::SeqCst);
    // Zong moves ahead of Jazz: priorities renumbered 1, 2 in the new order.
    let moved = c.post(&format!("{path}/move?dir=up"), &s, &[]).await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER, "{}", moved.body);
    assert_eq!(c.store.provider(org, zong).unwrap().priority, 1);
    assert_eq!(c.store.provider(org, jazz).unwrap().priority, 2);
    assert!(
        c.engine
            .provider_changes
            .load(std::sync::atomic::Ordering::SeqCst)
            > before
    );
    let list = c.get("/console/settings", Some(&s)).await;
    assert!(
        list.body
            .find(&format!("data-provider=\"{zong}\""))
            .unwrap()
            < list
                .body
                .find(&format!("data-provider=\"{jazz}\""))
                .unwrap(),
        "listed in the dispatch order"
    );

    // An API key: scopes edited through the API's rules, then rotated.
    let created = c
        .post(
            "/console/settings/api-keys",
            &s,
            &[
                ("name", "fees app"),
                ("scopes", "sms:send"),
                ("scopes", "sms:read"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let old_key = key_in(&created.body);
    let key_id = c
        .store
        .list_api_keys(org, page())
        .unwrap()
        .items
        .into_iter()
        .find(|k| k.name == "fees app")
        .unwrap()
        .id;
    let kpath = format!("/console/settings/api-keys/{key_id}");
    let kview = c.get(&kpath, Some(&s)).await;
    assert_eq!(kview.status, StatusCode::OK, "{}", kview.body);
    assert!(kview.body.contains("value=\"sms:send\" checked"));
    let none = c.post(&kpath, &s, &[("name", "fees app")]).await;
    assert_eq!(none.status, StatusCode::BAD_REQUEST);
    assert!(none.body.contains("scopes: at least one"), "{}", none.body);
    let edited = c
        .post(
            &kpath,
            &s,
            &[
                ("name", "fees reader"),
                ("scopes", "sms:read"),
                ("rateLimitPerMin", "30"),
            ],
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let k = c.store.api_key(org, key_id).unwrap();
    assert_eq!(
        (k.name.as_str(), k.scopes.clone(), k.rate_limit_per_min),
        ("fees reader", vec!["sms:read".to_owned()], 30)
    );
    let send = c
        .client
        .post(format!("{}/api/sms/send", c.base))
        .bearer_auth(&old_key)
        .json_body(&json!({ "to": "+923001234567", "body": "hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        send.status(),
        StatusCode::FORBIDDEN,
        "sms:send was taken away"
    );
    let rotated = c.post(&format!("{kpath}/rotate"), &s, &[]).await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.body);
    let new_key = key_in(&rotated.body);
    assert_ne!(new_key, old_key);
    for (key, want) in [
        (&old_key, StatusCode::UNAUTHORIZED),
        (&new_key, StatusCode::OK),
    ] {
        let r = c
            .client
            .get(format!("{}/api/sms/messages", c.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want);
    }
    let again = c.post(&format!("{kpath}/rotate"), &s, &[]).await;
    assert_eq!(
        again.status,
        StatusCode::BAD_REQUEST,
        "a revoked key is not rotated"
    );

    // A webhook with the form's default events (the API's list), its log and a test event.
    let hook = c
        .post(
            "/console/settings/webhooks",
            &s,
            &[
                ("url", "http://127.0.0.1:9/hook"),
                ("events", "message.delivered"),
                ("events", "message.inbound"),
            ],
        )
        .await;
    assert_eq!(hook.status, StatusCode::CREATED, "{}", hook.body);
    let settings_page = c.get("/console/settings", Some(&s)).await;
    for e in [
        "message.queued",
        "message.sent",
        "message.delivered",
        "message.failed",
        "message.inbound",
    ] {
        assert!(
            settings_page.body.contains(&format!("value=\"{e}\"")),
            "{e}"
        );
    }
    assert!(!settings_page.body.contains("value=\"message.status\""));
    let webhook = c.store.list_webhooks(org, page()).unwrap().items[0].id;
    for (i, ok) in [(1, false), (2, true)] {
        c.store
            .record_webhook_delivery(sairex_store::model::WebhookDelivery {
                organization_id: org,
                webhook_id: webhook,
                event_type: "message.delivered".into(),
                payload: json!({}),
                http_status: Some(if ok { 200 } else { 500 }),
                response_body: Some(if ok { "fine" } else { "boom" }.into()),
                latency_ms: Some(12),
                attempt: i,
                success: ok,
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let wpath = format!("/console/settings/webhooks/{webhook}");
    let wview = c.get(&wpath, Some(&s)).await;
    assert_eq!(wview.status, StatusCode::OK, "{}", wview.body);
    assert!(wview.body.contains("Delivery log (2)"));
    assert!(
        wview.body.find("fine").unwrap() < wview.body.find("boom").unwrap(),
        "newest first"
    );
    let tested = c.post(&format!("{wpath}/test"), &s, &[]).await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.body);
    assert!(
        tested
            .body
            .contains("Test event delivered: HTTP 200 in 1 ms."),
        "{}",
        tested.body
    );

    // The organization's settings: read-only here, edited by the operator through the API.
    let op = c.operator_login().await;
    let opath = format!("/console/operator/organizations/{org}");
    let bad = c
        .post(
            &opath,
            &op,
            &[
                ("name", "school"),
                ("defaultCountry", "PK"),
                ("quietStart", "25:00"),
                ("quietEnd", "07:00"),
                ("quietTimeZone", "Asia/Karachi"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("quietHours.start: a time of day"),
        "{}",
        bad.body
    );
    let saved = c
        .post(
            &opath,
            &op,
            &[
                ("name", "school"),
                ("defaultCountry", "PK"),
                ("timezone", "Asia/Karachi"),
                ("quietStart", "21:00"),
                ("quietEnd", "07:30"),
                ("quietTimeZone", "Asia/Karachi"),
                ("dltEnabled", "true"),
                ("retentionDays", "90"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::OK, "{}", saved.body);
    let o = c.store.organization(org).unwrap();
    assert!(o.dlt_enabled);
    assert_eq!(o.retention_days, Some(90));
    let q = o.quiet_hours.unwrap();
    assert_eq!((q.start_minute, q.end_minute), (21 * 60, 7 * 60 + 30));
    let shown = c.get("/console/settings/organization", Some(&s)).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(
        by_id(&shown.body, "org-quiet"),
        "21:00–07:30 (Asia/Karachi)"
    );
    assert_eq!(by_id(&shown.body, "org-dlt"), "on");
    assert_eq!(by_id(&shown.body, "org-retention"), "90 days");
    // An organization's admin has no operator form.
    let refused = c.post(&opath, &s, &[("dltEnabled", "false")]).await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    assert!(c.store.organization(org).unwrap().dlt_enabled);

    // A MEMBER is refused every settings page and form.
    for get in [
        format!("/console/settings/providers/{zong}"),
        format!("/console/settings/api-keys/{key_id}"),
        format!("/console/settings/webhooks/{webhook}"),
        "/console/settings/organization".to_owned(),
    ] {
        assert_eq!(
            c.get(&get, Some(&member)).await.status,
            StatusCode::FORBIDDEN,
            "{get}"
        );
    }
    for post in [
        format!("/console/settings/providers/{zong}"),
        format!("/console/settings/providers/{zong}/move?dir=down"),
        format!("/console/settings/api-keys/{key_id}/rotate"),
        format!("/console/settings/webhooks/{webhook}/test"),
        format!("/console/settings/webhooks/{webhook}/rotate-secret"),
    ] {
        let r = c.post(&post, &member, &[("displayName", "x")]).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{post}");
    }
    assert_eq!(c.store.provider(org, zong).unwrap().display_name, "Zong 2");

    // Another organization's objects are not found, by URL too.
    let r = c
        .client
        .post(format!("{}/api/sms/webhooks", c.base))
        .bearer_auth(&other_key)
        .json_body(&json!({ "url": "http://127.0.0.1:9/x", "events": ["message.sent"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let their_hook = c.store.list_webhooks(other, page()).unwrap().items[0].id;
    let their_key = c.store.list_api_keys(other, page()).unwrap().items[0].id;
    for get in [
        format!("/console/settings/webhooks/{their_hook}"),
        format!("/console/settings/api-keys/{their_key}"),
    ] {
        assert_eq!(
            c.get(&get, Some(&s)).await.status,
            StatusCode::NOT_FOUND,
            "{get}"
        );
    }
    for post in [
        format!("/console/settings/webhooks/{their_hook}/test"),
        format!("/console/settings/api-keys/{their_key}/rotate"),
        format!("/console/settings/api-keys/{their_key}"),
    ] {
        let r = c
            .post(&post, &s, &[("name", "mine"), ("scopes", "admin")])
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{post}: {}", r.body);
    }
    assert!(c.store.api_key(other, their_key).unwrap().is_active);
}

/// A CSV over the API's general body limit (1 MiB) imports through the console as through
/// the API's own import route, whose limit is the import's.
#[tokio::test]
async fn a_large_csv_imports_through_the_console() {
    let c = Console::start().await;
    let (org, _) = c.org("school").await;
    c.user(org, "ana@school.pk", "member").await;
    let s = c.login("ana@school.pk").await;
    let mut csv = String::from("phone,name,class,fee_amount,guardian\n");
    for i in 0..25_000u32 {
        csv.push_str(&format!(
            "+923{:09},Student number {i},Class {},{}.00,Guardian of student {i}\n",
            100_000_000 + i,
            i % 12,
            1000 + i % 5000
        ));
    }
    assert!(csv.len() > 1024 * 1024 + 100_000, "{}", csv.len());
    let imported = c.upload("/console/contacts/import", &s, &[], &csv).await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.body);
    assert!(
        imported
            .body
            .contains("25000 created, 0 updated, 0 skipped of 25000 row(s)"),
        "{}",
        imported.body
    );
    assert_eq!(
        c.store
            .list_contacts(org, &Default::default(), page())
            .unwrap()
            .total,
        25_000
    );
    // The contacts page's import form reports its progress (the script's progress bar).
    let form = c.get("/console/contacts", Some(&s)).await;
    assert!(
        form.body.contains("data-progress=\"import-progress\""),
        "{}",
        form.body
    );
    assert!(form.body.contains("<progress id=\"import-progress\""));
}
