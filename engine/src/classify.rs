//! What a provider's answer means for the message: the `command_status` of a submit response
//! (SMPP 3.4 §5.1.3) and the final state of a delivery receipt. `docs/smpp-status.md` lists the
//! same table for operators; a test keeps the two in step.

use sairex_pdu::CommandStatus;
use sairex_pdu::receipt::MessageState;
use sairex_store::model::MessageStatus;

/// How the engine treats a submit response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubmitOutcome {
    /// Accepted: SUBMITTED.
    Accepted,
    /// The provider is over its rate: slow that provider down and try again; the message is
    /// not failed and no retry is counted.
    Throttled,
    /// A temporary failure: retry with back-off (counted), failing over to another provider.
    Temporary,
    /// The message itself is unacceptable (bad address, bad parameters): REJECTED, no retry.
    Rejected,
    /// A permanent failure that is not about the message's content: FAILED, no retry.
    Failed,
}

/// Every status SMPP 3.4 names, with its treatment. Statuses not listed (vendor codes
/// 0x400–0x4FF and reserved values) are [`SubmitOutcome::Temporary`]: an unknown answer is
/// retried a bounded number of times rather than silently dropped or blindly resent forever.
pub const SUBMIT_STATUS_TABLE: &[(CommandStatus, SubmitOutcome)] = {
    use SubmitOutcome::{Accepted, Failed, Rejected, Temporary, Throttled};
    &[
        (CommandStatus::ESME_ROK, Accepted),
        (CommandStatus::ESME_RINVMSGLEN, Rejected),
        (CommandStatus::ESME_RINVCMDLEN, Failed),
        (CommandStatus::ESME_RINVCMDID, Failed),
        (CommandStatus::ESME_RINVBNDSTS, Temporary),
        (CommandStatus::ESME_RALYBND, Temporary),
        (CommandStatus::ESME_RINVPRTFLG, Rejected),
        (CommandStatus::ESME_RINVREGDLVFLG, Rejected),
        (CommandStatus::ESME_RSYSERR, Temporary),
        (CommandStatus::ESME_RINVSRCADR, Rejected),
        (CommandStatus::ESME_RINVDSTADR, Rejected),
        (CommandStatus::ESME_RINVMSGID, Failed),
        (CommandStatus::ESME_RBINDFAIL, Temporary),
        (CommandStatus::ESME_RINVPASWD, Temporary),
        (CommandStatus::ESME_RINVSYSID, Temporary),
        (CommandStatus::ESME_RCANCELFAIL, Failed),
        (CommandStatus::ESME_RREPLACEFAIL, Failed),
        (CommandStatus::ESME_RMSGQFUL, Throttled),
        (CommandStatus::ESME_RINVSERTYP, Rejected),
        (CommandStatus::ESME_RINVNUMDESTS, Rejected),
        (CommandStatus::ESME_RINVDLNAME, Rejected),
        (CommandStatus::ESME_RINVDESTFLAG, Rejected),
        (CommandStatus::ESME_RINVSUBREP, Rejected),
        (CommandStatus::ESME_RINVESMCLASS, Rejected),
        (CommandStatus::ESME_RCNTSUBDL, Rejected),
        (CommandStatus::ESME_RSUBMITFAIL, Temporary),
        (CommandStatus::ESME_RINVSRCTON, Rejected),
        (CommandStatus::ESME_RINVSRCNPI, Rejected),
        (CommandStatus::ESME_RINVDSTTON, Rejected),
        (CommandStatus::ESME_RINVDSTNPI, Rejected),
        (CommandStatus::ESME_RINVSYSTYP, Temporary),
        (CommandStatus::ESME_RINVREPFLAG, Rejected),
        (CommandStatus::ESME_RINVNUMMSGS, Rejected),
        (CommandStatus::ESME_RTHROTTLED, Throttled),
        (CommandStatus::ESME_RINVSCHED, Rejected),
        (CommandStatus::ESME_RINVEXPIRY, Rejected),
        (CommandStatus::ESME_RINVDFTMSGID, Rejected),
        (CommandStatus::ESME_RX_T_APPN, Temporary),
        (CommandStatus::ESME_RX_P_APPN, Failed),
        (CommandStatus::ESME_RX_R_APPN, Rejected),
        (CommandStatus::ESME_RQUERYFAIL, Failed),
        (CommandStatus::ESME_RINVOPTPARSTREAM, Rejected),
        (CommandStatus::ESME_ROPTPARNOTALLWD, Rejected),
        (CommandStatus::ESME_RINVPARLEN, Rejected),
        (CommandStatus::ESME_RMISSINGOPTPARAM, Rejected),
        (CommandStatus::ESME_RINVOPTPARAMVAL, Rejected),
        (CommandStatus::ESME_RDELIVERYFAILURE, Temporary),
        (CommandStatus::ESME_RUNKNOWNERR, Temporary),
    ]
};

/// The treatment of a submit response's status.
pub fn classify_submit_status(status: CommandStatus) -> SubmitOutcome {
    SUBMIT_STATUS_TABLE
        .iter()
        .find(|(s, _)| *s == status)
        .map_or(SubmitOutcome::Temporary, |(_, outcome)| *outcome)
}

/// The message status a receipt's state leads to (blueprint §8.1). ENROUTE and ACCEPTD are
/// intermediate (SENT); the rest are final.
pub fn receipt_status(state: MessageState) -> MessageStatus {
    match state {
        MessageState::Delivered => MessageStatus::Delivered,
        MessageState::Expired => MessageStatus::Expired,
        MessageState::Rejected => MessageStatus::Rejected,
        MessageState::Enroute | MessageState::Accepted => MessageStatus::Sent,
        MessageState::Deleted
        | MessageState::Undeliverable
        | MessageState::Unknown
        | MessageState::Skipped => MessageStatus::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_status_is_classified_once() {
        for status in CommandStatus::ALL {
            let hits = SUBMIT_STATUS_TABLE
                .iter()
                .filter(|(s, _)| s == status)
                .count();
            assert_eq!(hits, 1, "{status:?}");
        }
        assert_eq!(
            classify_submit_status(CommandStatus::ESME_RTHROTTLED),
            SubmitOutcome::Throttled
        );
        assert_eq!(
            classify_submit_status(CommandStatus::ESME_RINVDSTADR),
            SubmitOutcome::Rejected
        );
        assert_eq!(
            classify_submit_status(CommandStatus(0x401)),
            SubmitOutcome::Temporary
        );
    }

    #[test]
    fn the_operator_doc_lists_the_same_table() {
        let doc = include_str!("../../docs/smpp-status.md");
        for (status, outcome) in SUBMIT_STATUS_TABLE {
            let name = status.name().unwrap_or_default();
            let row = doc
                .lines()
                .find(|l| l.contains(&format!("`{name}`")))
                .unwrap_or_else(|| panic!("{name} missing from docs/smpp-status.md"));
            assert!(
                row.contains(&format!("{outcome:?}")),
                "{name}: doc says {row}, code says {outcome:?}"
            );
        }
    }

    #[test]
    fn receipts_map_to_the_blueprint_statuses() {
        assert_eq!(
            receipt_status(MessageState::Delivered),
            MessageStatus::Delivered
        );
        assert_eq!(
            receipt_status(MessageState::Undeliverable),
            MessageStatus::Failed
        );
        assert_eq!(
            receipt_status(MessageState::Rejected),
            MessageStatus::Rejected
        );
        assert_eq!(receipt_status(MessageState::Enroute), MessageStatus::Sent);
        assert!(
            MessageState::ALL
                .iter()
                .all(|s| !receipt_status(*s).is_final() || s.is_final())
        );
    }
}
