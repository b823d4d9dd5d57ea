//! The SMPP server's settings (the binary fills them from `[smpp_server]`).

use std::time::Duration;

/// How the SMPP server behaves.
#[derive(Debug, Clone)]
pub struct SmppServerSettings {
    /// Our `system_id` in bind responses.
    pub system_id: String,
    /// A session that receives nothing for this long is unbound.
    pub idle_timeout: Duration,
    /// A quiet bound session gets an enquire_link this often.
    pub enquire_link_interval: Duration,
    /// Connect to bind, at most.
    pub bind_timeout: Duration,
    /// Wait for a deliver_sm_resp, at most.
    pub response_timeout: Duration,
    /// A write to a customer that takes longer closes its connection (a customer that stops
    /// reading must not hold anything of ours).
    pub write_timeout: Duration,
    /// Owed receipts and MO older than this are dropped.
    pub receipt_max_age: Duration,
    /// Largest `command_length` accepted.
    pub max_command_length: u32,
    /// Wrong passwords in a row that lock a system id or an address out.
    pub lockout_after: u32,
    /// How long a lock-out lasts.
    pub lockout_duration: Duration,
    /// Most open connections.
    pub max_connections: usize,
}

impl Default for SmppServerSettings {
    fn default() -> Self {
        Self {
            system_id: "Sairex".to_owned(),
            idle_timeout: Duration::from_secs(300),
            enquire_link_interval: Duration::from_secs(30),
            bind_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            receipt_max_age: Duration::from_secs(72 * 3600),
            max_command_length: sairex_pdu::DEFAULT_MAX_COMMAND_LENGTH,
            lockout_after: 5,
            lockout_duration: Duration::from_secs(300),
            max_connections: 1000,
        }
    }
}
