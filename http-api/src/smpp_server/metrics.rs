//! Metric names of the SMPP server and their recording functions (the exporter is the binary's).

use sairex_store::model::Id;

/// Gauge: sessions bound, by `account`.
pub const BOUND_SESSIONS: &str = "sairex_smpp_server_bound_sessions";
/// Counter: submits accepted (answered with an id), by `account`.
pub const SUBMITS: &str = "sairex_smpp_server_submits_total";
/// Counter: submits refused, by `account` and `status` (the SMPP status name).
pub const SUBMITS_REFUSED: &str = "sairex_smpp_server_submits_refused_total";
/// Counter: receipts and MO the customer acknowledged, by `account` and `kind`.
pub const DELIVERED: &str = "sairex_smpp_server_delivered_total";
/// Gauge: submits awaiting their answer over all of an account's binds, by `account`.
pub const WINDOW: &str = "sairex_smpp_server_window_occupancy";
/// Counter: refused binds, by `reason` (unknown_system_id, bad_password, locked_out,
/// not_allowed, too_many_binds).
pub const BAD_BINDS: &str = "sairex_smpp_server_bad_binds_total";
/// Counter: lock-outs started, by `subject` (system_id, ip).
pub const LOCKOUTS: &str = "sairex_smpp_server_lockouts_total";
/// Counter: malformed or unknown PDUs answered with generic_nack.
pub const NACKS: &str = "sairex_smpp_server_generic_nacks_total";

pub(crate) fn bound(account: Id, sessions: usize) {
    metrics::gauge!(BOUND_SESSIONS, "account" => account.to_string()).set(sessions as f64);
}

pub(crate) fn submitted(account: Id) {
    metrics::counter!(SUBMITS, "account" => account.to_string()).increment(1);
}

pub(crate) fn refused(account: Id, status: sairex_pdu::CommandStatus) {
    metrics::counter!(
        SUBMITS_REFUSED,
        "account" => account.to_string(),
        "status" => status.name().unwrap_or("other")
    )
    .increment(1);
}

pub(crate) fn delivered(account: Id, kind: &'static str) {
    metrics::counter!(DELIVERED, "account" => account.to_string(), "kind" => kind).increment(1);
}

pub(crate) fn window(account: Id, delta: f64) {
    metrics::gauge!(WINDOW, "account" => account.to_string()).increment(delta);
}

pub(crate) fn bad_bind(reason: &'static str) {
    metrics::counter!(BAD_BINDS, "reason" => reason).increment(1);
}

pub(crate) fn lockout(subject: &'static str) {
    metrics::counter!(LOCKOUTS, "subject" => subject).increment(1);
}

pub(crate) fn nack() {
    metrics::counter!(NACKS).increment(1);
}
