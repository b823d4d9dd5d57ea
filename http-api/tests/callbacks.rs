//! The HTTP providers' callbacks end to end: the real engine sends through a fake provider over
//! loopback, the fake calls back signed as the real provider signs, the API checks the signature
//! and hands receipts and inbound messages to the engine: messages reach DELIVERED, inbound
//! messages are stored, reassembled and opt contacts out. Signatures are checked against
//! values computed here with the hmac/sha1/md5 crates from the providers' documented algorithms
//! (independently of the gateway's code); a tampered body, a wrong token, a missing signature
//! are 403 and store nothing; an unknown provider or account is a clear 4xx.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use futures::future::BoxFuture;
use hmac::Mac;
use reqwest::StatusCode;
use sairex_engine::dispatch::callbacks::CallbackSink;
use sairex_engine::dispatch::{DispatcherConfig, DispatcherHandle, EngineEvent};
use sairex_engine::gateway::{Engine, EngineConfig, EngineControl, HttpOptions};
use sairex_http_api::{ApiSettings, EngineLink, WebhookTestResult};
use sairex_loadtest::fakes::{
    FakeConfig, FakeKind, FakeServer, TwilioAccount, VeevoAccount, VonageAccount,
};
use sairex_store::model::{
    Direction, Id, Message, MessageStatus, Organization, ProviderConfig, ProviderKind,
};
use sairex_store::{MasterKey, Store, StoreOptions};
use serde_json::json;
use tokio::sync::broadcast;
use tokio::time::{Instant, sleep};

const WAIT: Duration = Duration::from_secs(20);

/// The gateway's answers to the fake's callbacks once `n` of them were `status` (or at the
/// deadline). The fake records an answer after the response arrives, which is after the store
/// write a test may already have seen.
async fn answered(fake: &FakeServer, status: u16, n: usize) -> Vec<u16> {
    let deadline = Instant::now() + WAIT;
    loop {
        let statuses = fake.callback_statuses();
        if statuses.iter().filter(|s| **s == status).count() >= n || Instant::now() >= deadline {
            return statuses;
        }
        sleep(Duration::from_millis(10)).await;
    }
}
const SID: &str = "AC0123456789abcdef0123456789abcdef";
const TOKEN: &str = "twilio-token";
const OUR_NUMBER: &str = "+15005550006";

/// The engine link the binary wires, callbacks included.
struct Link {
    control: EngineControl,
    handle: DispatcherHandle,
}

impl EngineLink for Link {
    fn nudge(&self) {
        self.handle.nudge();
    }
    fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.handle.subscribe()
    }
    fn providers_changed(&self) {}
    fn is_running(&self) -> bool {
        self.control.is_running()
    }
    fn send_test_webhook(
        &self,
        _: Id,
        _: Id,
    ) -> BoxFuture<'static, Result<WebhookTestResult, String>> {
        Box::pin(async { Err("no webhooks here".to_owned()) })
    }
    fn callbacks(&self) -> Option<CallbackSink> {
        Some(self.control.callbacks())
    }
}

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    org: u64,
    public: String,
    listener: Option<tokio::net::TcpListener>,
    engine: Option<Engine>,
    client: reqwest::Client,
}

impl World {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(StoreOptions::new(dir.path()).with_master_key(MasterKey::generate()))
                .unwrap();
        let org = store
            .create_organization(Organization {
                name: "school".into(),
                is_active: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .id;
        // The API's address is known before the engine starts: receipt URLs are made from it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let public = format!("http://{}", listener.local_addr().unwrap());
        Self {
            _dir: dir,
            store,
            org,
            public,
            listener: Some(listener),
            engine: None,
            client: sairex_engine::http_client::builder()
                .unwrap()
                .build()
                .unwrap(),
        }
    }

    /// Starts the engine over the store's providers and serves the API with the callbacks.
    async fn start(&mut self) {
        let engine = Engine::start_with(
            self.store.clone(),
            EngineConfig {
                dispatcher: DispatcherConfig {
                    poll_interval: Duration::from_millis(20),
                    inbound_parts_ttl: Duration::from_millis(800),
                    ..DispatcherConfig::default()
                },
                provider_drain: Duration::from_secs(2),
                ..EngineConfig::default()
            },
            HttpOptions {
                public_base_url: Some(self.public.clone()),
            },
        )
        .await
        .unwrap();
        let link = Arc::new(Link {
            control: engine.control(),
            handle: engine.handle(),
        });
        let settings = ApiSettings {
            public_base_url: Some(self.public.clone()),
            ..ApiSettings::default()
        };
        let router = sairex_http_api::router(self.store.clone(), link, settings);
        let listener = self.listener.take().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        self.engine = Some(engine);
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().unwrap()
    }

    async fn provider(
        &self,
        kind: ProviderKind,
        settings: serde_json::Value,
        credentials: serde_json::Value,
    ) -> ProviderConfig {
        self.store
            .create_provider(ProviderConfig {
                organization_id: self.org,
                provider_kind: kind,
                display_name: format!("{kind:?}"),
                is_active: true,
                priority: 1,
                settings,
                credentials,
                ..ProviderConfig::default()
            })
            .await
            .unwrap()
    }

    async fn send(&self, to: &str, body: &str) -> u64 {
        let m = self
            .store
            .enqueue(Message {
                organization_id: self.org,
                from_number: OUR_NUMBER.into(),
                to_number: to.into(),
                body: body.into(),
                ..Message::default()
            })
            .await
            .unwrap();
        self.engine().handle().nudge();
        m.message().id
    }

    async fn wait_for(&self, id: u64, done: impl Fn(&Message) -> bool) -> Message {
        let deadline = Instant::now() + WAIT;
        loop {
            let m = self.store.message(self.org, id).unwrap();
            if done(&m) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "not done in time: {:?} {:?}",
                m.status,
                m.status_message
            );
            sleep(Duration::from_millis(20)).await;
        }
    }

    async fn post_form(
        &self,
        path: &str,
        params: &[(&str, &str)],
        signature: Option<&str>,
    ) -> (StatusCode, String, String) {
        let body = form(params);
        let mut request = self
            .client
            .post(format!("{}{path}", self.public))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(sig) = signature {
            request = request.header("x-twilio-signature", sig);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        (status, content_type, response.text().await.unwrap())
    }

    async fn shutdown(mut self) {
        if let Some(engine) = self.engine.take() {
            engine.shutdown().await;
        }
    }
}

fn form(params: &[(&str, &str)]) -> String {
    let mut s = form_encode::Serializer::new();
    for (k, v) in params {
        s.pair(k, v);
    }
    s.finish()
}

/// A tiny form encoder of its own (the tests do not share the gateway's).
mod form_encode {
    pub struct Serializer(String);
    impl Serializer {
        pub fn new() -> Self {
            Self(String::new())
        }
        pub fn pair(&mut self, k: &str, v: &str) {
            if !self.0.is_empty() {
                self.0.push('&');
            }
            self.0.push_str(&encode(k));
            self.0.push('=');
            self.0.push_str(&encode(v));
        }
        pub fn finish(self) -> String {
            self.0
        }
    }
    fn encode(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                    char::from(b).to_string()
                }
                b' ' => "+".to_owned(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
}

/// Twilio's algorithm, written here from its documentation: HMAC-SHA1 keyed with the auth token
/// over the URL followed by each POST parameter's name and value, sorted by name; base64.
fn twilio_sign(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut data = url.to_owned();
    for (k, v) in sorted {
        data.push_str(k);
        data.push_str(v);
    }
    let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(data.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Vonage's `md5hash` written here from its documentation.
fn vonage_md5hash(secret: &str, params: &[(&str, &str)]) -> String {
    use md5::Digest as _;
    let mut sorted = params.to_vec();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut base = String::new();
    for (k, v) in sorted {
        base.push_str(&format!("&{k}={}", v.replace(['&', '='], "_")));
    }
    base.push_str(secret);
    md5::Md5::digest(base.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn next_inbound(events: &mut broadcast::Receiver<EngineEvent>) -> (u64, u64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, events.recv()).await {
            Ok(Ok(EngineEvent::Inbound { org, message_id })) => return (org, message_id),
            Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            other => panic!("no inbound message: {other:?}"),
        }
    }
}

#[test]
fn the_tests_own_signers_match_the_published_examples() {
    // Twilio's request-validation example, as its libraries test it.
    assert_eq!(
        twilio_sign(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=2",
            &[
                ("CallSid", "CA1234567890ABCDE"),
                ("Caller", "+14158675309"),
                ("Digits", "1234"),
                ("From", "+14158675309"),
                ("To", "+18005551212")
            ]
        ),
        "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    );
    // An inbound message signed by Vonage, from Vonage's SDK tests.
    assert_eq!(
        vonage_md5hash(
            "my_secret_key_for_testing",
            &[
                ("message-timestamp", "2013-11-21 15:27:30"),
                ("messageId", "020000001B0FE827"),
                ("msisdn", "14843472194"),
                ("text", "Test again"),
                ("timestamp", "1385047698"),
                ("to", "13239877404"),
                ("type", "text")
            ]
        ),
        "d2e7b1dc968737c5998ad624e02f90b7"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_receipts_deliver_and_inbound_messages_opt_out_with_twiml() {
    let mut w = World::new().await;
    let mut config = FakeConfig::new(FakeKind::Twilio(TwilioAccount {
        account_sid: SID.into(),
        auth_token: TOKEN.into(),
    }));
    config.inbound_url = Some(format!("{}/api/sms/receive?provider=twilio", w.public));
    let fake = FakeServer::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let p = w
        .provider(
            ProviderKind::Twilio,
            json!({"baseUrl": fake.base_url(), "from": OUR_NUMBER, "autoReply": "Thanks & bye <3"}),
            json!({"accountSid": SID, "authToken": TOKEN}),
        )
        .await;
    w.start().await;

    // A message goes out; the fake's signed status callback makes it DELIVERED.
    let id = w.send("+923001234567", "Fee due Friday").await;
    let m = w
        .wait_for(id, |m| m.status == MessageStatus::Delivered)
        .await;
    assert_eq!(m.provider_id, Some(p.id));
    let statuses = answered(&fake, 200, 1).await;
    assert!(statuses.contains(&200), "{statuses:?}");
    let events = w.store.events(w.org, id).unwrap();
    assert!(
        events.iter().any(|e| e.event_type == "DELIVERED"),
        "{events:?}"
    );

    // Inbound STOP through the fake: stored for the organization, the contact opted out.
    let mut engine_events = w.engine().handle().subscribe();
    assert_eq!(
        fake.inbound("+923001112223", OUR_NUMBER, "STOP")
            .await
            .unwrap(),
        200
    );
    let (org, message_id) = next_inbound(&mut engine_events).await;
    assert_eq!(org, w.org);
    let stored = w.store.message(w.org, message_id).unwrap();
    assert_eq!(stored.direction, Direction::Inbound);
    assert_eq!(stored.from_number, "+923001112223");
    assert_eq!(stored.body, "STOP");
    assert_eq!(stored.provider_id, Some(p.id));
    let contact = w
        .store
        .contact_by_phone(w.org, "+923001112223")
        .unwrap()
        .expect("contact");
    assert!(contact.is_opted_out);

    // The answer is TwiML with the auto-reply, escaped.
    let path = "/api/sms/receive?provider=twilio";
    let params = [
        ("AccountSid", SID),
        ("Body", "hello"),
        ("From", "+923001112224"),
        ("MessageSid", "SM00000000000000000000000000000001"),
        ("To", OUR_NUMBER),
    ];
    let sig = twilio_sign(TOKEN, &format!("{}{path}", w.public), &params);
    let (status, content_type, body) = w.post_form(path, &params, Some(&sig)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(content_type.starts_with("text/xml"), "{content_type}");
    assert_eq!(
        body,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>Thanks &amp; bye &lt;3</Message></Response>"
    );
    w.shutdown().await;
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_twilio_signatures_are_403_and_store_nothing() {
    let mut w = World::new().await;
    let p = w
        .provider(
            ProviderKind::Twilio,
            json!({"baseUrl": "http://127.0.0.1:9", "healthIntervalMs": 0}),
            json!({"accountSid": SID, "authToken": TOKEN}),
        )
        .await;
    w.start().await;
    let mut events = w.engine().handle().subscribe();
    let path = "/api/sms/receive?provider=twilio";
    let url = format!("{}{path}", w.public);
    let params = [
        ("AccountSid", SID),
        ("Body", "hello"),
        ("From", "+923001112223"),
        ("MessageSid", "SM00000000000000000000000000000002"),
        ("To", OUR_NUMBER),
    ];
    let good = twilio_sign(TOKEN, &url, &params);

    // Tampered body: signed for "hello", sent with "HELLO".
    let mut tampered = params;
    tampered[1] = ("Body", "HELLO");
    let (status, _, body) = w.post_form(path, &tampered, Some(&good)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // Signed with another token.
    let wrong = twilio_sign("not-the-token", &url, &params);
    assert_eq!(
        w.post_form(path, &params, Some(&wrong)).await.0,
        StatusCode::FORBIDDEN
    );
    // Signed for another URL.
    let other = twilio_sign(TOKEN, &format!("{}/elsewhere", w.public), &params);
    assert_eq!(
        w.post_form(path, &params, Some(&other)).await.0,
        StatusCode::FORBIDDEN
    );
    // No signature.
    assert_eq!(
        w.post_form(path, &params, None).await.0,
        StatusCode::FORBIDDEN
    );
    // An unknown account, an unknown provider id, an unknown provider kind.
    let unknown = [
        ("AccountSid", "AC00000000000000000000000000000000"),
        ("Body", "x"),
        ("From", "+923001112223"),
        ("To", OUR_NUMBER),
    ];
    let (status, _, body) = w.post_form(path, &unknown, Some(&good)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("AccountSid"), "{body}");
    let (status, _, _) = w
        .post_form(
            &format!("/api/sms/dlr?provider=twilio&providerId={}", p.id + 100),
            &params,
            Some(&good),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = w
        .post_form("/api/sms/dlr?provider=sinch", &params, Some(&good))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Nothing reached the engine.
    sleep(Duration::from_millis(200)).await;
    assert!(matches!(
        events.try_recv(),
        Err(broadcast::error::TryRecvError::Empty)
    ));

    // The same request correctly signed is taken.
    let (status, _, body) = w.post_form(path, &params, Some(&good)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, id) = next_inbound(&mut events).await;
    assert_eq!(w.store.message(w.org, id).unwrap().body, "hello");
    w.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vonage_signed_receipts_by_get_and_concatenated_inbound() {
    let mut w = World::new().await;
    let secret = "vonage-signature-secret";
    let mut config = FakeConfig::new(FakeKind::Vonage(VonageAccount {
        api_key: "vkey".into(),
        api_secret: "vsecret".into(),
        signature_secret: secret.into(),
        signature_method: "sha256".into(),
    }));
    config.inbound_url = Some(format!("{}/api/sms/receive?provider=vonage", w.public));
    let fake = FakeServer::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    w.provider(
        ProviderKind::Vonage,
        json!({"baseUrl": fake.base_url(), "signatureMethod": "sha256"}),
        json!({"apiKey": "vkey", "apiSecret": "vsecret", "signatureSecret": secret}),
    )
    .await;
    w.start().await;

    // Two parts, two receipts (GET with query parameters, signed): DELIVERED once both came.
    let id = w.send("+923001234567", &"b".repeat(200)).await;
    let m = w
        .wait_for(id, |m| m.status == MessageStatus::Delivered)
        .await;
    assert_eq!(m.provider_msg_ids.len(), 2);
    let statuses = answered(&fake, 200, 2).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        2,
        "{statuses:?}"
    );

    // Three parts out of order: one message.
    let mut events = w.engine().handle().subscribe();
    let statuses = fake
        .vonage_inbound_parts(
            "923001112223",
            "15005550006",
            &["Hello ", "from ", "Lahore"],
            &[2, 0, 1],
        )
        .await
        .unwrap();
    assert_eq!(statuses, vec![200, 200, 200]);
    let (_, id) = next_inbound(&mut events).await;
    let whole = w.store.message(w.org, id).unwrap();
    assert_eq!(whole.body, "Hello from Lahore");
    assert_eq!(whole.from_number, "+923001112223");
    assert_eq!(whole.segments, 3);

    // A part missing: stored as it is, with a note, once the parts' time is up.
    fake.vonage_inbound_parts(
        "923001112224",
        "15005550006",
        &["Fee ", "is ", "due"],
        &[0, 2],
    )
    .await
    .unwrap();
    let (_, id) = next_inbound(&mut events).await;
    let partial = w.store.message(w.org, id).unwrap();
    assert_eq!(partial.body, "Fee due");
    assert!(
        partial
            .status_message
            .as_deref()
            .unwrap_or_default()
            .contains("incomplete"),
        "{:?}",
        partial.status_message
    );

    // A bad signature on a GET receipt: 403.
    let url = format!(
        "{}/api/sms/dlr?provider=vonage&messageId=0C00000000000001&status=delivered&api-key=vkey&timestamp=1&sig=00",
        w.public
    );
    let response = w.client.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    w.shutdown().await;
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn veevo_receipts_with_a_shared_secret() {
    let mut w = World::new().await;
    // The provider's id is known once created: the fake's portal URL names it.
    let p = w
        .provider(
            ProviderKind::Veevo,
            json!({"baseUrl": "http://127.0.0.1:9"}),
            json!({"hash": "veevo-hash", "callbackSecret": "cb-secret"}),
        )
        .await;
    let mut config = FakeConfig::new(FakeKind::Veevo(VeevoAccount {
        hash: "veevo-hash".into(),
        callback_secret: "cb-secret".into(),
    }));
    config.callback_url = Some(format!(
        "{}/api/sms/dlr?provider=veevo&providerId={}",
        w.public, p.id
    ));
    let fake = FakeServer::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let base = fake.base_url();
    w.store
        .update_provider(w.org, p.id, move |r| {
            r.settings = json!({"baseUrl": base});
            Ok(())
        })
        .await
        .unwrap();
    w.start().await;
    let id = w.send("+923001234567", "Fee due Friday").await;
    w.wait_for(id, |m| m.status == MessageStatus::Delivered)
        .await;

    // The wrong secret: 403.
    let response = w
        .client
        .post(format!(
            "{}/api/sms/dlr?provider=veevo&providerId={}",
            w.public, p.id
        ))
        .header("content-type", "application/json")
        .header("x-callback-token", "guess")
        .body(json!({"MESSAGE_ID": "1", "DELIVERY_STATUS": "DELIVRD"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    w.shutdown().await;
    fake.shutdown().await;
}
