//! An SMSC simulator: a real SMPP 3.4 server (TCP or TLS) for tests, load tests and manual runs
//! against the gateway.
//!
//! [`SimServer::start`] binds a listener and returns a [`SimHandle`]. ESMEs bind as transmitter,
//! receiver or transceiver with the configured credentials; submit_sm, data_sm and submit_multi
//! are answered with unique message ids after a configurable latency, with injected errors and a
//! TPS throttle if asked; delivery receipts (deliver_sm, esm_class 0x04) follow on receiver and
//! transceiver binds, and [`SimHandle::send_mo`] sends mobile-originated messages. Everything is
//! counted ([`SimStats`]), and every accepted submit is kept for inspection
//! ([`SimHandle::received`]).
//!
//! Robustness: a malformed body gets `generic_nack` with its status and sequence number and the
//! connection goes on; corrupt framing closes that connection only; every per-connection buffer
//! is bounded (frames by `max_command_length`, queues by `connection_queue`).
//!
//! # Layout
//! - `mod.rs`: [`SimServer`], [`SimHandle`], [`ReceivedMessage`], the accept loop and the state
//!   the connections share.
//! - [`config`]: [`SimConfig`] and its parts ([`ReceiptMix`], [`ReceiptPolicy`], [`IdFormat`],
//!   [`TlsConfig`]), each parseable from command-line text.
//! - `session`: one connection: reader loop (bind state, dispatch), writer task (bounded queue,
//!   feed and flush when idle), graceful unbind.
//! - `delivery`: the registry of bound sessions and the task that sends receipts and MOs, waits
//!   for their deliver_sm_resp and retries.
//! - `receipt`: the Appendix B receipt text (`format_receipt_text`) and the deliver_sm builders.
//! - `throttle`: the token bucket.
//! - `tls`: rustls (ring) acceptor from PEM.
//! - [`stats`]: the counters and their snapshot, [`SimStats`].
//! - [`error`]: the error type, [`SimError`].
//!
//! # Example
//! ```no_run
//! # async fn demo() -> Result<(), sairex_loadtest::sim::SimError> {
//! use sairex_loadtest::sim::{SimConfig, SimServer};
//!
//! let sim = SimServer::start(SimConfig::default()).await?;
//! println!("SMSC simulator on {}", sim.addr());
//! // ... point an ESME at sim.addr() ...
//! let stats = sim.shutdown().await;
//! println!("{}", serde_json::to_string(&stats).unwrap_or_default());
//! # Ok(()) }
//! ```

pub mod config;
mod delivery;
pub mod error;
mod receipt;
mod session;
pub mod stats;
mod throttle;
mod tls;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sairex_pdu::{COctetString, CommandStatus, Tlvs};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

pub use config::{
    FinalState, IdFormat, ParseValueError, ReceiptMix, ReceiptPolicy, SimConfig, TlsConfig,
    parse_command_status,
};
pub use error::SimError;
pub use receipt::MoPart;
pub use stats::SimStats;

use delivery::{DELIVERER_INBOX, DelivererMsg, Delivery, DeliveryKind, Registry};
use stats::{Counters, inc};
use throttle::TokenBucket;

/// How long a TLS handshake may take before the connection is dropped.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (out of file descriptors, say) so the loop does not spin.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Starts simulators. See the [module docs](self).
#[derive(Debug)]
pub struct SimServer {
    _private: (),
}

impl SimServer {
    /// Validates `config`, binds its listener, and starts serving in the background.
    ///
    /// # Errors
    /// [`SimError::InvalidConfig`], [`SimError::Listen`], [`SimError::ReadPem`] or
    /// [`SimError::Tls`]; nothing is left running on error.
    pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
        config.validate()?;
        let acceptor = config.tls.as_ref().map(tls::acceptor).transpose()?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| SimError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| SimError::Listen {
            addr: config.listen,
            source,
        })?;

        let config = Arc::new(config);
        let counters = Arc::new(Counters::default());
        let registry = Arc::new(Registry::default());
        let (deliverer_tx, deliverer_rx) = mpsc::channel(DELIVERER_INBOX);
        let rng = match config.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        let shared = Arc::new(Shared {
            throttle: config
                .throttle_tps
                .map(|tps| Mutex::new(TokenBucket::new(tps, Instant::now()))),
            rng: Mutex::new(rng),
            next_message_id: AtomicU64::new(config.first_message_id),
            next_session_id: AtomicU64::new(1),
            received: Mutex::new(VecDeque::new()),
            deliverer: deliverer_tx,
            config: Arc::clone(&config),
            counters: Arc::clone(&counters),
            registry: Arc::clone(&registry),
        });

        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        tracker.spawn(delivery::run(
            config,
            counters,
            registry,
            deliverer_rx,
            shutdown.child_token(),
        ));
        tracker.spawn(accept_loop(
            listener,
            acceptor,
            Arc::clone(&shared),
            shutdown.clone(),
            tracker.clone(),
        ));
        info!(target: "sairex::loadtest::sim", %addr, tls = shared.config.tls.is_some(), "SMSC simulator listening");
        Ok(SimHandle {
            addr,
            shared,
            shutdown,
            tracker,
        })
    }
}

/// A running simulator. Dropping it stops the simulator abruptly; [`SimHandle::shutdown`] stops
/// it gracefully.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl SimHandle {
    /// The address the simulator listens on (with the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters so far.
    pub fn stats(&self) -> SimStats {
        self.shared.counters.snapshot()
    }

    /// The submits received so far, oldest first (at most `max_received` of them), including
    /// the rejected ones (with their status and no message id).
    pub fn received(&self) -> Vec<ReceivedMessage> {
        self.shared
            .received
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Sends a mobile-originated message (deliver_sm, esm_class 0) from `from` to `to` on a bound
    /// receiver or transceiver (round robin), tracking its deliver_sm_resp like a receipt.
    /// Returns once the message is queued, not when it is acknowledged: watch
    /// [`SimStats::mo`].
    ///
    /// # Errors
    /// [`SimError::NoReceiver`] when no receiver or transceiver is bound,
    /// [`SimError::InvalidAddress`], [`SimError::TooManyPending`], or
    /// [`SimError::ShuttingDown`].
    pub async fn send_mo(&self, from: &str, to: &str, text: &str) -> Result<(), SimError> {
        let (from, to) = (mo_address(from)?, mo_address(to)?);
        self.schedule_mo(receipt::build_mo(from, to, text)).await
    }

    /// Sends one part of a concatenated mobile-originated message (UDHI, an 8-bit reference
    /// UDH, then `text`), like [`SimHandle::send_mo`]: a test sends the parts one by one, with
    /// whatever happens to the gateway in between.
    ///
    /// # Errors
    /// As [`SimHandle::send_mo`]; [`SimError::InvalidPart`] for a part number of 0 or above
    /// the total, or a total below 2.
    pub async fn send_mo_part(
        &self,
        from: &str,
        to: &str,
        part: MoPart,
        text: &str,
    ) -> Result<(), SimError> {
        if part.total < 2 || part.seq == 0 || part.seq > part.total {
            return Err(SimError::InvalidPart {
                seq: part.seq,
                total: part.total,
            });
        }
        let (from, to) = (mo_address(from)?, mo_address(to)?);
        self.schedule_mo(receipt::build_mo_part(from, to, part, text))
            .await
    }

    async fn schedule_mo(&self, pdu: sairex_pdu::DeliverSm) -> Result<(), SimError> {
        if !self.shared.registry.has_receiver() {
            return Err(SimError::NoReceiver);
        }
        let pending = self
            .shared
            .counters
            .deliveries_pending
            .load(Ordering::Relaxed);
        if usize::try_from(pending).unwrap_or(usize::MAX)
            >= self.shared.config.max_pending_deliveries
        {
            return Err(SimError::TooManyPending);
        }
        let delivery = Delivery {
            kind: DeliveryKind::Mo,
            pdu: Box::new(pdu),
            attempts: 0,
            give_up_at: Instant::now() + self.shared.config.delivery_hold,
        };
        self.shared
            .deliverer
            .send(DelivererMsg::Schedule {
                delivery,
                delay: Duration::ZERO,
            })
            .await
            .map_err(|_| SimError::ShuttingDown)
    }

    /// Stops gracefully: stops accepting, sends unbind to every bound ESME and waits (up to
    /// `unbind_timeout`) for its unbind_resp, closes every connection, and returns the final
    /// counters. Pending receipts and MOs are abandoned (they stay counted as pending).
    pub async fn shutdown(self) -> SimStats {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        debug!(target: "sairex::loadtest::sim", "SMSC simulator stopped");
        self.stats()
    }
}

fn mo_address(a: &str) -> Result<COctetString<21>, SimError> {
    COctetString::<21>::from_str_checked(a).map_err(|_| SimError::InvalidAddress(a.to_owned()))
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The kind of submit a [`ReceivedMessage`] came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubmitOperation {
    /// submit_sm (SMPP 3.4 §4.4).
    SubmitSm,
    /// data_sm (§4.7).
    DataSm,
    /// submit_multi (§4.5).
    SubmitMulti,
}

/// A submit as the simulator received it, with the answer it gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// Which connection it came on (1, 2, … in accept order).
    pub session_id: u64,
    /// submit_sm, data_sm or submit_multi.
    pub operation: SubmitOperation,
    /// The request's sequence number.
    pub sequence_number: u32,
    /// The id returned, when the submit was accepted.
    pub message_id: Option<String>,
    /// The status answered.
    pub status: CommandStatus,
    /// `source_addr`.
    pub source_addr: Bytes,
    /// `destination_addr`, or every SME address of a submit_multi (distribution lists as
    /// their names).
    pub destination_addrs: Vec<Bytes>,
    /// `esm_class`.
    pub esm_class: u8,
    /// `data_coding`.
    pub data_coding: u8,
    /// `registered_delivery`.
    pub registered_delivery: u8,
    /// `short_message` (empty for data_sm, whose text is in the `message_payload` TLV).
    pub short_message: Bytes,
    /// The optional parameters as received.
    pub tlvs: Tlvs,
    /// When it arrived.
    pub received_at: SystemTime,
}

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct Shared {
    config: Arc<SimConfig>,
    counters: Arc<Counters>,
    registry: Arc<Registry>,
    deliverer: mpsc::Sender<DelivererMsg>,
    throttle: Option<Mutex<TokenBucket>>,
    rng: Mutex<StdRng>,
    next_message_id: AtomicU64,
    next_session_id: AtomicU64,
    received: Mutex<VecDeque<ReceivedMessage>>,
}

impl Shared {
    /// The status for the next submit: throttled, injected error, or OK.
    fn submit_status(&self, now: Instant) -> CommandStatus {
        if let Some(bucket) = &self.throttle {
            let allowed = bucket.lock().map(|mut b| b.try_take(now)).unwrap_or(true);
            if !allowed {
                return CommandStatus::ESME_RTHROTTLED;
            }
        }
        let rate = self.config.error_rate;
        if rate > 0.0 {
            let roll: f64 = self.rng.lock().map(|mut r| r.random()).unwrap_or(1.0);
            if roll < rate {
                return self.config.error_status;
            }
        }
        CommandStatus::ESME_ROK
    }

    fn next_message_id(&self) -> String {
        let n = self.next_message_id.fetch_add(1, Ordering::Relaxed);
        self.config.id_format.format(n)
    }

    fn final_state(&self) -> FinalState {
        let mix = self.config.receipt_mix;
        let total = mix.total();
        if total <= 1 {
            return mix.pick(0);
        }
        let roll = self
            .rng
            .lock()
            .map(|mut r| r.random_range(0..total))
            .unwrap_or(0);
        mix.pick(roll)
    }

    fn record(&self, message: ReceivedMessage) {
        if self.config.max_received == 0 {
            return;
        }
        if let Ok(mut log) = self.received.lock() {
            if log.len() >= self.config.max_received {
                log.pop_front();
                inc(&self.counters.received_evicted);
            }
            log.push_back(message);
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(shared.config.max_connections));
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(conn) => conn,
            Err(error) => {
                warn!(target: "sairex::loadtest::sim", %error, "accept failed");
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => continue,
                }
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            inc(&shared.counters.rejected);
            debug!(target: "sairex::loadtest::sim", %peer, "connection refused: max_connections reached");
            continue;
        };
        // Responses are small and latency-sensitive; batching happens in the writer instead.
        let _ = tcp.set_nodelay(true);
        let shared = Arc::clone(&shared);
        let shutdown = shutdown.clone();
        let conn_tracker = tracker.clone();
        let acceptor = acceptor.clone();
        tracker.spawn(async move {
            let _permit = permit;
            match acceptor {
                None => session::serve(tcp, peer, shared, shutdown, conn_tracker).await,
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        () = shutdown.cancelled() => return,
                        r = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)) => r,
                    };
                    match handshake {
                        Ok(Ok(tls)) => {
                            session::serve(tls, peer, shared, shutdown, conn_tracker).await;
                        }
                        Ok(Err(error)) => {
                            inc(&shared.counters.tls_failures);
                            debug!(target: "sairex::loadtest::sim", %peer, %error, "TLS handshake failed");
                        }
                        Err(_) => {
                            inc(&shared.counters.tls_failures);
                            debug!(target: "sairex::loadtest::sim", %peer, "TLS handshake timed out");
                        }
                    }
                }
            }
        });
    }
}
