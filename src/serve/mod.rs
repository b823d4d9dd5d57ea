//! `sairex serve`: the whole gateway in one process. Opens the store, brings the config's
//! providers into it, starts the engine (providers, dispatcher, supervisor), the webhook
//! dispatcher, the retention job, the HTTP API and the metrics listener; on SIGTERM or
//! SIGINT drains in order within `server.shutdown_grace`.
//!
//! Start-up order: store → providers synced → engine → webhooks → HTTP listeners → READY
//! (sd_notify). Shutdown: STOPPING → the HTTP server stops accepting and finishes in-flight
//! requests → the engine drains (answers in flight, unbind) → webhooks → store flush.
//!
//! `--demo` needs no config: data under `./sairex-data`, an SMSC simulator in the process on
//! an ephemeral loopback port reached through a real SMPP provider, an organization "demo"
//! and a new admin API key printed with a `curl` line to paste, and the SMPP server on another
//! loopback port with an account "demo" whose password is printed once.

pub mod providers;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use sairex_config::{Config, ConfigErrors};
use sairex_engine::campaigns::{CampaignRunner, CampaignRunnerHandle, RunnerConfig};
use sairex_engine::dispatch::{DispatcherConfig, OrgLimits, RateLimits};
use sairex_engine::gateway::{Engine, EngineConfig, HttpOptions};
use sairex_engine::webhooks::{WebhookConfig, WebhookDispatcher, WebhookHandle};
use sairex_store::{MasterKey, Store, StoreOptions, SyncPolicy};

/// How often the retention job runs (issue 7: daily); the first run is shortly after start.
const RETENTION_EVERY: Duration = Duration::from_secs(24 * 60 * 60);
const RETENTION_FIRST: Duration = Duration::from_secs(60);
const OUTBOX_TRIM_EVERY: Duration = Duration::from_secs(60 * 60);

/// `sairex serve` arguments. Flags override the config file.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The TOML configuration (see `systemd/sairex.toml`; check it with `sairex check-config`).
    #[arg(long, value_name = "FILE", required_unless_present = "demo")]
    config: Option<PathBuf>,
    /// Address of the HTTP API (overrides `server.listen`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory of the store (overrides `store.path`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Run a self-contained demo: no config needed, an SMSC simulator in the process, an
    /// organization "demo" and its admin key printed once with a curl line.
    #[arg(long)]
    demo: bool,
}

/// A config file that failed its checks: every problem was printed; exit with EX_USAGE.
#[derive(Debug, thiserror::Error)]
#[error("the configuration has {0} problem(s)")]
pub struct BadConfig(pub usize);

fn environment() -> HashMap<String, String> {
    sairex_config::ENV_VARS
        .iter()
        .filter_map(|&name| std::env::var(name).ok().map(|v| (name.to_owned(), v)))
        .collect()
}

fn load_config(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = match &args.config {
        Some(path) => match sairex_config::load(path, &environment()) {
            Ok(config) => config,
            Err(errors) => {
                report(&errors);
                return Err(BadConfig(errors.len()).into());
            }
        },
        // No file: the defaults, and the environment's overrides still apply.
        None => {
            let mut config = Config::default();
            if let Ok(token) = std::env::var(sairex_config::ENV_ADMIN_TOKEN) {
                if token.chars().count() < sairex_config::ADMIN_TOKEN_MIN_CHARS {
                    bail!(
                        "{}: at least {} characters",
                        sairex_config::ENV_ADMIN_TOKEN,
                        sairex_config::ADMIN_TOKEN_MIN_CHARS
                    );
                }
                config.admin.token = Some(sairex_config::Secret::new(token));
            }
            config
        }
    };
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(dir) = &args.data_dir {
        config.store.path.clone_from(dir);
    }
    Ok(config)
}

fn report(errors: &ConfigErrors) {
    for line in errors.lines() {
        eprintln!("{line}");
    }
}

fn sync_policy(mode: sairex_config::SyncMode) -> SyncPolicy {
    match mode {
        sairex_config::SyncMode::Always => SyncPolicy::Always,
        sairex_config::SyncMode::Batch => SyncPolicy::default(),
        sairex_config::SyncMode::None => SyncPolicy::None,
    }
}

/// The demo's master key: kept beside its data, so provider credentials survive a restart.
fn demo_master_key(dir: &Path) -> anyhow::Result<MasterKey> {
    let path = dir.join("master.key");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return MasterKey::parse(text.trim())
            .with_context(|| format!("reading {}", path.display()));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = MasterKey::generate();
    write_private(&path, key.to_hex().as_bytes())?;
    Ok(key)
}

/// The demo's superadmin token: kept beside its data (0600), so the printed token stays valid
/// across restarts.
fn demo_admin_token(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("admin.token");
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(text.trim().to_owned());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let token = random_token();
    write_private(&path, token.as_bytes())?;
    Ok(token)
}

fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))
}

fn open_store(config: &Config, demo: bool) -> anyhow::Result<Store> {
    let mut options = StoreOptions::new(&config.store.path);
    options.sync = sync_policy(config.store.sync);
    options.cache_mb = config.store.cache_mb;
    options.write_buffer_mb = config.store.write_buffer_mb;
    let key = match &config.store.master_key {
        Some(key) => Some(MasterKey::from_bytes(*key.bytes())),
        None if demo => Some(demo_master_key(&config.store.path)?),
        None => None,
    };
    if let Some(key) = key {
        options = options.with_master_key(key);
    }
    let store = Store::open(options)
        .with_context(|| format!("opening the store at {}", config.store.path.display()))?;
    // Counts only at info: after a crash under load the lists hold thousands of ids.
    let recovery = store.recovery();
    tracing::info!(
        path = %config.store.path.display(),
        requeued = recovery.requeued.len(),
        failed = recovery.failed.len(),
        "store open"
    );
    tracing::debug!(?recovery, "recovered messages");
    Ok(store)
}

fn dispatcher_config(config: &Config, inbound_routes: HashMap<String, u64>) -> DispatcherConfig {
    DispatcherConfig {
        poll_interval: config.engine.poll_interval,
        shutdown_grace: config.engine.shutdown_grace,
        request_receipts: config.engine.request_receipts,
        receipt_grace: config.engine.receipt_grace,
        inbound_routes,
        // Webhooks and every SSE client read this channel; a burst (a bulk send of thousands)
        // must not make them lag and miss events. ~64 bytes an event: 4 MiB.
        event_capacity: 65_536,
        limits: RateLimits {
            global_tps: config.limits.global_tps.map(std::num::NonZeroU32::get),
            default_org: OrgLimits {
                per_minute: config.limits.org_per_minute.map(std::num::NonZeroU32::get),
                per_day: config.limits.org_per_day.map(std::num::NonZeroU32::get),
            },
            ..RateLimits::default()
        },
        ..DispatcherConfig::default()
    }
}

fn webhook_config(config: &Config) -> WebhookConfig {
    WebhookConfig {
        allow_private_targets: config.webhooks.allow_private_targets,
        request_timeout: config.webhooks.timeout,
        max_attempts: config.webhooks.max_attempts,
        disable_after_failures: config.webhooks.disable_after_failures,
        ..WebhookConfig::default()
    }
}

/// Everything running, for the shutdown.
struct Running {
    campaigns: CampaignRunnerHandle,
    engine: Engine,
    webhooks: WebhookHandle,
    store: Store,
    stop_jobs: CancellationToken,
}

/// `sairex serve`.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    sairex_engine::http_client::install_ring_provider();
    let mut config = load_config(&args)?;
    if args.demo {
        if config.admin.token.is_none() {
            config.admin.token = Some(sairex_config::Secret::new(demo_admin_token(
                &config.store.path,
            )?));
        }
        // The demo's webhooks go to a receiver on the same machine.
        config.webhooks.allow_private_targets = true;
    }
    let Some(admin_token) = config.admin.token.clone() else {
        bail!("no admin token: set [admin] token or SAIREX_ADMIN_TOKEN");
    };
    let demo_sim = if args.demo {
        Some(demo::start_simulator(&mut config).await?)
    } else {
        None
    };
    let store = open_store(&config, args.demo)?;

    let by_name = providers::organizations_by_name(&store)?;
    let synced = providers::sync(&store, &config.providers, &by_name).await?;
    tracing::info!(?synced, "config providers");
    let mut routes = HashMap::new();
    for route in &config.inbound_routes {
        let (ids, unknown) =
            providers::resolve_orgs(std::slice::from_ref(&route.organization), &by_name);
        match ids.first() {
            Some(&org) => {
                routes.insert(route.number.clone(), org);
            }
            None => {
                tracing::warn!(number = %route.number, organization = ?unknown, "inbound route to an unknown organization; ignored")
            }
        }
    }

    let engine = Engine::start_with(
        store.clone(),
        EngineConfig {
            dispatcher: dispatcher_config(&config, routes),
            provider_drain: config.engine.shutdown_grace,
            ..EngineConfig::default()
        },
        HttpOptions {
            public_base_url: config.server.public_base_url.clone(),
        },
    )
    .await
    .context("starting the engine")?;
    let control = engine.control();
    let webhooks = WebhookDispatcher::start(store.clone(), webhook_config(&config))
        .context("starting the webhook dispatcher")?;
    // Campaigns started through the API are picked up from the store by the runner.
    let campaigns = CampaignRunner::start(
        store.clone(),
        std::sync::Arc::new(engine.handle()),
        RunnerConfig::default(),
    );
    let stop_jobs = CancellationToken::new();
    tokio::spawn(retention_job(
        store.clone(),
        config.store.retention_days,
        stop_jobs.clone(),
    ));
    tokio::spawn(outbox_trim_job(
        store.clone(),
        config.store.outbox_retention,
        stop_jobs.clone(),
    ));

    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the Prometheus recorder")?;
    let (api, api_handle) = api::router(
        store.clone(),
        control.clone(),
        webhooks.clone(),
        &config,
        admin_token.expose().to_owned(),
        metrics.clone(),
    );
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("listening on {}", config.server.listen))?;
    let api_addr = listener.local_addr().context("local address")?;
    let shutdown = CancellationToken::new();
    let mut servers = Vec::new();
    servers.push(tokio::spawn(api::serve(listener, api, shutdown.clone())));
    if let Some(addr) = config.server.metrics_listen {
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr} (metrics)"))?;
        servers.push(tokio::spawn(api::serve(
            listener,
            api::metrics_only(metrics),
            shutdown.clone(),
        )));
    }
    let smpp = smpp::start(&config.smpp_server, &api_handle, args.demo).await?;
    if let Some(started) = &smpp {
        tracing::info!(plain = ?started.plain, tls = ?started.tls, "SMPP server started");
    }
    tracing::info!(%api_addr, "serving");
    if args.demo {
        demo::announce(
            &store,
            api_addr,
            admin_token.expose(),
            smpp.as_ref().and_then(|s| s.plain),
        )
        .await?;
    }
    if let Err(e) = sairex_config::notify_ready() {
        tracing::warn!(error = %e, "sd_notify READY failed");
    }

    wait_for_signal().await;
    tracing::info!("stopping");
    if let Err(e) = sairex_config::notify_stopping() {
        tracing::warn!(error = %e, "sd_notify STOPPING failed");
    }
    if let Some(started) = smpp {
        // Before the engine: no submit arrives once it drains; sessions unbind.
        started
            .server
            .shutdown(config.server.shutdown_grace / 4)
            .await;
    }
    let running = Running {
        campaigns,
        engine,
        webhooks,
        store,
        stop_jobs,
    };
    let grace = config.server.shutdown_grace;
    match tokio::time::timeout(grace, stop(running, shutdown, servers)).await {
        Ok(result) => result?,
        Err(_) => tracing::error!(
            ?grace,
            "shutdown took longer than server.shutdown_grace; exiting (recovery re-queues what was in flight)"
        ),
    }
    if let Some(sim) = demo_sim {
        sim.shutdown().await;
    }
    Ok(())
}

async fn stop(
    running: Running,
    http: CancellationToken,
    servers: Vec<tokio::task::JoinHandle<()>>,
) -> anyhow::Result<()> {
    // Stop accepting; requests in flight finish (each 202 is durable before it is sent).
    http.cancel();
    for server in servers {
        let _ = server.await;
    }
    running.stop_jobs.cancel();
    // Before the engine: the runner's last chunk and cursor are stored, nothing half-done.
    running.campaigns.shutdown().await;
    let report = running.engine.shutdown().await;
    tracing::info!(?report, "engine stopped");
    running.webhooks.shutdown().await;
    running.store.flush().await.context("flushing the store")?;
    tracing::info!("store flushed; bye");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "no SIGTERM handler; Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `job` a minute after the start, then every `every`, until `stop`.
async fn every<F, Fut>(every: Duration, stop: CancellationToken, mut job: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut wait = RETENTION_FIRST;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = every;
        job().await;
    }
}

/// Purges messages past their organization's retention, daily.
async fn retention_job(store: Store, default_days: u32, stop: CancellationToken) {
    every(RETENTION_EVERY, stop, || async {
        match store
            .apply_retention(sairex_store::now_ms(), default_days)
            .await
        {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "retention: old messages purged"),
            Err(e) => tracing::error!(error = %e, "retention job failed"),
        }
    })
    .await;
}

/// Trims the event outbox hourly: entries older than `retention` that every active webhook is
/// past (docs/webhooks.md, "Durability: the outbox").
async fn outbox_trim_job(store: Store, retention: Duration, stop: CancellationToken) {
    let max_age = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
    every(OUTBOX_TRIM_EVERY, stop, || async {
        match store.trim_outbox(sairex_store::now_ms(), max_age).await {
            Ok(0) => {}
            Ok(trimmed) => tracing::info!(trimmed, "outbox: old events trimmed"),
            Err(e) => tracing::error!(error = %e, "outbox trim failed"),
        }
    })
    .await;
}

fn random_token() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..40)
        .map(|_| {
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])
        })
        .collect()
}

mod api;
mod demo;
mod smpp;
