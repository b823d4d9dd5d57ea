//! The engine as one unit: the providers and the dispatcher between them and the store, the
//! supervisor that keeps providers running, and an orderly shutdown.
//!
//! - **Providers** come from the store's provider records ([`EngineConfig::providers_from_store`],
//!   SMPP ones turned into settings by [`crate::provider::settings`], HTTP ones (Twilio, Vonage,
//!   Veevo Tech) by [`crate::provider::http::settings`] with [`HttpOptions`]) and from [`EngineConfig::smpp`]
//!   (set up in code: tests, benchmarks). [`EngineControl::reload_providers`] compares the
//!   store with what runs: new records start, changed connection settings restart (drain the
//!   old binds, bind anew), deleted or deactivated records stop. Priority and health changes
//!   need no restart: the dispatcher re-reads them.
//! - **Supervision**: every [`SUPERVISE_EVERY`] the supervisor checks each provider actor. A
//!   dead one (a panic) has its unanswered messages answered in doubt (the dispatcher applies
//!   the provider's policy) and is started again, at most [`RESTART_BUDGET`] times per
//!   [`RESTART_WINDOW`]; past the budget it waits for the window to pass, so a provider that
//!   crashes at once on start cannot spin. Sessions are supervised by their provider.
//! - **Shutdown order**: the dispatcher stops leasing and waits (bounded) for the answers of
//!   what it handed to providers; then each provider drains its binds (unbind, bounded). A
//!   message still unanswered stays in flight in the store and is re-queued by recovery on the
//!   next start: the at-least-once contract.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

use sairex_store::model::{Id, ProviderConfig, ProviderKind};
use sairex_store::{Store, StoreError};

use crate::dispatch::callbacks::CallbackSink;
use crate::dispatch::{Dispatcher, DispatcherConfig, DispatcherHandle, DrainReport, ProviderEntry};
use crate::provider::http::settings::http_config;
use crate::provider::http::{HttpProvider, HttpProviderConfig, HttpProviderHandle};
use crate::provider::settings::smpp_config;
use crate::provider::smpp::{SmppProvider, SmppProviderConfig, SmppProviderHandle};
use crate::provider::{ProviderEvent, SharedLink};

/// Capacity of the providers → dispatcher event channel: enough for a full window of every bind
/// of a few providers; a full channel slows providers down (back-pressure), never drops.
const PROVIDER_EVENTS: usize = 8192;
/// How often the supervisor looks at the provider actors.
pub const SUPERVISE_EVERY: Duration = Duration::from_secs(1);
/// Most restarts of one provider within [`RESTART_WINDOW`].
pub const RESTART_BUDGET: usize = 5;
/// The window of [`RESTART_BUDGET`].
pub const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// What to start.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The dispatcher's settings.
    pub dispatcher: DispatcherConfig,
    /// SMPP providers set up in code: the store's configuration record (organization,
    /// priority, health) and the connection settings. [`EngineControl::reload_providers`]
    /// leaves these alone.
    pub smpp: Vec<(ProviderConfig, SmppProviderConfig)>,
    /// Whether the store's active provider records are started too (and followed by
    /// [`EngineControl::reload_providers`]).
    pub providers_from_store: bool,
    /// How long each provider may take to unbind at shutdown or on a restart.
    pub provider_drain: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            dispatcher: DispatcherConfig::default(),
            smpp: Vec::new(),
            providers_from_store: true,
            provider_drain: Duration::from_secs(10),
        }
    }
}

/// Settings of the HTTP providers started from the store (kept apart from [`EngineConfig`] so
/// its literal constructions stay valid). Build it with `..HttpOptions::default()`.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// The gateway's public base URL (`server.public_base_url`, no trailing slash): receipt
    /// callback URLs given to HTTP providers are made from it.
    pub public_base_url: Option<String>,
}

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A provider set up in code could not be started (its configuration is invalid).
    #[error("provider {provider_id} did not start: {reason}")]
    Provider {
        /// The provider.
        provider_id: u64,
        /// Why.
        reason: String,
    },
    /// The store's provider records could not be read.
    #[error("reading providers: {0}")]
    Store(#[from] StoreError),
}

/// What shutdown found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Messages whose answer did not come in time (left in flight for recovery).
    pub unanswered: usize,
    /// Providers that did not finish unbinding in time.
    pub providers_timed_out: usize,
}

/// What a provider reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// Providers started (new records).
    pub started: Vec<Id>,
    /// Providers restarted (connection settings changed).
    pub restarted: Vec<Id>,
    /// Providers stopped (deleted or deactivated).
    pub stopped: Vec<Id>,
    /// Records that could not be started, with why (also logged).
    pub failed: Vec<(Id, String)>,
}

/// A running provider of either kind.
#[derive(Debug)]
enum Handle {
    Smpp(SmppProviderHandle),
    Http(HttpProviderHandle),
}

/// What a provider is started from.
#[derive(Debug, Clone)]
enum Spec {
    Smpp(SmppProviderConfig),
    Http(HttpProviderConfig),
}

impl Handle {
    fn link(&self) -> SharedLink {
        match self {
            Self::Smpp(h) => h.link(),
            Self::Http(h) => h.link(),
        }
    }

    fn is_finished(&self) -> bool {
        match self {
            Self::Smpp(h) => h.is_finished(),
            Self::Http(h) => h.is_finished(),
        }
    }

    /// Drains within `grace`; `false` when it had to be stopped.
    async fn drain(self, grace: Duration) -> bool {
        match self {
            Self::Smpp(h) => h.drain(grace).await.is_ok(),
            Self::Http(h) => h.drain(grace).await.is_ok(),
        }
    }

    fn smpp_actor(&self) -> Option<&ractor::ActorRef<crate::provider::smpp::SmppProviderMsg>> {
        match self {
            Self::Smpp(h) => Some(h.actor()),
            Self::Http(_) => None,
        }
    }
}

/// One running provider.
#[derive(Debug)]
struct Running {
    handle: Handle,
    /// The record, for restarts by the supervisor.
    record: ProviderConfig,
    config: Spec,
    /// What the connection settings were when it started; a different fingerprint restarts it.
    fingerprint: String,
    /// Started from the store (reloads manage it) rather than set up in code.
    from_store: bool,
    /// When the supervisor restarted it lately.
    restarts: VecDeque<Instant>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    dispatcher: DispatcherHandle,
    events: mpsc::Sender<ProviderEvent>,
    providers: Mutex<HashMap<Id, Running>>,
    provider_drain: Duration,
    from_store: bool,
    running: AtomicBool,
    http: HttpOptions,
}

/// A cheap, cloneable handle to control a running engine (from the API: reloads, readiness).
#[derive(Debug, Clone)]
pub struct EngineControl {
    inner: Arc<Inner>,
}

/// A running engine.
#[derive(Debug)]
pub struct Engine {
    control: EngineControl,
    dispatcher: JoinHandle<DrainReport>,
    supervisor: JoinHandle<()>,
    stop_supervisor: CancellationToken,
}

/// What a provider's connection is: the settings and secrets, not its priority or health.
fn fingerprint(record: &ProviderConfig) -> String {
    format!(
        "{:?}|{}|{}|{:?}",
        record.provider_kind, record.settings, record.credentials, record.tps
    )
}

async fn start_provider(
    events: &mpsc::Sender<ProviderEvent>,
    config: Spec,
) -> Result<Handle, String> {
    match config {
        Spec::Smpp(config) => SmppProvider::start(config, events.clone())
            .await
            .map(Handle::Smpp)
            .map_err(|e| e.to_string()),
        Spec::Http(config) => HttpProvider::start(config, events.clone())
            .map(Handle::Http)
            .map_err(|e| e.to_string()),
    }
}

impl Engine {
    /// Starts every provider, then the dispatcher and the supervisor.
    ///
    /// # Errors
    /// [`EngineError::Provider`] when a provider of [`EngineConfig::smpp`] is invalid
    /// (providers started before it are drained); [`EngineError::Store`] when the store's
    /// provider records cannot be read. A store record that cannot be started is logged and
    /// left out (the others run); [`EngineControl::reload_providers`] reports it.
    pub async fn start(store: Store, config: EngineConfig) -> Result<Self, EngineError> {
        Self::start_with(store, config, HttpOptions::default()).await
    }

    /// [`Engine::start`] with the HTTP providers' options.
    ///
    /// # Errors
    /// As [`Engine::start`].
    pub async fn start_with(
        store: Store,
        config: EngineConfig,
        http: HttpOptions,
    ) -> Result<Self, EngineError> {
        let (events_tx, events_rx) = mpsc::channel(PROVIDER_EVENTS);
        let mut running: HashMap<Id, Running> = HashMap::new();
        let mut entries = Vec::new();
        for (record, smpp) in config.smpp {
            let provider_id = smpp.provider_id;
            match start_provider(&events_tx, Spec::Smpp(smpp.clone())).await {
                Ok(handle) => {
                    entries.push(ProviderEntry {
                        link: handle.link(),
                        config: record.clone(),
                    });
                    running.insert(
                        provider_id,
                        Running {
                            handle,
                            fingerprint: fingerprint(&record),
                            record,
                            config: Spec::Smpp(smpp),
                            from_store: false,
                            restarts: VecDeque::new(),
                        },
                    );
                }
                Err(reason) => {
                    for (_, started) in running {
                        let _ = started.handle.drain(config.provider_drain).await;
                    }
                    return Err(EngineError::Provider {
                        provider_id,
                        reason,
                    });
                }
            }
        }
        let dispatcher = Dispatcher::new(store.clone(), entries, events_rx, config.dispatcher);
        let dispatcher_handle = dispatcher.handle();
        let dispatcher = tokio::spawn(dispatcher.run());
        let control = EngineControl {
            inner: Arc::new(Inner {
                store,
                dispatcher: dispatcher_handle,
                events: events_tx,
                providers: Mutex::new(running),
                provider_drain: config.provider_drain,
                from_store: config.providers_from_store,
                running: AtomicBool::new(true),
                http,
            }),
        };
        if config.providers_from_store {
            let report = control.reload_providers().await?;
            for (id, why) in &report.failed {
                tracing::error!(provider = id, reason = %why, "provider not started");
            }
        }
        let stop_supervisor = CancellationToken::new();
        let supervisor = tokio::spawn(supervise(control.clone(), stop_supervisor.clone()));
        Ok(Self {
            control,
            dispatcher,
            supervisor,
            stop_supervisor,
        })
    }

    /// The dispatcher's handle: `nudge()` after an enqueue, `subscribe()` for events.
    pub fn handle(&self) -> DispatcherHandle {
        self.control.inner.dispatcher.clone()
    }

    /// The control handle: reloads, readiness.
    pub fn control(&self) -> EngineControl {
        self.control.clone()
    }

    /// Stops in order (see the module docs) and reports what was left.
    pub async fn shutdown(self) -> ShutdownReport {
        let inner = &self.control.inner;
        inner.running.store(false, Ordering::Release);
        self.stop_supervisor.cancel();
        let _ = self.supervisor.await;
        inner.dispatcher.shutdown();
        let unanswered = match self.dispatcher.await {
            Ok(report) => report.unanswered,
            // A dispatcher that panicked answered nothing more; recovery re-queues its work.
            Err(_) => usize::MAX,
        };
        let providers: Vec<Running> = inner
            .providers
            .lock()
            .await
            .drain()
            .map(|(_, r)| r)
            .collect();
        let mut providers_timed_out = 0;
        for provider in providers {
            if !provider.handle.drain(inner.provider_drain).await {
                providers_timed_out += 1;
            }
        }
        ShutdownReport {
            unanswered,
            providers_timed_out,
        }
    }
}

impl EngineControl {
    /// The dispatcher's handle.
    pub fn dispatcher(&self) -> DispatcherHandle {
        self.inner.dispatcher.clone()
    }

    /// Whether the engine runs (false once shutdown began).
    pub fn is_running(&self) -> bool {
        self.inner.running.load(Ordering::Acquire)
    }

    /// Ids of the providers running now.
    pub async fn running_providers(&self) -> Vec<Id> {
        let mut ids: Vec<Id> = self.inner.providers.lock().await.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The actor of a running SMPP provider (diagnostics: stats, sessions); `None` for an HTTP
    /// provider.
    pub async fn provider_actor(
        &self,
        id: Id,
    ) -> Option<ractor::ActorRef<crate::provider::smpp::SmppProviderMsg>> {
        self.inner
            .providers
            .lock()
            .await
            .get(&id)
            .and_then(|r| r.handle.smpp_actor().cloned())
    }

    /// Where the API hands the receipts and inbound messages of HTTP providers' callbacks.
    pub fn callbacks(&self) -> CallbackSink {
        CallbackSink::new(self.inner.events.clone())
    }

    /// Brings the running providers in line with the store's records (module docs). Does
    /// nothing unless the engine was started with [`EngineConfig::providers_from_store`].
    ///
    /// # Errors
    /// Store errors reading the records; nothing was changed then.
    pub async fn reload_providers(&self) -> Result<ReloadReport, StoreError> {
        let mut report = ReloadReport::default();
        if !self.inner.from_store || !self.is_running() {
            return Ok(report);
        }
        let records = self.inner.store.all_providers()?;
        let wanted: HashMap<Id, ProviderConfig> = records
            .into_iter()
            .filter(|r| r.is_active)
            .map(|r| (r.id, r))
            .collect();
        // One reload at a time: the lock is held across starts and drains.
        let mut running = self.inner.providers.lock().await;
        let gone: Vec<Id> = running
            .iter()
            .filter(|(id, r)| r.from_store && !wanted.contains_key(id))
            .map(|(&id, _)| id)
            .collect();
        for id in gone {
            if let Some(old) = running.remove(&id) {
                self.stop(id, old).await;
                report.stopped.push(id);
            }
        }
        let mut ids: Vec<Id> = wanted.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(record) = wanted.get(&id) else {
                continue;
            };
            let print = fingerprint(record);
            let restart = match running.get(&id) {
                Some(r) if !r.from_store => continue,
                Some(r) if r.fingerprint == print => {
                    // Same connection: priority, health or organization may have changed.
                    if r.record != *record {
                        self.inner.dispatcher.add_provider(ProviderEntry {
                            link: r.handle.link(),
                            config: record.clone(),
                        });
                        if let Some(r) = running.get_mut(&id) {
                            r.record = record.clone();
                        }
                    }
                    continue;
                }
                Some(_) => true,
                None => false,
            };
            let config = match record.provider_kind {
                ProviderKind::Smpp => smpp_config(record).map(Spec::Smpp),
                ProviderKind::Twilio | ProviderKind::Vonage | ProviderKind::Veevo => {
                    http_config(record, self.inner.http.public_base_url.as_deref()).map(Spec::Http)
                }
            };
            let config = match config {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(provider = id, error = %e, "provider settings unusable");
                    report.failed.push((id, e.to_string()));
                    continue;
                }
            };
            if let Some(old) = running.remove(&id) {
                self.stop(id, old).await;
            }
            match start_provider(&self.inner.events, config.clone()).await {
                Ok(handle) => {
                    tracing::info!(provider = id, name = %record.display_name, restart, "provider started");
                    self.inner.dispatcher.add_provider(ProviderEntry {
                        link: handle.link(),
                        config: record.clone(),
                    });
                    running.insert(
                        id,
                        Running {
                            handle,
                            record: record.clone(),
                            config,
                            fingerprint: print,
                            from_store: true,
                            restarts: VecDeque::new(),
                        },
                    );
                    if restart {
                        report.restarted.push(id);
                    } else {
                        report.started.push(id);
                    }
                }
                Err(e) => {
                    tracing::error!(provider = id, error = %e, "provider did not start");
                    report.failed.push((id, e));
                }
            }
        }
        Ok(report)
    }

    /// Removes a provider from routing, then drains it: what it holds is answered as it
    /// unbinds.
    async fn stop(&self, id: Id, old: Running) {
        self.inner.dispatcher.remove_provider(id);
        if !old.handle.drain(self.inner.provider_drain).await {
            tracing::warn!(provider = id, "provider did not drain in time; stopped");
        }
    }

    /// One supervisor pass: restarts dead provider actors within the budget.
    async fn supervise_once(&self) {
        let mut running = self.inner.providers.lock().await;
        let dead: Vec<Id> = running
            .iter()
            .filter(|(_, r)| r.handle.is_finished())
            .map(|(&id, _)| id)
            .collect();
        let now = Instant::now();
        for id in dead {
            let Some(r) = running.get_mut(&id) else {
                continue;
            };
            while r
                .restarts
                .front()
                .is_some_and(|&at| now.duration_since(at) > RESTART_WINDOW)
            {
                r.restarts.pop_front();
            }
            // Answer what it held (again harmless: nothing is left after the first time).
            self.inner.dispatcher.provider_lost(id);
            if r.restarts.len() >= RESTART_BUDGET {
                continue;
            }
            r.restarts.push_back(now);
            tracing::error!(
                provider = id,
                restarts = r.restarts.len(),
                "provider actor died; restarting"
            );
            match start_provider(&self.inner.events, r.config.clone()).await {
                Ok(handle) => {
                    self.inner.dispatcher.add_provider(ProviderEntry {
                        link: handle.link(),
                        config: r.record.clone(),
                    });
                    r.handle = handle;
                }
                Err(e) => tracing::error!(provider = id, error = %e, "provider restart failed"),
            }
        }
    }
}

async fn supervise(control: EngineControl, stop: CancellationToken) {
    let mut tick = tokio::time::interval(SUPERVISE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => control.supervise_once().await,
        }
    }
}
