//! Receipts and MO back to customers.
//!
//! The **feeder** reads the engine's events: a final status of a message with a pending
//! receipt marker becomes owed receipts ([`Store::owe_smpp_receipt`](sairex_store::Store)), an
//! inbound message to one of an account's `moNumbers` an owed MO. A lagging event stream, and
//! every start, re-check every pending marker, so a receipt is never lost between the status
//! change and its entry.
//!
//! One **pump** per account with a receiver bound sends what it is owed, oldest first, through
//! its receiver and transceiver sessions (round robin, at most
//! [`DELIVER_WINDOW`](super::registry::DELIVER_WINDOW) unanswered per session), and deletes an
//! entry only on deliver_sm_resp `ESME_ROK`. Anything else leaves it for a later attempt; an
//! entry older than `receipt_max_age` is dropped. The pumps never wait on each other: a slow
//! customer fills only its own sessions' queues (a full writer queue skips that session).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use sairex_engine::dispatch::EngineEvent;
use sairex_pdu::{Command, CommandStatus};
use sairex_store::model::{Id, Millis};
use sairex_store::{SmppAccount, SmppOwedKind, now_ms};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{Semaphore, oneshot};
use tokio::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::deliver::deliver_sm;
use super::metrics;
use super::settings::SmppServerSettings;
use crate::state::AppState;

/// Entries read per pump round.
const BATCH: usize = 512;
/// Pending markers re-checked per store read while reconciling.
const RECONCILE_BATCH: usize = 1024;
/// How long an entry the customer refused waits before it is sent again.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// How often a pump drops expired entries.
const EXPIRY_EVERY: Duration = Duration::from_secs(60);
/// Receipt writes the feeder has in flight at once.
const FEEDER_WRITES: usize = 256;
/// How often a pump looks at the store without being woken.
const POLL: Duration = Duration::from_secs(1);

/// Starts the feeder. Subscribes before its first reconcile, so nothing falls between them.
pub(crate) fn spawn_feeder(state: AppState, shutdown: CancellationToken) {
    let events = state.engine().subscribe();
    tokio::spawn(feeder(state, events, shutdown));
}

async fn feeder(
    state: AppState,
    mut events: tokio::sync::broadcast::Receiver<EngineEvent>,
    shutdown: CancellationToken,
) {
    reconcile(&state).await;
    let writes = Arc::new(Semaphore::new(FEEDER_WRITES));
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(EngineEvent::StatusChanged {
                message_id, status, ..
            }) if status.is_final() => {
                // A read first: most messages did not come over SMPP.
                if !state
                    .store()
                    .smpp_receipt_pending(message_id)
                    .unwrap_or(true)
                {
                    continue;
                }
                // Many at once, so that they share the store's group commits; bounded.
                let Ok(permit) = Arc::clone(&writes).acquire_owned().await else {
                    return;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    owe_receipt(&state, message_id).await;
                    drop(permit);
                });
            }
            Ok(EngineEvent::Inbound { org, message_id }) => route_mo(&state, org, message_id).await,
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => {
                warn!(
                    missed,
                    "SMPP server: engine events missed; re-checking pending receipts"
                );
                reconcile(&state).await;
            }
            Err(RecvError::Closed) => return,
        }
    }
}

async fn owe_receipt(state: &AppState, message: Id) {
    match state.store().owe_smpp_receipt(message).await {
        Ok(Some(account)) => state.smpp_sessions().wake(account),
        Ok(None) => {}
        Err(e) => warn!(message, error = %e, "SMPP server: receipt not recorded"),
    }
}

/// Every pending marker whose message is final becomes its receipts.
async fn reconcile(state: &AppState) {
    let mut after = 0;
    let mut owed = 0u64;
    loop {
        let batch = match state.store().smpp_pending(after, RECONCILE_BATCH) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "SMPP server: pending receipts not readable");
                return;
            }
        };
        let Some(&last) = batch.last() else { break };
        for message in batch {
            if let Ok(Some(account)) = state.store().owe_smpp_receipt(message).await {
                owed += 1;
                state.smpp_sessions().wake(account);
            }
        }
        after = last;
    }
    if owed > 0 {
        info!(owed, "SMPP server: receipts owed after re-check");
    }
}

fn digits(number: &str) -> &str {
    number.trim().trim_start_matches('+')
}

async fn route_mo(state: &AppState, org: Id, message_id: Id) {
    let Ok(message) = state.store().message(org, message_id) else {
        return;
    };
    let Ok(accounts) = state.store().smpp_accounts(org) else {
        return;
    };
    let to = digits(&message.to_number);
    let Some(account) = accounts
        .iter()
        .find(|a| a.is_active && a.mo_numbers.iter().any(|n| digits(n) == to))
    else {
        return;
    };
    match state.store().owe_smpp_mo(account.id, &message).await {
        Ok(()) => state.smpp_sessions().wake(account.id),
        Err(e) => warn!(message_id, error = %e, "SMPP server: MO not recorded"),
    }
}

/// Starts the account's pump (the registry said none runs).
pub(crate) fn spawn_pump(state: AppState, settings: Arc<SmppServerSettings>, account: SmppAccount) {
    tokio::spawn(pump(state, settings, account));
}

/// Entries in flight or resting after a refusal, by outbox sequence.
#[derive(Debug, Default)]
struct Busy {
    in_flight: HashMap<u64, ()>,
    resting: HashMap<u64, Instant>,
}

async fn pump(state: AppState, settings: Arc<SmppServerSettings>, account: SmppAccount) {
    let registry = state.smpp_sessions();
    let wake = registry.waker(account.id);
    let busy = Arc::new(Mutex::new(Busy::default()));
    let mut expired_at: Option<Instant> = None;
    let max_age = Millis::try_from(settings.receipt_max_age.as_millis()).unwrap_or(Millis::MAX);
    debug!(account = account.id, "SMPP server: outbox pump started");
    while state.smpp_sessions().keep_pumping(account.id) {
        if expired_at.is_none_or(|at| at.elapsed() >= EXPIRY_EVERY) {
            expired_at = Some(Instant::now());
            match state
                .store()
                .smpp_expire_owed(account.id, now_ms().saturating_sub(max_age))
                .await
            {
                Ok(0) => {}
                Ok(n) => warn!(
                    account = account.id,
                    dropped = n,
                    "SMPP server: expired receipts/MO dropped"
                ),
                Err(e) => warn!(account = account.id, error = %e, "SMPP server: expiry failed"),
            }
        }
        send_round(&state, &settings, &account, &busy);
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
    debug!(
        account = account.id,
        "SMPP server: outbox pump stopped (no receiver bound)"
    );
}

fn send_round(
    state: &AppState,
    settings: &SmppServerSettings,
    account: &SmppAccount,
    busy: &Arc<Mutex<Busy>>,
) {
    let entries = match state.store().smpp_owed(account.id, 0, BATCH) {
        Ok(e) => e,
        Err(e) => {
            warn!(account = account.id, error = %e, "SMPP server: outbox not readable");
            return;
        }
    };
    let now = Instant::now();
    for (seq, owed) in entries {
        {
            let mut b = busy.lock().unwrap_or_else(PoisonError::into_inner);
            if b.in_flight.contains_key(&seq) {
                continue;
            }
            if let Some(until) = b.resting.get(&seq) {
                if *until > now {
                    continue;
                }
                b.resting.remove(&seq);
            }
        }
        let Some(link) = state.smpp_sessions().pick_receiver(account.id) else {
            return;
        };
        let Ok(permit) = Arc::clone(&link.slots).try_acquire_owned() else {
            continue;
        };
        let pdu_seq = link.next_seq();
        let (answer_tx, answer) = oneshot::channel();
        link.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(pdu_seq, answer_tx);
        let command = Command::new(pdu_seq, deliver_sm(account, &owed));
        if link.tx.try_send(command).is_err() {
            // That session's writer is full or gone: leave the entry for another round.
            link.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&pdu_seq);
            continue;
        }
        busy.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .in_flight
            .insert(seq, ());
        let kind = match owed.kind {
            SmppOwedKind::Receipt => "receipt",
            SmppOwedKind::Mo => "mo",
        };
        let (state, busy, pending) = (state.clone(), Arc::clone(busy), Arc::clone(&link.pending));
        let (account_id, timeout) = (account.id, settings.response_timeout);
        tokio::spawn(async move {
            let status = tokio::time::timeout(timeout, answer).await;
            let ok = matches!(status, Ok(Ok(s)) if s == CommandStatus::ESME_ROK);
            // Refused or unanswered: rest before the next try. A session that went away
            // (the answer dropped) leaves it to the next receiver at once.
            let rest = matches!(status, Err(_) | Ok(Ok(_))) && !ok;
            if status.is_err() {
                pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&pdu_seq);
            }
            let mut stored = false;
            if ok {
                match state.store().smpp_delivered(account_id, seq).await {
                    Ok(()) => {
                        stored = true;
                        metrics::delivered(account_id, kind);
                    }
                    Err(e) => {
                        warn!(account = account_id, error = %e, "SMPP server: delivery not recorded")
                    }
                }
            }
            drop(permit);
            {
                let mut b = busy.lock().unwrap_or_else(PoisonError::into_inner);
                b.in_flight.remove(&seq);
                if !stored && rest {
                    b.resting.insert(seq, Instant::now() + RETRY_AFTER);
                }
            }
            state.smpp_sessions().wake(account_id);
        });
    }
}
