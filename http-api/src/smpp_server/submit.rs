//! submit_sm, data_sm and submit_multi: into the same path as `POST /api/sms/send` (the same
//! `draft` checks: E.164 in the organization's country, body, opt-out; the same credit, queue
//! depth and organization rate limits), stored with the account's link before the answer.

use sairex_pdu::{CommandStatus, Tlvs};
use sairex_store::model::{ApiKey, Id, Message, Priority};
use sairex_store::{NewPart, PartOutcome, SmppAccount, SmppLink, StoreError, now_ms};

use super::incoming::{self, Part};
use super::metrics;
use super::smpp_time;
use crate::error::ApiError;
use crate::limits::Verdict;
use crate::routes::send::{Checked, check_credit, draft, queue_full};
use crate::state::AppState;
use crate::text;

/// One submission, whichever PDU carried it.
#[derive(Debug, Clone)]
pub(crate) struct Submission {
    pub(crate) source_addr: String,
    pub(crate) dest_ton: u8,
    pub(crate) destination: String,
    pub(crate) esm_class: u8,
    pub(crate) data_coding: u8,
    pub(crate) registered_delivery: u8,
    pub(crate) priority_flag: u8,
    pub(crate) schedule_delivery_time: Vec<u8>,
    pub(crate) validity_period: Vec<u8>,
    pub(crate) short_message: bytes::Bytes,
    pub(crate) tlvs: Tlvs,
}

/// An API error of the shared checks as the SMPP status a customer understands.
fn status_of(e: &ApiError) -> CommandStatus {
    match e.code {
        "INVALID_PHONE" => CommandStatus::ESME_RINVDSTADR,
        "EMPTY_BODY" | "BODY_TOO_LONG" => CommandStatus::ESME_RINVMSGLEN,
        "QUEUE_FULL" => CommandStatus::ESME_RMSGQFUL,
        "RATE_LIMITED" => CommandStatus::ESME_RTHROTTLED,
        _ if e.status.is_server_error() => CommandStatus::ESME_RSYSERR,
        _ => CommandStatus::ESME_RSUBMITFAIL,
    }
}

fn store_status(e: &StoreError) -> CommandStatus {
    match e {
        StoreError::DiskFull(_) => CommandStatus::ESME_RMSGQFUL,
        StoreError::Invalid { .. } => CommandStatus::ESME_RSUBMITFAIL,
        _ => CommandStatus::ESME_RSYSERR,
    }
}

/// The organization's limits, counted under the account (ids are global, so an account's
/// never meets an API key's).
fn org_limit(state: &AppState, account: &SmppAccount) -> Result<(), CommandStatus> {
    // The key's own limits are off (0): the account's are its TPS and window.
    let pseudo = ApiKey {
        id: account.id,
        rate_limit_per_min: 0,
        rate_limit_per_day: 0,
        ..ApiKey::default()
    };
    match state.limiter().check(
        &pseudo,
        account.organization_id,
        state.settings().org_per_minute,
        state.settings().org_per_day,
        now_ms(),
    ) {
        Verdict::Limited { .. } => Err(CommandStatus::ESME_RTHROTTLED),
        Verdict::Allowed { .. } => Ok(()),
    }
}

/// SMPP 3.4 §5.2.14 priority_flag: 2 and 3 (urgent, very urgent) go first, as OTPs.
fn priority(account: &SmppAccount, flag: u8) -> Priority {
    if flag >= 2 {
        Priority::OTP
    } else {
        account.default_priority
    }
}

/// The destination as the send path reads it: an international (TON 1) number gets its `+`.
fn destination(ton: u8, addr: &str) -> String {
    let addr = addr.trim();
    if ton == 1 && !addr.starts_with('+') {
        format!("+{addr}")
    } else {
        addr.to_owned()
    }
}

/// Accepts one submission; the id to answer once it is durable, or the status to answer.
pub(crate) async fn submit(
    state: &AppState,
    account: &SmppAccount,
    sub: Submission,
) -> Result<Id, CommandStatus> {
    if let Some(tps) = account.tps
        && !state.smpp_sessions().take_token(account.id, tps)
    {
        return Err(CommandStatus::ESME_RTHROTTLED);
    }
    let now = now_ms();
    let org = state
        .org(account.organization_id, now)
        .map_err(|e| status_of(&e))?;
    if !org.is_active {
        return Err(CommandStatus::ESME_RSUBMITFAIL);
    }
    let from = sub.source_addr.trim().to_owned();
    // The REST API's limit on a sender (20 characters, no control characters).
    if from.chars().count() > 20 || from.chars().any(char::is_control) {
        return Err(CommandStatus::ESME_RINVSRCADR);
    }
    if !account.sender_ids.is_empty() && !account.sender_ids.contains(&from) {
        return Err(CommandStatus::ESME_RINVSRCADR);
    }
    if sub.registered_delivery & 0x03 == 3 {
        return Err(CommandStatus::ESME_RINVREGDLVFLG);
    }
    let scheduled_at = smpp_time::parse(&sub.schedule_delivery_time, now)
        .map_err(|()| CommandStatus::ESME_RINVSCHED)?;
    let expires_at =
        smpp_time::parse(&sub.validity_period, now).map_err(|()| CommandStatus::ESME_RINVEXPIRY)?;
    let incoming = incoming::read(
        sub.esm_class,
        sub.data_coding,
        &sub.short_message,
        &sub.tlvs,
    )?;
    org_limit(state, account)?;
    let checked = Checked {
        from,
        priority: priority(account, sub.priority_flag),
        scheduled_at: scheduled_at.filter(|at| *at > now),
        expires_at,
        ..Checked::default()
    };
    let to = destination(sub.dest_ton, &sub.destination);
    // A part is checked as a message of its own (number, opt-out, body); the whole text is
    // priced and counted again when it is complete.
    let draft = draft(
        state,
        &org,
        None,
        Some(&to),
        Some(&incoming.text),
        None,
        &checked,
    )
    .map_err(|e| status_of(&e))?;
    check_credit(&org, draft.cost).map_err(|e| status_of(&e))?;
    let ticket = queue_full(state).map_err(|e| status_of(&e))?;
    let link = SmppLink {
        organization_id: account.organization_id,
        account_id: account.id,
        registered_delivery: sub.registered_delivery,
        answered_ids: Vec::new(),
        message_id: None,
    };
    let (answered, message) = match incoming.part {
        None => {
            let message = state
                .store()
                .enqueue_smpp(draft.message, link)
                .await
                .map_err(|e| store_status(&e))?;
            (message.id, Some(message))
        }
        Some(part) => submit_part(state, account, draft.message, part, &incoming.text, link)
            .await
            .map_err(|e| store_status(&e))?,
    };
    if message.is_some() {
        state.accepted(ticket, 1);
        state.engine().nudge();
    }
    metrics::submitted(account.id);
    Ok(answered)
}

async fn submit_part(
    state: &AppState,
    account: &SmppAccount,
    template: Message,
    part: Part,
    text: &str,
    link: SmppLink,
) -> Result<(Id, Option<Message>), StoreError> {
    let group = format!(
        "{}|{}|{}|{}",
        template.to_number,
        part.reference,
        if part.wide { 16 } else { 8 },
        part.total
    );
    let cost_per_segment = template.cost_per_segment.unwrap_or(0);
    let whole = move |joined: String| {
        let mut m = template;
        let analysis = text::analyse(&joined);
        m.body = joined;
        m.encoding = analysis.encoding.to_owned();
        m.segments = analysis.segments;
        m.total_cost = Some(cost_per_segment.saturating_mul(i64::from(analysis.segments)));
        Ok(m)
    };
    let outcome = state
        .store()
        .smpp_submit_part(
            account.id,
            NewPart {
                group,
                total: part.total,
                seq: part.seq,
                text: text.to_owned(),
            },
            link,
            whole,
        )
        .await?;
    Ok(match outcome {
        PartOutcome::Waiting { answered_id } => (answered_id, None),
        PartOutcome::Complete {
            answered_id,
            message,
        } => (answered_id, Some(*message)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_and_priorities() {
        assert_eq!(destination(1, "923001234567"), "+923001234567");
        assert_eq!(destination(0, "03001234567"), "03001234567");
        assert_eq!(destination(1, "+923001234567"), "+923001234567");
        let account = SmppAccount::default();
        assert_eq!(priority(&account, 0), Priority::TRANSACTIONAL);
        assert_eq!(priority(&account, 3), Priority::OTP);
    }
}
