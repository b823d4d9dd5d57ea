//! Child process of the store's crash, lock and disk-full tests (`store/tests/crash.rs`,
//! `store/tests/errors.rs`); not a tool for operators.
//!
//! ```text
//! sairex-store-crash-child work <dir> <always|batch> <seed>
//!     writes through the store from 8 concurrent tasks until killed (or 20,000 lines), and
//!     prints one line per acknowledged operation, flushed, after the store acknowledged it:
//!         ack <org> <id> <eventCount> <eventType|-> <STATUS>
//!     (`-`: the operation wrote no event, i.e. a lease; `DUP`: an enqueue that matched an
//!     earlier idempotency key and wrote nothing; otherwise `eventType` is the event at
//!     `eventCount - 1`, the one the operation appended).
//! sairex-store-crash-child hold <dir>
//!     opens the store, prints `open`, and keeps it open until stdin closes.
//! sairex-store-crash-child fill <dir>
//!     enqueues 4 KiB messages until the store refuses one, printing `ack <org> <id>` for each;
//!     then `error <kind> <message>`, then `unreadable <id> <why>` for each acked message it
//!     cannot read back and `readback <ok> <total>`, and exits 0.
//! ```
//!
//! A line is written with one `write` call, so a kill never leaves a torn line the parent
//! could mistake for a whole one (it ignores a last line without a newline anyway).

use std::io::{BufRead, Write};
use std::process::ExitCode;

use sairex_store::model::{Message, MessageStatus, Priority};
use sairex_store::{Store, StoreError, StoreOptions, Submitted, SyncPolicy, now_ms};

/// Lines after which a `work` child stops by itself, should its parent never kill it.
const MAX_LINES: u64 = 20_000;

/// Concurrent writers, so that group commits hold several operations.
const TASKS: u64 = 8;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["work", dir, sync, seed] => work(dir, sync, seed),
        ["hold", dir] => hold(dir),
        ["fill", dir] => fill(dir),
        _ => Err(
            "usage: sairex-store-crash-child work <dir> <always|batch> <seed> | hold <dir> \
                  | fill <dir>"
                .to_owned(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("crash-child: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One line, one `write`, flushed.
fn emit(line: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(format!("{line}\n").as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

/// xorshift64*: deterministic per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .map_err(|e| format!("runtime: {e}"))
}

fn work(dir: &str, sync: &str, seed: &str) -> Result<(), String> {
    let sync = match sync {
        "always" => SyncPolicy::Always,
        "batch" => SyncPolicy::default(),
        other => return Err(format!("unknown sync policy {other}")),
    };
    let seed: u64 = seed.parse().map_err(|e| format!("seed: {e}"))?;
    let store = Store::open(StoreOptions {
        sync,
        ..StoreOptions::new(dir)
    })
    .map_err(|e| format!("open: {e}"))?;
    let lines = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    runtime()?.block_on(async {
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let store = store.clone();
            let lines = lines.clone();
            let rng = Rng(seed.wrapping_mul(31).wrapping_add(task) | 1);
            tasks.push(tokio::spawn(worker(store, rng, lines)));
        }
        for task in tasks {
            task.await.map_err(|e| format!("task: {e}"))??;
        }
        Ok(())
    })
}

fn line(m: &Message, event: Option<&str>) -> String {
    format!(
        "ack {} {} {} {} {}",
        m.organization_id,
        m.id,
        m.event_count,
        event.unwrap_or("-"),
        m.status.as_str()
    )
}

async fn worker(
    store: Store,
    mut rng: Rng,
    lines: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> Result<(), String> {
    let count = |n: u64| lines.fetch_add(n, std::sync::atomic::Ordering::Relaxed) + n;
    let err = |what: &str, e: StoreError| format!("{what}: {e}");
    while count(0) < MAX_LINES {
        let org = 1 + rng.below(3);
        match rng.below(10) {
            0..=3 => {
                let priority = [Priority::OTP, Priority::TRANSACTIONAL, Priority::BULK]
                    [usize::try_from(rng.below(3)).unwrap_or(0)];
                let idempotency_key = (rng.below(8) == 0).then(|| format!("k{}", rng.below(20)));
                let scheduled_at = (rng.below(8) == 0).then(|| now_ms() + rng.below(200));
                let enqueued = store
                    .enqueue(Message {
                        organization_id: org,
                        to_number: format!("+92300{:07}", rng.below(10_000_000)),
                        body: "crash test".into(),
                        priority,
                        idempotency_key,
                        scheduled_at,
                        ..Message::default()
                    })
                    .await
                    .map_err(|e| err("enqueue", e))?;
                let event = if enqueued.is_duplicate() {
                    "DUP"
                } else {
                    "QUEUED"
                };
                emit(&line(enqueued.message(), Some(event)))?;
                count(1);
            }
            4..=8 => {
                let max = 1 + usize::try_from(rng.below(4)).unwrap_or(0);
                let leased = store.lease(org, max).await.map_err(|e| err("lease", e))?;
                for m in &leased {
                    emit(&line(m, None))?;
                    count(1);
                }
                for m in leased {
                    settle(&store, &mut rng, m).await?;
                    count(1);
                }
            }
            _ => {
                store
                    .promote_due(now_ms(), 100)
                    .await
                    .map_err(|e| err("promote", e))?;
            }
        }
    }
    Ok(())
}

/// What the engine does with a leased message: submit it (and maybe get its receipt), retry
/// it, put it back, or fail it.
async fn settle(store: &Store, rng: &mut Rng, m: Message) -> Result<(), String> {
    let err = |what: &str, e: StoreError| format!("{what} {}: {e}", m.id);
    let (org, id) = (m.organization_id, m.id);
    match rng.below(20) {
        0..=9 => {
            let submitted = Submitted {
                provider_id: 1 + rng.below(2),
                provider_msg_ids: vec![format!("P{id}")],
                ..Submitted::default()
            };
            let acked = store
                .ack_submitted(org, id, submitted)
                .await
                .map_err(|e| err("ack", e))?;
            emit(&line(&acked, Some("SUBMITTED")))?;
            if rng.below(2) == 0 {
                let done = store
                    .finalize(org, id, MessageStatus::Delivered, None, None)
                    .await
                    .map_err(|e| err("deliver", e))?;
                emit(&line(&done, Some("DELIVERED")))?;
            }
        }
        10..=13 => {
            let due = now_ms() + rng.below(100);
            let retried = store
                .retry_at(org, id, due, "ESME_RTHROTTLED".into())
                .await
                .map_err(|e| err("retry", e))?;
            emit(&line(&retried, Some("RETRY")))?;
        }
        14..=16 => {
            let requeued = store
                .requeue(org, id, "SESSION_LOST", "bind dropped".into())
                .await
                .map_err(|e| err("requeue", e))?;
            emit(&line(&requeued, Some("SESSION_LOST")))?;
        }
        _ => {
            let failed = store
                .finalize(
                    org,
                    id,
                    MessageStatus::Failed,
                    Some("0x0B".into()),
                    Some("invalid destination".into()),
                )
                .await
                .map_err(|e| err("fail", e))?;
            emit(&line(&failed, Some("FAILED")))?;
        }
    }
    Ok(())
}

fn hold(dir: &str) -> Result<(), String> {
    let _store = Store::open(StoreOptions::new(dir)).map_err(|e| format!("open: {e}"))?;
    emit("open")?;
    // Held until the parent closes stdin (or kills us).
    for l in std::io::stdin().lock().lines() {
        if l.is_err() {
            break;
        }
    }
    Ok(())
}

fn fill(dir: &str) -> Result<(), String> {
    let store = Store::open(StoreOptions::new(dir)).map_err(|e| format!("open: {e}"))?;
    let body = "x".repeat(4096);
    let mut acked = Vec::new();
    let error = loop {
        if acked.len() >= 100_000 {
            return Err("the disk never filled".into());
        }
        let m = Message {
            organization_id: 1,
            to_number: "+923001234567".into(),
            body: body.clone(),
            ..Message::default()
        };
        match store.enqueue_blocking(m) {
            Ok(e) => {
                emit(&format!("ack 1 {}", e.message().id))?;
                acked.push(e.message().id);
            }
            Err(e) => break e,
        }
    };
    let kind = match &error {
        StoreError::DiskFull(_) => "DiskFull",
        StoreError::Storage(_) => "Storage",
        _ => "Other",
    };
    emit(&format!("error {kind} {error}"))?;
    let mut ok = 0;
    for &id in &acked {
        match store.message(1, id) {
            Ok(m) if m.body.len() == 4096 => ok += 1,
            Ok(m) => emit(&format!("unreadable {id} body of {} bytes", m.body.len()))?,
            Err(e) => emit(&format!("unreadable {id} {e}"))?,
        }
    }
    emit(&format!("readback {ok} {}", acked.len()))
}
