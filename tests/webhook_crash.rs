//! Webhooks survive SIGKILL: the real `sairex serve` binary sends 5,000 messages through the
//! SMSC simulator while it is killed three times, with a webhook subscribed to `message.sent`,
//! `message.delivered` and `message.failed` pointing at a receiver in this test (real HTTP on
//! loopback, signatures checked here with `hmac` + `sha2` from the spec text). At the end:
//! - every message answered 202 and final DELIVERED had its `message.delivered` reach the
//!   receiver at least once (FAILED ones their `message.failed`);
//! - a repeated delivery carries the same event id and the same content;
//! - per message, events first arrive in the order they happened (ids increase, `sent` before
//!   `delivered`).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use sairex_loadtest::sim::{SimConfig, SimServer};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::watch;
use tokio::time::Instant;

use support::{Gateway, Sent, call, client, spawn_senders, tenant, write_config};

/// SIGKILLs (each followed by a restart).
const KILLS: usize = 3;
/// Messages accepted in all.
const MESSAGES: usize = 5_000;

/// One event as the receiver got it.
#[derive(Debug, Clone)]
struct Got {
    id: String,
    event: String,
    message_id: u64,
    status: String,
    body: Bytes,
}

#[derive(Default)]
struct Receiver {
    secret: Mutex<String>,
    got: Mutex<Vec<Got>>,
    bad_signatures: AtomicU64,
}

fn signed(secret: &str, header: &str, body: &[u8]) -> bool {
    let Some((t, v1)) = header.split_once(",v1=") else {
        return false;
    };
    let Some(t) = t.strip_prefix("t=") else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected == v1
}

async fn hook(State(rx): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let secret = rx.secret.lock().expect("lock").clone();
    let signature = headers
        .get("x-sairex-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !signed(&secret, signature, &body) {
        rx.bad_signatures.fetch_add(1, Ordering::Relaxed);
        return StatusCode::UNAUTHORIZED;
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    rx.got.lock().expect("lock").push(Got {
        id: json["id"].as_str().unwrap_or_default().to_owned(),
        event: json["event"].as_str().unwrap_or_default().to_owned(),
        message_id: json["data"]["messageId"].as_u64().unwrap_or(0),
        status: json["data"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        body: body.clone(),
    });
    StatusCode::OK
}

async fn start_receiver() -> (SocketAddr, Arc<Receiver>) {
    let rx = Arc::new(Receiver::default());
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, rx)
}

/// The number in an event id (`evt_<position>`).
fn position(id: &str) -> u64 {
    id.strip_prefix("evt_")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("event id {id:?} is not evt_<position>"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_messages_webhooks_survive_three_sigkills() {
    let started = Instant::now();
    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(30),
        delivery_retry_interval: Duration::from_millis(200),
        delivery_resp_timeout: Duration::from_secs(2),
        delivery_max_attempts: 1000,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let (hook_addr, receiver) = start_receiver().await;
    let mut dir = tempfile::tempdir().expect("tempdir");
    dir.disable_cleanup(std::env::var_os("SAIREX_KEEP").is_some());
    let config = write_config(
        dir.path(),
        sim.addr(),
        "[webhooks]\nallow_private_targets = true\n",
    );
    let log = dir.path().join("gateway.log");
    let client = client();

    let mut gateway = Gateway::start(&config, &log);
    let (admin_key, key) = tenant(&client, &gateway.base).await;
    let (status, created) = call(
        &client,
        reqwest::Method::POST,
        format!("{}/api/sms/webhooks", gateway.base),
        &admin_key,
        Some(json!({
            "url": format!("http://{hook_addr}/hook"),
            "events": ["message.sent", "message.delivered", "message.failed"],
        })),
    )
    .await
    .expect("create webhook");
    assert_eq!(status, 201, "{created}");
    *receiver.secret.lock().expect("lock") = created["data"]["secret"]
        .as_str()
        .expect("the secret is shown once")
        .to_owned();

    let (base_tx, base_rx) = watch::channel(Some(gateway.base.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Sent::default()));
    let senders = spawn_senders(&client, &key, &base_rx, &stop, &sent);
    let accepted = || sent.lock().expect("lock").accepted.len();
    let wait_accepted = async |n: usize| {
        let deadline = Instant::now() + Duration::from_secs(240);
        while accepted() < n {
            assert!(
                Instant::now() < deadline,
                "only {} of {n} accepted; see {}",
                accepted(),
                log.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    for round in 1..=KILLS {
        wait_accepted(MESSAGES * round / (KILLS + 1)).await;
        base_tx.send_replace(None);
        gateway.kill();
        gateway = Gateway::start(&config, &log);
        base_tx.send_replace(Some(gateway.base.clone()));
    }
    wait_accepted(MESSAGES).await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.expect("sender");
    }
    let sent = std::mem::take(&mut *sent.lock().expect("lock"));

    // Each accepted message's final status, then its final event at the receiver.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut finals: HashMap<u64, String> = HashMap::new();
    let ids: Vec<u64> = sent.accepted.values().copied().collect();
    loop {
        for &id in &ids {
            if finals.contains_key(&id) {
                continue;
            }
            let (status, v) = call(
                &client,
                reqwest::Method::GET,
                format!("{}/api/sms/status/{id}", gateway.base),
                &key,
                None,
            )
            .await
            .expect("status");
            assert_eq!(
                status, 200,
                "message {id} was answered 202 but is missing: {v}"
            );
            let s = v["data"]["status"].as_str().unwrap_or_default().to_owned();
            if matches!(s.as_str(), "DELIVERED" | "FAILED" | "REJECTED" | "EXPIRED") {
                finals.insert(id, s);
            }
        }
        let got = receiver.got.lock().expect("lock").clone();
        let mut final_events: HashMap<u64, bool> = HashMap::new();
        for g in &got {
            if g.event == "message.delivered" || g.event == "message.failed" {
                final_events.insert(g.message_id, true);
            }
        }
        let missing: Vec<u64> = ids
            .iter()
            .copied()
            .filter(|id| !finals.contains_key(id) || !final_events.contains_key(id))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {} accepted messages without their final webhook after the kills, e.g. \
             {:?} (final status {:?}); log {}",
            missing.len(),
            ids.len(),
            &missing[..missing.len().min(5)],
            missing
                .iter()
                .take(5)
                .map(|id| finals.get(id))
                .collect::<Vec<_>>(),
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A moment for stragglers, then stop the gateway so nothing arrives while we check.
    tokio::time::sleep(Duration::from_millis(500)).await;
    gateway.kill();
    let got = receiver.got.lock().expect("lock").clone();
    assert_eq!(receiver.bad_signatures.load(Ordering::Relaxed), 0);

    // The final event matches the final status.
    for (&id, status) in &finals {
        let wanted = if status == "DELIVERED" {
            "message.delivered"
        } else {
            "message.failed"
        };
        assert!(
            got.iter().any(|g| g.message_id == id && g.event == wanted),
            "message {id} ended {status} but {wanted} never arrived"
        );
    }
    // Duplicates carry the same id and the same content.
    let mut by_id: HashMap<&str, &Got> = HashMap::new();
    let mut duplicates = 0u64;
    for g in &got {
        match by_id.get(g.id.as_str()) {
            Some(first) => {
                duplicates += 1;
                assert_eq!(
                    first.body, g.body,
                    "event {} delivered twice with other content",
                    g.id
                );
            }
            None => {
                by_id.insert(&g.id, g);
            }
        }
    }
    // Per message, events first arrive in the order they happened.
    let mut first_seen: BTreeMap<u64, Vec<&Got>> = BTreeMap::new();
    let mut seen = std::collections::HashSet::new();
    for g in &got {
        if seen.insert(g.id.as_str()) {
            first_seen.entry(g.message_id).or_default().push(g);
        }
    }
    for (id, events) in &first_seen {
        let positions: Vec<u64> = events.iter().map(|g| position(&g.id)).collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "message {id}: events out of order: {:?}",
            events.iter().map(|g| (&g.id, &g.event)).collect::<Vec<_>>()
        );
        let last_sent = events.iter().rposition(|g| g.event == "message.sent");
        let first_final = events.iter().position(|g| g.event != "message.sent");
        if let (Some(sent), Some(fin)) = (last_sent, first_final) {
            assert!(
                sent < fin,
                "message {id}: a sent after its final event: {events:?}"
            );
        }
        assert!(events.iter().all(|g| !g.status.is_empty()));
    }
    let mut statuses: BTreeMap<&str, usize> = BTreeMap::new();
    for s in finals.values() {
        *statuses.entry(s.as_str()).or_default() += 1;
    }
    eprintln!(
        "webhook crash test: {} accepted, others {:?}, final {statuses:?}; {} webhook requests, \
         {duplicates} repeats of an event; {:.1} s",
        sent.accepted.len(),
        sent.other,
        got.len(),
        started.elapsed().as_secs_f64()
    );
    sim.shutdown().await;
}
