//! Crash test: the real `sairex serve` binary, SIGKILLed mid-stream several times.
//!
//! An SMSC simulator runs in this process and is the config's only SMPP provider. Senders POST
//! /api/sms/send without pause while the server is killed (SIGKILL: no drain, no flush) and
//! restarted on the same store, [`KILLS`] times. At the end:
//! - every message answered 202 exists (GET /api/sms/status/:id) and reaches a final status:
//!   a 202 is durable, whatever happens after it;
//! - a message the simulator received more than once (the body carries a unique token) was in
//!   flight at a kill: its timeline holds RESUBMITTED_AFTER_RESTART (recovery re-queued it) or
//!   IN_DOUBT, and the duplicates together are no more than the messages recovery re-queued at
//!   the restarts (read from each start's "store open" log line).

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sairex_loadtest::sim::{SimConfig, SimHandle, SimServer};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use support::{
    BINDS, Gateway, Sent, WINDOW, accepted_since, call, client, requeued_in, spawn_senders, tenant,
    write_config,
};

/// SIGKILLs (each followed by a restart).
const KILLS: usize = 3;

/// How many times the simulator accepted each token's submit.
fn submits_by_token(sim: &SimHandle) -> HashMap<u64, u32> {
    let mut counts = HashMap::new();
    for m in sim.received() {
        if m.message_id.is_none() {
            continue;
        }
        let text = String::from_utf8_lossy(&m.short_message);
        if let Some(token) = text
            .strip_prefix("crash ")
            .and_then(|t| t.parse::<u64>().ok())
        {
            *counts.entry(token).or_default() += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_no_accepted_message() {
    let started = Instant::now();
    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(30),
        // Receipts for a killed server's binds wait for the next server's binds.
        delivery_retry_interval: Duration::from_millis(200),
        delivery_resp_timeout: Duration::from_secs(2),
        delivery_max_attempts: 1000,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let mut dir = tempfile::tempdir().expect("tempdir");
    // SAIREX_KEEP=1 keeps the store, config and the gateway's log for a look afterwards.
    dir.disable_cleanup(std::env::var_os("SAIREX_KEEP").is_some());
    let config = write_config(dir.path(), sim.addr(), "");
    let log = dir.path().join("gateway.log");
    let client = client();

    let mut gateway = Gateway::start(&config, &log);
    let (_, key) = tenant(&client, &gateway.base).await;

    let (base_tx, base_rx) = watch::channel(Some(gateway.base.clone()));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Sent::default()));
    let senders = spawn_senders(&client, &key, &base_rx, &stop, &sent);

    let mut requeued = Vec::new();
    let mut accepted_at_kill = Vec::new();
    for round in 0..KILLS {
        // A fresh process answers its first send slowly (lazy tables, a debug build): kill
        // only once this one has accepted traffic, then at a different moment each round.
        let before = sent.lock().expect("lock").accepted.len();
        accepted_since(&sent, before, &log).await;
        tokio::time::sleep(Duration::from_millis(300 + 300 * round as u64)).await;
        accepted_at_kill.push(sent.lock().expect("lock").accepted.len());
        base_tx.send_replace(None);
        gateway.kill();
        gateway = Gateway::start(&config, &log);
        requeued.push(requeued_in(&gateway.recovery));
        base_tx.send_replace(Some(gateway.base.clone()));
    }
    let before = sent.lock().expect("lock").accepted.len();
    accepted_since(&sent, before, &log).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.await.expect("sender");
    }
    let sent = std::mem::take(&mut *sent.lock().expect("lock"));
    assert!(
        sent.accepted.len() > 100,
        "too little traffic to mean anything: {} accepted, others {:?}",
        sent.accepted.len(),
        sent.other
    );

    // Every 202 is there and reaches a final status.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending: Vec<(u64, u64)> = sent.accepted.iter().map(|(&t, &id)| (t, id)).collect();
    let mut finals: HashMap<u64, Value> = HashMap::new();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for (token, id) in pending {
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
                "message {id} (token {token}) was acknowledged with 202 but is missing: {v}"
            );
            let s = v["data"]["status"].as_str().unwrap_or_default().to_owned();
            if matches!(s.as_str(), "DELIVERED" | "FAILED" | "REJECTED" | "EXPIRED") {
                finals.insert(id, v);
            } else {
                still.push((token, id));
            }
        }
        pending = still;
        if !pending.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{} acknowledged messages not final after 60 s, e.g. {:?}; log {}; simulator \
                 receipts {:?}",
                pending.len(),
                &pending[..pending.len().min(5)],
                log.display(),
                sim.stats().receipts
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    for v in finals.values() {
        *by_status
            .entry(v["data"]["status"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }

    // Duplicates: only messages that were in flight at a kill, and no more than recovery
    // re-queued.
    let submits = submits_by_token(&sim);
    let in_flight_at_kill = |v: &Value| {
        v["data"]["timeline"].as_array().is_some_and(|t| {
            t.iter().any(|e| {
                matches!(
                    e["event"].as_str(),
                    Some("RESUBMITTED_AFTER_RESTART" | "IN_DOUBT")
                )
            })
        })
    };
    let mut duplicates = 0u64;
    let mut unexplained = Vec::new();
    for (&token, &count) in &submits {
        if count <= 1 {
            continue;
        }
        duplicates += u64::from(count - 1);
        match sent.accepted.get(&token).and_then(|id| finals.get(id)) {
            Some(v) if in_flight_at_kill(v) => {}
            // A message whose 202 never arrived (the kill cut the answer) is checked by count.
            None => {}
            Some(v) => unexplained.push(v["data"]["messageId"].clone()),
        }
    }
    // Every acknowledged message reached the simulator at least once unless it failed.
    let never_sent: Vec<u64> = sent
        .accepted
        .iter()
        .filter(|(t, id)| {
            !submits.contains_key(t)
                && finals
                    .get(id)
                    .is_some_and(|v| v["data"]["status"] == "DELIVERED")
        })
        .map(|(_, &id)| id)
        .collect();
    let requeued_total: usize = requeued.iter().sum();
    eprintln!(
        "crash test: {} accepted ({:?} at the kills), others {:?}; final {:?}; re-queued at restarts {:?}; \
         duplicates at the simulator {duplicates}; {:.1} s",
        sent.accepted.len(),
        accepted_at_kill,
        sent.other,
        by_status,
        requeued,
        started.elapsed().as_secs_f64()
    );
    assert!(
        unexplained.is_empty(),
        "sent twice but never in flight at a kill: {unexplained:?}"
    );
    assert!(
        duplicates <= requeued_total as u64,
        "{duplicates} duplicates, but only {requeued_total} messages were in flight at the kills"
    );
    assert!(
        requeued.iter().all(|&n| n <= (BINDS * WINDOW) as usize * 4),
        "recovery re-queued more than a few windows: {requeued:?}"
    );
    assert!(
        never_sent.is_empty(),
        "DELIVERED without reaching the simulator: {never_sent:?}"
    );

    // A graceful stop at the end, so the child does not outlive the test.
    gateway.kill();
    sim.shutdown().await;
}

#[test]
fn the_requeued_count_is_read_from_the_store_open_line() {
    let line = "2026-11-26T16:14:15.573714Z  INFO sairex::serve: store open path=/tmp/x/data requeued=26 failed=0";
    assert_eq!(requeued_in(line), 26);
    assert_eq!(
        requeued_in("INFO sairex::serve: serving api_addr=127.0.0.1:1"),
        0
    );
}
