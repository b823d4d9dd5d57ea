//! Engine throughput (issue 4, Speed): messages already in the store, the engine and the SMSC
//! simulator on this machine over loopback, receipts on. Measures queued → DELIVERED
//! throughput and the latency percentiles (hdrhistogram).
//!
//! ```sh
//! cargo run --release -p sairex-engine --example throughput -- \
//!     --messages 60000 --binds 4 --window 64 --receipt-delay-ms 10 [--sync batch|none]
//! ```
//!
//! Latencies:
//! - `start → submit_sm_resp`: from the engine's start (the messages were queued before it) to
//!   the accepting submit_sm_resp, store clock (ms). With a backlog this is the queue wait.
//! - `handed → submit_sm_resp`: dispatcher hands to provider → the answer reaches the
//!   dispatcher ([`sairex_engine::metrics::DISPATCH_DURATION`], µs).
//! - `submit → receipt`: submitted_at → delivered_at, store clock (ms); includes the
//!   simulator's receipt delay.

use std::time::Duration;

use hdrhistogram::Histogram;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use sairex_engine::backoff::ExponentialBackoff;
use sairex_engine::dispatch::{DispatcherConfig, EngineEvent};
use sairex_engine::gateway::{Engine, EngineConfig};
use sairex_engine::metrics::DISPATCH_DURATION;
use sairex_engine::provider::smpp::SmppProviderConfig;
use sairex_engine::session::SessionConfig;
use sairex_loadtest::sim::{SimConfig, SimServer};
use sairex_store::model::{Message, MessageStatus, Organization, ProviderConfig};
use sairex_store::{Store, StoreOptions, SyncPolicy};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

struct Args {
    messages: usize,
    binds: u32,
    window: u32,
    receipt_delay_ms: u64,
    /// `batch` (the default policy) or `none` (no flush wait; for diagnosis only).
    sync: String,
}

fn args() -> Args {
    let mut a = Args {
        messages: 60_000,
        binds: 4,
        window: 64,
        receipt_delay_ms: 10,
        sync: "batch".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_default();
        match flag.as_str() {
            "--messages" => a.messages = num(&flag, &value),
            "--binds" => a.binds = num(&flag, &value),
            "--window" => a.window = num(&flag, &value),
            "--receipt-delay-ms" => a.receipt_delay_ms = num(&flag, &value),
            "--sync" => a.sync = value,
            _ => panic!("unknown flag {flag}"),
        }
    }
    a
}

fn num<T: std::str::FromStr>(flag: &str, value: &str) -> T {
    value
        .parse()
        .unwrap_or_else(|_| panic!("bad value for {flag}: {value:?}"))
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

fn line(name: &str, h: &Histogram<u64>, unit: &str) {
    println!(
        "{name:<28} n={:<7} p50={:>8} p99={:>8} max={:>8} {unit}",
        h.len(),
        h.value_at_quantile(0.50),
        h.value_at_quantile(0.99),
        h.max()
    );
}

// The binary's allocator, so the figures match what `sairex serve` does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let a = args();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().expect("recorder");

    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(a.receipt_delay_ms),
        max_received: 0,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("tempdir");
    // Default options: SyncPolicy::Batch (group commit).
    let mut options = StoreOptions::new(dir.path());
    match a.sync.as_str() {
        "batch" => {}
        "none" => options.sync = SyncPolicy::None,
        other => panic!("--sync batch|none, not {other}"),
    }
    let store = Store::open(options).expect("store");
    let org = store
        .create_organization(Organization {
            name: "bench".into(),
            ..Default::default()
        })
        .await
        .expect("org")
        .id;
    let record = store
        .create_provider(ProviderConfig {
            organization_id: org,
            display_name: "sim".into(),
            ..ProviderConfig::default()
        })
        .await
        .expect("provider");

    // Fill the store (not timed), 64 callers.
    let t = Instant::now();
    let per = a.messages.div_ceil(64);
    let mut tasks = Vec::new();
    for c in 0..64 {
        let store = store.clone();
        let n = a.messages;
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in (c * per)..((c + 1) * per).min(n) {
                let m = Message {
                    organization_id: org,
                    from_number: "Sairex".into(),
                    to_number: format!("+92300{i:07}"),
                    body: "Fee due Friday".into(),
                    ..Message::default()
                };
                ids.push(store.enqueue(m).await.expect("enqueue").message().id);
            }
            ids
        }));
    }
    let mut ids = Vec::with_capacity(a.messages);
    for t in tasks {
        ids.extend(t.await.expect("enqueue task"));
    }
    store.flush().await.expect("flush");
    eprintln!(
        "enqueued {} in {:.1} s",
        ids.len(),
        t.elapsed().as_secs_f64()
    );

    let addr = sim.addr();
    let session = SessionConfig {
        system_id: "sairex".try_into().expect("system_id"),
        password: "secret".try_into().expect("password"),
        window: a.window.try_into().expect("window > 0"),
        reconnect: ExponentialBackoff::try_new(
            Duration::from_millis(50),
            Duration::from_millis(500),
        )
        .expect("backoff"),
        ..SessionConfig::new(addr.ip().to_string(), addr.port())
    };
    let smpp = SmppProviderConfig {
        binds: a.binds,
        ..SmppProviderConfig::new(record.id, session)
    };
    let config = EngineConfig {
        dispatcher: DispatcherConfig {
            event_capacity: 1 << 16,
            ..DispatcherConfig::default()
        },
        smpp: vec![(record, smpp)],
        provider_drain: Duration::from_secs(5),
        providers_from_store: false,
    };
    let start_ms = now_ms();
    let start = Instant::now();
    let engine = Engine::start(store.clone(), config).await.expect("engine");
    let mut events = engine.handle().subscribe();
    engine.handle().nudge();
    let mut delivered = 0usize;
    let mut other_final = 0usize;
    let mut next_report = Duration::from_secs(2);
    while delivered + other_final < ids.len() {
        match tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
            Ok(Ok(EngineEvent::StatusChanged { status, .. })) => match status {
                MessageStatus::Delivered => delivered += 1,
                s if s.is_final() => other_final += 1,
                _ => {}
            },
            Ok(Ok(_)) => {}
            Ok(Err(RecvError::Lagged(n))) => panic!("lagged by {n} events"),
            Ok(Err(RecvError::Closed)) | Err(_) => {
                panic!("stalled at {delivered} delivered, {other_final} otherwise final")
            }
        }
        if start.elapsed() >= next_report {
            eprintln!(
                "{:>5.1} s: {delivered} delivered",
                start.elapsed().as_secs_f64()
            );
            next_report += Duration::from_secs(2);
        }
    }
    let elapsed = start.elapsed();
    let counters = engine.handle().counters();
    let report = engine.shutdown().await;

    let mut to_resp = Histogram::<u64>::new(3).expect("histogram");
    let mut to_receipt = Histogram::<u64>::new(3).expect("histogram");
    for id in &ids {
        let m = store.message(org, *id).expect("message");
        if let (Some(sub), Some(del)) = (m.submitted_at, m.delivered_at) {
            let _ = to_resp.record(sub.saturating_sub(start_ms.max(m.queued_at)));
            let _ = to_receipt.record(del.saturating_sub(sub));
        }
    }
    let mut handed = Histogram::<u64>::new(3).expect("histogram");
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if key.key().name() == DISPATCH_DURATION
            && let DebugValue::Histogram(values) = value
        {
            for v in values {
                let _ = handed.record((v.0 * 1e6) as u64);
            }
        }
    }
    let rate = delivered as f64 / elapsed.as_secs_f64();
    println!(
        "messages={} binds={} window={} receipt_delay={}ms sync={}",
        ids.len(),
        a.binds,
        a.window,
        a.receipt_delay_ms,
        a.sync
    );
    println!(
        "delivered={delivered} other_final={other_final} in {:.2} s: {rate:.0} msg/s queued -> DELIVERED ({:.3} of 30,000)",
        elapsed.as_secs_f64(),
        rate / 30_000.0
    );
    line("start -> submit_sm_resp", &to_resp, "ms");
    line("handed -> submit_sm_resp", &handed, "us");
    line("submit -> receipt", &to_receipt, "ms");
    println!(
        "counters: sent={} submitted={} requeued={} throttled={} in_doubt={} receipts={} held={} store_errors={}; unanswered at shutdown={}",
        counters.sent,
        counters.submitted,
        counters.requeued,
        counters.throttled,
        counters.in_doubt,
        counters.receipts,
        counters.receipts_held,
        counters.store_errors,
        report.unanswered
    );
}
