//! query_sm and cancel_sm, on the account's own messages only: another account's id (or an
//! id that is not one) is answered as if it did not exist.

use sairex_pdu::CommandStatus;
use sairex_pdu::receipt::MessageState;
use sairex_store::model::{Id, Message, MessageStatus};
use sairex_store::{SmppAccount, StoreError};

use super::smpp_time;
use crate::state::AppState;

/// The SMPP message_state of a status (SMPP 3.4 §5.2.28).
pub(crate) fn message_state(status: MessageStatus) -> MessageState {
    match status {
        MessageStatus::Queued | MessageStatus::Submitted | MessageStatus::Sent => {
            MessageState::Enroute
        }
        MessageStatus::Delivered | MessageStatus::Received => MessageState::Delivered,
        MessageStatus::Expired => MessageState::Expired,
        MessageStatus::Failed => MessageState::Undeliverable,
        MessageStatus::Rejected => MessageState::Rejected,
    }
}

/// What query_sm_resp carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryAnswer {
    pub(crate) final_date: String,
    pub(crate) state: MessageState,
}

/// The message an id the account was given names: `Ok(None)` for a part still waiting for
/// its siblings.
fn own_message(
    state: &AppState,
    account: &SmppAccount,
    text_id: &str,
) -> Result<Option<Message>, CommandStatus> {
    let id: Id = account
        .receipt_id_format
        .parse(text_id.trim())
        .ok_or(CommandStatus::ESME_RINVMSGID)?;
    let link = state
        .store()
        .smpp_link(id)
        .map_err(|_| CommandStatus::ESME_RSYSERR)?
        .filter(|l| l.account_id == account.id)
        .ok_or(CommandStatus::ESME_RINVMSGID)?;
    let message_id = link.message_id.unwrap_or(id);
    match state.store().message(link.organization_id, message_id) {
        Ok(m) => Ok(Some(m)),
        // A part's id with no whole message yet: its siblings are still missing.
        Err(StoreError::NotFound { .. }) if link.message_id.is_none() && message_id != 0 => {
            Ok(None)
        }
        Err(StoreError::NotFound { .. }) => Err(CommandStatus::ESME_RINVMSGID),
        Err(_) => Err(CommandStatus::ESME_RSYSERR),
    }
}

/// query_sm (SMPP 3.4 §4.8).
pub(crate) fn query(
    state: &AppState,
    account: &SmppAccount,
    text_id: &str,
) -> Result<QueryAnswer, CommandStatus> {
    match own_message(state, account, text_id)? {
        None => Ok(QueryAnswer {
            final_date: String::new(),
            state: MessageState::Accepted,
        }),
        Some(m) => Ok(QueryAnswer {
            final_date: if m.status.is_final() {
                smpp_time::format(m.updated_at)
            } else {
                String::new()
            },
            state: message_state(m.status),
        }),
    }
}

/// cancel_sm (SMPP 3.4 §4.9): a message still waiting in the queue (ready or scheduled) is
/// FAILED with the reason "cancelled"; one already handed to a provider cannot be.
pub(crate) async fn cancel(
    state: &AppState,
    account: &SmppAccount,
    text_id: &str,
) -> Result<(), CommandStatus> {
    let Some(m) = own_message(state, account, text_id)? else {
        return Err(CommandStatus::ESME_RCANCELFAIL);
    };
    let outcome = state
        .store()
        .cancel_queued(
            m.organization_id,
            m.id,
            "CANCELLED",
            "cancelled by the customer (cancel_sm)".to_owned(),
        )
        .await
        .map_err(|_| CommandStatus::ESME_RCANCELFAIL)?;
    // Already handed to a provider (or final): too late to cancel.
    if !outcome.is_applied() {
        return Err(CommandStatus::ESME_RCANCELFAIL);
    }
    Ok(())
}
