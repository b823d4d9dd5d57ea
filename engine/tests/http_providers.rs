//! HTTP providers started from the store's records, against the fake Twilio, Vonage and Veevo
//! servers over loopback: each request on the wire as the provider documents it (method, path,
//! auth, fields, Unicode), the answers mapped to message statuses, throttling, health, and
//! failover between an HTTP provider and an SMPP one, both ways.

use std::time::Duration;

use base64::Engine as _;
use sairex_engine::dispatch::DispatcherConfig;
use sairex_engine::gateway::{Engine, EngineConfig, HttpOptions};
use sairex_loadtest::fakes::{
    FakeConfig, FakeKind, FakeReceipt, FakeServer, TwilioAccount, VeevoAccount, VonageAccount,
};
use sairex_loadtest::sim::{SimConfig, SimServer};
use sairex_pdu::CommandStatus;
use sairex_store::model::{Message, MessageStatus, Organization, ProviderConfig, ProviderKind};
use sairex_store::{MasterKey, Store, StoreOptions};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep};

const WAIT: Duration = Duration::from_secs(20);
/// Where receipt callbacks would go (nobody listens: these tests stop at SUBMITTED).
const PUBLIC: &str = "http://127.0.0.1:9";

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    org: u64,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(StoreOptions::new(dir.path()).with_master_key(MasterKey::generate())).unwrap();
    let org = store
        .create_organization(Organization {
            name: "school".into(),
            is_active: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    World {
        _dir: dir,
        store,
        org,
    }
}

fn twilio() -> FakeKind {
    FakeKind::Twilio(TwilioAccount {
        account_sid: "AC0123456789abcdef0123456789abcdef".into(),
        auth_token: "twilio-token".into(),
    })
}

fn vonage() -> FakeKind {
    FakeKind::Vonage(VonageAccount {
        api_key: "vkey".into(),
        api_secret: "vsecret".into(),
        signature_secret: String::new(),
        signature_method: "md5hash".into(),
    })
}

fn veevo() -> FakeKind {
    FakeKind::Veevo(VeevoAccount {
        hash: "veevo-hash".into(),
        callback_secret: String::new(),
    })
}

async fn fake(kind: FakeKind) -> FakeServer {
    let config = FakeConfig {
        receipt: FakeReceipt::None,
        ..FakeConfig::new(kind)
    };
    FakeServer::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn record(w: &World, kind: ProviderKind, base: &str, priority: i32) -> ProviderConfig {
    let credentials = match kind {
        ProviderKind::Twilio => {
            json!({"accountSid": "AC0123456789abcdef0123456789abcdef", "authToken": "twilio-token"})
        }
        ProviderKind::Vonage => json!({"apiKey": "vkey", "apiSecret": "vsecret"}),
        _ => json!({"hash": "veevo-hash"}),
    };
    ProviderConfig {
        organization_id: w.org,
        provider_kind: kind,
        display_name: format!("{kind:?}"),
        is_active: true,
        priority,
        settings: json!({"baseUrl": base, "concurrency": 4, "healthIntervalMs": 200}),
        credentials,
        ..ProviderConfig::default()
    }
}

async fn start_engine(w: &World) -> Engine {
    Engine::start_with(
        w.store.clone(),
        EngineConfig {
            dispatcher: DispatcherConfig {
                poll_interval: Duration::from_millis(20),
                ..DispatcherConfig::default()
            },
            provider_drain: Duration::from_secs(2),
            ..EngineConfig::default()
        },
        HttpOptions {
            public_base_url: Some(PUBLIC.into()),
        },
    )
    .await
    .unwrap()
}

async fn send(w: &World, engine: &Engine, to: &str, body: &str) -> u64 {
    let m = w
        .store
        .enqueue(Message {
            organization_id: w.org,
            from_number: "Sairex".into(),
            to_number: to.into(),
            body: body.into(),
            max_retries: 3,
            ..Message::default()
        })
        .await
        .unwrap();
    engine.handle().nudge();
    m.message().id
}

async fn until_checked(fake: &FakeServer) {
    let deadline = Instant::now() + WAIT;
    while !fake.requests().iter().any(|r| r.path.contains("balance")) {
        assert!(
            Instant::now() < deadline,
            "no balance check reached the fake"
        );
        sleep(Duration::from_millis(10)).await;
    }
}

async fn wait_for(w: &World, id: u64, done: impl Fn(&Message) -> bool) -> Message {
    let deadline = Instant::now() + WAIT;
    loop {
        let m = w.store.message(w.org, id).unwrap();
        if done(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "not done in time: {:?} {:?} {:?}",
            m.status,
            m.queue,
            w.store
                .events(w.org, id)
                .unwrap()
                .iter()
                .map(|e| (e.event_type.clone(), e.detail.clone()))
                .collect::<Vec<_>>()
        );
        sleep(Duration::from_millis(20)).await;
    }
}

fn submitted(m: &Message) -> bool {
    m.status == MessageStatus::Submitted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_request_on_the_wire() {
    let w = world().await;
    let fake = fake(twilio()).await;
    let p = w
        .store
        .create_provider(record(&w, ProviderKind::Twilio, &fake.base_url(), 1))
        .await
        .unwrap();
    let engine = start_engine(&w).await;
    let text = "فیس جمعہ تک ادا کریں 👍";
    let id = send(&w, &engine, "+923001234567", text).await;
    let m = wait_for(&w, id, submitted).await;
    assert_eq!(m.provider_id, Some(p.id));
    let sid = m.provider_msg_id.clone().unwrap_or_default();
    assert!(sid.starts_with("SM") && sid.len() == 34, "{sid}");

    let sends: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/Messages.json"))
        .collect();
    assert_eq!(sends.len(), 1);
    let r = &sends[0];
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.path,
        "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json"
    );
    let basic = base64::engine::general_purpose::STANDARD
        .encode("AC0123456789abcdef0123456789abcdef:twilio-token");
    assert_eq!(
        r.headers.get("authorization").map(String::as_str),
        Some(format!("Basic {basic}").as_str())
    );
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(r.param("To").as_deref(), Some("+923001234567"));
    assert_eq!(r.param("From").as_deref(), Some("Sairex"));
    assert_eq!(
        r.param("Body").as_deref(),
        Some(text),
        "UTF-8 form encoding"
    );
    assert_eq!(
        r.param("StatusCallback"),
        Some(format!(
            "{PUBLIC}/api/sms/dlr?provider=twilio&providerId={}",
            p.id
        ))
    );
    // The health check read the balance with the same credentials.
    let deadline = Instant::now() + WAIT;
    while !fake
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/Balance.json"))
    {
        assert!(Instant::now() < deadline, "no balance check");
        sleep(Duration::from_millis(20)).await;
    }
    engine.shutdown().await;
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vonage_request_on_the_wire_unicode_and_parts() {
    let w = world().await;
    let fake = fake(vonage()).await;
    let p = w
        .store
        .create_provider(record(&w, ProviderKind::Vonage, &fake.base_url(), 1))
        .await
        .unwrap();
    let engine = start_engine(&w).await;
    let urdu = send(&w, &engine, "+923001234567", "شکریہ").await;
    let long = "a".repeat(200);
    let two = send(&w, &engine, "+923001234568", &long).await;
    wait_for(&w, urdu, submitted).await;
    let m = wait_for(&w, two, submitted).await;
    assert_eq!(m.provider_msg_ids.len(), 2, "one id per part: {m:?}");

    let sends: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/sms/json")
        .collect();
    assert_eq!(sends.len(), 2);
    let unicode = sends
        .iter()
        .find(|r| r.param("to").as_deref() == Some("923001234567"))
        .expect("the Urdu message");
    assert_eq!(unicode.method, "POST");
    assert_eq!(unicode.param("api_key").as_deref(), Some("vkey"));
    assert_eq!(unicode.param("api_secret").as_deref(), Some("vsecret"));
    assert_eq!(unicode.param("from").as_deref(), Some("Sairex"));
    assert_eq!(unicode.param("text").as_deref(), Some("شکریہ"));
    assert_eq!(unicode.param("type").as_deref(), Some("unicode"));
    assert_eq!(unicode.param("status-report-req").as_deref(), Some("1"));
    assert_eq!(unicode.param("client-ref"), Some(urdu.to_string()));
    assert_eq!(
        unicode.param("callback"),
        Some(format!(
            "{PUBLIC}/api/sms/dlr?provider=vonage&providerId={}",
            p.id
        ))
    );
    let gsm = sends
        .iter()
        .find(|r| r.param("to").as_deref() == Some("923001234568"))
        .expect("the long message");
    assert_eq!(gsm.param("type"), None, "GSM text is sent as text");
    engine.shutdown().await;
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn veevo_request_on_the_wire() {
    let w = world().await;
    let fake = fake(veevo()).await;
    w.store
        .create_provider(record(&w, ProviderKind::Veevo, &fake.base_url(), 1))
        .await
        .unwrap();
    let engine = start_engine(&w).await;
    let id = send(&w, &engine, "+923001234567", "Fee due Friday").await;
    let m = wait_for(&w, id, submitted).await;
    assert!(m.provider_msg_id.is_some());
    let r = fake
        .requests()
        .into_iter()
        .find(|r| r.path == "/v3/sendsms")
        .expect("a send");
    assert_eq!(r.method, "POST");
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let body: Value = r.json().expect("JSON body");
    assert_eq!(
        body,
        json!({"hash": "veevo-hash", "receivernum": "+923001234567",
               "sendernum": "Sairex", "textmessage": "Fee due Friday"})
    );
    engine.shutdown().await;
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_keep_the_provider_error_code_and_throttling_requeues() {
    let w = world().await;
    let fake = fake(twilio()).await;
    w.store
        .create_provider(record(&w, ProviderKind::Twilio, &fake.base_url(), 1))
        .await
        .unwrap();
    let engine = start_engine(&w).await;
    // The fake refuses a number this short as Twilio does: 400, code 21211.
    let bad = send(&w, &engine, "+1234", "hello").await;
    let m = wait_for(&w, bad, |m| m.status.is_final()).await;
    assert_eq!(m.status, MessageStatus::Rejected);
    assert_eq!(m.error_code.as_deref(), Some("21211"));

    // 429: re-queued without a retry counted, sent once the provider takes it again.
    fake.fail_with(Some(429));
    let id = send(&w, &engine, "+923001234567", "hello").await;
    let deadline = Instant::now() + WAIT;
    while !w
        .store
        .events(w.org, id)
        .unwrap()
        .iter()
        .any(|e| e.event_type == "THROTTLED")
    {
        assert!(Instant::now() < deadline, "not throttled");
        sleep(Duration::from_millis(20)).await;
    }
    fake.fail_with(None);
    let m = wait_for(&w, id, submitted).await;
    assert_eq!(m.retry_count, 0, "throttling is not a retry");
    engine.shutdown().await;
    fake.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_from_http_to_smpp_and_from_smpp_to_http() {
    let w = world().await;
    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(10),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let vonage = fake(vonage()).await;
    vonage.fail_with(Some(503));
    let http = w
        .store
        .create_provider(record(&w, ProviderKind::Vonage, &vonage.base_url(), 1))
        .await
        .unwrap();
    let addr = sim.addr();
    let smpp = w
        .store
        .create_provider(ProviderConfig {
            organization_id: w.org,
            provider_kind: ProviderKind::Smpp,
            display_name: "sim".into(),
            is_active: true,
            priority: 2,
            credentials: json!({"host": addr.ip().to_string(), "port": addr.port(),
                                "systemId": "sairex", "password": "secret"}),
            ..ProviderConfig::default()
        })
        .await
        .unwrap();
    let engine = start_engine(&w).await;
    // The HTTP provider announces its credit before its first balance check: once the fake saw
    // that check, the message cannot be routed past the HTTP provider for want of credit.
    until_checked(&vonage).await;
    let id = send(&w, &engine, "+923001234567", "first").await;
    let m = wait_for(&w, id, |m| m.status == MessageStatus::Delivered).await;
    assert_eq!(
        m.provider_id,
        Some(smpp.id),
        "delivered by the SMPP provider"
    );
    let events = w.store.events(w.org, id).unwrap();
    assert!(
        events.iter().any(|e| e.event_type == "PROVIDER_ERROR"),
        "the HTTP provider's refusal is in the timeline: {events:?}"
    );
    engine.shutdown().await;
    sim.shutdown().await;

    // And back: the SMPP provider first, refusing everything; the HTTP one takes it.
    let sim = SimServer::start(SimConfig {
        error_rate: 1.0,
        error_status: CommandStatus::ESME_RSYSERR,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let addr = sim.addr();
    w.store
        .update_provider(w.org, smpp.id, move |r| {
            r.priority = 1;
            r.credentials = json!({"host": addr.ip().to_string(), "port": addr.port(),
                                   "systemId": "sairex", "password": "secret"});
            Ok(())
        })
        .await
        .unwrap();
    w.store
        .update_provider(w.org, http.id, |r| {
            r.priority = 2;
            Ok(())
        })
        .await
        .unwrap();
    vonage.fail_with(None);
    let engine = start_engine(&w).await;
    let id = send(&w, &engine, "+923001234567", "second").await;
    let m = wait_for(&w, id, submitted).await;
    assert_eq!(m.provider_id, Some(http.id), "sent by the HTTP provider");
    engine.shutdown().await;
    sim.shutdown().await;
    vonage.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_failing_its_health_checks_takes_nothing() {
    let w = world().await;
    let good = fake(veevo()).await;
    let twilio_fake = fake(twilio()).await;
    // Wrong token: sends and balance checks are refused (401).
    let mut bad = record(&w, ProviderKind::Twilio, &twilio_fake.base_url(), 1);
    bad.credentials =
        json!({"accountSid": "AC0123456789abcdef0123456789abcdef", "authToken": "wrong"});
    bad.settings = json!({"baseUrl": twilio_fake.base_url(), "healthIntervalMs": 30});
    w.store.create_provider(bad).await.unwrap();
    let veevo_record = w
        .store
        .create_provider(record(&w, ProviderKind::Veevo, &good.base_url(), 2))
        .await
        .unwrap();
    let engine = start_engine(&w).await;
    // Three failed checks (30 ms apart) make it unavailable.
    sleep(Duration::from_millis(400)).await;
    let before = twilio_fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/Messages.json"))
        .count();
    let id = send(&w, &engine, "+923001234567", "hello").await;
    let m = wait_for(&w, id, submitted).await;
    assert_eq!(m.provider_id, Some(veevo_record.id));
    let after = twilio_fake
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/Messages.json"))
        .count();
    assert_eq!(before, after, "nothing was sent to the unhealthy provider");
    engine.shutdown().await;
    good.shutdown().await;
    twilio_fake.shutdown().await;
}
