//! The bound sessions of every account: bind limits, the account's TPS bucket, the links the
//! outbox pump delivers through, and the kick that unbinds them when the account changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use sairex_pdu::{Command, CommandStatus};
use sairex_store::SmppBindType;
use sairex_store::model::Id;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// deliver_sm one session may have unanswered at once.
pub(crate) const DELIVER_WINDOW: usize = 32;

/// What the outbox pump needs of a bound session to deliver through it.
#[derive(Debug, Clone)]
pub(crate) struct SessionLink {
    /// The session's writer queue (bounded).
    pub(crate) tx: mpsc::Sender<Command>,
    /// Our sequence numbers on this session.
    pub(crate) seq: Arc<AtomicU32>,
    /// deliver_sm awaiting their deliver_sm_resp, by sequence number.
    pub(crate) pending: Arc<Mutex<HashMap<u32, oneshot::Sender<CommandStatus>>>>,
    /// Free deliver_sm slots of this session.
    pub(crate) slots: Arc<Semaphore>,
    /// Cancelled to unbind the session (account changed or deleted).
    pub(crate) kick: CancellationToken,
}

impl SessionLink {
    pub(crate) fn new(tx: mpsc::Sender<Command>) -> Self {
        Self {
            tx,
            seq: Arc::new(AtomicU32::new(1)),
            pending: Arc::new(Mutex::new(HashMap::new())),
            slots: Arc::new(Semaphore::new(DELIVER_WINDOW)),
            kick: CancellationToken::new(),
        }
    }

    /// The next sequence number (1..=0x7FFF_FFFF, SMPP 3.4 §5.1.4's range, wrapping).
    pub(crate) fn next_seq(&self) -> u32 {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        (n % 0x7FFF_FFFF) + 1
    }
}

#[derive(Debug)]
struct Bound {
    session: u64,
    bind: SmppBindType,
    link: SessionLink,
}

#[derive(Debug)]
struct Account {
    sessions: Vec<Bound>,
    /// TPS bucket: tokens and when they were counted.
    tokens: f64,
    counted_at: Instant,
    /// Wakes the account's outbox pump.
    wake: Arc<Notify>,
    /// Whether a pump runs for it.
    pumping: bool,
    /// Round-robin over receivers.
    next: usize,
}

impl Account {
    fn new() -> Self {
        Self {
            sessions: Vec::new(),
            // A fresh bucket is full: the first take fills it to one second's worth.
            tokens: f64::INFINITY,
            counted_at: Instant::now(),
            wake: Arc::new(Notify::new()),
            pumping: false,
            next: 0,
        }
    }
}

/// Why a session could not be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TooManyBinds;

/// Every account's sessions.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    accounts: Mutex<HashMap<Id, Account>>,
    next_session: AtomicU64,
}

fn receives(bind: SmppBindType) -> bool {
    matches!(bind, SmppBindType::Receiver | SmppBindType::Transceiver)
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Id, Account>> {
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a bound session unless the account has `max_binds` already; returns the
    /// session's number and whether the caller should start the account's outbox pump.
    pub(crate) fn register(
        &self,
        account: Id,
        max_binds: u32,
        bind: SmppBindType,
        link: SessionLink,
    ) -> Result<(u64, bool), TooManyBinds> {
        let mut accounts = self.lock();
        let entry = accounts.entry(account).or_insert_with(Account::new);
        if entry.sessions.len() >= usize::try_from(max_binds).unwrap_or(usize::MAX) {
            return Err(TooManyBinds);
        }
        let session = self.next_session.fetch_add(1, Ordering::Relaxed) + 1;
        entry.sessions.push(Bound {
            session,
            bind,
            link,
        });
        let start_pump = receives(bind) && !entry.pumping;
        if start_pump {
            entry.pumping = true;
        }
        entry.wake.notify_one();
        Ok((session, start_pump))
    }

    pub(crate) fn deregister(&self, account: Id, session: u64) {
        let mut accounts = self.lock();
        if let Some(entry) = accounts.get_mut(&account) {
            entry.sessions.retain(|s| s.session != session);
            entry.wake.notify_one();
            if entry.sessions.is_empty() && !entry.pumping {
                accounts.remove(&account);
            }
        }
    }

    /// Sessions bound for the account.
    pub(crate) fn bound(&self, account: Id) -> usize {
        self.lock().get(&account).map_or(0, |a| a.sessions.len())
    }

    /// The next receiver of the account with a free deliver_sm slot (round robin).
    pub(crate) fn pick_receiver(&self, account: Id) -> Option<SessionLink> {
        let mut accounts = self.lock();
        let entry = accounts.get_mut(&account)?;
        let receivers: Vec<&Bound> = entry.sessions.iter().filter(|s| receives(s.bind)).collect();
        let n = receivers.len();
        for i in 0..n {
            let candidate = receivers[(entry.next + i) % n];
            if candidate.link.slots.available_permits() > 0 && !candidate.link.tx.is_closed() {
                let link = candidate.link.clone();
                entry.next = (entry.next + i + 1) % n;
                return Some(link);
            }
        }
        None
    }

    /// Whether the account still has a receiver bound; when not, marks its pump stopped
    /// (under the same lock, so a receiver binding now starts a new one).
    pub(crate) fn keep_pumping(&self, account: Id) -> bool {
        let mut accounts = self.lock();
        let Some(entry) = accounts.get_mut(&account) else {
            return false;
        };
        if entry.sessions.iter().any(|s| receives(s.bind)) {
            return true;
        }
        entry.pumping = false;
        if entry.sessions.is_empty() {
            accounts.remove(&account);
        }
        false
    }

    /// The account pump's wake-up.
    pub(crate) fn waker(&self, account: Id) -> Arc<Notify> {
        let mut accounts = self.lock();
        Arc::clone(&accounts.entry(account).or_insert_with(Account::new).wake)
    }

    /// Something new is owed to the account.
    pub(crate) fn wake(&self, account: Id) {
        if let Some(entry) = self.lock().get(&account) {
            entry.wake.notify_one();
        }
    }

    /// Takes one submit token of the account's bucket (`tps` per second, a second's worth of
    /// burst); false when empty.
    pub(crate) fn take_token(&self, account: Id, tps: u32) -> bool {
        let mut accounts = self.lock();
        let Some(entry) = accounts.get_mut(&account) else {
            return false;
        };
        let now = Instant::now();
        let rate = f64::from(tps);
        let elapsed = now.duration_since(entry.counted_at).as_secs_f64();
        entry.tokens = (entry.tokens + elapsed * rate).min(rate);
        entry.counted_at = now;
        if entry.tokens >= 1.0 {
            entry.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Unbinds every session of the account (it changed or was deleted).
    pub(crate) fn account_changed(&self, account: Id) {
        if let Some(entry) = self.lock().get(&account) {
            for s in &entry.sessions {
                s.link.kick.cancel();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> SessionLink {
        SessionLink::new(mpsc::channel(4).0)
    }

    #[tokio::test]
    async fn bind_limit_and_pump_start() {
        let r = Registry::default();
        let (a, pump) = r.register(7, 2, SmppBindType::Transmitter, link()).unwrap();
        assert!(!pump, "a transmitter needs no pump");
        let (_, pump) = r.register(7, 2, SmppBindType::Receiver, link()).unwrap();
        assert!(pump);
        assert_eq!(
            r.register(7, 2, SmppBindType::Receiver, link()),
            Err(TooManyBinds)
        );
        r.deregister(7, a);
        assert_eq!(r.bound(7), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn tps_bucket() {
        let r = Registry::default();
        r.register(1, 1, SmppBindType::Transmitter, link()).unwrap();
        let taken = (0..20).filter(|_| r.take_token(1, 5)).count();
        assert_eq!(taken, 5);
        tokio::time::advance(std::time::Duration::from_millis(400)).await;
        assert_eq!((0..20).filter(|_| r.take_token(1, 5)).count(), 2);
    }
}
