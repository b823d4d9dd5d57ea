//! `sairex loadtest smpp`: a store, the engine and the SMSC simulator in this process, over
//! loopback, with receipts on; no HTTP. Messages are either all queued before the engine starts
//! (the default: the engine's drain rate) or fed at a fixed rate while it runs (open loop).
//! Reports queued → DELIVERED throughput and latency, the way
//! `engine/examples/throughput.rs` measures it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use sairex_engine::backoff::ExponentialBackoff;
use sairex_engine::dispatch::{DispatcherConfig, EngineEvent};
use sairex_engine::gateway::{Engine, EngineConfig};
use sairex_engine::provider::smpp::SmppProviderConfig;
use sairex_engine::session::SessionConfig;
use sairex_loadtest::load::LoadError;
use sairex_loadtest::load::mix::{Numbers, body};
use sairex_loadtest::load::report::{PhaseReport, e2e_text};
use sairex_loadtest::load::schedule::{Pacing, Schedule, Stop};
use sairex_loadtest::load::stats::{Counts, LatencyRecorder};
use sairex_loadtest::load::track::{E2eReport, Tracker};
use sairex_loadtest::sim::{SimConfig, SimServer, SimStats};
use sairex_store::Store;
use sairex_store::model::{Id, Message, Organization, ProviderConfig};
use serde::Serialize;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use super::{StoreFlags, print_report};

/// Concurrent callers that fill the store (or feed it at --rate).
const FEEDERS: usize = 64;

/// Options of `sairex loadtest smpp`.
#[derive(Debug, Args)]
pub struct SmppArgs {
    /// Messages to send.
    #[arg(long, default_value_t = 20_000)]
    messages: u64,

    /// Feed messages at this rate (per second) while the engine runs; without it they are all
    /// queued before the engine starts.
    #[arg(long)]
    rate: Option<f64>,

    /// SMPP binds (sessions) to the simulator.
    #[arg(long, default_value_t = 4)]
    binds: u32,

    /// Window: unanswered submit_sm per bind.
    #[arg(long, default_value_t = 64)]
    window: u32,

    /// Delay between the simulator's submit_sm_resp and its delivery receipt.
    #[arg(long, default_value_t = 10)]
    receipt_delay_ms: u64,

    #[command(flatten)]
    store: StoreFlags,

    /// Give up when no message reaches a final status for this long.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    stall_timeout: Duration,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// What was asked.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SmppSettings {
    messages: u64,
    rate: Option<f64>,
    binds: u32,
    window: u32,
    receipt_delay_ms: u64,
    sync: &'static str,
}

/// The engine's counters at the end.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EngineCounters {
    sent: u64,
    submitted: u64,
    requeued: u64,
    throttled: u64,
    retries: u64,
    receipts: u64,
    store_errors: u64,
    unanswered_at_shutdown: u64,
}

/// The report of `sairex loadtest smpp`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SmppReport {
    mode: &'static str,
    settings: SmppSettings,
    /// Filling the store (pre-queued) or feeding it (--rate): enqueue calls.
    enqueue: PhaseReport,
    /// Queued → final status, from the engine's events. Pre-queued messages count as queued
    /// when the engine starts (their wait in the queue is part of their latency).
    delivery: E2eReport,
    engine: EngineCounters,
    simulator: SimStats,
}

impl SmppReport {
    fn human(&self) -> String {
        let s = &self.settings;
        let feed = s
            .rate
            .map_or_else(|| "pre-queued".to_owned(), |r| format!("fed at {r} msg/s"));
        let e = &self.engine;
        format!(
            "smpp: {} messages ({feed}), {} binds, window {}, receipts after {} ms, sync {}\n\
             {}{}engine: sent {} submitted {} requeued {} throttled {} retries {} receipts {} \
             store errors {}; simulator: {} submits, {} receipts\n",
            s.messages,
            s.binds,
            s.window,
            s.receipt_delay_ms,
            s.sync,
            self.enqueue.human(),
            e2e_text(&self.delivery).replace("accept->DELIVERED", "queued->DELIVERED"),
            e.sent,
            e.submitted,
            e.requeued,
            e.throttled,
            e.retries,
            e.receipts,
            e.store_errors,
            self.simulator.submits.received,
            self.simulator.receipts.sent,
        )
    }
}

/// What the tracking task is told.
enum Track {
    Queued(Id, Instant),
}

pub(super) async fn run(args: SmppArgs) -> anyhow::Result<()> {
    if args.messages == 0 {
        return Err(LoadError::invalid("--messages", "must be at least 1").into());
    }
    let pacing = args.rate.map(Pacing::open).transpose()?;
    let window = std::num::NonZeroU32::new(args.window)
        .ok_or_else(|| LoadError::invalid("--window", "must be at least 1"))?;
    if args.binds == 0 {
        return Err(LoadError::invalid("--binds", "must be at least 1").into());
    }

    let sim = SimServer::start(SimConfig {
        receipt_delay: Duration::from_millis(args.receipt_delay_ms),
        // The simulator keeps no copy of each message: memory stays flat however many.
        max_received: 0,
        ..SimConfig::default()
    })
    .await
    .context("starting the SMSC simulator")?;
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
    let record = store
        .create_provider(ProviderConfig {
            organization_id: org,
            display_name: "smsc-sim".into(),
            ..ProviderConfig::default()
        })
        .await
        .context("creating the provider")?;

    let addr = sim.addr();
    let session = SessionConfig {
        system_id: "sairex".try_into().context("system_id")?,
        password: "secret".try_into().context("password")?,
        window,
        reconnect: ExponentialBackoff::try_new(
            Duration::from_millis(50),
            Duration::from_millis(500),
        )
        .context("backoff")?,
        ..SessionConfig::new(addr.ip().to_string(), addr.port())
    };
    let engine_config = EngineConfig {
        dispatcher: DispatcherConfig {
            // Room for every event of a large backlog: a lagging reader loses latencies.
            event_capacity: 1 << 20,
            ..DispatcherConfig::default()
        },
        smpp: vec![(
            record.clone(),
            SmppProviderConfig {
                binds: args.binds,
                ..SmppProviderConfig::new(record.id, session)
            },
        )],
        provider_drain: Duration::from_secs(5),
        providers_from_store: false,
    };

    let numbers = Numbers::default();
    let text = body(1);
    let enqueue;
    let engine;
    let (track_tx, track_rx) = mpsc::unbounded_channel();
    let start;
    let mut events;
    match pacing {
        None => {
            // Fill the store first; the engine then drains it.
            let schedule = Arc::new(Schedule::new(
                Pacing::Closed,
                Stop::Count(args.messages),
                Instant::now(),
            ));
            let (report, ids) = feed(&store, org, &numbers, &text, schedule, None).await;
            enqueue = report;
            store.flush().await.context("flushing the store")?;
            start = Instant::now();
            engine = Engine::start(store.clone(), engine_config)
                .await
                .context("starting the engine")?;
            events = engine.handle().subscribe();
            for id in ids {
                let _ = track_tx.send(Track::Queued(id, start));
            }
            engine.handle().nudge();
        }
        Some(pacing) => {
            engine = Engine::start(store.clone(), engine_config)
                .await
                .context("starting the engine")?;
            events = engine.handle().subscribe();
            start = Instant::now();
            let schedule = Arc::new(Schedule::new(pacing, Stop::Count(args.messages), start));
            let feeding = {
                let store = store.clone();
                let handle = engine.handle();
                let track = track_tx.clone();
                let text = text.clone();
                tokio::spawn(async move {
                    let nudge = move || handle.nudge();
                    feed(
                        &store,
                        org,
                        &numbers,
                        &text,
                        schedule,
                        Some((track, Box::new(nudge))),
                    )
                    .await
                })
            };
            // The feeding runs while events are tracked below.
            let tracked = track(
                track_rx,
                &mut events,
                &store,
                org,
                args.messages,
                args.stall_timeout,
            );
            let (tracker, fed) = tokio::join!(tracked, feeding);
            let (report, _) = fed.context("the feeding task")?;
            return finish(args, store, engine, sim, report, tracker, start).await;
        }
    }
    drop(track_tx);
    let tracker = track(
        track_rx,
        &mut events,
        &store,
        org,
        args.messages,
        args.stall_timeout,
    )
    .await;
    finish(args, store, engine, sim, enqueue, tracker, start).await
}

type Nudge = Box<dyn Fn() + Send + Sync>;

/// Enqueues messages from [`FEEDERS`] concurrent callers on `schedule`; with `track`, tells the
/// tracker about each one when it is durable, and nudges the engine.
async fn feed(
    store: &Store,
    org: Id,
    numbers: &Numbers,
    text: &str,
    schedule: Arc<Schedule>,
    track: Option<(mpsc::UnboundedSender<Track>, Nudge)>,
) -> (PhaseReport, Vec<Id>) {
    let track = track.map(Arc::new);
    let mut tasks = Vec::with_capacity(FEEDERS);
    for _ in 0..FEEDERS {
        let store = store.clone();
        let schedule = Arc::clone(&schedule);
        let numbers = numbers.clone();
        let text = text.to_owned();
        let track = track.clone();
        tasks.push(tokio::spawn(async move {
            let mut latency = LatencyRecorder::new();
            let mut errors = Counts::new();
            let mut ids = Vec::new();
            let mut last = None;
            while let Some(slot) = schedule.claim(Instant::now()) {
                tokio::time::sleep_until(slot.intended).await;
                let message = Message {
                    organization_id: org,
                    from_number: "Sairex".into(),
                    to_number: numbers.number(slot.index),
                    body: text.clone(),
                    segments: 1,
                    encoding: "GSM-7".into(),
                    ..Message::default()
                };
                match store.enqueue(message).await {
                    Ok(done) => {
                        let at = Instant::now();
                        latency.record(at - slot.intended);
                        let id = done.message().id;
                        ids.push(id);
                        if let Some(track) = &track {
                            let _ = track.0.send(Track::Queued(id, at));
                            (track.1)();
                        }
                        last = Some(at);
                    }
                    Err(e) => errors.add(&error_kind(&e)),
                }
            }
            (latency, errors, ids, last)
        }));
    }
    let mut latency = LatencyRecorder::new();
    let mut errors = Counts::new();
    let mut ids = Vec::new();
    let mut last = None;
    for task in tasks {
        if let Ok((l, e, i, t)) = task.await {
            latency.merge(&l);
            errors.merge(&e);
            ids.extend(i);
            last = last.max(t);
        }
    }
    let elapsed = last.map_or(Duration::ZERO, |l: Instant| l - schedule.start());
    let n = ids.len() as u64;
    let report = PhaseReport::new(
        "enqueue",
        n + errors.total(),
        n,
        elapsed,
        latency.percentiles(),
        errors,
    );
    (report, ids)
}

/// A store error's kind, without the details that would make every error different.
pub(super) fn error_kind(e: &impl std::fmt::Debug) -> String {
    let text = format!("{e:?}");
    text.split(['(', ' ', '{'])
        .next()
        .unwrap_or("error")
        .to_owned()
}

/// Follows the engine's events until `expected` queued messages reached a final status, or no
/// progress was made for `stall_timeout`. If the event stream lagged, the store answers for the
/// messages whose events were lost.
async fn track(
    mut queued: mpsc::UnboundedReceiver<Track>,
    events: &mut broadcast::Receiver<EngineEvent>,
    store: &Store,
    org: Id,
    expected: u64,
    stall_timeout: Duration,
) -> Tracker<Id> {
    let mut tracker = Tracker::new();
    let mut queued_open = true;
    let mut seen = 0u64;
    // Progress: a message queued or finished. Without any for stall_timeout, give up.
    let mut last_progress = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    while seen < expected || tracker.outstanding() > 0 {
        tokio::select! {
            msg = queued.recv(), if queued_open => match msg {
                Some(Track::Queued(id, at)) => {
                    seen += 1;
                    tracker.accepted(id, at);
                    last_progress = Instant::now();
                }
                None => queued_open = false,
            },
            event = events.recv() => match event {
                Ok(EngineEvent::StatusChanged { org: o, message_id, status, .. }) if o == org => {
                    let before = tracker.outstanding();
                    tracker.finished(message_id, status.as_str(), Instant::now());
                    if tracker.outstanding() < before {
                        last_progress = Instant::now();
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => tracker.lagged(n),
                Err(broadcast::error::RecvError::Closed) => break,
            },
            _ = tick.tick() => {
                if tracker.lagged_events() > 0 {
                    let before = tracker.outstanding();
                    resolve_from_store(&mut tracker, store, org);
                    if tracker.outstanding() < before {
                        last_progress = Instant::now();
                    }
                }
                if last_progress.elapsed() >= stall_timeout {
                    break;
                }
            }
        }
    }
    tracker
}

/// Asks the store for the status of every outstanding message (used after lost events).
fn resolve_from_store(tracker: &mut Tracker<Id>, store: &Store, org: Id) {
    let keys: Vec<Id> = tracker.outstanding_keys().copied().collect();
    for id in keys {
        if let Ok(m) = store.message(org, id) {
            tracker.resolved(&id, m.status.as_str());
        }
    }
}

async fn finish(
    args: SmppArgs,
    store: Store,
    engine: Engine,
    sim: sairex_loadtest::sim::SimHandle,
    enqueue: PhaseReport,
    tracker: Tracker<Id>,
    start: Instant,
) -> anyhow::Result<()> {
    let counters = engine.handle().counters();
    let shutdown = engine.shutdown().await;
    let simulator = sim.shutdown().await;
    store.flush().await.context("flushing the store")?;
    let report = SmppReport {
        mode: "smpp",
        settings: SmppSettings {
            messages: args.messages,
            rate: args.rate,
            binds: args.binds,
            window: args.window,
            receipt_delay_ms: args.receipt_delay_ms,
            sync: args.store.name(),
        },
        enqueue,
        delivery: tracker.report(start),
        engine: EngineCounters {
            sent: counters.sent,
            submitted: counters.submitted,
            requeued: counters.requeued,
            throttled: counters.throttled,
            retries: counters.retries,
            receipts: counters.receipts,
            store_errors: counters.store_errors,
            unanswered_at_shutdown: shutdown.unanswered as u64,
        },
        simulator,
    };
    print_report(&report, args.json, SmppReport::human);
    Ok(())
}
