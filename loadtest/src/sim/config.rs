//! The simulator's knobs: [`SimConfig`] and the small types it is made of, each parseable from
//! the text the `sairex smsc-sim` command line uses.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sairex_pdu::CommandStatus;

use crate::sim::error::SimError;

/// Default `system_id` ESMEs bind with.
pub const DEFAULT_SYSTEM_ID: &str = "sairex";
/// Default password ESMEs bind with.
pub const DEFAULT_PASSWORD: &str = "secret";
/// Default `system_id` the simulator names itself with in bind responses.
pub const DEFAULT_SMSC_SYSTEM_ID: &str = "sairex-sim";
/// Default delay between a submit and its delivery receipt.
pub const DEFAULT_RECEIPT_DELAY: Duration = Duration::from_secs(1);

/// Everything [`SimServer::start`](crate::sim::SimServer::start) needs. `Default` gives a
/// simulator on `127.0.0.1:0` (an ephemeral port) that accepts `sairex` / `secret`, answers at
/// once, never fails or throttles, and sends a `DELIVRD` receipt one second after every submit
/// that asks for one.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Address to listen on. Port 0 picks a free port; [`SimHandle::addr`] tells which.
    ///
    /// [`SimHandle::addr`]: crate::sim::SimHandle::addr
    pub listen: SocketAddr,
    /// The `system_id` binds must carry (at most 15 characters).
    pub system_id: String,
    /// The password binds must carry (at most 8 characters).
    pub password: String,
    /// The `system_id` the simulator answers bind requests with (at most 15 characters).
    pub smsc_system_id: String,
    /// Status answered to a bind with an unknown `system_id`: `ESME_RINVSYSID` (default) or, like
    /// SMSCs that do not say which credential was wrong, `ESME_RBINDFAIL`.
    pub bad_system_id_status: CommandStatus,
    /// Serve SMPP over TLS instead of plain TCP.
    pub tls: Option<TlsConfig>,
    /// Delay before answering submit_sm, data_sm and submit_multi. While it runs the request is
    /// outstanding, which is what makes [`SimConfig::window`] meaningful.
    pub response_latency: Duration,
    /// Fraction (0.0 to 1.0) of submits answered with [`SimConfig::error_status`].
    pub error_rate: f64,
    /// The status injected by [`SimConfig::error_rate`].
    pub error_status: CommandStatus,
    /// Submits per second accepted over all binds (a token bucket holding one second's worth);
    /// submits over it get `ESME_RTHROTTLED`. `None` never throttles.
    pub throttle_tps: Option<u32>,
    /// The window each bind should respect: a request that finds more than this many requests of
    /// its bind still unanswered is counted as a window violation (it is still served).
    pub window: Option<u32>,
    /// Which submits get a delivery receipt.
    pub receipts: ReceiptPolicy,
    /// Delay between a submit's response and its receipt.
    pub receipt_delay: Duration,
    /// Weights of the receipts' final states.
    pub receipt_mix: ReceiptMix,
    /// How long to wait for the deliver_sm_resp of a receipt or MO before trying again.
    pub delivery_resp_timeout: Duration,
    /// Delay before a deliver_sm that failed (error status, timeout, bind gone) is sent again.
    pub delivery_retry_interval: Duration,
    /// Sends of one deliver_sm before it is given up (at least 1).
    pub delivery_max_attempts: u32,
    /// How long a receipt or MO waits for a receiver or transceiver to be bound before it is
    /// given up.
    pub delivery_hold: Duration,
    /// Most receipts and MOs waiting or in flight at once; past it new ones are dropped (and
    /// counted), which bounds the simulator's memory under any load.
    pub max_pending_deliveries: usize,
    /// How message ids are written.
    pub id_format: IdFormat,
    /// The first message id assigned; later ones count up from it. Start a restarted simulator
    /// past the ids of its previous run to keep ids unique across runs.
    pub first_message_id: u64,
    /// Largest `command_length` accepted; a longer frame closes the connection.
    pub max_command_length: u32,
    /// Capacity of each connection's outgoing queue, in PDUs. When full, the connection stops
    /// reading until the peer takes its responses (back-pressure instead of memory growth).
    pub connection_queue: usize,
    /// Most connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// Most submitted messages kept for [`SimHandle::received`]; the oldest go first.
    ///
    /// [`SimHandle::received`]: crate::sim::SimHandle::received
    pub max_received: usize,
    /// How long a connection may stay open without binding.
    pub bind_timeout: Duration,
    /// On shutdown, how long to wait for an ESME's unbind_resp (and for its queued responses to
    /// be written) before closing the connection anyway.
    pub unbind_timeout: Duration,
    /// Seed for the error-rate and receipt-mix dice, for reproducible runs; `None` seeds from the
    /// OS.
    pub seed: Option<u64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            system_id: DEFAULT_SYSTEM_ID.to_owned(),
            password: DEFAULT_PASSWORD.to_owned(),
            smsc_system_id: DEFAULT_SMSC_SYSTEM_ID.to_owned(),
            bad_system_id_status: CommandStatus::ESME_RINVSYSID,
            tls: None,
            response_latency: Duration::ZERO,
            error_rate: 0.0,
            error_status: CommandStatus::ESME_RSYSERR,
            throttle_tps: None,
            window: None,
            receipts: ReceiptPolicy::Requested,
            receipt_delay: DEFAULT_RECEIPT_DELAY,
            receipt_mix: ReceiptMix::default(),
            delivery_resp_timeout: Duration::from_secs(10),
            delivery_retry_interval: Duration::from_secs(5),
            delivery_max_attempts: 3,
            delivery_hold: Duration::from_secs(300),
            max_pending_deliveries: 1_000_000,
            id_format: IdFormat::Hex,
            first_message_id: 1,
            max_command_length: sairex_pdu::DEFAULT_MAX_COMMAND_LENGTH,
            connection_queue: 4096,
            max_connections: 1024,
            max_received: 1_000_000,
            bind_timeout: Duration::from_secs(60),
            unbind_timeout: Duration::from_secs(2),
            seed: None,
        }
    }
}

impl SimConfig {
    /// Checks every value and reports the first one that is out of range.
    ///
    /// # Errors
    /// [`SimError::InvalidConfig`] naming the field.
    pub fn validate(&self) -> Result<(), SimError> {
        let invalid =
            |field: &'static str, problem: String| Err(SimError::InvalidConfig { field, problem });
        if self.system_id.is_empty() || self.system_id.len() > 15 {
            return invalid("system_id", "must be 1 to 15 characters".into());
        }
        if self.password.len() > 8 {
            return invalid("password", "must be at most 8 characters".into());
        }
        if self.smsc_system_id.len() > 15 {
            return invalid("smsc_system_id", "must be at most 15 characters".into());
        }
        for (field, s) in [
            ("system_id", &self.system_id),
            ("password", &self.password),
            ("smsc_system_id", &self.smsc_system_id),
        ] {
            if s.contains('\0') {
                return invalid(field, "must not contain NUL".into());
            }
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return invalid(
                "error_rate",
                format!("{} is not between 0 and 1", self.error_rate),
            );
        }
        if self.throttle_tps == Some(0) {
            return invalid("throttle_tps", "must be at least 1 (or none)".into());
        }
        if self.receipts != ReceiptPolicy::Off && self.receipt_mix.total() == 0 {
            return invalid("receipt_mix", "all weights are zero".into());
        }
        if self.delivery_max_attempts == 0 {
            return invalid("delivery_max_attempts", "must be at least 1".into());
        }
        if self.connection_queue == 0 || self.max_connections == 0 {
            return invalid(
                "connection_queue / max_connections",
                "must be at least 1".into(),
            );
        }
        if self.first_message_id == 0 {
            return invalid("first_message_id", "must be at least 1".into());
        }
        if self.bad_system_id_status.is_ok() {
            return invalid("bad_system_id_status", "must be an error status".into());
        }
        if self.error_status.is_ok() && self.error_rate > 0.0 {
            return invalid("error_status", "must be an error status".into());
        }
        Ok(())
    }
}

/// Which TLS certificate and key to serve with, as PEM.
#[derive(Clone)]
pub enum TlsConfig {
    /// PEM files on disk: the certificate chain (leaf first) and the private key (PKCS#8,
    /// PKCS#1 or SEC1).
    PemFiles {
        /// The certificate chain file.
        cert: PathBuf,
        /// The private key file.
        key: PathBuf,
    },
    /// PEM text already in memory (tests generate it with rcgen).
    Pem {
        /// The certificate chain, leaf first.
        cert: Vec<u8>,
        /// The private key.
        key: Vec<u8>,
    },
}

impl fmt::Debug for TlsConfig {
    // The key is a secret: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PemFiles { cert, key } => f
                .debug_struct("PemFiles")
                .field("cert", cert)
                .field("key", key)
                .finish(),
            Self::Pem { cert, .. } => f
                .debug_struct("Pem")
                .field("cert_len", &cert.len())
                .field("key", &"***")
                .finish(),
        }
    }
}

/// Which submits get a delivery receipt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReceiptPolicy {
    /// None at all.
    Off,
    /// Those whose `registered_delivery & 0x03` is not 0 (SMPP 3.4 §5.2.17). The default.
    #[default]
    Requested,
    /// Every accepted submit, whatever it asked for.
    Always,
}

impl FromStr for ReceiptPolicy {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "off" | "none" | "never" => Ok(Self::Off),
            "requested" => Ok(Self::Requested),
            "always" => Ok(Self::Always),
            _ => Err(ParseValueError::new(
                "receipt policy",
                s,
                "off, requested, always",
            )),
        }
    }
}

/// How message ids are written. Either way they are unique within a run: a counter starting at
/// [`SimConfig::first_message_id`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdFormat {
    /// Lower-case hexadecimal, at least 8 digits (`0000002a`). The default.
    #[default]
    Hex,
    /// Decimal (`42`).
    Decimal,
}

impl IdFormat {
    /// Writes the `n`th id.
    pub fn format(self, n: u64) -> String {
        match self {
            Self::Hex => format!("{n:08x}"),
            Self::Decimal => n.to_string(),
        }
    }
}

impl FromStr for IdFormat {
    type Err = ParseValueError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "hex" => Ok(Self::Hex),
            "decimal" | "dec" => Ok(Self::Decimal),
            _ => Err(ParseValueError::new("id format", s, "hex, decimal")),
        }
    }
}

/// A receipt's final state (SMPP 3.4 Appendix B `stat:` and §5.3.2.35 `message_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FinalState {
    /// `DELIVRD`, message_state 2 (DELIVERED).
    Delivered,
    /// `UNDELIV`, message_state 5 (UNDELIVERABLE).
    Undeliverable,
    /// `EXPIRED`, message_state 3.
    Expired,
    /// `REJECTD`, message_state 8 (REJECTED).
    Rejected,
}

impl FinalState {
    /// The `stat:` word of the receipt text.
    pub const fn stat(self) -> &'static str {
        match self {
            Self::Delivered => "DELIVRD",
            Self::Undeliverable => "UNDELIV",
            Self::Expired => "EXPIRED",
            Self::Rejected => "REJECTD",
        }
    }

    /// The `message_state` TLV value.
    pub const fn message_state(self) -> u8 {
        match self {
            Self::Delivered => 2,
            Self::Undeliverable => 5,
            Self::Expired => 3,
            Self::Rejected => 8,
        }
    }

    /// The `err:` code of the receipt text, also sent as the GSM `network_error_code`.
    pub const fn error_code(self) -> u16 {
        match self {
            Self::Delivered => 0,
            Self::Undeliverable => 1,
            Self::Expired => 2,
            Self::Rejected => 3,
        }
    }
}

/// Relative weights of the receipts' final states: `delivered=90, undeliverable=10` sends
/// `UNDELIV` for about one receipt in ten. Default: all `DELIVRD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptMix {
    /// Weight of `DELIVRD`.
    pub delivered: u32,
    /// Weight of `UNDELIV`.
    pub undeliverable: u32,
    /// Weight of `EXPIRED`.
    pub expired: u32,
    /// Weight of `REJECTD`.
    pub rejected: u32,
}

impl Default for ReceiptMix {
    fn default() -> Self {
        Self::only(FinalState::Delivered)
    }
}

impl ReceiptMix {
    /// Every receipt in one state.
    pub const fn only(state: FinalState) -> Self {
        let mut mix = Self {
            delivered: 0,
            undeliverable: 0,
            expired: 0,
            rejected: 0,
        };
        match state {
            FinalState::Delivered => mix.delivered = 1,
            FinalState::Undeliverable => mix.undeliverable = 1,
            FinalState::Expired => mix.expired = 1,
            FinalState::Rejected => mix.rejected = 1,
        }
        mix
    }

    /// Sum of the weights.
    pub fn total(&self) -> u64 {
        [
            self.delivered,
            self.undeliverable,
            self.expired,
            self.rejected,
        ]
        .iter()
        .map(|&w| u64::from(w))
        .sum()
    }

    /// The state for a roll in `0..total()`; `Delivered` if the roll is out of range.
    pub fn pick(&self, roll: u64) -> FinalState {
        let mut left = roll;
        for (weight, state) in [
            (self.delivered, FinalState::Delivered),
            (self.undeliverable, FinalState::Undeliverable),
            (self.expired, FinalState::Expired),
            (self.rejected, FinalState::Rejected),
        ] {
            let weight = u64::from(weight);
            if left < weight {
                return state;
            }
            left -= weight;
        }
        FinalState::Delivered
    }
}

impl FromStr for ReceiptMix {
    type Err = ParseValueError;

    /// `delivrd=90,undeliv=5,expired=3,rejectd=2`; states left out weigh 0. The spec's
    /// `stat:` words and the long names (`delivered`, `undeliverable`, `rejected`) both work.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = "a list like delivrd=90,undeliv=5,expired=3,rejectd=2";
        let mut mix = Self {
            delivered: 0,
            undeliverable: 0,
            expired: 0,
            rejected: 0,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part
                .split_once(['=', ':'])
                .ok_or_else(|| ParseValueError::new("receipt mix", s, expected))?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| ParseValueError::new("receipt mix", s, expected))?;
            let slot = match name.trim().to_ascii_lowercase().as_str() {
                "delivrd" | "delivered" => &mut mix.delivered,
                "undeliv" | "undeliverable" => &mut mix.undeliverable,
                "expired" => &mut mix.expired,
                "rejectd" | "rejected" => &mut mix.rejected,
                _ => return Err(ParseValueError::new("receipt mix", s, expected)),
            };
            *slot = weight;
        }
        if mix.total() == 0 {
            return Err(ParseValueError::new("receipt mix", s, expected));
        }
        Ok(mix)
    }
}

/// Reads a `command_status` by its SMPP 3.4 name (`ESME_RSYSERR`, `rsyserr`, case-insensitive,
/// the `ESME_` prefix optional) or its number (`8`, `0x08`).
///
/// # Errors
/// [`ParseValueError`] when it is neither.
pub fn parse_command_status(s: &str) -> Result<CommandStatus, ParseValueError> {
    let t = s.trim();
    let number = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => t.parse::<u32>().ok(),
    };
    if let Some(n) = number {
        return Ok(CommandStatus(n));
    }
    let upper = t.to_ascii_uppercase();
    let wanted = if upper.starts_with("ESME_") {
        upper
    } else {
        format!("ESME_{upper}")
    };
    CommandStatus::ALL
        .iter()
        .copied()
        .find(|st| st.name() == Some(wanted.as_str()))
        .ok_or_else(|| {
            ParseValueError::new("command status", s, "a name like ESME_RSYSERR or a number")
        })
}

/// A knob's text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{given}`: expected {expected}")]
pub struct ParseValueError {
    what: &'static str,
    given: String,
    expected: &'static str,
}

impl ParseValueError {
    fn new(what: &'static str, given: &str, expected: &'static str) -> Self {
        Self {
            what,
            given: given.to_owned(),
            expected,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_mix_parses_and_picks_by_weight() {
        let mix: ReceiptMix = "delivrd=2, undeliv=1,rejected=1".parse().unwrap();
        assert_eq!(mix.total(), 4);
        assert_eq!(mix.pick(0), FinalState::Delivered);
        assert_eq!(mix.pick(1), FinalState::Delivered);
        assert_eq!(mix.pick(2), FinalState::Undeliverable);
        assert_eq!(mix.pick(3), FinalState::Rejected);
        assert!("delivrd=0".parse::<ReceiptMix>().is_err());
        assert!("sent=1".parse::<ReceiptMix>().is_err());
        assert!("delivrd".parse::<ReceiptMix>().is_err());
    }

    #[test]
    fn command_status_parses_names_and_numbers() {
        assert_eq!(
            parse_command_status("ESME_RSYSERR"),
            Ok(CommandStatus::ESME_RSYSERR)
        );
        assert_eq!(
            parse_command_status("rthrottled"),
            Ok(CommandStatus::ESME_RTHROTTLED)
        );
        assert_eq!(parse_command_status("0x58"), Ok(CommandStatus(0x58)));
        assert_eq!(parse_command_status("8"), Ok(CommandStatus(8)));
        assert!(parse_command_status("nope").is_err());
    }

    #[test]
    fn ids_are_formatted_as_configured() {
        assert_eq!(IdFormat::Hex.format(42), "0000002a");
        assert_eq!(IdFormat::Decimal.format(42), "42");
        assert_eq!("decimal".parse(), Ok(IdFormat::Decimal));
    }

    #[test]
    fn validation_names_the_bad_field() {
        let bad = SimConfig {
            error_rate: 1.5,
            ..SimConfig::default()
        };
        match bad.validate() {
            Err(SimError::InvalidConfig { field, .. }) => assert_eq!(field, "error_rate"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(SimConfig::default().validate().is_ok());
    }
}
