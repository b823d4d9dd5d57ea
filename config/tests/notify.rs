//! `notify_ready` / `notify_stopping` against a real datagram socket standing in for systemd.
//!
//! `NOTIFY_SOCKET` is read from the process environment, which tests must not change: the
//! test runs this test binary again as a child with `NOTIFY_SOCKET` set on the child only.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

/// Set on the child run, which then sends the notifications.
const CHILD_MARK: &str = "SAIREX_NOTIFY_TEST_CHILD";

#[test]
fn notify_child() {
    // The child sends to the test's socket. In the parent's own run there is normally no
    // socket, so the calls are no-ops that succeed; under a real service manager the parent
    // skips them rather than notify it.
    if std::env::var_os(CHILD_MARK).is_some() || std::env::var_os("NOTIFY_SOCKET").is_none() {
        sairex_config::notify_ready().unwrap();
        sairex_config::notify_stopping().unwrap();
    }
}

#[test]
fn ready_and_stopping_reach_the_notify_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();

    let status = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "notify_child", "--test-threads=1"])
        .env(CHILD_MARK, "1")
        .env("NOTIFY_SOCKET", &socket_path)
        .status()
        .unwrap();
    assert!(status.success());

    let mut buffer = [0u8; 256];
    let n = socket.recv(&mut buffer).unwrap();
    assert_eq!(&buffer[..n], b"READY=1\n");
    let n = socket.recv(&mut buffer).unwrap();
    assert_eq!(&buffer[..n], b"STOPPING=1\n");
}
