//! Receipt timeout (blueprint: EXPIRED is "TTL exceeded without DLR"). A message submitted
//! asking for a receipt gets a `receiptDueAt`: the end of its validity (`expiresAt`, else
//! [`DispatcherConfig::default_validity`](super::DispatcherConfig::default_validity) from its
//! submission) plus [`DispatcherConfig::receipt_grace`](super::DispatcherConfig::receipt_grace).
//! The store indexes it while the message is SUBMITTED or SENT; every housekeeping tick the
//! dispatcher walks that index up to now (like the due promotion, never the messages) and the
//! store expires what it finds with a RECEIPT_TIMEOUT event. A message of several parts whose
//! every part's receipt said DELIVERED is DELIVERED already, so only one with a part's receipt
//! missing is expired.
//!
//! A receipt that comes after that still counts: it records the real outcome (DELIVERED,
//! FAILED, ...) on the timeline and in the status (see `Dispatcher::awaits_receipt`).

use sairex_store::model::{Id, Millis};

use super::{Dispatcher, millis};

/// Most messages expired per store call, and calls per tick.
const BATCH: usize = 1_000;
const CALLS_PER_TICK: usize = 16;

/// When a message submitted at `now` whose receipt has not come is expired.
pub(super) fn deadline(
    now: Millis,
    expires_at: Option<Millis>,
    default_validity: Millis,
    grace: Millis,
) -> Millis {
    expires_at
        .unwrap_or(now.saturating_add(default_validity))
        .max(now)
        .saturating_add(grace)
}

impl Dispatcher {
    /// The `receiptDueAt` of a message `provider` accepted now, `None` when no receipt is
    /// asked for.
    pub(super) fn receipt_due_at(
        &self,
        provider: Id,
        expires_at: Option<Millis>,
    ) -> Option<Millis> {
        let asked = self.config.request_receipts
            && self
                .providers
                .by_id(provider)
                .is_none_or(|slot| slot.link.requests_receipts());
        asked.then(|| {
            deadline(
                self.clock.now_ms(),
                expires_at,
                millis(self.config.default_validity),
                millis(self.config.receipt_grace),
            )
        })
    }

    /// Expires the messages whose receipt is overdue at `now`.
    pub(super) async fn expire_overdue_receipts(&mut self, now: Millis) {
        for _ in 0..CALLS_PER_TICK {
            let walk = match self
                .store
                .expire_overdue_receipts(self.receipt_floor, now, BATCH)
                .await
            {
                Ok(walk) => walk,
                Err(e) => {
                    tracing::error!(error = %e, "expiring overdue receipts failed");
                    return;
                }
            };
            self.receipt_floor = walk.next_from;
            let n = walk.expired.len();
            for m in &walk.expired {
                tracing::info!(
                    org = m.organization_id,
                    message = m.id,
                    "no receipt by its validity end plus the grace; EXPIRED"
                );
                self.metrics.status_changed(m);
            }
            self.count(|c| c.receipt_timeouts += n as u64);
            if n < BATCH {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Millis = 3_600_000;

    #[test]
    fn the_deadline_is_the_validity_end_plus_the_grace() {
        // No validity of its own: 48 h from submission, plus the grace.
        assert_eq!(deadline(1_000, None, 48 * HOUR, HOUR), 1_000 + 49 * HOUR);
        // Its own validity end.
        assert_eq!(
            deadline(1_000, Some(1_000 + HOUR), 48 * HOUR, HOUR),
            1_000 + 2 * HOUR
        );
        // A validity that ended already (a slow submit) counts from now.
        assert_eq!(deadline(5_000, Some(10), 48 * HOUR, HOUR), 5_000 + HOUR);
    }
}
