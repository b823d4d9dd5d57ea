//! Durable holds: inbound parts waiting for their siblings and receipts waiting for their
//! message's id are written to the store before the carrier hears ESME_ROK, and read back when
//! the dispatcher starts (see `sairex_store::HeldPart`, `sairex_store::HeldReceipt`).
//!
//! The in-memory [`Reassembly`](super::inbound::Reassembly) and
//! [`EarlyReceipts`](super::receipts::EarlyReceipts) are the index of what is held, rebuilt
//! from the store at start; they change only after the store write succeeded. Removing a
//! hold goes with what consumes it: the inbound message made of the parts (one writer job), or
//! right after the receipt's write (applied again at start if a crash came between: a
//! duplicate, which changes nothing).

use sairex_pdu::receipt::{MessageState, Receipt};
use sairex_store::model::{Id, Millis};
use sairex_store::{HeldPart, HeldReceipt};

use super::Dispatcher;
use super::inbound::{self, Concat, Decoded, PartsKey};
use crate::provider::DeliverStatus;

fn held_receipt(provider: Id, receipt: &Receipt, at: Millis) -> HeldReceipt {
    HeldReceipt {
        provider_id: provider,
        receipt_id: receipt.id.clone(),
        stat: receipt.stat.clone(),
        state: receipt.state.map(MessageState::as_u8),
        err: receipt.err.clone(),
        received_at: at,
    }
}

/// The receipt a held one stands for: what applying it reads (id, stat, state, err).
fn receipt_of(held: &HeldReceipt) -> Receipt {
    let state = held.state.and_then(MessageState::from_u8);
    let mut receipt = Receipt::new(
        held.receipt_id.clone(),
        state.unwrap_or(MessageState::Unknown),
    );
    receipt.state = state;
    receipt.stat.clone_from(&held.stat);
    receipt.err.clone_from(&held.err);
    receipt.sub = None;
    receipt.dlvrd = None;
    receipt
}

impl Dispatcher {
    /// Reads the holds back at start: parts go back to reassembly (a set found complete was
    /// stored already, by a job that crashed before removing them), receipts back to the hold,
    /// each matched at once against the ids recorded so far.
    pub(super) async fn load_holds(&mut self) {
        let parts = match self.store.held_inbound_parts() {
            Ok(parts) => parts,
            Err(e) => {
                tracing::error!(error = %e, "reading held inbound parts failed");
                Vec::new()
            }
        };
        let count = parts.len();
        let mut release = Vec::new();
        for (id, part) in parts {
            let key = PartsKey {
                provider: part.provider_id,
                from: part.from,
                to: part.to,
                reference: part.reference,
                wide: part.wide,
            };
            let concat = Concat {
                reference: part.reference,
                wide: part.wide,
                total: part.total,
                seq: part.seq,
            };
            let encoding = inbound::encoding_name(&part.encoding);
            if !self.parts.fits(&key, concat) {
                // Never written so (see `inbound_part`): nothing to join it to.
                tracing::warn!(
                    provider = key.provider,
                    "a held inbound part does not fit its siblings; dropped"
                );
                release.push(id);
                continue;
            }
            let added =
                self.parts
                    .add(key, concat, part.text, encoding, part.received_at, Some(id));
            for partial in added.evicted {
                self.store_partial(partial).await;
            }
            if let Some(whole) = added.complete {
                // Complete parts are never held (the last one is stored with its siblings):
                // these were stored by a job that crashed before removing them.
                release.extend(whole.held_ids());
            }
        }
        if !release.is_empty() {
            tracing::warn!(
                parts = release.len(),
                "held inbound parts already stored as a message, or unusable; released"
            );
            self.release_holds(release, Vec::new()).await;
        }

        let receipts = match self.store.held_receipts() {
            Ok(receipts) => receipts,
            Err(e) => {
                tracing::error!(error = %e, "reading held receipts failed");
                Vec::new()
            }
        };
        let receipt_count = receipts.len();
        for (id, held) in receipts {
            let receipt = receipt_of(&held);
            self.early
                .restore(held.provider_id, receipt, held.received_at, id);
        }
        if count > 0 || receipt_count > 0 {
            tracing::info!(
                parts = count,
                receipts = receipt_count,
                "held inbound parts and early receipts read back"
            );
        }
        // Recorded meanwhile (the crash came between the id's write and the receipt's), or
        // applied already (the crash came before its hold was released).
        let mut applied = Vec::new();
        for (provider, receipt_id) in self.early.stored_receipts() {
            match self.find_by_provider_id(provider, &receipt_id) {
                Ok(Some((m, _))) if Self::awaits_receipt(&m) => {
                    let (org, id) = (m.organization_id, m.id);
                    self.apply_early(org, id, provider, &[receipt_id]).await;
                }
                Ok(Some(_)) => {
                    let taken = self.early.take(provider, &receipt_id, true);
                    self.count(|c| c.receipts_duplicate += taken.len() as u64);
                    applied.extend(taken.into_iter().filter_map(|(_, _, stored)| stored));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(provider, error = %e, "held receipt lookup failed"),
            }
        }
        self.release_holds(Vec::new(), applied).await;
    }

    /// Writes the receipts released from the ack hold to the store, then answers each: OK once
    /// durable, "retry" if the write failed.
    pub(super) async fn store_released(&mut self, released: Vec<(u64, Id, Receipt, Millis)>) {
        if released.is_empty() {
            return;
        }
        let records = released
            .iter()
            .map(|(_, provider, receipt, at)| held_receipt(*provider, receipt, *at))
            .collect();
        match self.store.hold_receipts(records).await {
            Ok(ids) => {
                for ((seq, ..), id) in released.iter().zip(ids) {
                    self.early.stored(*seq, Some(id));
                }
            }
            Err(e) => {
                self.count(|c| c.store_errors += 1);
                tracing::error!(error = %e, "holding early receipts failed; answered retry");
                for (seq, ..) in &released {
                    self.early.stored(*seq, None);
                }
            }
        }
    }

    /// Removes holds that were consumed or given up.
    pub(super) async fn release_holds(&self, parts: Vec<Id>, receipts: Vec<Id>) {
        if let Err(e) = self.store.release_holds(parts, receipts).await {
            // Read back at the next start: parts of a stored message are recognised as such,
            // receipts apply as duplicates or expire again.
            tracing::warn!(error = %e, "removing released holds failed");
        }
    }

    /// One part of a concatenated inbound message: the whole message once it is the last
    /// (its siblings' holds removed with it), else held in the store. Answered OK only
    /// once that is durable: holding the answer until the siblings come could stall a small
    /// window that must send them.
    pub(super) async fn inbound_part(
        &mut self,
        org: Id,
        key: PartsKey,
        concat: Concat,
        decoded: Decoded,
    ) -> DeliverStatus {
        if !self.parts.fits(&key, concat) {
            // Stored on its own rather than lost or mixed into another message's text.
            let note = format!(
                "part {} of {} under reference {}, which waiting parts use with another part count; stored alone",
                concat.seq, concat.total, concat.reference
            );
            return self
                .store_inbound(
                    org,
                    key.provider,
                    key.from,
                    key.to,
                    decoded.text,
                    decoded.encoding,
                    1,
                    Some(note),
                    Vec::new(),
                )
                .await;
        }
        if let Some(whole) =
            self.parts
                .would_complete(&key, concat, &decoded.text, decoded.encoding)
        {
            let segments = u32::try_from(whole.parts.len()).unwrap_or(u32::MAX);
            let body = whole.text();
            let held = whole.held_ids();
            let status = self
                .store_inbound(
                    org,
                    key.provider,
                    key.from.clone(),
                    key.to.clone(),
                    body,
                    whole.encoding,
                    segments,
                    None,
                    held,
                )
                .await;
            if status == DeliverStatus::Done {
                self.parts.remove(&key);
            }
            return status;
        }
        let now = self.clock.now_ms();
        let part = HeldPart {
            provider_id: key.provider,
            from: key.from.clone(),
            to: key.to.clone(),
            reference: concat.reference,
            wide: concat.wide,
            total: concat.total,
            seq: concat.seq,
            text: decoded.text.clone(),
            encoding: decoded.encoding.to_owned(),
            received_at: now,
        };
        let existing = self.parts.held_id(&key, concat);
        match self.store.hold_inbound_part(existing, part).await {
            Ok(id) => {
                let added =
                    self.parts
                        .add(key, concat, decoded.text, decoded.encoding, now, Some(id));
                for partial in added.evicted {
                    tracing::warn!(
                        provider = partial.key.provider,
                        "inbound reassembly full; the oldest incomplete message is stored as it is"
                    );
                    self.store_partial(partial).await;
                }
                DeliverStatus::Done
            }
            Err(e) => {
                self.count(|c| c.store_errors += 1);
                tracing::error!(org, error = %e, "holding an inbound part failed");
                DeliverStatus::Retry
            }
        }
    }

    /// Whether a receipt for `m` still means something: it is not final, or it expired only
    /// because its receipt was late (the receipt then records the real outcome).
    pub(super) fn awaits_receipt(m: &sairex_store::model::Message) -> bool {
        !m.status.is_final() || timed_out(m)
    }
}

/// EXPIRED by the receipt timeout, not by a carrier or before sending.
pub(super) fn timed_out(m: &sairex_store::model::Message) -> bool {
    m.status == sairex_store::model::MessageStatus::Expired
        && m.error_code.as_deref() == Some(sairex_store::RECEIPT_TIMEOUT)
}
