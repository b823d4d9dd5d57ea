//! Helpers shared by the engine's integration tests.
// Each test binary uses a different subset of these.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use sairex_engine::backoff::ExponentialBackoff;
use sairex_engine::session::SessionConfig;

/// `n` milliseconds.
pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A session to the simulator at `addr` with its default credentials, quick reconnects and a
/// 2 s response timeout.
pub fn sim_session(addr: SocketAddr) -> SessionConfig {
    SessionConfig {
        system_id: "sairex".try_into().unwrap(),
        password: "secret".try_into().unwrap(),
        reconnect: ExponentialBackoff::try_new(ms(50), ms(200)).unwrap(),
        response_timeout: Duration::from_secs(2),
        ..SessionConfig::new(addr.ip().to_string(), addr.port())
    }
}
