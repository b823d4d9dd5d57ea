//! Providers from the store's records: started at engine start, restarted when their
//! connection settings change, stopped when deactivated, refused with a reason when unusable;
//! and a provider actor that dies is restarted by the supervisor without losing a message.

use std::time::Duration;

use sairex_engine::dispatch::DispatcherConfig;
use sairex_engine::gateway::{Engine, EngineConfig, ReloadReport};
use sairex_loadtest::sim::{SimConfig, SimHandle, SimServer, SimStats};
use sairex_store::model::{
    Message, MessageStatus, Organization, ProviderConfig, ProviderKind, QueuePlace,
};
use sairex_store::{MasterKey, Store, StoreOptions};
use serde_json::json;
use tokio::time::{Instant, sleep};

const WAIT: Duration = Duration::from_secs(20);

struct World {
    sim: SimHandle,
    _dir: tempfile::TempDir,
    store: Store,
    org: u64,
}

async fn world() -> World {
    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(10),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(StoreOptions::new(dir.path()).with_master_key(MasterKey::generate())).unwrap();
    let org = store
        .create_organization(Organization {
            name: "school".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    World {
        sim,
        _dir: dir,
        store,
        org,
    }
}

fn record(sim: &SimHandle, settings: serde_json::Value) -> ProviderConfig {
    let addr = sim.addr();
    ProviderConfig {
        organization_id: 0,
        provider_kind: ProviderKind::Smpp,
        display_name: "system sim".into(),
        is_active: true,
        settings,
        credentials: json!({
            "host": addr.ip().to_string(), "port": addr.port(),
            "systemId": "sairex", "password": "secret"
        }),
        ..ProviderConfig::default()
    }
}

fn config() -> EngineConfig {
    EngineConfig {
        dispatcher: DispatcherConfig::default(),
        provider_drain: Duration::from_secs(2),
        ..EngineConfig::default()
    }
}

async fn sim_until(sim: &SimHandle, what: &str, check: impl Fn(&SimStats) -> bool) -> SimStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = sim.stats();
        if check(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "{what}: {stats:?}");
        sleep(Duration::from_millis(20)).await;
    }
}

async fn send_and_deliver(w: &World, engine: &Engine, n: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    for i in 0..n {
        let m = w
            .store
            .enqueue(Message {
                organization_id: w.org,
                from_number: "Sairex".into(),
                to_number: format!("+92300{i:07}"),
                body: "fee reminder".into(),
                ..Message::default()
            })
            .await
            .unwrap();
        ids.push(m.message().id);
    }
    engine.handle().nudge();
    wait_until(w, &ids, |m| m.status == MessageStatus::Delivered).await;
    ids
}

async fn wait_until(w: &World, ids: &[u64], done: impl Fn(&Message) -> bool) -> Vec<Message> {
    let deadline = Instant::now() + WAIT;
    loop {
        let all: Vec<Message> = ids
            .iter()
            .map(|id| w.store.message(w.org, *id).unwrap())
            .collect();
        if all.iter().all(&done) {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "not done in time: {:?}",
            all.iter()
                .map(|m| (m.id, m.status, m.queue))
                .collect::<Vec<_>>()
        );
        sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_providers_start_restart_on_change_and_stop_when_deactivated() {
    let w = world().await;
    let p = w
        .store
        .create_provider(record(&w.sim, json!({"binds": 1})))
        .await
        .unwrap();
    let engine = Engine::start(w.store.clone(), config()).await.unwrap();
    let control = engine.control();
    assert_eq!(control.running_providers().await, vec![p.id]);
    sim_until(&w.sim, "one bind", |s| s.binds.bound == 1).await;
    send_and_deliver(&w, &engine, 3).await;

    // A reload with nothing changed does nothing.
    assert_eq!(
        control.reload_providers().await.unwrap(),
        ReloadReport::default()
    );

    // Priority only: no restart.
    w.store
        .update_provider(0, p.id, |r| {
            r.priority = 5;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        control.reload_providers().await.unwrap(),
        ReloadReport::default()
    );
    assert_eq!(w.sim.stats().binds.transceiver, 1, "not rebound");

    // Two binds: a restart, which unbinds the old one and binds two.
    w.store
        .update_provider(0, p.id, |r| {
            r.settings = json!({"binds": 2});
            Ok(())
        })
        .await
        .unwrap();
    let report = control.reload_providers().await.unwrap();
    assert_eq!(report.restarted, vec![p.id]);
    let stats = sim_until(&w.sim, "two new binds", |s| {
        s.binds.bound == 2 && s.binds.transceiver == 3
    })
    .await;
    assert_eq!(stats.binds.unbinds_received, 1, "the old bind unbound");
    send_and_deliver(&w, &engine, 3).await;

    // Deactivated: stopped and unbound.
    w.store
        .update_provider(0, p.id, |r| {
            r.is_active = false;
            Ok(())
        })
        .await
        .unwrap();
    let report = control.reload_providers().await.unwrap();
    assert_eq!(report.stopped, vec![p.id]);
    sim_until(&w.sim, "no bind", |s| s.binds.bound == 0).await;
    assert!(control.running_providers().await.is_empty());
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transmitter_receiver_pair_binds_both_and_receipts_come_on_the_receiver() {
    let w = world().await;
    w.store
        .create_provider(record(
            &w.sim,
            json!({"binds": 1, "bindMode": "transmitterReceiver"}),
        ))
        .await
        .unwrap();
    let engine = Engine::start(w.store.clone(), config()).await.unwrap();
    let stats = sim_until(&w.sim, "tx + rx", |s| s.binds.bound == 2).await;
    assert_eq!((stats.binds.transmitter, stats.binds.receiver), (1, 1));
    send_and_deliver(&w, &engine, 2).await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_record_is_reported_and_the_others_run() {
    let w = world().await;
    let good = w
        .store
        .create_provider(record(&w.sim, json!({})))
        .await
        .unwrap();
    let bad = w
        .store
        .create_provider(record(&w.sim, json!({"window": 0})))
        .await
        .unwrap();
    let engine = Engine::start(w.store.clone(), config()).await.unwrap();
    assert_eq!(engine.control().running_providers().await, vec![good.id]);
    let report = engine.control().reload_providers().await.unwrap();
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, bad.id);
    assert!(report.failed[0].1.contains("settings.window"), "{report:?}");
    send_and_deliver(&w, &engine, 2).await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_provider_is_restarted_and_what_it_held_is_not_lost() {
    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(10),
        // Slow answers, so messages are in the provider's hands when it dies.
        response_latency: Duration::from_millis(300),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let mut w = world().await;
    w.sim = sim;
    // "fail" makes what the dead provider held final at once instead of a 30 s retry.
    let p = w
        .store
        .create_provider(record(&w.sim, json!({"inDoubt": "fail"})))
        .await
        .unwrap();
    let engine = Engine::start(w.store.clone(), config()).await.unwrap();
    sim_until(&w.sim, "bound", |s| s.binds.bound == 1).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let m = w
            .store
            .enqueue(Message {
                organization_id: w.org,
                from_number: "Sairex".into(),
                to_number: format!("+92311{i:07}"),
                body: "exam schedule".into(),
                ..Message::default()
            })
            .await
            .unwrap();
        ids.push(m.message().id);
    }
    engine.handle().nudge();
    sim_until(&w.sim, "submits arriving", |s| s.submits.received > 0).await;
    let actor = engine.control().provider_actor(p.id).await.unwrap();
    actor.kill();

    // Every message ends somewhere final: delivered, or failed in doubt. None stays in flight.
    let done = wait_until(&w, &ids, |m| {
        m.status.is_final() && !matches!(m.queue, QueuePlace::InFlight { .. })
    })
    .await;
    assert!(
        done.iter()
            .all(|m| matches!(m.status, MessageStatus::Delivered | MessageStatus::Failed)),
        "{:?}",
        done.iter().map(|m| m.status).collect::<Vec<_>>()
    );
    // The restarted provider binds again and sends.
    sim_until(&w.sim, "rebound", |s| {
        s.binds.transceiver >= 2 && s.binds.bound >= 1
    })
    .await;
    send_and_deliver(&w, &engine, 2).await;
    engine.shutdown().await;
}
