//! Store throughput under concurrency (criterion): enqueue, and the two status transitions
//! of a delivered message, from 64 concurrent callers (tokio tasks), under each sync policy.
//!
//! ```text
//! CARGO_TARGET_DIR=… cargo bench -p sairex-store --bench store
//! ```
//!
//! Targets (docs/BENCHMARKS.md, "Store"): enqueue of at least 50,000 messages/s and at least
//! 100,000 transitions/s with `SyncPolicy::Batch`; `None` and `Always` are for reference.
//! Reopen time and memory at 1M messages are measured by `examples/scale.rs`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sairex_store::model::{Message, MessageStatus, Priority};
use sairex_store::{Store, StoreOptions, Submitted, SyncPolicy};
use tokio::time::Instant;

/// Concurrent callers, as many HTTP handlers or sessions would be.
const CALLERS: u64 = 64;

fn message(org: u64, i: u64) -> Message {
    Message {
        organization_id: org,
        to_number: format!("+92300{:07}", i % 10_000_000),
        from_number: "Sairex".into(),
        body: "Your fee of PKR 4,500 is due on Friday. Reply STOP to opt out.".into(),
        priority: Priority::TRANSACTIONAL,
        ..Message::default()
    }
}

fn policies() -> [(&'static str, SyncPolicy, u64); 3] {
    // Messages per measured round: fewer under Always, which flushes once per operation.
    [
        ("batch", SyncPolicy::default(), 64 * 100),
        ("none", SyncPolicy::None, 64 * 100),
        ("always", SyncPolicy::Always, 64 * 4),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

/// `per_round` messages enqueued by CALLERS tasks; returns the ids (org, id).
async fn enqueue_all(store: &Store, per_round: u64, round: u64) -> Vec<(u64, u64)> {
    let mut tasks = Vec::new();
    for caller in 0..CALLERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..per_round / CALLERS {
                let org = 1 + caller % 8;
                let m = message(org, round * per_round + caller * 1000 + i);
                let e = store.enqueue(m).await.unwrap();
                ids.push((org, e.message().id));
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    ids
}

fn enqueue(c: &mut Criterion) {
    let mut group = c.benchmark_group("enqueue_64_callers");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (name, sync, per_round) in policies() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions {
            sync,
            ..StoreOptions::new(dir.path())
        })
        .unwrap();
        let rt = runtime();
        let mut round = 0;
        group.throughput(Throughput::Elements(per_round));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    round += 1;
                    black_box(rt.block_on(enqueue_all(&store, per_round, round)));
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

/// ack_submitted with a provider id, then finalize DELIVERED: two transitions per message.
fn transitions(c: &mut Criterion) {
    let mut group = c.benchmark_group("ack_then_deliver_64_callers");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for (name, sync, per_round) in policies() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(StoreOptions {
            sync,
            ..StoreOptions::new(dir.path())
        })
        .unwrap();
        let rt = runtime();
        let mut round = 0;
        group.throughput(Throughput::Elements(2 * per_round));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    round += 1;
                    // Untimed: messages in flight, as the engine would hold them.
                    let ids = rt.block_on(async {
                        let ids = enqueue_all(&store, per_round, round).await;
                        for org in 1..=8 {
                            while !store.lease(org, 1000).await.unwrap().is_empty() {}
                        }
                        ids
                    });
                    let start = Instant::now();
                    rt.block_on(settle_all(&store, ids));
                    spent += start.elapsed();
                }
                spent
            })
        });
    }
    group.finish();
}

async fn settle_all(store: &Store, ids: Vec<(u64, u64)>) {
    let chunk = ids.len().div_ceil(CALLERS as usize);
    let mut tasks = Vec::new();
    for part in ids.chunks(chunk) {
        let store = store.clone();
        let part = part.to_vec();
        tasks.push(tokio::spawn(async move {
            for (org, id) in part {
                let submitted = Submitted {
                    provider_id: 1,
                    provider_msg_ids: vec![format!("0A{id:08X}")],
                    ..Submitted::default()
                };
                store.ack_submitted(org, id, submitted).await.unwrap();
                store
                    .finalize(org, id, MessageStatus::Delivered, None, None)
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

criterion_group!(benches, enqueue, transitions);
criterion_main!(benches);
