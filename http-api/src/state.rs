//! The state every handler shares: the store, the engine link, the settings and the caches
//! that keep the send path free of needless store reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use sairex_store::model::{Id, Micros, Millis, Organization};
use sairex_store::{Store, now_ms};

use crate::auth::KeyCache;
use crate::error::ApiError;
use crate::limits::Limiter;
use crate::{ApiSettings, EngineLink};

/// How long an organization's cached facts (default country, credit, cost) are used before
/// they are read again.
const ORG_TTL_MS: Millis = 2_000;

/// How often the ready-queue depth is recounted from the store at most.
const DEPTH_REFRESH_MS: Millis = 250;

/// How stale the count may grow while the queue is far below the limit (see
/// [`DEPTH_IDLE_HEADROOM`]): counting scans the ready queue, a few per cent of an accept's CPU
/// when done every 250 ms.
const DEPTH_REFRESH_IDLE_MS: Millis = 2_000;

/// Room below the limit (and at least half of it) that allows the slower recount: more than
/// campaigns and retries, which the estimate does not count between counts, add in 2 s.
const DEPTH_IDLE_HEADROOM: u64 = 100_000;

/// What the send path needs to know of an organization.
#[derive(Debug, Clone)]
pub(crate) struct OrgInfo {
    pub(crate) id: Id,
    pub(crate) default_country: Option<phonenumber::country::Id>,
    /// Prepaid credit, when the organization has a credit limit.
    pub(crate) credit_balance: Option<Micros>,
    /// Cost of one segment: its first active provider's that has one, else the default.
    pub(crate) cost_per_segment: Micros,
    pub(crate) currency: String,
    pub(crate) is_active: bool,
    /// DLT rules apply to its transactional template sends.
    pub(crate) dlt_enabled: bool,
}

/// The shared state; cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    engine: Arc<dyn EngineLink>,
    settings: ApiSettings,
    keys: KeyCache,
    orgs: Mutex<HashMap<Id, (Arc<OrgInfo>, Millis)>>,
    limiter: Limiter,
    depth: Mutex<Depth>,
    callbacks: crate::routes::callbacks::ProviderIndex,
    console_throttle: crate::console::users::Throttle,
    in_flight: crate::idempotency::InFlight,
    smpp: crate::smpp_server::Registry,
    throughput: crate::throughput::Throughput,
}

/// An estimate of the ready messages in the store: the last count (bounded by the limit, done
/// off the request path at most every [`DEPTH_REFRESH_MS`]) plus the messages accepted since
/// it finished. An accept whose enqueue overlapped a count is left to that count, which may
/// have missed it: the estimate can fall short by the requests in flight during a count, never
/// exceed the truth by them (so a 503 is never answered for a queue below the limit, except
/// for messages the engine took since the count).
#[derive(Debug, Default)]
struct Depth {
    counted: u64,
    since: u64,
    /// Bumped when a count finishes.
    generation: u64,
    counted_at: Millis,
    counting: bool,
}

/// What [`AppState::queue_full`] saw, to hand back to [`AppState::accepted`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct DepthTicket(u64);

impl AppState {
    pub(crate) fn new(store: Store, engine: Arc<dyn EngineLink>, settings: ApiSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                engine,
                settings,
                keys: KeyCache::default(),
                orgs: Mutex::new(HashMap::new()),
                limiter: Limiter::default(),
                depth: Mutex::new(Depth::default()),
                callbacks: crate::routes::callbacks::ProviderIndex::default(),
                console_throttle: crate::console::users::Throttle::default(),
                in_flight: crate::idempotency::InFlight::default(),
                smpp: crate::smpp_server::Registry::default(),
                throughput: crate::throughput::Throughput::default(),
            }),
        }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn engine(&self) -> &dyn EngineLink {
        self.inner.engine.as_ref()
    }

    pub(crate) fn settings(&self) -> &ApiSettings {
        &self.inner.settings
    }

    pub(crate) fn keys(&self) -> &KeyCache {
        &self.inner.keys
    }

    pub(crate) fn limiter(&self) -> &Limiter {
        &self.inner.limiter
    }

    /// Failed console logins, per account and address.
    pub(crate) fn console_throttle(&self) -> &crate::console::users::Throttle {
        &self.inner.console_throttle
    }

    /// Idempotency keys whose request is running.
    pub(crate) fn in_flight(&self) -> &crate::idempotency::InFlight {
        &self.inner.in_flight
    }

    /// The SMPP server's bound sessions (empty when it does not run).
    pub(crate) fn smpp_sessions(&self) -> &crate::smpp_server::Registry {
        &self.inner.smpp
    }

    /// The providers' sent counts seen by the status, for their throughput.
    pub(crate) fn throughput(&self) -> &crate::throughput::Throughput {
        &self.inner.throughput
    }

    /// The HTTP providers' records, for their callbacks.
    pub(crate) fn callback_index(&self) -> &crate::routes::callbacks::ProviderIndex {
        &self.inner.callbacks
    }

    /// The organization's facts, from the cache while fresh.
    pub(crate) fn org(&self, id: Id, now: Millis) -> Result<Arc<OrgInfo>, ApiError> {
        {
            let orgs = self
                .inner
                .orgs
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some((info, at)) = orgs.get(&id)
                && now.saturating_sub(*at) < ORG_TTL_MS
            {
                return Ok(Arc::clone(info));
            }
        }
        let org = self.store().organization(id)?;
        let info = Arc::new(self.org_info(&org)?);
        let mut orgs = self
            .inner
            .orgs
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if orgs.len() > 100_000 {
            orgs.clear();
        }
        orgs.insert(id, (Arc::clone(&info), now));
        Ok(info)
    }

    fn org_info(&self, org: &Organization) -> Result<OrgInfo, ApiError> {
        let providers = self.store().active_providers(org.id)?;
        let priced = providers.iter().find(|p| p.cost_per_segment.is_some());
        Ok(OrgInfo {
            id: org.id,
            default_country: org.default_country.parse().ok(),
            credit_balance: org.credit_balance,
            cost_per_segment: priced
                .and_then(|p| p.cost_per_segment)
                .unwrap_or(self.settings().default_cost_per_segment),
            currency: priced
                .and_then(|p| p.cost_currency.clone())
                .or_else(|| org.currency.clone())
                .unwrap_or_else(|| self.settings().default_currency.clone()),
            is_active: org.is_active,
            dlt_enabled: org.dlt_enabled,
        })
    }

    /// Drops an organization's cached facts (its providers or credit changed).
    pub(crate) fn forget_org(&self, id: Id) {
        self.inner
            .orgs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    /// Whether the ready queue is at or over `max_queue_depth`, and the ticket to count an
    /// accept with; starts a recount when the last one is stale.
    pub(crate) fn queue_full(&self) -> (bool, DepthTicket) {
        let now = now_ms();
        let max = self.settings().max_queue_depth;
        let mut depth = self
            .inner
            .depth
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let headroom = max.saturating_sub(depth.counted.saturating_add(depth.since));
        let refresh = if headroom >= DEPTH_IDLE_HEADROOM && headroom >= max / 2 {
            DEPTH_REFRESH_IDLE_MS
        } else {
            DEPTH_REFRESH_MS
        };
        if !depth.counting && now.saturating_sub(depth.counted_at) >= refresh {
            depth.counting = true;
            let state = self.clone();
            // The count reads up to `max` keys: off the async workers.
            tokio::task::spawn_blocking(move || {
                let counted = state.store().ready_depth(max.saturating_add(1));
                let mut depth = state
                    .inner
                    .depth
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if let Ok(n) = counted {
                    depth.counted = n;
                    depth.since = 0;
                    depth.generation += 1;
                }
                depth.counted_at = now_ms();
                depth.counting = false;
            });
        }
        (
            depth.counted.saturating_add(depth.since) >= max,
            DepthTicket(depth.generation),
        )
    }

    /// Counts `n` accepted messages into the depth estimate, unless a count finished while they
    /// were written (that count holds them, or missed them: see [`Depth`]).
    pub(crate) fn accepted(&self, ticket: DepthTicket, n: u64) {
        let mut depth = self
            .inner
            .depth
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if depth.generation == ticket.0 {
            depth.since = depth.since.saturating_add(n);
        }
    }
}
