//! The engine as one unit: the providers started from their configurations and the dispatcher
//! between them and the store, with an orderly shutdown.
//!
//! Shutdown order: the dispatcher stops leasing and waits (bounded) for the answers of what it
//! handed to providers; then each provider drains its binds (unbind, bounded). A message still
//! unanswered stays in flight in the store and is re-queued by recovery on the next start: the
//! at-least-once contract.

use tokio::task::JoinHandle;
use tokio::time::Duration;

use sairex_store::Store;
use sairex_store::model::ProviderConfig;

use crate::dispatch::{Dispatcher, DispatcherConfig, DispatcherHandle, DrainReport, ProviderEntry};
use crate::provider::smpp::{SmppProvider, SmppProviderConfig, SmppProviderHandle};

/// Capacity of the providers → dispatcher event channel: enough for a full window of every bind
/// of a few providers; a full channel slows providers down (back-pressure), never drops.
const PROVIDER_EVENTS: usize = 8192;

/// What to start.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The dispatcher's settings.
    pub dispatcher: DispatcherConfig,
    /// SMPP providers: the store's configuration record (organization, priority, health) and
    /// the connection settings.
    pub smpp: Vec<(ProviderConfig, SmppProviderConfig)>,
    /// How long each provider may take to unbind at shutdown.
    pub provider_drain: Duration,
}

/// Why the engine did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A provider could not be started (its configuration is invalid).
    #[error("provider {provider_id} did not start: {reason}")]
    Provider {
        /// The provider.
        provider_id: u64,
        /// Why.
        reason: String,
    },
}

/// What shutdown found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Messages whose answer did not come in time (left in flight for recovery).
    pub unanswered: usize,
    /// Providers that did not finish unbinding in time.
    pub providers_timed_out: usize,
}

/// A running engine.
#[derive(Debug)]
pub struct Engine {
    handle: DispatcherHandle,
    dispatcher: JoinHandle<DrainReport>,
    providers: Vec<SmppProviderHandle>,
    provider_drain: Duration,
}

impl Engine {
    /// Starts every provider, then the dispatcher.
    ///
    /// # Errors
    /// [`EngineError::Provider`] when a provider's configuration is invalid; providers started
    /// before it are drained.
    pub async fn start(store: Store, config: EngineConfig) -> Result<Self, EngineError> {
        let (events_tx, events_rx) = tokio::sync::mpsc::channel(PROVIDER_EVENTS);
        let mut providers = Vec::with_capacity(config.smpp.len());
        let mut entries = Vec::with_capacity(config.smpp.len());
        for (record, smpp) in config.smpp {
            let provider_id = smpp.provider_id;
            match SmppProvider::start(smpp, events_tx.clone()).await {
                Ok(handle) => {
                    entries.push(ProviderEntry {
                        link: handle.link(),
                        config: record,
                    });
                    providers.push(handle);
                }
                Err(e) => {
                    for started in providers {
                        let _ = started.drain(config.provider_drain).await;
                    }
                    return Err(EngineError::Provider {
                        provider_id,
                        reason: e.to_string(),
                    });
                }
            }
        }
        drop(events_tx);
        let dispatcher = Dispatcher::new(store, entries, events_rx, config.dispatcher);
        let handle = dispatcher.handle();
        let dispatcher = tokio::spawn(dispatcher.run());
        Ok(Self {
            handle,
            dispatcher,
            providers,
            provider_drain: config.provider_drain,
        })
    }

    /// The dispatcher's handle: `nudge()` after an enqueue, `subscribe()` for events.
    pub fn handle(&self) -> DispatcherHandle {
        self.handle.clone()
    }

    /// Stops in order (see the module docs) and reports what was left.
    pub async fn shutdown(self) -> ShutdownReport {
        self.handle.shutdown();
        let unanswered = match self.dispatcher.await {
            Ok(report) => report.unanswered,
            // A dispatcher that panicked answered nothing more; recovery re-queues its work.
            Err(_) => usize::MAX,
        };
        let mut providers_timed_out = 0;
        for provider in self.providers {
            if provider.drain(self.provider_drain).await.is_err() {
                providers_timed_out += 1;
            }
        }
        ShutdownReport {
            unanswered,
            providers_timed_out,
        }
    }
}
