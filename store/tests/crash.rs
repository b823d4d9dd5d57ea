//! Crash consistency: a child process writes through the store and prints every operation the
//! store acknowledged; we SIGKILL it at a random point, reopen the store, and check that every
//! acknowledged operation survived and that records, events, indexes and the queue agree.
//!
//! Several kills in a row on the same store, so each cycle also starts from a recovered store
//! (in-flight leases put back with RESUBMITTED_AFTER_RESTART). Runs under `SyncPolicy::Batch`
//! (group commit, the default) and `SyncPolicy::Always`.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use sairex_store::model::{MessageStatus, QueuePlace};
use sairex_store::{Store, StoreOptions};

const CHILD: &str = env!("CARGO_BIN_EXE_sairex-store-crash-child");

/// How long a cycle may wait for the child's next line before the test fails.
const LINE_TIMEOUT: Duration = Duration::from_secs(30);

/// What the parent knows a message went through, from acknowledged operations only.
#[derive(Debug, Default)]
struct Acked {
    org: u64,
    /// Event `seq` → its type, for every acknowledged operation that appended one.
    events: BTreeMap<u32, String>,
    /// A lease acknowledged when the message had this many events, and no event acknowledged
    /// since: recovery (or an unacknowledged later operation) must have appended one.
    lease_at: Option<u32>,
    /// An acknowledged final status: nothing may change it.
    final_status: Option<String>,
}

/// One acknowledged-operation line: `ack <org> <id> <eventCount> <eventType|-|DUP> <STATUS>`.
fn record(acked: &mut BTreeMap<u64, Acked>, line: &str) {
    let fields: Vec<&str> = line.split(' ').collect();
    let ["ack", org, id, count, event, status] = fields.as_slice() else {
        panic!("unexpected line from the child: {line:?}");
    };
    let (org, id, count): (u64, u64, u32) = (
        org.parse().unwrap(),
        id.parse().unwrap(),
        count.parse().unwrap(),
    );
    let entry = acked.entry(id).or_default();
    entry.org = org;
    match *event {
        "DUP" => {}
        "-" => entry.lease_at = Some(count),
        event => {
            assert!(count >= 1, "{line}");
            entry.events.insert(count - 1, event.to_owned());
            if entry.lease_at.is_some_and(|at| count > at) {
                entry.lease_at = None;
            }
            if matches!(*status, "DELIVERED" | "FAILED" | "REJECTED" | "EXPIRED") {
                entry.final_status = Some((*status).to_owned());
            }
        }
    }
}

/// xorshift64*, so each run kills at the same line counts.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// Runs one child until it has printed `kill_after` lines, kills it, and records every line it
/// printed (those still in the pipe after the kill were acknowledged too). Returns the count.
fn run_and_kill(
    dir: &Path,
    sync: &str,
    seed: u64,
    kill_after: usize,
    acked: &mut BTreeMap<u64, Acked>,
) -> usize {
    let stderr_path = dir.with_extension("stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut child = Command::new(CHILD)
        .args(["work", dir.to_str().unwrap(), sync, &seed.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut stdout = std::io::BufReader::new(stdout);
        let mut buf = String::new();
        // A last line without its newline was cut by the kill: not a whole acknowledgement.
        while stdout.read_line(&mut buf).unwrap_or(0) > 0 && buf.ends_with('\n') {
            if tx.send(buf.trim_end().to_owned()).is_err() {
                break;
            }
            buf.clear();
        }
    });
    let mut seen = 0;
    while seen < kill_after {
        match rx.recv_timeout(LINE_TIMEOUT) {
            Ok(line) => {
                record(acked, &line);
                seen += 1;
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "child stopped after {seen} lines ({e}); stderr: {}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                );
            }
        }
    }
    // SIGKILL on Unix: no destructor, no flush, whatever sled was doing.
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
    for line in rx.try_iter() {
        record(acked, &line);
        seen += 1;
    }
    seen
}

/// Reopens the store and checks every acknowledged operation and the store's own consistency.
fn check_after_crash(dir: &Path, acked: &BTreeMap<u64, Acked>, cycle: usize) {
    let store = Store::open(StoreOptions::new(dir)).unwrap();
    let report = store.check_consistency().unwrap();
    assert!(report.is_consistent(), "cycle {cycle}: {report}");
    assert_eq!(report.in_flight, 0, "recovery leaves nothing in flight");
    for &(org, id) in &store.recovery().requeued {
        let m = store.message(org, id).unwrap();
        let last = store.events(org, id).unwrap().pop().unwrap();
        assert_eq!(last.event_type, "RESUBMITTED_AFTER_RESTART", "{id}");
        assert_eq!(m.status, MessageStatus::Queued);
        assert!(matches!(m.queue, QueuePlace::Ready { .. }), "{m:?}");
    }
    for (&id, expected) in acked {
        let m = store
            .message(expected.org, id)
            .unwrap_or_else(|e| panic!("cycle {cycle}: acknowledged message {id} is gone: {e}"));
        let events = store.events(expected.org, id).unwrap();
        for (&seq, event_type) in &expected.events {
            let found = events.get(seq as usize).map(|e| e.event_type.as_str());
            assert_eq!(
                found,
                Some(event_type.as_str()),
                "cycle {cycle}: message {id}'s acknowledged event {seq} ({event_type}); \
                 trail: {events:?}"
            );
        }
        if let Some(at) = expected.lease_at {
            assert!(
                m.event_count > at,
                "cycle {cycle}: message {id} was leased at {at} events and not recovered: {m:?}"
            );
        }
        if let Some(status) = &expected.final_status {
            assert_eq!(m.status.as_str(), status, "cycle {cycle}: message {id}");
        }
    }
}

fn crash_cycles(sync: &str, cycles: usize, seed: u64) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store");
    let mut acked = BTreeMap::new();
    let mut rng = seed;
    let mut total = 0;
    for cycle in 0..cycles {
        let kill_after = 20 + usize::try_from(next(&mut rng) % 400).unwrap();
        total += run_and_kill(&dir, sync, seed + cycle as u64, kill_after, &mut acked);
        check_after_crash(&dir, &acked, cycle);
    }
    assert!(total >= cycles * 20);
    assert!(
        acked.len() > 10,
        "the children did too little to test anything"
    );
}

#[test]
fn acknowledged_operations_survive_sigkill_under_group_commit() {
    crash_cycles("batch", 5, 0x5A12E7);
}

#[test]
fn acknowledged_operations_survive_sigkill_when_every_operation_is_flushed() {
    crash_cycles("always", 3, 0xA1_4A75);
}
