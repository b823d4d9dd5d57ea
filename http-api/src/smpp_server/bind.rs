//! Authenticating a bind: the account by `system_id`, its password (argon2id), its source
//! ranges, bind types and state, and the lock-out after repeated wrong passwords.

use std::net::IpAddr;

use sairex_pdu::CommandStatus;
use sairex_store::{SmppAccount, SmppBindType, now_ms};
use tracing::warn;

use super::lockout::{Locked, Lockout};
use super::{metrics, password};
use crate::state::AppState;

/// A bind request's credentials.
#[derive(Debug, Clone)]
pub(crate) struct Credentials {
    pub(crate) kind: SmppBindType,
    pub(crate) system_id: String,
    pub(crate) password: Vec<u8>,
}

fn refuse(reason: &'static str, status: CommandStatus) -> CommandStatus {
    metrics::bad_bind(reason);
    status
}

fn count_failure(lockout: &Lockout, system_id: Option<&str>, ip: IpAddr) {
    for locked in lockout.failed(system_id, ip) {
        let subject = match locked {
            Locked::SystemId => "system_id",
            Locked::Ip => "ip",
        };
        metrics::lockout(subject);
        warn!(system_id = system_id.unwrap_or(""), %ip, subject, "SMPP server: bind lock-out after repeated failures");
    }
}

/// The account a bind may use, or the bind_resp status to refuse it with (SMPP 3.4 §4.1:
/// `ESME_RINVSYSID` for an unknown system id, `ESME_RINVPASWD` for a wrong password,
/// `ESME_RBINDFAIL` for the rest: locked out, address or bind type not allowed, inactive).
pub(crate) async fn authenticate(
    state: &AppState,
    lockout: &Lockout,
    ip: IpAddr,
    credentials: &Credentials,
) -> Result<SmppAccount, CommandStatus> {
    let system_id = credentials.system_id.as_str();
    if lockout.check(system_id, ip).is_some() {
        warn!(system_id, %ip, "SMPP server: bind refused, locked out");
        return Err(refuse("locked_out", CommandStatus::ESME_RBINDFAIL));
    }
    let account = match state.store().smpp_account_by_system_id(system_id) {
        Ok(Some(a)) => a,
        Ok(None) => {
            warn!(system_id, %ip, "SMPP server: bind with an unknown system_id");
            count_failure(lockout, None, ip);
            return Err(refuse("unknown_system_id", CommandStatus::ESME_RINVSYSID));
        }
        Err(e) => {
            warn!(error = %e, "SMPP server: accounts not readable");
            return Err(CommandStatus::ESME_RSYSERR);
        }
    };
    let hash = account.password_hash.clone();
    let given = credentials.password.clone();
    // argon2id takes tens of milliseconds: off the async workers.
    let matches = tokio::task::spawn_blocking(move || password::verify(&given, &hash))
        .await
        .unwrap_or(false);
    if !matches {
        warn!(system_id, %ip, "SMPP server: bind with a wrong password");
        count_failure(lockout, Some(system_id), ip);
        return Err(refuse("bad_password", CommandStatus::ESME_RINVPASWD));
    }
    if !password::ip_allowed(&account.allowed_ips, ip) {
        warn!(system_id, %ip, "SMPP server: bind from an address outside allowedIps");
        return Err(refuse("not_allowed", CommandStatus::ESME_RBINDFAIL));
    }
    if !account.bind_types.contains(&credentials.kind) {
        return Err(refuse("not_allowed", CommandStatus::ESME_RBINDFAIL));
    }
    let org_active = state
        .org(account.organization_id, now_ms())
        .is_ok_and(|o| o.is_active);
    if !account.is_active || !org_active {
        return Err(refuse("not_allowed", CommandStatus::ESME_RBINDFAIL));
    }
    lockout.succeeded(system_id, ip);
    Ok(account)
}
