//! The SMPP server end to end: customers bind over loopback TCP (and TLS) to the real server,
//! submit into the real engine, which sends to the SMSC simulator, whose receipts come back
//! to the customer as deliver_sm. Two clients: a raw ESME on the project's codec (to see every
//! status exactly) and the project's own SMPP session actor (TLS bind with a test CA).

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{ADMIN_TOKEN, settings};
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use sairex_engine::backoff::ExponentialBackoff;
use sairex_engine::dispatch::{DispatcherConfig, DispatcherHandle, EngineEvent};
use sairex_engine::gateway::{Engine, EngineConfig};
use sairex_engine::provider::smpp::SmppProviderConfig;
use sairex_engine::session::{
    DeliverStatus, SessionActor, SessionArgs, SessionConfig, SessionEvent, SessionMsg,
    SubmitResult, TlsSettings,
};
use sairex_http_api::smpp_server::{SmppServer, SmppServerSettings, tls_acceptor};
use sairex_http_api::{EngineLink, WebhookTestResult};
use sairex_loadtest::sim::{SimConfig, SimHandle, SimServer};
use sairex_pdu::text::parse_udh;
use sairex_pdu::{
    Bind, Command, CommandStatus, DataSm, DeliverSm, DeliverSmResp, Pdu, QuerySm, ShortMessage,
    SmppCodec, SubmitSm,
};
use sairex_store::model::Id;
use sairex_store::{MasterKey, Store, StoreOptions};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tokio_util::codec::Framed;

/// The engine link the binary wires: the dispatcher's events and the API's own on one channel.
struct Link {
    handle: DispatcherHandle,
    events: broadcast::Sender<EngineEvent>,
    running: AtomicBool,
}

impl Link {
    fn new(handle: DispatcherHandle) -> Arc<Self> {
        let events = broadcast::channel(4096).0;
        let mut from_engine = handle.subscribe();
        let forward = events.clone();
        tokio::spawn(async move {
            loop {
                match from_engine.recv().await {
                    Ok(e) => {
                        let _ = forward.send(e);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        Arc::new(Self {
            handle,
            events,
            running: AtomicBool::new(true),
        })
    }
}

impl EngineLink for Link {
    fn nudge(&self) {
        self.handle.nudge();
    }
    fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }
    fn providers_changed(&self) {}
    fn is_running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }
    fn send_test_webhook(
        &self,
        _: Id,
        _: Id,
    ) -> BoxFuture<'static, Result<WebhookTestResult, String>> {
        Box::pin(async { Err("no webhook sender in this test".to_owned()) })
    }
}

/// The whole gateway on loopback: store, simulator, engine, API and SMPP server.
struct Gateway {
    base: String,
    client: reqwest::Client,
    store: Store,
    sim: SimHandle,
    engine: Option<Engine>,
    server: Option<SmppServer>,
    smpp: std::net::SocketAddr,
    tls: std::net::SocketAddr,
    ca_pem: Vec<u8>,
    key: String,
    org: u64,
    _dir: tempfile::TempDir,
}

const MO_NUMBER: &str = "8080";

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (
        status,
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap(),
    )
}

impl Gateway {
    async fn start(smpp_settings: SmppServerSettings) -> Self {
        let sim = SimServer::start(SimConfig {
            receipt_delay: Duration::from_millis(20),
            ..SimConfig::default()
        })
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(StoreOptions::new(dir.path()).with_master_key(MasterKey::generate()))
                .unwrap();
        let client = sairex_engine::http_client::builder()
            .unwrap()
            .build()
            .unwrap();
        let boot = common::serve(store.clone(), common::FakeEngine::new(), settings()).await;
        let (status, org) = call(
            &client,
            reqwest::Method::POST,
            format!("{boot}/api/admin/organizations"),
            ADMIN_TOKEN,
            Some(json!({ "name": "bank", "defaultCountry": "PK" })),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let key = org["data"]["apiKey"]["key"].as_str().unwrap().to_owned();
        let org_id = org["data"]["id"].as_u64().unwrap();
        let addr = sim.addr();
        let (status, provider) = call(&client, reqwest::Method::POST, format!("{boot}/api/sms/providers"), &key,
            Some(json!({ "providerName": "smpp", "displayName": "simulator",
                         "credentials": { "host": addr.ip().to_string(), "port": addr.port(), "systemId": "sairex", "password": "secret" },
                         "settings": { "binds": 1 } }))).await;
        assert_eq!(status, StatusCode::CREATED, "{provider}");
        let record = store
            .provider(org_id, provider["data"]["id"].as_u64().unwrap())
            .unwrap();
        let session = SessionConfig {
            system_id: "sairex".try_into().unwrap(),
            password: "secret".try_into().unwrap(),
            reconnect: ExponentialBackoff::try_new(
                Duration::from_millis(50),
                Duration::from_millis(200),
            )
            .unwrap(),
            response_timeout: Duration::from_secs(2),
            ..SessionConfig::new(addr.ip().to_string(), addr.port())
        };
        let engine = Engine::start(
            store.clone(),
            EngineConfig {
                dispatcher: DispatcherConfig {
                    inbound_routes: HashMap::from([(MO_NUMBER.to_owned(), org_id)]),
                    ..DispatcherConfig::default()
                },
                smpp: vec![(record.clone(), SmppProviderConfig::new(record.id, session))],
                provider_drain: Duration::from_secs(2),
                providers_from_store: false,
            },
        )
        .await
        .unwrap();
        let link = Link::new(engine.handle());
        let (router, handle) = sairex_http_api::build(store.clone(), link, settings());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let ca_pem = certified.cert.pem().into_bytes();
        let acceptor =
            tls_acceptor(&ca_pem, certified.signing_key.serialize_pem().as_bytes()).unwrap();
        let plain = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (smpp, tls_addr) = (plain.local_addr().unwrap(), tls.local_addr().unwrap());
        let server = SmppServer::start(&handle, smpp_settings, Some(plain), Some((tls, acceptor)));
        Self {
            base,
            client,
            store,
            sim,
            engine: Some(engine),
            server: Some(server),
            smpp,
            tls: tls_addr,
            ca_pem,
            key,
            org: org_id,
            _dir: dir,
        }
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(
            &self.client,
            method,
            format!("{}{path}", self.base),
            &self.key,
            body,
        )
        .await
    }

    /// A new SMPP account; its id and password.
    async fn account(&self, body: Value) -> (u64, String) {
        let (status, created) = self
            .api(reqwest::Method::POST, "/api/sms/smpp-accounts", Some(body))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        (
            created["data"]["id"].as_u64().unwrap(),
            created["data"]["password"].as_str().unwrap().to_owned(),
        )
    }

    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown(Duration::from_secs(5)).await;
        }
        if let Some(engine) = self.engine.take() {
            engine.shutdown().await;
        }
    }
}

fn fast_settings() -> SmppServerSettings {
    SmppServerSettings {
        response_timeout: Duration::from_secs(2),
        lockout_after: 3,
        lockout_duration: Duration::from_secs(60),
        ..SmppServerSettings::default()
    }
}

/// A raw ESME on the project's codec.
struct Esme {
    framed: Framed<TcpStream, SmppCodec>,
    seq: u32,
    /// deliver_sm received while waiting for something else.
    delivered: Vec<Command>,
}

impl Esme {
    async fn connect(addr: std::net::SocketAddr) -> Self {
        Self {
            framed: Framed::new(TcpStream::connect(addr).await.unwrap(), SmppCodec::new()),
            seq: 0,
            delivered: Vec::new(),
        }
    }

    async fn send(&mut self, pdu: impl Into<Pdu>) -> u32 {
        self.seq += 1;
        self.framed.send(Command::new(self.seq, pdu)).await.unwrap();
        self.seq
    }

    /// The next PDU (enquire_links answered on the way); `None` when the server closed.
    async fn next(&mut self) -> Option<Command> {
        loop {
            let item = tokio::time::timeout(Duration::from_secs(15), self.framed.next())
                .await
                .expect("nothing from the server in 15 s")?;
            let command = item.ok()?.ok()?;
            if matches!(command.pdu, Pdu::EnquireLink) {
                self.framed
                    .send(Command::new(command.sequence_number, Pdu::EnquireLinkResp))
                    .await
                    .unwrap();
                continue;
            }
            return Some(command);
        }
    }

    /// The response to `seq`; deliver_sm met meanwhile are kept.
    async fn response(&mut self, seq: u32) -> Command {
        loop {
            let command = self.next().await.expect("connection closed");
            if matches!(command.pdu, Pdu::DeliverSm(_)) {
                self.delivered.push(command);
                continue;
            }
            if command.sequence_number == seq {
                return command;
            }
        }
    }

    async fn call(&mut self, pdu: impl Into<Pdu>) -> Command {
        let seq = self.send(pdu).await;
        self.response(seq).await
    }

    async fn bind(&mut self, kind: &str, system_id: &str, password: &str) -> CommandStatus {
        let body = Bind {
            system_id: system_id.try_into().unwrap(),
            password: password.try_into().unwrap(),
            interface_version: 0x34,
            ..Bind::default()
        };
        let pdu = match kind {
            "tx" => Pdu::BindTransmitter(body),
            "rx" => Pdu::BindReceiver(body),
            _ => Pdu::BindTransceiver(body),
        };
        self.call(pdu).await.command_status
    }

    /// The next deliver_sm (kept or new), not yet answered.
    async fn deliver_sm(&mut self) -> (u32, DeliverSm) {
        let command = if self.delivered.is_empty() {
            loop {
                let c = self.next().await.expect("connection closed");
                if matches!(c.pdu, Pdu::DeliverSm(_)) {
                    break c;
                }
            }
        } else {
            self.delivered.remove(0)
        };
        match command.pdu {
            Pdu::DeliverSm(d) => (command.sequence_number, d),
            _ => unreachable!(),
        }
    }

    async fn answer(&mut self, seq: u32, status: CommandStatus) {
        self.framed
            .send(Command::with_status(
                status,
                seq,
                Pdu::DeliverSmResp(DeliverSmResp::default()),
            ))
            .await
            .unwrap();
    }
}

fn submit(to: &str, text: &[u8], data_coding: u8, registered_delivery: u8) -> SubmitSm {
    SubmitSm {
        source_addr: "BANK".try_into().unwrap(),
        dest_addr_ton: 1,
        dest_addr_npi: 1,
        destination_addr: to.try_into().unwrap(),
        data_coding,
        registered_delivery,
        short_message: ShortMessage::new(text.to_vec()).unwrap(),
        ..SubmitSm::default()
    }
}

fn message_id(command: &Command) -> String {
    match &command.pdu {
        Pdu::SubmitSmResp(r) => r.message_id.to_string_lossy(),
        Pdu::DataSmResp(r) => r.message_id.to_string_lossy(),
        other => panic!("not a submit response: {other:?}"),
    }
}

fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_be_bytes).collect()
}

async fn until<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_api_shows_the_password_once_and_isolates_tenants() {
    let gw = Gateway::start(fast_settings()).await;
    let (status, created) = gw
        .api(
            reqwest::Method::POST,
            "/api/sms/smpp-accounts",
            Some(json!({ "systemId": "acme01", "tps": 50, "maxWindow": 10,
                          "allowedIps": ["127.0.0.0/8"], "receiptIdFormat": "decimal" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["data"]["id"].as_u64().unwrap();
    let password = created["data"]["password"].as_str().unwrap();
    assert_eq!(password.len(), 8);
    let stored = gw.store.smpp_account(gw.org, id).unwrap();
    assert!(stored.password_hash.starts_with("$argon2id$"));
    assert!(!stored.password_hash.contains(password));
    let (_, got) = gw
        .api(
            reqwest::Method::GET,
            &format!("/api/sms/smpp-accounts/{id}"),
            None,
        )
        .await;
    assert!(got["data"].get("password").is_none(), "{got}");
    assert!(!got.to_string().contains("argon2"), "{got}");
    assert_eq!(got["data"]["receiptIdFormat"], "decimal");

    // systemId is unique across the gateway, and bad values are 400s.
    let (status, _) = gw
        .api(
            reqwest::Method::POST,
            "/api/sms/smpp-accounts",
            Some(json!({ "systemId": "acme01" })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = gw
        .api(
            reqwest::Method::POST,
            "/api/sms/smpp-accounts",
            Some(json!({ "systemId": "acme02", "allowedIps": ["nonsense"] })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = gw
        .api(
            reqwest::Method::POST,
            "/api/sms/smpp-accounts",
            Some(json!({ "systemId": "acme02", "password": "waytoolongpassword" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // PATCH with a new password shows it once; the old one no longer binds.
    let (status, patched) = gw
        .api(
            reqwest::Method::PATCH,
            &format!("/api/sms/smpp-accounts/{id}"),
            Some(json!({ "regeneratePassword": true, "tps": null })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    let new_password = patched["data"]["password"].as_str().unwrap().to_owned();
    assert_ne!(new_password, password);
    assert!(patched["data"]["tps"].is_null());
    let mut esme = Esme::connect(gw.smpp).await;
    assert_eq!(
        esme.bind("trx", "acme01", password).await,
        CommandStatus::ESME_RINVPASWD
    );
    assert_eq!(
        esme.bind("trx", "acme01", &new_password).await,
        CommandStatus::ESME_ROK
    );

    // Another organization sees none of it.
    let (_, other) = call(
        &gw.client,
        reqwest::Method::POST,
        format!("{}/api/admin/organizations", gw.base),
        ADMIN_TOKEN,
        Some(json!({ "name": "other", "defaultCountry": "PK" })),
    )
    .await;
    let other_key = other["data"]["apiKey"]["key"].as_str().unwrap();
    let (status, _) = call(
        &gw.client,
        reqwest::Method::GET,
        format!("{}/api/sms/smpp-accounts/{id}", gw.base),
        other_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &gw.client,
        reqwest::Method::DELETE,
        format!("{}/api/sms/smpp-accounts/{id}", gw.base),
        other_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = call(
        &gw.client,
        reqwest::Method::GET,
        format!("{}/api/sms/smpp-accounts", gw.base),
        other_key,
        None,
    )
    .await;
    assert_eq!(listed["data"]["total"], 0);

    // Deleting unbinds the session.
    let (status, _) = gw
        .api(
            reqwest::Method::DELETE,
            &format!("/api/sms/smpp-accounts/{id}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let unbind = esme.next().await.expect("an unbind");
    assert!(matches!(unbind.pdu, Pdu::Unbind), "{unbind:?}");

    let (_, spec) = gw.api(reqwest::Method::GET, "/openapi.json", None).await;
    assert!(spec["paths"]["/api/sms/smpp-accounts/{accountId}"]["patch"].is_object());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_errors_states_and_lockout() {
    let gw = Gateway::start(fast_settings()).await;
    let (_, password) = gw
        .account(json!({ "systemId": "rxonly", "bindTypes": ["receiver"], "maxBinds": 1 }))
        .await;
    let (_, fenced_password) = gw
        .account(json!({ "systemId": "fenced", "allowedIps": ["10.0.0.0/8"] }))
        .await;

    let mut esme = Esme::connect(gw.smpp).await;
    // Before a bind: a submit is in the wrong state.
    let refused = esme.call(submit("923001234567", b"x", 0, 0)).await;
    assert_eq!(refused.command_status, CommandStatus::ESME_RINVBNDSTS);
    assert!(matches!(refused.pdu, Pdu::SubmitSmResp(_)));
    assert_eq!(
        esme.bind("tx", "nobody", "x").await,
        CommandStatus::ESME_RINVSYSID
    );
    assert_eq!(
        esme.bind("rx", "rxonly", "wrong").await,
        CommandStatus::ESME_RINVPASWD
    );
    assert_eq!(
        esme.bind("tx", "rxonly", &password).await,
        CommandStatus::ESME_RBINDFAIL
    );
    assert_eq!(
        esme.bind("rx", "fenced", &fenced_password).await,
        CommandStatus::ESME_RBINDFAIL
    );
    assert_eq!(
        esme.bind("rx", "rxonly", &password).await,
        CommandStatus::ESME_ROK
    );
    assert_eq!(
        esme.bind("rx", "rxonly", &password).await,
        CommandStatus::ESME_RALYBND
    );
    // A receiver may not submit.
    let refused = esme.call(submit("923001234567", b"x", 0, 0)).await;
    assert_eq!(refused.command_status, CommandStatus::ESME_RINVBNDSTS);
    // One bind at most.
    let mut second = Esme::connect(gw.smpp).await;
    assert_eq!(
        second.bind("rx", "rxonly", &password).await,
        CommandStatus::ESME_RBINDFAIL
    );
    // Unbind is answered and closes.
    let unbound = esme.call(Pdu::Unbind).await;
    assert!(matches!(unbound.pdu, Pdu::UnbindResp));
    assert!(esme.next().await.is_none(), "closed after unbind");

    // Three wrong passwords lock the system id out: even the right one is refused.
    let mut guess = Esme::connect(gw.smpp).await;
    for _ in 0..3 {
        assert_eq!(
            guess.bind("rx", "rxonly", "guess").await,
            CommandStatus::ESME_RINVPASWD
        );
    }
    assert_eq!(
        guess.bind("rx", "rxonly", &password).await,
        CommandStatus::ESME_RBINDFAIL
    );
    gw.stop().await;
}

/// Joins the parts the simulator received for one destination, by their UDH.
fn joined_by_udh(sim: &SimHandle, to: &str) -> Option<String> {
    let mut parts: Vec<(u8, u8, Vec<u8>, u8)> = Vec::new();
    for m in sim.received() {
        if m.destination_addrs
            .first()
            .is_some_and(|d| d.as_ref() == to.as_bytes())
        {
            if m.esm_class & 0x40 == 0 {
                return sairex_pdu::text::decode(m.data_coding, &m.short_message).ok();
            }
            let ud = parse_udh(&m.short_message).ok()?;
            let c = ud.concat?;
            parts.push((c.seq, c.total, ud.payload.to_vec(), m.data_coding));
        }
    }
    let total = usize::from(parts.first()?.1);
    if parts.len() != total {
        return None;
    }
    parts.sort_by_key(|p| p.0);
    Some(
        parts
            .iter()
            .map(|(_, _, payload, dc)| sairex_pdu::text::decode(*dc, payload).unwrap())
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gsm_ucs2_and_concatenated_submits_arrive_whole_with_receipts_in_the_customers_format() {
    let gw = Gateway::start(fast_settings()).await;
    let (_, password) = gw
        .account(json!({ "systemId": "bank", "receiptIdFormat": "decimal" }))
        .await;
    let mut esme = Esme::connect(gw.smpp).await;
    assert_eq!(
        esme.bind("trx", "bank", &password).await,
        CommandStatus::ESME_ROK
    );

    let gsm = esme
        .call(submit("923001110001", b"Your OTP is 1234", 0, 1))
        .await;
    assert_eq!(gsm.command_status, CommandStatus::ESME_ROK);
    let gsm_id = message_id(&gsm);
    assert!(
        gsm_id.bytes().all(|b| b.is_ascii_digit()),
        "decimal id: {gsm_id}"
    );
    let urdu = "آپ کی فیس جمعہ کو واجب ہے";
    let uni = esme.call(submit("923001110002", &ucs2(urdu), 8, 1)).await;
    assert_eq!(uni.command_status, CommandStatus::ESME_ROK);
    let uni_id = message_id(&uni);

    // Three parts with a UDH (8-bit reference 0x42), each answered with its own id.
    let long = "Dear parent, the fee for March is due on Friday. Please pay at the bank counter or online; late fees apply after the tenth. Thank you, the school office, Lahore campus, Model Town branch.";
    let chunks: Vec<&str> = vec![&long[..80], &long[80..160], &long[160..]];
    let mut part_ids = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let mut octets = vec![0x05, 0x00, 0x03, 0x42, 0x03, u8::try_from(i + 1).unwrap()];
        octets.extend_from_slice(chunk.as_bytes());
        let mut pdu = submit("923001110003", &octets, 0, 1);
        pdu.esm_class = 0x40;
        let resp = esme.call(pdu).await;
        assert_eq!(resp.command_status, CommandStatus::ESME_ROK);
        part_ids.push(message_id(&resp));
    }
    assert_eq!(
        part_ids
            .iter()
            .collect::<std::collections::HashSet<_>>()
            .len(),
        3
    );
    // Two parts with SAR TLVs, sent out of order.
    let sar_text = ["Second half arrives first. ", "First half arrives second."];
    for (seq, text) in [(2u8, sar_text[1]), (1u8, sar_text[0])] {
        let mut pdu = submit("923001110004", text.as_bytes(), 0, 0);
        pdu.tlvs.set_sar_msg_ref_num(0x1234);
        pdu.tlvs.set_sar_total_segments(2);
        pdu.tlvs.set_sar_segment_seqnum(seq);
        assert_eq!(esme.call(pdu).await.command_status, CommandStatus::ESME_ROK);
    }
    // A data_sm with message_payload.
    let mut data = DataSm {
        source_addr: "BANK".try_into().unwrap(),
        dest_addr_ton: 1,
        destination_addr: "923001110005".try_into().unwrap(),
        ..DataSm::default()
    };
    data.tlvs
        .set_message_payload(&b"via data sm payload"[..])
        .unwrap();
    let data_resp = esme.call(data).await;
    assert_eq!(
        data_resp.command_status,
        CommandStatus::ESME_ROK,
        "{data_resp:?}"
    );

    // Through the engine to the simulator: each text arrives whole.
    let sim = &gw.sim;
    assert_eq!(
        until("GSM text", async || joined_by_udh(sim, "923001110001")).await,
        "Your OTP is 1234"
    );
    assert_eq!(
        until("UCS-2 text", async || joined_by_udh(sim, "923001110002")).await,
        urdu
    );
    assert_eq!(
        until("UDH message", async || joined_by_udh(sim, "923001110003")).await,
        long
    );
    assert_eq!(
        until("SAR message", async || joined_by_udh(sim, "923001110004")).await,
        sar_text.concat()
    );
    assert_eq!(
        until("data_sm", async || joined_by_udh(sim, "923001110005")).await,
        "via data sm payload"
    );

    // Receipts: one per id we gave (2 single messages + 3 parts), in decimal, with the TLVs.
    let mut expected: Vec<String> = vec![gsm_id.clone(), uni_id.clone()];
    expected.extend(part_ids.iter().cloned());
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        let (seq, d) = esme.deliver_sm().await;
        assert!(d.is_receipt(), "{d:?}");
        let text = String::from_utf8(d.short_message.as_bytes().to_vec()).unwrap();
        let tlv_id = String::from_utf8(d.tlvs.receipted_message_id().unwrap().to_vec()).unwrap();
        assert!(text.starts_with(&format!("id:{tlv_id} ")), "{text}");
        assert!(text.contains("stat:DELIVRD"), "{text}");
        assert_eq!(d.tlvs.message_state(), Some(2));
        esme.answer(seq, CommandStatus::ESME_ROK).await;
        seen.push(tlv_id);
    }
    seen.sort();
    expected.sort();
    assert_eq!(seen, expected);

    // query_sm on our id; another account cannot see it.
    let q = esme
        .call(QuerySm {
            message_id: gsm_id.as_str().try_into().unwrap(),
            ..QuerySm::default()
        })
        .await;
    match q.pdu {
        Pdu::QuerySmResp(r) => {
            assert_eq!(q.command_status, CommandStatus::ESME_ROK);
            assert_eq!(r.message_state, 2);
            assert!(!r.final_date.is_empty());
        }
        other => panic!("{other:?}"),
    }
    let (_, other_password) = gw.account(json!({ "systemId": "other" })).await;
    let mut other = Esme::connect(gw.smpp).await;
    assert_eq!(
        other.bind("tx", "other", &other_password).await,
        CommandStatus::ESME_ROK
    );
    let hex_of_gsm = format!("{:x}", gsm_id.parse::<u64>().unwrap());
    let q = other
        .call(QuerySm {
            message_id: hex_of_gsm.as_str().try_into().unwrap(),
            ..QuerySm::default()
        })
        .await;
    assert_eq!(q.command_status, CommandStatus::ESME_RINVMSGID);
    // Every receipt answered: nothing is owed any more.
    let account = gw.store.smpp_account_by_system_id("bank").unwrap().unwrap();
    until("outbox empty", async || {
        gw.store
            .smpp_owed(account.id, 0, 10)
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_window_bad_frames_and_validation() {
    let gw = Gateway::start(fast_settings()).await;
    let (_, password) = gw
        .account(json!({ "systemId": "slow", "tps": 2, "senderIds": ["BANK"] }))
        .await;
    let mut esme = Esme::connect(gw.smpp).await;
    assert_eq!(
        esme.bind("tx", "slow", &password).await,
        CommandStatus::ESME_ROK
    );
    let mut statuses = Vec::new();
    for i in 0..8 {
        let r = esme
            .call(submit(&format!("92300122{i:04}"), b"hi", 0, 0))
            .await;
        statuses.push(r.command_status);
    }
    let ok = statuses
        .iter()
        .filter(|s| **s == CommandStatus::ESME_ROK)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == CommandStatus::ESME_RTHROTTLED)
        .count();
    assert!((2..=4).contains(&ok), "{statuses:?}");
    assert_eq!(ok + throttled, 8, "{statuses:?}");
    // Not one of its sender ids; a bad number; an empty body.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut wrong_sender = submit("923001234567", b"hi", 0, 0);
    wrong_sender.source_addr = "SPOOF".try_into().unwrap();
    assert_eq!(
        esme.call(wrong_sender).await.command_status,
        CommandStatus::ESME_RINVSRCADR
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        esme.call(submit("12", b"hi", 0, 0)).await.command_status,
        CommandStatus::ESME_RINVDSTADR
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        esme.call(submit("923001234567", b"", 0, 0))
            .await
            .command_status,
        CommandStatus::ESME_RINVMSGLEN
    );

    // Window 1: pipelined submits beyond it are answered ESME_RMSGQFUL, the rest accepted.
    let (_, password) = gw
        .account(json!({ "systemId": "narrow", "maxWindow": 1 }))
        .await;
    let mut narrow = Esme::connect(gw.smpp).await;
    assert_eq!(
        narrow.bind("tx", "narrow", &password).await,
        CommandStatus::ESME_ROK
    );
    let mut seqs = Vec::new();
    for i in 0..40 {
        seqs.push(
            narrow
                .send(submit(&format!("92300133{i:04}"), b"burst", 0, 0))
                .await,
        );
    }
    let mut full = 0;
    let mut accepted = 0;
    for _ in &seqs {
        let r = narrow.next().await.unwrap();
        match r.command_status {
            CommandStatus::ESME_ROK => accepted += 1,
            CommandStatus::ESME_RMSGQFUL => full += 1,
            other => panic!("{other:?}"),
        }
    }
    assert!(full > 0 && accepted > 0, "accepted {accepted}, full {full}");

    // Bad frames: an unknown command and a truncated body are nacked, the session goes on.
    let raw = narrow.framed.get_mut();
    use tokio::io::AsyncWriteExt;
    raw.write_all(&[0, 0, 0, 16, 0x00, 0x00, 0x01, 0x99, 0, 0, 0, 0, 0, 0, 0, 77])
        .await
        .unwrap();
    let nack = narrow.next().await.unwrap();
    assert!(matches!(nack.pdu, Pdu::GenericNack));
    assert_eq!(nack.command_status, CommandStatus::ESME_RINVCMDID);
    assert_eq!(nack.sequence_number, 77);
    let raw = narrow.framed.get_mut();
    // submit_sm whose body stops inside service_type.
    raw.write_all(&[0, 0, 0, 18, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 78, b'a', b'b'])
        .await
        .unwrap();
    let nack = narrow.next().await.unwrap();
    assert!(matches!(nack.pdu, Pdu::GenericNack), "{nack:?}");
    assert_eq!(nack.sequence_number, 78);
    assert!(!nack.command_status.is_ok());
    let alive = narrow.call(Pdu::EnquireLink).await;
    assert!(matches!(alive.pdu, Pdu::EnquireLinkResp));
    // A frame over the maximum length: nacked and closed.
    let raw = narrow.framed.get_mut();
    raw.write_all(&[0x7f, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 79])
        .await
        .unwrap();
    let nack = narrow.next().await.unwrap();
    assert!(matches!(nack.pdu, Pdu::GenericNack));
    assert!(
        narrow.next().await.is_none(),
        "closed after corrupt framing"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mo_is_delivered_and_redelivered_after_a_rebind() {
    let gw = Gateway::start(fast_settings()).await;
    let (_, password) = gw
        .account(json!({ "systemId": "keyword", "moNumbers": [MO_NUMBER] }))
        .await;
    let mut esme = Esme::connect(gw.smpp).await;
    assert_eq!(
        esme.bind("rx", "keyword", &password).await,
        CommandStatus::ESME_ROK
    );
    gw.sim
        .send_mo("923009998877", MO_NUMBER, "BALANCE please")
        .await
        .unwrap();
    let (seq, d) = esme.deliver_sm().await;
    assert!(!d.is_receipt());
    assert_eq!(d.short_message.as_bytes(), b"BALANCE please");
    assert_eq!(d.destination_addr.as_bytes(), MO_NUMBER.as_bytes());
    // A temporary error, then the customer goes away: the MO stays owed.
    esme.answer(seq, CommandStatus::ESME_RX_T_APPN).await;
    drop(esme);
    let mut again = Esme::connect(gw.smpp).await;
    assert_eq!(
        again.bind("trx", "keyword", &password).await,
        CommandStatus::ESME_ROK
    );
    let (seq, d) = again.deliver_sm().await;
    assert_eq!(d.short_message.as_bytes(), b"BALANCE please");
    again.answer(seq, CommandStatus::ESME_ROK).await;
    let account = gw
        .store
        .smpp_account_by_system_id("keyword")
        .unwrap()
        .unwrap();
    until("outbox empty", async || {
        gw.store
            .smpp_owed(account.id, 0, 10)
            .unwrap()
            .is_empty()
            .then_some(())
    })
    .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projects_session_binds_over_tls_with_a_test_ca_and_gets_its_receipt() {
    let gw = Gateway::start(fast_settings()).await;
    let (_, password) = gw.account(json!({ "systemId": "tlsbank" })).await;
    let (events_tx, mut events) = mpsc::channel(64);
    let config = SessionConfig {
        system_id: "tlsbank".try_into().unwrap(),
        password: password.as_str().try_into().unwrap(),
        tls: Some(TlsSettings {
            ca_pem: gw.ca_pem.clone(),
            client_cert_pem: None,
            client_key_pem: None,
            server_name: Some("localhost".into()),
        }),
        ..SessionConfig::new(gw.tls.ip().to_string(), gw.tls.port())
    };
    let (session, _join) = SessionActor::start(SessionArgs {
        config,
        events: events_tx,
        name: Arc::from("customer"),
    })
    .await
    .unwrap();
    let next = async |events: &mut mpsc::Receiver<SessionEvent>| {
        tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("no session event")
            .expect("session gone")
    };
    loop {
        if let SessionEvent::Bound { smsc_system_id } = next(&mut events).await {
            assert_eq!(smsc_system_id.as_bytes(), b"Sairex");
            break;
        }
    }
    session
        .cast(SessionMsg::Submit {
            token: 1,
            pdu: submit("923004445566", b"over TLS", 0, 1),
        })
        .unwrap();
    let id = loop {
        match next(&mut events).await {
            SessionEvent::Submitted { token: 1, result } => match result {
                SubmitResult::Accepted { message_id } => break message_id.to_string_lossy(),
                other => panic!("{other:?}"),
            },
            _ => continue,
        }
    };
    loop {
        if let SessionEvent::Deliver { deliver, ack } = next(&mut events).await {
            assert!(deliver.is_receipt());
            assert_eq!(deliver.tlvs.receipted_message_id(), Some(id.as_bytes()));
            ack.complete(DeliverStatus::Done);
            break;
        }
    }
    session.cast(SessionMsg::Drain).unwrap();
    gw.stop().await;
}

/// The Python of a venv with PyPI `smpplib`: `SAIREX_SMPPLIB_PYTHON` (CI sets it), else one
/// made under `target/` on first use. Never skipped: no Python or no smpplib fails the test.
fn smpplib_python() -> std::path::PathBuf {
    if let Ok(python) = std::env::var("SAIREX_SMPPLIB_PYTHON") {
        return python.into();
    }
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/smpplib-venv");
    let python = venv.join("bin/python");
    let has_smpplib = |python: &std::path::Path| {
        std::process::Command::new(python)
            .args(["-c", "import smpplib.client"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has_smpplib(&python) {
        let made = std::process::Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 is needed for the smpplib test (apt-get install python3-venv)");
        assert!(made.success(), "python3 -m venv failed");
        let installed = std::process::Command::new(&python)
            .args(["-m", "pip", "install", "-q", "smpplib==2.2.4"])
            .status()
            .expect("pip");
        assert!(
            installed.success(),
            "pip install smpplib failed (PyPI unreachable?)"
        );
    }
    assert!(
        has_smpplib(&python),
        "smpplib not importable from {}",
        python.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smpplib_binds_submits_gsm_and_ucs2_and_gets_every_receipt() {
    let python = tokio::task::spawn_blocking(smpplib_python).await.unwrap();
    let gw = Gateway::start(fast_settings()).await;
    let (_, password) = gw.account(json!({ "systemId": "pyclient" })).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/smpplib_client.py");
    let addr = gw.smpp;
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args([addr.ip().to_string(), addr.port().to_string()])
            .args(["pyclient", password.as_str()])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "smpplib client failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["bad_password_status"], 0x0E, "{report}");
    let ids = report["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 4, "1 GSM + 3 UCS-2 parts: {report}");
    for id in ids {
        let receipt = &report["receipts"][id.as_str().unwrap()];
        assert!(
            receipt["text"]
                .as_str()
                .unwrap()
                .starts_with(&format!("id:{} ", id.as_str().unwrap())),
            "{report}"
        );
        assert_eq!(receipt["state"], 2, "{report}");
    }
    for (to, text) in report["texts"].as_object().unwrap() {
        let sim = &gw.sim;
        let arrived = until("smpplib message", async || joined_by_udh(sim, to)).await;
        assert_eq!(arrived, text.as_str().unwrap());
    }
    gw.stop().await;
}
