//! The acknowledgement of one deliver_sm, completed by whoever makes it durable.
//!
//! The session answers a deliver_sm only once the owner says what became of it: the SMSC keeps
//! (and redelivers) what was not answered `ESME_ROK`, so acknowledging after the store write
//! means a crash in between loses nothing (issue 4).

use sairex_pdu::CommandStatus;
use tokio::sync::oneshot;

/// What became of a deliver_sm, as its deliver_sm_resp will say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliverStatus {
    /// Stored, applied, or safely nothing to do (a duplicate): `ESME_ROK`.
    Done,
    /// Not stored this time (a store failure, the owner stopping): `ESME_RX_T_APPN`, so the
    /// SMSC tries again.
    Retry,
    /// It will never be usable (no organization for it, an unreadable receipt):
    /// `ESME_RX_P_APPN`, so the SMSC does not try again.
    Reject,
}

impl DeliverStatus {
    /// The deliver_sm_resp status.
    pub fn command_status(self) -> CommandStatus {
        match self {
            Self::Done => CommandStatus::ESME_ROK,
            Self::Retry => CommandStatus::ESME_RX_T_APPN,
            Self::Reject => CommandStatus::ESME_RX_P_APPN,
        }
    }
}

/// The handle that completes one deliver_sm's acknowledgement: one `oneshot` (one small
/// allocation), or nothing for a detached ack. Dropping it without [`DeliverAck::complete`]
/// answers [`DeliverStatus::Retry`].
#[derive(Debug, Default)]
pub struct DeliverAck(Option<oneshot::Sender<DeliverStatus>>);

impl DeliverAck {
    /// An ack and the receiver that learns its status (the receiver sees an error when the ack
    /// is dropped without being completed: treat it as [`DeliverStatus::Retry`]).
    pub fn channel() -> (Self, oneshot::Receiver<DeliverStatus>) {
        let (tx, rx) = oneshot::channel();
        (Self(Some(tx)), rx)
    }

    /// An ack nobody waits for (tests, providers that answer on their own).
    pub fn detached() -> Self {
        Self(None)
    }

    /// Completes it.
    pub fn complete(mut self, status: DeliverStatus) {
        if let Some(tx) = self.0.take() {
            // The session may be gone (connection lost): the SMSC redelivers then.
            let _ = tx.send(status);
        }
    }
}
