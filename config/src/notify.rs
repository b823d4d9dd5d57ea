//! systemd readiness notification (`Type=notify`): `READY=1` once serving, `STOPPING=1` when
//! the drain starts. Both are no-ops when `NOTIFY_SOCKET` is unset (not run by systemd).

use std::io;

use sd_notify::NotifyState;

/// Tells systemd the service is ready (`READY=1`): call it once the store is open, the engine
/// started and the listeners bound, so `systemctl start` returns only then.
///
/// # Errors
/// The socket error when `NOTIFY_SOCKET` is set but cannot be written to; the caller logs it
/// and carries on (systemd will time the start out and say so).
pub fn notify_ready() -> io::Result<()> {
    sd_notify::notify(&[NotifyState::Ready])
}

/// Tells systemd the service is stopping (`STOPPING=1`): call it when the graceful drain
/// starts.
///
/// # Errors
/// As [`notify_ready`].
pub fn notify_stopping() -> io::Result<()> {
    sd_notify::notify(&[NotifyState::Stopping])
}
