//! Store throughput under concurrency (criterion): enqueue, ack (SUBMITTED) and final status
//! (DELIVERED), each from 64 concurrent callers (tokio tasks), under each sync policy, and beside
//! each the bare-fjall reference: the same keys and value sizes the store operation writes
//! (captured from a real operation), written in a loop with no store logic and the same sync
//! policy. Every store figure is then also a share of what fjall itself does in that run, which
//! is what stays comparable on this shared, noisy machine.
//!
//! ```text
//! cargo bench -p sairex-store --bench store
//! ```
//!
//! Targets (docs/BENCHMARKS.md, "Store"), `sync = batch`: enqueue ≥ 50,000 msg/s, ack and final
//! ≥ 60,000 transitions/s each, and ≥ 70 % of bare fjall. Reopen time and memory at 1M messages
//! are measured by `examples/scale.rs`.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use sairex_store::model::{Message, MessageStatus, Priority};
use sairex_store::{Store, StoreOptions, Submitted, SyncPolicy};
use tokio::time::Instant;

// The allocator the `sairex` binary runs with: the store is measured as it is deployed.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Concurrent callers, as many HTTP handlers or sessions would be.
const CALLERS: u64 = 64;

/// One operation's writes: each key, with its value's length or `None` for a removal.
type Shape = Vec<(Vec<u8>, Option<usize>)>;

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

fn submitted(id: u64) -> Submitted {
    Submitted {
        provider_id: 1,
        provider_msg_ids: vec![format!("0A{id:08X}")],
        ..Submitted::default()
    }
}

/// Name, policy, messages per measured round, and the bare loop's persist interval (a group of
/// 64 callers is at most 64 operations).
fn policies() -> [(&'static str, SyncPolicy, u64, Option<u64>); 3] {
    [
        ("batch", SyncPolicy::default(), 64 * 100, Some(CALLERS)),
        ("none", SyncPolicy::None, 64 * 100, None),
        ("always", SyncPolicy::Always, 64 * 4, Some(1)),
    ]
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap()
}

fn open(dir: &std::path::Path, sync: SyncPolicy) -> Store {
    Store::open(StoreOptions {
        sync,
        ..StoreOptions::new(dir)
    })
    .unwrap()
}

/// What changed between two raw dumps of a store.
fn diff(before: &[(Vec<u8>, Vec<u8>)], after: &[(Vec<u8>, Vec<u8>)]) -> Shape {
    let before: BTreeMap<_, _> = before.iter().cloned().collect();
    let after: BTreeMap<_, _> = after.iter().cloned().collect();
    let mut shape: Shape = after
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), Some(v.len())))
        .collect();
    shape.extend(
        before
            .keys()
            .filter(|k| !after.contains_key(*k))
            .map(|k| (k.clone(), None)),
    );
    shape
}

/// The writes of an enqueue, an ack and a final status, captured from one message; also prints
/// keys per operation (lease included) for docs/BENCHMARKS.md.
fn shapes(rt: &tokio::runtime::Runtime) -> [Shape; 3] {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), SyncPolicy::default());
    rt.block_on(async {
        // A first message, so the capture sees steady state (the format stamp is written).
        store.enqueue(message(1, 0)).await.unwrap();
        let s0 = store.raw_entries().unwrap();
        let id = store.enqueue(message(1, 1)).await.unwrap().message().id;
        let s1 = store.raw_entries().unwrap();
        store.lease(1, 2).await.unwrap();
        let s2 = store.raw_entries().unwrap();
        store.ack_submitted(1, id, submitted(id)).await.unwrap();
        let s3 = store.raw_entries().unwrap();
        store
            .finalize(1, id, MessageStatus::Delivered, None, None)
            .await
            .unwrap();
        let s4 = store.raw_entries().unwrap();
        let [enqueue, lease, ack, fin] = [
            diff(&s0, &s1),
            diff(&s1, &s2),
            diff(&s2, &s3),
            diff(&s3, &s4),
        ];
        for (name, shape) in [
            ("enqueue", &enqueue),
            ("lease (2 messages)", &lease),
            ("ack", &ack),
            ("final", &fin),
        ] {
            let bytes: usize = shape.iter().map(|(k, v)| k.len() + v.unwrap_or(0)).sum();
            eprintln!("keys per {name}: {} ({bytes} bytes)", shape.len());
        }
        [enqueue, ack, fin]
    })
}

fn bare(
    group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    shape: &Shape,
    per_round: u64,
    persist_every: Option<u64>,
) {
    let dir = tempfile::tempdir().unwrap();
    let mut round = 0u64;
    group.bench_function(format!("bare_fjall/{name}"), |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                // Keys unique across rounds: the round's number in the template's high bytes.
                let shifted: Shape = shape
                    .iter()
                    .map(|(k, v)| {
                        let mut k = k.clone();
                        let at = k.len().saturating_sub(12);
                        if k.len() >= 12 {
                            k[at..at + 4].copy_from_slice(&(round as u32).to_be_bytes());
                        }
                        (k, *v)
                    })
                    .collect();
                spent += sairex_store::raw::bare_fjall_loop(
                    dir.path().join("bare"),
                    &shifted,
                    per_round,
                    persist_every,
                )
                .unwrap();
            }
            spent
        })
    });
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

async fn lease_all(store: &Store) {
    for org in 1..=8 {
        while !store.lease(org, 1000).await.unwrap().is_empty() {}
    }
}

/// Runs `op` on every id from CALLERS tasks.
async fn each<F, Fut>(store: &Store, ids: &[(u64, u64)], op: F)
where
    F: Fn(Store, u64, u64) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let chunk = ids.len().div_ceil(CALLERS as usize);
    let mut tasks = Vec::new();
    for part in ids.chunks(chunk) {
        let store = store.clone();
        let part = part.to_vec();
        tasks.push(tokio::spawn(async move {
            for (org, id) in part {
                op(store.clone(), org, id).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

async fn ack(store: Store, org: u64, id: u64) {
    store.ack_submitted(org, id, submitted(id)).await.unwrap();
}

async fn deliver(store: Store, org: u64, id: u64) {
    store
        .finalize(org, id, MessageStatus::Delivered, None, None)
        .await
        .unwrap();
}

fn store_benches(c: &mut Criterion) {
    let rt = runtime();
    let [enqueue_shape, ack_shape, final_shape] = shapes(&rt);
    for (op, shape) in [
        ("enqueue", &enqueue_shape),
        ("ack", &ack_shape),
        ("final", &final_shape),
    ] {
        let mut group = c.benchmark_group(format!("{op}_64_callers"));
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(8));
        for (name, sync, per_round, persist_every) in policies() {
            group.throughput(Throughput::Elements(per_round));
            bare(&mut group, name, shape, per_round, persist_every);
            let dir = tempfile::tempdir().unwrap();
            let store = open(dir.path(), sync);
            let mut round = 0;
            group.bench_function(format!("store/{name}"), |b| {
                b.iter_custom(|iters| {
                    let mut spent = Duration::ZERO;
                    for _ in 0..iters {
                        round += 1;
                        spent += rt.block_on(async {
                            if op == "enqueue" {
                                let start = Instant::now();
                                black_box(enqueue_all(&store, per_round, round).await);
                                return start.elapsed();
                            }
                            // Untimed: messages in flight (and, for final, submitted), as the
                            // engine would hold them.
                            let ids = enqueue_all(&store, per_round, round).await;
                            lease_all(&store).await;
                            if op == "final" {
                                each(&store, &ids, ack).await;
                            }
                            let start = Instant::now();
                            if op == "ack" {
                                each(&store, &ids, ack).await;
                            } else {
                                each(&store, &ids, deliver).await;
                            }
                            start.elapsed()
                        });
                    }
                    spent
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, store_benches);
criterion_main!(benches);
