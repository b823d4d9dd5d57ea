//! `sairex loadtest soak`: the store, the engine and two SMSC simulators in this process, fed
//! at a fixed rate for `--duration` while faults come and go, then checked.
//!
//! Two SMPP providers serve one organization: `sim-a` (priority 0) and `sim-b` (priority 1,
//! the failover). Every `--phase` both simulators are restarted (every bind drops and
//! reconnects) with the next phase's settings, in this cycle:
//! 1. `normal`: both answer at once, receipts after `--receipt-delay-ms`;
//! 2. `throttled`: each accepts a third of `--rate` per second, the rest `ESME_RTHROTTLED`;
//! 3. `slow-receipts`: receipts come after two seconds;
//! 4. `primary-failing`: `sim-a` answers every submit `ESME_RSYSERR` (failover to `sim-b`);
//! 5. `primary-down`: `sim-a` is not listening at all.
//!
//! Traffic is mixed: priorities otp:10,transactional:30,bulk:60 and 1 to 3 GSM-7 segments.
//! Each body starts with `soak <n> `, a token per message, so the simulators' logs tell which
//! message each submit was. After the feed, both simulators run normally until every message
//! is final or none moves any more (`--drain-timeout` at most), and the run checks:
//! - none lost: every accepted message is in the store, final, or still queued with a reason
//!   (a retry scheduled, a status message), or SUBMITTED awaiting a receipt that a simulator
//!   dropped when it was restarted (no more of those than the receipts dropped);
//! - none sent twice without cause: a message the simulators accepted twice has an IN_DOUBT
//!   event (its submit's answer was lost with a bind: at-least-once by design);
//! - memory: resident memory (VmRSS of /proc/self/status) at the end of the feed is at most
//!   `--max-rss-growth-mb` (or a quarter) above what it was half-way.
//!
//! The harness's own memory stays flat: a byte per message for the submit counts and eight for
//! its id; each simulator's log lives one phase only.
//!
//! Exits 1 (after the report) when a check fails.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use sairex_engine::backoff::ExponentialBackoff;
use sairex_engine::dispatch::DispatcherConfig;
use sairex_engine::dispatch::health::HealthRules;
use sairex_engine::gateway::{Engine, EngineConfig};
use sairex_engine::provider::smpp::SmppProviderConfig;
use sairex_engine::session::SessionConfig;
use sairex_loadtest::load::LoadError;
use sairex_loadtest::load::mix::{self, Mix, Numbers, Segments};
use sairex_loadtest::load::schedule::{Pacing, Schedule, Stop};
use sairex_loadtest::sim::{SimConfig, SimHandle, SimServer};
use sairex_pdu::CommandStatus;
use sairex_store::Store;
use sairex_store::model::{Id, Message, MessageStatus, Organization, Priority, ProviderConfig};
use serde::Serialize;
use tokio::time::Instant;

use super::{StoreFlags, print_report};

/// Concurrent callers feeding the store at `--rate`.
const FEEDERS: usize = 16;
/// Receipt delay of the `slow-receipts` phase.
const SLOW_RECEIPTS: Duration = Duration::from_secs(2);
/// The drain ends early once nothing has moved for this long and every message left is
/// accounted for.
const SETTLE: Duration = Duration::from_secs(3);
/// Prefix of every body: `soak <token> `.
const TOKEN_PREFIX: &str = "soak ";
/// At most this many ids are listed per problem.
const LIST: usize = 20;

/// Options of `sairex loadtest soak`.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// How long to feed messages (e.g. 60s, 30m, 2h).
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,

    /// Messages per second (open loop).
    #[arg(long, default_value_t = 200.0)]
    rate: f64,

    /// Length of each fault phase; the simulators restart at every change.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    phase: Duration,

    /// SMPP binds per provider.
    #[arg(long, default_value_t = 2)]
    binds: u32,

    /// Window: unanswered submit_sm per bind.
    #[arg(long, default_value_t = 32)]
    window: u32,

    /// Receipt delay outside the slow-receipts phase.
    #[arg(long, default_value_t = 20)]
    receipt_delay_ms: u64,

    /// Priorities by weight: otp, transactional, bulk.
    #[arg(long, default_value = "otp:10,transactional:30,bulk:60")]
    mix: Mix,

    /// Body lengths in GSM-7 segments, optionally weighted (1:70,2:20,3:10).
    #[arg(long, default_value = "1:70,2:20,3:10")]
    segments: Segments,

    /// How long a provider marked DOWN (more than 20 failures in 5 minutes: a restart with
    /// many submits in flight is enough) stays out of routing before it is probed; the
    /// engine's default is 60s.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    probe_after: Duration,

    /// After the feed, the longest wait for messages to become final (longer than
    /// --probe-after, so providers marked DOWN are tried again).
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    drain_timeout: Duration,

    /// Largest allowed growth of resident memory from half-way to the end of the feed, in MiB
    /// (a quarter of the half-way size is allowed when larger).
    #[arg(long, default_value_t = 64)]
    max_rss_growth_mb: u64,

    #[command(flatten)]
    store: StoreFlags,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// A fault phase: how the two simulators behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Normal,
    Throttled,
    SlowReceipts,
    PrimaryFailing,
    PrimaryDown,
}

const CYCLE: [Phase; 5] = [
    Phase::Normal,
    Phase::Throttled,
    Phase::SlowReceipts,
    Phase::PrimaryFailing,
    Phase::PrimaryDown,
];

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Throttled => "throttled",
            Self::SlowReceipts => "slow-receipts",
            Self::PrimaryFailing => "primary-failing",
            Self::PrimaryDown => "primary-down",
        }
    }

    /// The simulator settings of this phase; `None` for a simulator that is down.
    fn sim(self, primary: bool, base: &SimConfig, rate: f64) -> Option<SimConfig> {
        let mut config = base.clone();
        match self {
            Self::Normal => {}
            Self::Throttled => {
                // Both together take two thirds of the rate: a backlog builds up.
                config.throttle_tps = Some(((rate / 3.0).ceil() as u32).max(1));
            }
            Self::SlowReceipts => config.receipt_delay = SLOW_RECEIPTS,
            Self::PrimaryFailing if primary => {
                config.error_rate = 1.0;
                config.error_status = CommandStatus::ESME_RSYSERR;
            }
            Self::PrimaryDown if primary => return None,
            Self::PrimaryFailing | Self::PrimaryDown => {}
        }
        Some(config)
    }
}

/// What was asked.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SoakSettings {
    duration_seconds: f64,
    rate: f64,
    phase_seconds: f64,
    binds: u32,
    window: u32,
    receipt_delay_ms: u64,
    mix: String,
    segments: String,
    probe_after_seconds: f64,
    sync: &'static str,
}

/// One phase as it ran.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PhaseRun {
    name: &'static str,
    started_at_seconds: f64,
}

/// Where every accepted message ended up.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Messages {
    planned: u64,
    accepted: u64,
    enqueue_errors: u64,
    by_status: BTreeMap<&'static str, u64>,
    /// QUEUED with a retry scheduled or a status message.
    queued_with_reason: u64,
    /// QUEUED with neither: stuck.
    queued_without_reason: u64,
    /// SUBMITTED or SENT when the drain ended: their receipt was dropped by a restart.
    awaiting_receipt: u64,
    /// Accepted but not in the store.
    lost: u64,
}

/// What the simulators saw.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Simulators {
    restarts: u64,
    /// Submits accepted (parts of multipart messages included).
    submits_accepted: u64,
    /// Messages whose first part was accepted at least once.
    messages_seen: u64,
    /// Extra accepted submits of a message's first part.
    duplicates: u64,
    /// Of which the message has an IN_DOUBT event.
    duplicates_in_doubt: u64,
    /// Receipts pending when a simulator was stopped (never sent).
    receipts_dropped_at_restarts: u64,
    /// Submits answered ESME_RTHROTTLED.
    throttled: u64,
    /// Submits answered with an injected error.
    errors_injected: u64,
}

/// The engine's counters at the end.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EngineCounters {
    sent: u64,
    submitted: u64,
    throttled: u64,
    provider_errors: u64,
    failovers: u64,
    retries: u64,
    in_doubt: u64,
    receipts: u64,
    receipts_dropped: u64,
    store_errors: u64,
}

/// Resident memory, in KiB.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Memory {
    samples: usize,
    start_kib: u64,
    half_kib: u64,
    end_kib: u64,
    max_kib: u64,
    after_drain_kib: u64,
    growth_kib: i64,
    limit_kib: u64,
}

/// The report of `sairex loadtest soak`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SoakReport {
    mode: &'static str,
    ok: bool,
    problems: Vec<String>,
    settings: SoakSettings,
    phases: Vec<PhaseRun>,
    messages: Messages,
    simulators: Simulators,
    engine: EngineCounters,
    memory: Memory,
    drain_seconds: f64,
}

impl SoakReport {
    fn human(&self) -> String {
        let m = &self.messages;
        let s = &self.simulators;
        let e = &self.engine;
        let mem = &self.memory;
        let statuses: Vec<String> = m
            .by_status
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let mut out = format!(
            "soak: {:.0} s at {} msg/s, phases of {:.0} s ({} phases), {} binds × window {} per provider, sync {}\n\
             messages: {} accepted of {} planned ({} enqueue errors); {}; queued with a reason {}, \
             without {}; awaiting a dropped receipt {}; lost {}\n\
             simulators: {} restarts, {} submits accepted, {} throttled, {} errors injected, \
             {} duplicates ({} in doubt), {} receipts dropped at restarts\n\
             engine: sent {} submitted {} throttled {} provider errors {} failovers {} retries {} \
             in doubt {} receipts {} store errors {}\n\
             memory: RSS {} KiB at start, {} half-way, {} at the end of the feed (growth {} KiB, \
             limit {}), max {}, {} after the drain ({:.1} s)\n",
            self.settings.duration_seconds,
            self.settings.rate,
            self.settings.phase_seconds,
            self.phases.len(),
            self.settings.binds,
            self.settings.window,
            self.settings.sync,
            m.accepted,
            m.planned,
            m.enqueue_errors,
            statuses.join(", "),
            m.queued_with_reason,
            m.queued_without_reason,
            m.awaiting_receipt,
            m.lost,
            s.restarts,
            s.submits_accepted,
            s.throttled,
            s.errors_injected,
            s.duplicates,
            s.duplicates_in_doubt,
            s.receipts_dropped_at_restarts,
            e.sent,
            e.submitted,
            e.throttled,
            e.provider_errors,
            e.failovers,
            e.retries,
            e.in_doubt,
            e.receipts,
            e.store_errors,
            mem.start_kib,
            mem.half_kib,
            mem.end_kib,
            mem.growth_kib,
            mem.limit_kib,
            mem.max_kib,
            mem.after_drain_kib,
            self.drain_seconds,
        );
        if self.ok {
            out.push_str("OK: nothing lost, no unexplained duplicate, memory flat\n");
        } else {
            for p in &self.problems {
                out.push_str(&format!("PROBLEM: {p}\n"));
            }
        }
        out
    }
}

/// A simulator of one provider across its restarts.
struct Smsc {
    addr: SocketAddr,
    running: Option<SimHandle>,
}

/// Submit counts by token (a byte each, saturating) and what the simulators reported.
#[derive(Default)]
struct Seen {
    counts: Vec<u8>,
    sims: Simulators,
}

impl Seen {
    /// Takes in the log and counters of a simulator that is being stopped.
    async fn collect(&mut self, sim: SimHandle) {
        for m in sim.received() {
            if m.message_id.is_none() {
                continue;
            }
            self.sims.submits_accepted += 1;
            if let Some(token) = token_of(m.esm_class, &m.short_message)
                && let Ok(i) = usize::try_from(token)
            {
                if self.counts.len() <= i {
                    self.counts.resize(i + 1, 0);
                }
                self.counts[i] = self.counts[i].saturating_add(1);
            }
        }
        let stats = sim.shutdown().await;
        self.sims.receipts_dropped_at_restarts += stats.deliveries_pending;
        for (status, n) in &stats.submits.responses {
            match status.as_str() {
                "ESME_ROK" => {}
                "ESME_RTHROTTLED" => self.sims.throttled += n,
                _ => self.sims.errors_injected += n,
            }
        }
    }
}

/// The token of a submit's text (`soak <n> …`), skipping a user data header; `None` for the
/// second and later parts of a message, which do not start with it.
fn token_of(esm_class: u8, short_message: &[u8]) -> Option<u64> {
    let text = if esm_class & 0x40 != 0 {
        let udhl = usize::from(*short_message.first()?);
        short_message.get(1 + udhl..)?
    } else {
        short_message
    };
    // GSM-7 unpacked: letters, digits and space have their ASCII codes.
    let rest = text.strip_prefix(TOKEN_PREFIX.as_bytes())?;
    let digits = rest.split(|&b| b == b' ').next()?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The body of message `token`: the token first, then GSM-7 filler to exactly `segments` parts.
fn soak_body(token: u64, segments: u8) -> String {
    let head = format!("{TOKEN_PREFIX}{token} ");
    let filler = mix::body(segments);
    let mut body = head.clone();
    body.extend(filler.chars().skip(head.chars().count()));
    body
}

/// Resident memory of this process in KiB (`VmRSS`), or 0 where /proc is missing.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Starts a simulator on `addr`, retrying briefly while the old listener's port is released.
async fn start_sim(config: SimConfig) -> anyhow::Result<SimHandle> {
    let mut last = None;
    for _ in 0..50 {
        match SimServer::start(config.clone()).await {
            Ok(sim) => return Ok(sim),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(last.map_or_else(|| anyhow::anyhow!("no attempt"), anyhow::Error::from))
        .with_context(|| format!("restarting the simulator on {}", config.listen))
}

/// Stops both simulators and starts them with `phase`'s settings on their addresses.
async fn switch(
    smscs: &mut [Smsc; 2],
    phase: Phase,
    base: &SimConfig,
    rate: f64,
    seen: &mut Seen,
) -> anyhow::Result<()> {
    for (i, smsc) in smscs.iter_mut().enumerate() {
        if let Some(sim) = smsc.running.take() {
            seen.collect(sim).await;
            seen.sims.restarts += 1;
        }
        if let Some(mut config) = phase.sim(i == 0, base, rate) {
            config.listen = smsc.addr;
            smsc.running = Some(start_sim(config).await?);
        }
    }
    Ok(())
}

/// The provider record and engine settings of one simulator.
fn provider(
    record: &ProviderConfig,
    addr: SocketAddr,
    args: &SoakArgs,
) -> anyhow::Result<(ProviderConfig, SmppProviderConfig)> {
    let window = std::num::NonZeroU32::new(args.window)
        .ok_or_else(|| LoadError::invalid("--window", "must be at least 1"))?;
    let session = SessionConfig {
        system_id: "sairex".try_into().context("system_id")?,
        password: "secret".try_into().context("password")?,
        window,
        response_timeout: Duration::from_secs(5),
        reconnect: ExponentialBackoff::try_new(
            Duration::from_millis(50),
            Duration::from_millis(500),
        )
        .context("backoff")?,
        ..SessionConfig::new(addr.ip().to_string(), addr.port())
    };
    Ok((
        record.clone(),
        SmppProviderConfig {
            binds: args.binds,
            ..SmppProviderConfig::new(record.id, session)
        },
    ))
}

pub(super) async fn run(args: SoakArgs) -> anyhow::Result<()> {
    let pacing = Pacing::open(args.rate)?;
    if args.binds == 0 {
        return Err(LoadError::invalid("--binds", "must be at least 1").into());
    }
    if args.duration.is_zero() || args.phase.is_zero() {
        return Err(LoadError::invalid("--duration / --phase", "must be more than 0").into());
    }
    let base = SimConfig {
        receipt_delay: Duration::from_millis(args.receipt_delay_ms),
        delivery_retry_interval: Duration::from_millis(500),
        // Kept one phase only: the simulator is restarted at every phase.
        max_received: 10_000_000,
        ..SimConfig::default()
    };
    let mut smscs = [
        Smsc {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            running: None,
        },
        Smsc {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            running: None,
        },
    ];
    for smsc in &mut smscs {
        let sim = SimServer::start(base.clone())
            .await
            .context("starting a simulator")?;
        smsc.addr = sim.addr();
        smsc.running = Some(sim);
    }

    let open = args.store.open()?;
    let store = open.store.clone();
    let org = store
        .create_organization(Organization {
            name: "soak".into(),
            ..Default::default()
        })
        .await
        .context("creating the organization")?
        .id;
    let mut smpp = Vec::new();
    for (i, smsc) in smscs.iter().enumerate() {
        let record = store
            .create_provider(ProviderConfig {
                organization_id: org,
                display_name: if i == 0 { "sim-a" } else { "sim-b" }.into(),
                priority: i32::try_from(i).unwrap_or(0),
                ..ProviderConfig::default()
            })
            .await
            .context("creating a provider")?;
        smpp.push(provider(&record, smsc.addr, &args)?);
    }
    let engine = Engine::start(
        store.clone(),
        EngineConfig {
            dispatcher: DispatcherConfig {
                // A failing primary hands over quickly.
                failover_wait: Duration::from_secs(2),
                health: HealthRules {
                    probe_after: u64::try_from(args.probe_after.as_millis()).unwrap_or(u64::MAX),
                    ..HealthRules::default()
                },
                ..DispatcherConfig::default()
            },
            smpp,
            provider_drain: Duration::from_secs(5),
            providers_from_store: false,
        },
    )
    .await
    .context("starting the engine")?;

    let start = Instant::now();
    let schedule = Arc::new(Schedule::new(pacing, Stop::After(args.duration), start));
    let planned = schedule.planned().unwrap_or(0);
    let ids = Arc::new(Mutex::new(Vec::<Id>::new()));
    let traffic = (args.mix.clone(), args.segments.clone());
    let feeding = tokio::spawn(feed(
        store.clone(),
        engine.handle(),
        org,
        traffic,
        Arc::clone(&schedule),
        Arc::clone(&ids),
    ));

    // Phases and memory samples until the feed is over.
    let mut seen = Seen::default();
    let mut phases = vec![PhaseRun {
        name: Phase::Normal.name(),
        started_at_seconds: 0.0,
    }];
    let mut samples: Vec<(Duration, u64)> = vec![(Duration::ZERO, rss_kib())];
    let mut next_phase = start + args.phase;
    let mut index = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    while start.elapsed() < args.duration {
        tokio::select! {
            _ = tick.tick() => samples.push((start.elapsed(), rss_kib())),
            () = tokio::time::sleep_until(next_phase) => {
                index += 1;
                let phase = CYCLE[index % CYCLE.len()];
                switch(&mut smscs, phase, &base, args.rate, &mut seen).await?;
                phases.push(PhaseRun { name: phase.name(), started_at_seconds: start.elapsed().as_secs_f64() });
                next_phase += args.phase;
            }
        }
    }
    let enqueue_errors = feeding.await.context("the feeding task")?;
    samples.push((start.elapsed(), rss_kib()));
    if CYCLE[index % CYCLE.len()] != Phase::Normal {
        switch(&mut smscs, Phase::Normal, &base, args.rate, &mut seen).await?;
        phases.push(PhaseRun {
            name: "drain",
            started_at_seconds: start.elapsed().as_secs_f64(),
        });
    }

    // Drain: wait for final statuses while anything still moves.
    let ids = std::mem::take(&mut *ids.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
    let drain_start = Instant::now();
    let mut outstanding: Vec<(u64, Id)> = ids
        .iter()
        .enumerate()
        .filter(|&(_, &id)| id != 0)
        .map(|(t, &id)| (t as u64, id))
        .collect();
    let mut last_progress = Instant::now();
    loop {
        let before = outstanding.len();
        outstanding.retain(|&(_, id)| {
            store
                .message(org, id)
                .map_or(true, |m| !m.status.is_final())
        });
        if outstanding.len() < before {
            last_progress = Instant::now();
        }
        let all_ready_done = outstanding.iter().all(|&(_, id)| {
            store
                .message(org, id)
                .is_ok_and(|m| m.status != MessageStatus::Queued || m.next_retry_at.is_some())
        });
        if outstanding.is_empty()
            || drain_start.elapsed() >= args.drain_timeout
            || (all_ready_done && last_progress.elapsed() >= SETTLE)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let drain_seconds = drain_start.elapsed().as_secs_f64();

    let counters = engine.handle().counters();
    for smsc in &mut smscs {
        if let Some(sim) = smsc.running.take() {
            seen.collect(sim).await;
        }
    }
    let after_drain = rss_kib();
    let _ = engine.shutdown().await;
    store.flush().await.context("flushing the store")?;

    // The checks.
    let mut problems = Vec::new();
    let mut messages = Messages {
        planned,
        accepted: ids.iter().filter(|&&id| id != 0).count() as u64,
        enqueue_errors,
        ..Messages::default()
    };
    let mut lost = Vec::new();
    let mut stuck = Vec::new();
    for &id in ids.iter().filter(|&&id| id != 0) {
        let Ok(m) = store.message(org, id) else {
            messages.lost += 1;
            lost.push(id);
            continue;
        };
        *messages.by_status.entry(m.status.as_str()).or_default() += 1;
        match m.status {
            MessageStatus::Queued if m.next_retry_at.is_some() || m.status_message.is_some() => {
                messages.queued_with_reason += 1;
            }
            MessageStatus::Queued => {
                messages.queued_without_reason += 1;
                stuck.push(id);
            }
            MessageStatus::Submitted | MessageStatus::Sent => messages.awaiting_receipt += 1,
            _ => {}
        }
    }
    if !lost.is_empty() {
        lost.truncate(LIST);
        problems.push(format!(
            "{} accepted messages are not in the store: {lost:?}",
            messages.lost
        ));
    }
    if !stuck.is_empty() {
        stuck.truncate(LIST);
        problems.push(format!(
            "{} messages are QUEUED with no retry or reason after the drain: {stuck:?}",
            messages.queued_without_reason
        ));
    }
    if messages.awaiting_receipt > seen.sims.receipts_dropped_at_restarts {
        problems.push(format!(
            "{} messages still await a receipt, but restarts dropped only {}",
            messages.awaiting_receipt, seen.sims.receipts_dropped_at_restarts
        ));
    }
    let mut unexplained = Vec::new();
    for (token, &count) in seen.counts.iter().enumerate() {
        if count == 0 {
            continue;
        }
        seen.sims.messages_seen += 1;
        if count == 1 {
            continue;
        }
        seen.sims.duplicates += u64::from(count - 1);
        let id = ids.get(token).copied().unwrap_or(0);
        let in_doubt = store.events(org, id).is_ok_and(|events| {
            events
                .iter()
                .any(|e| e.event_type == "IN_DOUBT" || e.event_type == "RESUBMITTED_AFTER_RESTART")
        });
        if in_doubt {
            seen.sims.duplicates_in_doubt += u64::from(count - 1);
        } else {
            unexplained.push(id);
        }
    }
    if !unexplained.is_empty() {
        let n = unexplained.len();
        unexplained.truncate(LIST);
        // The first one's trail says how it came to be sent twice.
        let trail: Vec<String> = unexplained
            .first()
            .and_then(|&id| store.events(org, id).ok())
            .unwrap_or_default()
            .into_iter()
            .map(|e| format!("{} ({})", e.event_type, e.detail.unwrap_or_default()))
            .collect();
        problems.push(format!(
            "{n} messages were accepted by a simulator more than once without an IN_DOUBT event: \
             {unexplained:?}; the first one's events: {}",
            trail.join(" → ")
        ));
    }
    let memory = memory(&samples, args.duration, after_drain, args.max_rss_growth_mb);
    if memory.growth_kib > 0 && memory.growth_kib.unsigned_abs() > memory.limit_kib {
        problems.push(format!(
            "resident memory grew by {} KiB in the second half of the feed (limit {} KiB)",
            memory.growth_kib, memory.limit_kib
        ));
    }

    let report = SoakReport {
        mode: "soak",
        ok: problems.is_empty(),
        problems,
        settings: SoakSettings {
            duration_seconds: args.duration.as_secs_f64(),
            rate: args.rate,
            phase_seconds: args.phase.as_secs_f64(),
            binds: args.binds,
            window: args.window,
            receipt_delay_ms: args.receipt_delay_ms,
            mix: args.mix.to_string(),
            segments: args.segments.to_string(),
            probe_after_seconds: args.probe_after.as_secs_f64(),
            sync: args.store.name(),
        },
        phases,
        messages,
        simulators: seen.sims,
        engine: EngineCounters {
            sent: counters.sent,
            submitted: counters.submitted,
            throttled: counters.throttled,
            provider_errors: counters.provider_errors,
            failovers: counters.failovers,
            retries: counters.retries,
            in_doubt: counters.in_doubt,
            receipts: counters.receipts,
            receipts_dropped: counters.receipts_dropped,
            store_errors: counters.store_errors,
        },
        memory,
        drain_seconds,
    };
    print_report(&report, args.json, SoakReport::human);
    if report.ok {
        Ok(())
    } else {
        anyhow::bail!("the soak found {} problem(s)", report.problems.len())
    }
}

/// The memory summary: growth from the sample nearest half-way to the last one of the feed.
fn memory(
    samples: &[(Duration, u64)],
    duration: Duration,
    after_drain: u64,
    limit_mb: u64,
) -> Memory {
    let half = duration / 2;
    let at_half = samples
        .iter()
        .min_by_key(|(t, _)| t.abs_diff(half))
        .map_or(0, |&(_, kib)| kib);
    let end = samples.last().map_or(0, |&(_, kib)| kib);
    Memory {
        samples: samples.len(),
        start_kib: samples.first().map_or(0, |&(_, kib)| kib),
        half_kib: at_half,
        end_kib: end,
        max_kib: samples.iter().map(|&(_, kib)| kib).max().unwrap_or(0),
        after_drain_kib: after_drain,
        growth_kib: i64::try_from(end).unwrap_or(i64::MAX) - i64::try_from(at_half).unwrap_or(0),
        limit_kib: (limit_mb * 1024).max(at_half / 4),
    }
}

/// Feeds the store on `schedule` from [`FEEDERS`] callers; records each message's id at its
/// token's index. Returns the enqueue errors.
async fn feed(
    store: Store,
    engine: sairex_engine::dispatch::DispatcherHandle,
    org: Id,
    (mix, segments): (Mix, Segments),
    schedule: Arc<Schedule>,
    ids: Arc<Mutex<Vec<Id>>>,
) -> u64 {
    let numbers = Numbers::default();
    let mut tasks = Vec::with_capacity(FEEDERS);
    for _ in 0..FEEDERS {
        let (store, engine, schedule, ids) = (
            store.clone(),
            engine.clone(),
            Arc::clone(&schedule),
            Arc::clone(&ids),
        );
        let (mix, segments, numbers) = (mix.clone(), segments.clone(), numbers.clone());
        tasks.push(tokio::spawn(async move {
            let mut errors = 0u64;
            while let Some(slot) = schedule.claim(Instant::now()) {
                tokio::time::sleep_until(slot.intended).await;
                let parts = segments.pick(slot.index);
                let priority = match mix.pick(slot.index) {
                    mix::Priority::Otp => Priority::OTP,
                    mix::Priority::Transactional => Priority::TRANSACTIONAL,
                    mix::Priority::Bulk => Priority::BULK,
                };
                let message = Message {
                    organization_id: org,
                    from_number: "Sairex".into(),
                    to_number: numbers.number(slot.index),
                    body: soak_body(slot.index, parts),
                    segments: u32::from(parts),
                    encoding: "GSM-7".into(),
                    priority,
                    ..Message::default()
                };
                match store.enqueue(message).await {
                    Ok(done) => {
                        let id = done.message().id;
                        if let Ok(mut ids) = ids.lock()
                            && let Ok(i) = usize::try_from(slot.index)
                        {
                            if ids.len() <= i {
                                ids.resize(i + 1, 0);
                            }
                            ids[i] = id;
                        }
                        engine.nudge();
                    }
                    Err(_) => errors += 1,
                }
            }
            errors
        }));
    }
    let mut errors = 0;
    for task in tasks {
        errors += task.await.unwrap_or(0);
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_read_from_first_parts_only() {
        assert_eq!(token_of(0, b"soak 42 Sairex load"), Some(42));
        // UDH 05 00 03 ref total seq before the text.
        let mut part = vec![5, 0, 3, 7, 2, 1];
        part.extend_from_slice(b"soak 9 filler");
        assert_eq!(token_of(0x40, &part), Some(9));
        let mut second = vec![5, 0, 3, 7, 2, 2];
        second.extend_from_slice(b"more filler");
        assert_eq!(token_of(0x40, &second), None);
        assert_eq!(token_of(0x40, &[]), None);
        assert_eq!(token_of(0x40, &[200, 1]), None);
    }

    #[test]
    fn bodies_carry_the_token_and_fill_their_segments() {
        for parts in 1..=3 {
            let body = soak_body(123_456, parts);
            assert!(body.starts_with("soak 123456 "));
            assert_eq!(body.chars().count(), mix::body(parts).chars().count());
        }
    }

    #[test]
    fn memory_growth_is_measured_from_half_way() {
        let s = |t: u64, kib: u64| (Duration::from_secs(t), kib);
        let samples = [s(0, 100), s(5, 150_000), s(10, 160_000)];
        let m = memory(&samples, Duration::from_secs(10), 170_000, 64);
        assert_eq!(m.half_kib, 150_000);
        assert_eq!(m.end_kib, 160_000);
        assert_eq!(m.growth_kib, 10_000);
        assert_eq!(m.limit_kib, 65_536);
        assert_eq!(m.max_kib, 160_000);
    }

    #[test]
    fn phases_change_the_right_simulator() {
        let base = SimConfig::default();
        assert!(Phase::PrimaryDown.sim(true, &base, 100.0).is_none());
        assert!(Phase::PrimaryDown.sim(false, &base, 100.0).is_some());
        let failing = Phase::PrimaryFailing.sim(true, &base, 100.0).unwrap();
        assert!((failing.error_rate - 1.0).abs() < f64::EPSILON);
        let backup = Phase::PrimaryFailing.sim(false, &base, 100.0).unwrap();
        assert!(backup.error_rate.abs() < f64::EPSILON);
        let throttled = Phase::Throttled.sim(false, &base, 100.0).unwrap();
        assert_eq!(throttled.throttle_tps, Some(34));
    }
}
