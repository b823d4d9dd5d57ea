//! The in-process event feed: follows the store's outbox and republishes each entry as an
//! [`EngineEvent`] on the dispatcher's broadcast channel, for listeners that live with the
//! process (the SMPP server's receipts, the load test's tracker). Nobody publishes by hand:
//! whatever changes a message (the API, the dispatcher, the campaign runner) writes the outbox
//! entry with the change, and this relays it once it is durable.
//!
//! The broadcast is live-only and bounded: a subscriber that lags loses events (it is told how
//! many). What must not lose any (webhooks, the event stream) reads the outbox itself.

use std::collections::HashMap;

use sairex_store::model::Id;
use sairex_store::{OutboxEntry, Store};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::EngineEvent;

/// Entries read per organization per look.
const READ: usize = 1_024;

fn event_of(entry: &OutboxEntry) -> EngineEvent {
    let m = &entry.message;
    if entry.is_inbound() {
        EngineEvent::Inbound {
            org: entry.organization_id,
            message_id: m.id,
        }
    } else {
        EngineEvent::StatusChanged {
            org: entry.organization_id,
            message_id: m.id,
            status: m.status,
            provider_id: m.provider_id,
            error_code: m.error_code.clone(),
        }
    }
}

/// Relays every entry after position `from` until `stop`.
pub(crate) async fn run(
    store: Store,
    events: broadcast::Sender<EngineEvent>,
    from: u64,
    stop: CancellationToken,
) {
    let mut watch = store.outbox_watch();
    let mut cursors: HashMap<Id, u64> = HashMap::new();
    loop {
        watch.borrow_and_update();
        let listened = events.receiver_count() > 0;
        for (org, head) in store.outbox_org_heads() {
            let cursor = cursors.entry(org).or_insert(from);
            if !listened {
                // Nobody listens: nothing to read, and nothing to catch up on later (the
                // broadcast is live-only).
                *cursor = head.min(store.outbox_head());
                continue;
            }
            while head > *cursor {
                let entries = match store.outbox_after(org, *cursor, READ) {
                    Ok(entries) => entries,
                    Err(e) => {
                        tracing::error!(org, error = %e, "cannot read the outbox for engine events");
                        break;
                    }
                };
                let Some(last) = entries.last().map(|e| e.seq) else {
                    // Written but not yet durable: the next look gets it.
                    break;
                };
                for entry in &entries {
                    // No subscriber is fine: nobody is listening yet.
                    let _ = events.send(event_of(entry));
                }
                *cursor = last;
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            changed = watch.changed() => if changed.is_err() { return },
        }
    }
}
