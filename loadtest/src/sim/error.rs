//! [`SimError`]: what starting or driving the simulator can fail with. Faults of a single
//! connection (a bad PDU, a dropped socket) are not errors of the simulator: they are answered on
//! the wire, counted in [`SimStats`](crate::sim::SimStats) and logged.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Errors of [`SimServer::start`](crate::sim::SimServer::start) and
/// [`SimHandle::send_mo`](crate::sim::SimHandle::send_mo).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// A [`SimConfig`](crate::sim::SimConfig) value is out of range (from `start`, before
    /// anything is bound).
    #[error("invalid simulator setting `{field}`: {problem}")]
    InvalidConfig {
        /// The field of `SimConfig`.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The listening socket could not be bound (from `start`): address in use, no permission.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// A TLS certificate or key file could not be read (from `start`). Contrast
    /// [`SimError::Tls`], for PEM that was read but is not usable.
    #[error("cannot read {path}: {source}")]
    ReadPem {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The TLS certificate or key is unusable (from `start`): no certificate, no key, a key that
    /// does not match, or PEM that does not parse.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// `send_mo` found no receiver or transceiver bind to deliver to.
    #[error("no receiver or transceiver is bound")]
    NoReceiver,
    /// `send_mo` was given an address longer than 20 characters or one containing NUL.
    #[error("invalid address `{0}`")]
    InvalidAddress(String),
    /// `send_mo` found the simulator shutting down.
    #[error("the simulator is shutting down")]
    ShuttingDown,
    /// `send_mo` found the pending-delivery limit reached.
    #[error("too many receipts and MOs pending")]
    TooManyPending,
    /// `send_mo_part` was given a part number of 0 or above the total, or a total below 2.
    #[error("invalid concatenated part {seq} of {total}")]
    InvalidPart {
        /// The part number given.
        seq: u8,
        /// The total given.
        total: u8,
    },
}
