//! The engine's metrics on the end-to-end path: messages sent over real binds to the simulator
//! and delivered by its receipts are counted with the right labels. Its own test binary: it
//! installs the process-wide recorder.

use std::collections::HashMap;
use std::time::Duration;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};
use sairex_engine::dispatch::DispatcherConfig;
use sairex_engine::gateway::{Engine, EngineConfig};
use sairex_engine::metrics as m;
use sairex_engine::provider::smpp::SmppProviderConfig;
use sairex_loadtest::sim::{SimConfig, SimServer};
use sairex_store::model::{Message, MessageStatus, Organization, ProviderConfig};
use sairex_store::{Store, StoreOptions};
use tokio::time::{Instant, sleep};

mod common;

const N: usize = 25;

fn labels(key: &CompositeKey) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = key
        .key()
        .labels()
        .map(|l| (l.key().to_owned(), l.value().to_owned()))
        .collect();
    v.sort();
    v
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = p
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_end_to_end_path_records_the_blueprint_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().unwrap();

    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(10),
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(StoreOptions::new(dir.path())).unwrap();
    let org = store
        .create_organization(Organization {
            name: "school".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    let record = store
        .create_provider(ProviderConfig {
            organization_id: org,
            display_name: "sim".into(),
            ..ProviderConfig::default()
        })
        .await
        .unwrap();
    let provider = record.id.to_string();
    let addr = sim.addr();
    let session = common::sim_session(addr);
    let smpp = SmppProviderConfig {
        binds: 2,
        ..SmppProviderConfig::new(record.id, session)
    };
    let config = EngineConfig {
        dispatcher: DispatcherConfig::default(),
        smpp: vec![(record, smpp)],
        provider_drain: Duration::from_secs(2),
        providers_from_store: false,
    };
    let engine = Engine::start(store.clone(), config).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..N {
        let message = Message {
            organization_id: org,
            from_number: "Sairex".into(),
            to_number: format!("+9230012{i:05}"),
            body: "Fee due Friday".into(),
            ..Message::default()
        };
        ids.push(store.enqueue(message).await.unwrap().message().id);
    }
    engine.handle().nudge();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ids
        .iter()
        .all(|id| store.message(org, *id).unwrap().status == MessageStatus::Delivered)
    {
        assert!(Instant::now() < deadline, "not delivered in time");
        sleep(Duration::from_millis(20)).await;
    }
    // Binds up and health reported while running; then the drain makes every answer applied.
    // A snapshot takes counters, gauges and histogram values (they start again from zero), so
    // the two snapshots are added up; a gauge not set again since the first keeps its value.
    let live = snapshotter.snapshot().into_vec();
    let report = engine.shutdown().await;
    assert_eq!(report.unanswered, 0);
    let health = live
        .iter()
        .find(|(k, ..)| {
            k.key().name() == m::PROVIDER_HEALTH && labels(k) == pairs(&[("provider", &provider)])
        })
        .map(|(.., v)| v);
    assert_eq!(
        health,
        Some(&DebugValue::Gauge(1.0.into())),
        "HEALTHY after accepted messages"
    );
    let binds_up = live
        .iter()
        .find(|(k, ..)| {
            k.key().name() == m::BINDS_UP && labels(k) == pairs(&[("provider", &provider)])
        })
        .map(|(.., v)| v);
    // Two binds; both were bound for the whole run, but a bind that a busy machine slowed
    // down may bind a little later: at least one, at most two.
    assert!(
        matches!(binds_up, Some(DebugValue::Gauge(v)) if (1.0..=2.0).contains(&v.0)),
        "binds up: {binds_up:?}"
    );
    let mut after: HashMap<CompositeKey, DebugValue> = HashMap::new();
    for (k, _, _, v) in live.into_iter().chain(snapshotter.snapshot().into_vec()) {
        match (after.get_mut(&k), v) {
            (Some(DebugValue::Counter(a)), DebugValue::Counter(b)) => *a += b,
            (Some(DebugValue::Histogram(a)), DebugValue::Histogram(b)) => a.extend(b),
            (Some(DebugValue::Gauge(_)), DebugValue::Gauge(b)) if b.0 == 0.0 => {}
            (_, v) => {
                after.insert(k, v);
            }
        }
    }

    let find = |kind: MetricKind, name: &str, want: &[(&str, &str)]| -> Option<&DebugValue> {
        after
            .iter()
            .find(|(k, _)| k.kind() == kind && k.key().name() == name && labels(k) == pairs(want))
            .map(|(_, v)| v)
    };
    let provider = provider.as_str();
    for status in ["SUBMITTED", "DELIVERED"] {
        assert_eq!(
            find(
                MetricKind::Counter,
                m::MESSAGES_TOTAL,
                &[
                    ("status", status),
                    ("direction", "outbound"),
                    ("provider", provider)
                ]
            ),
            Some(&DebugValue::Counter(N as u64)),
            "{status}"
        );
    }
    for name in [
        m::DISPATCH_DURATION,
        m::QUEUED_TO_SUBMIT_RESP,
        m::SUBMIT_TO_RECEIPT,
    ] {
        match find(MetricKind::Histogram, name, &[("provider", provider)]) {
            Some(DebugValue::Histogram(values)) => {
                assert_eq!(values.len(), N, "{name}");
                assert!(values.iter().all(|v| v.0 >= 0.0 && v.0 < 20.0), "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    match find(MetricKind::Gauge, m::DELIVERY_RATE, &[]) {
        Some(DebugValue::Gauge(rate)) => assert!((rate.0 - 1.0).abs() < 1e-9, "{rate}"),
        other => panic!("delivery rate: {other:?}"),
    }
    assert!(
        find(
            MetricKind::Gauge,
            m::WINDOW_OCCUPANCY,
            &[("provider", provider)]
        )
        .is_some()
    );
    for name in [m::RECONNECTS, m::THROTTLE_EVENTS] {
        assert_eq!(
            find(MetricKind::Counter, name, &[("provider", provider)]),
            Some(&DebugValue::Counter(0)),
            "{name}: registered, nothing happened"
        );
    }
}
