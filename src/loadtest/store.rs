//! `sairex loadtest store`: the store alone. N messages go through the queue the way the engine
//! moves them: enqueue (C concurrent callers), lease (in batches), ack as SUBMITTED, finalize as
//! DELIVERED; each phase is timed on its own, with the latency of each call.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use clap::Args;
use sairex_loadtest::load::LoadError;
use sairex_loadtest::load::mix::{Numbers, body};
use sairex_loadtest::load::report::PhaseReport;
use sairex_loadtest::load::stats::{Counts, LatencyRecorder};
use sairex_store::Submitted;
use sairex_store::model::{Id, Message, MessageStatus, Organization};
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::smpp::error_kind;
use super::{StoreFlags, print_report};

/// Options of `sairex loadtest store`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Messages to move through the queue.
    #[arg(long, default_value_t = 20_000)]
    messages: u64,

    /// Concurrent callers in each phase.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,

    /// Messages per lease call.
    #[arg(long, default_value_t = 64)]
    lease_batch: usize,

    #[command(flatten)]
    store: StoreFlags,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// What was asked.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StoreSettings {
    messages: u64,
    concurrency: usize,
    lease_batch: usize,
    sync: &'static str,
}

/// The report of `sairex loadtest store`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StoreReport {
    mode: &'static str,
    settings: StoreSettings,
    /// enqueue, lease, ack, finalize.
    phases: Vec<PhaseReport>,
    /// Messages DELIVERED at the end, read back from the store.
    delivered: u64,
    /// Size of the store on disk at the end.
    bytes_on_disk: u64,
}

impl StoreReport {
    fn human(&self) -> String {
        let s = &self.settings;
        let mut out = format!(
            "store: {} messages, {} callers, leases of {}, sync {}\n",
            s.messages, s.concurrency, s.lease_batch, s.sync
        );
        for phase in &self.phases {
            out.push_str(&phase.human());
        }
        out.push_str(&format!(
            "delivered {} of {}; {:.1} MiB on disk\n",
            self.delivered,
            s.messages,
            self.bytes_on_disk as f64 / (1024.0 * 1024.0)
        ));
        out
    }
}

/// One caller's results in a phase.
#[derive(Default)]
struct Caller {
    latency: LatencyRecorder,
    errors: Counts,
    operations: u64,
    messages: u64,
}

/// Runs `concurrency` callers, each calling `op` until it returns `None`; `op` returns how many
/// messages the call moved, or the error.
async fn phase<F, Fut>(name: &str, concurrency: usize, op: F) -> PhaseReport
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<Result<u64, String>>> + Send,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let op = Arc::clone(&op);
        tasks.push(tokio::spawn(async move {
            let mut caller = Caller::default();
            loop {
                let t = Instant::now();
                let Some(result) = op().await else { break };
                caller.latency.record(t.elapsed());
                caller.operations += 1;
                match result {
                    Ok(n) => caller.messages += n,
                    Err(kind) => caller.errors.add(&kind),
                }
            }
            caller
        }));
    }
    let mut total = Caller::default();
    for task in tasks {
        if let Ok(c) = task.await {
            total.latency.merge(&c.latency);
            total.errors.merge(&c.errors);
            total.operations += c.operations;
            total.messages += c.messages;
        }
    }
    PhaseReport::new(
        name,
        total.operations,
        total.messages,
        start.elapsed(),
        total.latency.percentiles(),
        total.errors,
    )
}

/// Hands out the ids of one phase to its callers.
struct Ids {
    ids: Vec<Id>,
    next: AtomicU64,
}

impl Ids {
    fn next(&self) -> Option<Id> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        usize::try_from(i)
            .ok()
            .and_then(|i| self.ids.get(i).copied())
    }
}

pub(super) async fn run(args: StoreArgs) -> anyhow::Result<()> {
    if args.messages == 0 {
        return Err(LoadError::invalid("--messages", "must be at least 1").into());
    }
    if args.concurrency == 0 {
        return Err(LoadError::invalid("--concurrency", "must be at least 1").into());
    }
    if args.lease_batch == 0 {
        return Err(LoadError::invalid("--lease-batch", "must be at least 1").into());
    }
    let open = args.store.open()?;
    let store = open.store.clone();
    let org = store
        .create_organization(Organization {
            name: "loadtest".into(),
            ..Default::default()
        })
        .await
        .context("creating the organization")?
        .id;
    let mut phases = Vec::new();

    // Enqueue: message i goes to number i.
    let next = Arc::new(AtomicU64::new(0));
    let numbers = Numbers::default();
    let text: Arc<str> = body(1).into();
    let total = args.messages;
    phases.push(
        phase("enqueue", args.concurrency, {
            let store = store.clone();
            move || {
                let store = store.clone();
                let i = next.fetch_add(1, Ordering::Relaxed);
                let to = numbers.number(i);
                let text = Arc::clone(&text);
                async move {
                    if i >= total {
                        return None;
                    }
                    let message = Message {
                        organization_id: org,
                        from_number: "Sairex".into(),
                        to_number: to,
                        body: text.to_string(),
                        segments: 1,
                        encoding: "GSM-7".into(),
                        ..Message::default()
                    };
                    Some(
                        store
                            .enqueue(message)
                            .await
                            .map(|_| 1)
                            .map_err(|e| error_kind(&e)),
                    )
                }
            }
        })
        .await,
    );

    // Lease in batches until the queue is empty; every leased id is kept for the next phases.
    let leased = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    phases.push(
        phase("lease", args.concurrency, {
            let store = store.clone();
            let leased = Arc::clone(&leased);
            let batch = args.lease_batch;
            move || {
                let store = store.clone();
                let leased = Arc::clone(&leased);
                async move {
                    match store.lease(org, batch).await {
                        Ok(messages) if messages.is_empty() => None,
                        Ok(messages) => {
                            let n = messages.len() as u64;
                            leased.lock().await.extend(messages.iter().map(|m| m.id));
                            Some(Ok(n))
                        }
                        // A failing lease would fail again: stop this caller.
                        Err(_) => None,
                    }
                }
            }
        })
        .await,
    );
    let ids = std::mem::take(&mut *leased.lock().await);

    let ack_ids = Arc::new(Ids {
        ids: ids.clone(),
        next: AtomicU64::new(0),
    });
    phases.push(
        phase("ack", args.concurrency, {
            let store = store.clone();
            move || {
                let store = store.clone();
                let id = ack_ids.next();
                async move {
                    let id = id?;
                    let submitted = Submitted {
                        provider_id: 1,
                        provider_msg_ids: vec![format!("lt-{id}")],
                        ..Submitted::default()
                    };
                    Some(
                        store
                            .ack_submitted(org, id, submitted)
                            .await
                            .map(|_| 1)
                            .map_err(|e| error_kind(&e)),
                    )
                }
            }
        })
        .await,
    );

    let final_ids = Arc::new(Ids {
        ids: ids.clone(),
        next: AtomicU64::new(0),
    });
    phases.push(
        phase("finalize", args.concurrency, {
            let store = store.clone();
            move || {
                let store = store.clone();
                let id = final_ids.next();
                async move {
                    let id = id?;
                    Some(
                        store
                            .finalize(org, id, MessageStatus::Delivered, None, None)
                            .await
                            .map(|_| 1)
                            .map_err(|e| error_kind(&e)),
                    )
                }
            }
        })
        .await,
    );
    store.flush().await.context("flushing the store")?;

    // Read back: the run counts only if the store says every message is DELIVERED.
    let delivered = ids
        .iter()
        .filter(|id| {
            store
                .message(org, **id)
                .is_ok_and(|m| m.status == MessageStatus::Delivered)
        })
        .count() as u64;
    let report = StoreReport {
        mode: "store",
        settings: StoreSettings {
            messages: args.messages,
            concurrency: args.concurrency,
            lease_batch: args.lease_batch,
            sync: args.store.name(),
        },
        phases,
        delivered,
        bytes_on_disk: store.size_on_disk().unwrap_or(0),
    };
    print_report(&report, args.json, StoreReport::human);
    // A short run is worth reporting, but not as a success.
    if delivered < args.messages {
        anyhow::bail!(
            "only {delivered} of {} messages reached DELIVERED",
            args.messages
        );
    }
    Ok(())
}
