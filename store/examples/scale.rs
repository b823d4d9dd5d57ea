//! The store at a million messages: build time, reopen-to-first-lease time, and resident
//! memory while enqueueing and leasing (it must follow the cache size, not the queue length).
//!
//! ```text
//! CARGO_TARGET_DIR=/work/target-storetests \
//!   cargo run --release -p sairex-store --example scale -- [messages] [cache_mb]
//! ```
//!
//! Defaults: 1,000,000 messages over 8 organizations, 128 MiB cache. Builds the store with
//! `SyncPolicy::None`, then reopens it in a fresh process (a restart) with the defaults, times
//! open and the first lease, and leases everything; RSS is printed every 100,000 messages.
//! The store lives in a temporary directory removed at the end. Results and targets:
//! docs/BENCHMARKS.md, "Store".

use sairex_store::model::{Message, Priority};
use sairex_store::{Store, StoreOptions, SyncPolicy};
use tokio::time::Instant;

const ORGS: u64 = 8;
const CALLERS: u64 = 64;

/// Resident set size of this process, in MiB (Linux).
fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, dir, total, cache_mb] = args.as_slice()
        && flag == "--reopen"
    {
        reopen_and_lease(
            std::path::Path::new(dir),
            total.parse().unwrap(),
            cache_mb.parse().unwrap(),
        );
        return;
    }
    let total: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let cache_mb: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(128);
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    println!(
        "messages {total}, cache {cache_mb} MiB, rss at start {:.0} MiB",
        rss_mib()
    );

    // Build with sync None: the point is the data, not the durability of its making.
    let store = Store::open(StoreOptions {
        sync: SyncPolicy::None,
        cache_mb,
        ..StoreOptions::new(dir.path())
    })
    .unwrap();
    let start = Instant::now();
    let max_rss = rt.block_on(async {
        let mut max_rss = 0f64;
        let chunk = 100_000.min(total);
        let mut done = 0;
        while done < total {
            let n = chunk.min(total - done);
            let mut tasks = Vec::new();
            for caller in 0..CALLERS {
                let store = store.clone();
                let share = n / CALLERS + u64::from(caller < n % CALLERS);
                tasks.push(tokio::spawn(async move {
                    for i in 0..share {
                        let org = 1 + (caller + i) % ORGS;
                        store
                            .enqueue(Message {
                                organization_id: org,
                                to_number: format!(
                                    "+92300{:07}",
                                    (done + i * CALLERS + caller) % 10_000_000
                                ),
                                from_number: "Sairex".into(),
                                body: "Your fee of PKR 4,500 is due on Friday.".into(),
                                priority: Priority::TRANSACTIONAL,
                                ..Message::default()
                            })
                            .await
                            .unwrap();
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            done += n;
            let rss = rss_mib();
            max_rss = max_rss.max(rss);
            println!("  enqueued {done:>8}  rss {rss:>5.0} MiB");
        }
        max_rss
    });
    let secs = start.elapsed().as_secs_f64();
    println!(
        "build: {total} enqueued in {secs:.1} s ({:.0}/s), max rss {max_rss:.0} MiB, on disk {:.0} MiB",
        total as f64 / secs,
        store.size_on_disk().unwrap() as f64 / (1024.0 * 1024.0)
    );
    drop(store);
    drop(rt);

    // A restart is a new process: reopen there, so its memory is not this one's leftovers.
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--reopen",
            dir.path().to_str().unwrap(),
            &total.to_string(),
            &cache_mb.to_string(),
        ])
        .status()
        .unwrap();
    assert!(status.success());
}

fn reopen_and_lease(dir: &std::path::Path, total: u64, cache_mb: u64) {
    let rt = runtime();
    // Reopen with the defaults (batch sync, recovery) and time until the first lease returns.
    let start = Instant::now();
    let store = Store::open(StoreOptions {
        cache_mb,
        ..StoreOptions::new(dir)
    })
    .unwrap();
    let opened = start.elapsed();
    let first = rt.block_on(store.lease(1, 100)).unwrap();
    let leased = start.elapsed();
    assert_eq!(first.len(), 100);
    println!(
        "reopen: open {:.0} ms, first lease of 100 returned at {:.0} ms, rss {:.0} MiB",
        opened.as_secs_f64() * 1000.0,
        leased.as_secs_f64() * 1000.0,
        rss_mib()
    );

    // Lease everything, 1,000 at a time per organization, with batch sync.
    let start = Instant::now();
    let (count, max_rss) = rt.block_on(async {
        let mut count = first.len() as u64;
        let mut max_rss = 0f64;
        let mut next_sample = 100_000;
        loop {
            let mut got = 0;
            for org in 1..=ORGS {
                got += store.lease(org, 1000).await.unwrap().len() as u64;
            }
            if got == 0 {
                break;
            }
            count += got;
            if count >= next_sample {
                let rss = rss_mib();
                max_rss = max_rss.max(rss);
                println!("  leased   {count:>8}  rss {rss:>5.0} MiB");
                next_sample += 100_000;
            }
        }
        (count, max_rss.max(rss_mib()))
    });
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(count, total);
    println!(
        "lease: {count} leased in {secs:.1} s ({:.0}/s), max rss {max_rss:.0} MiB",
        count as f64 / secs
    );
}
