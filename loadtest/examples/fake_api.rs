//! A trivial stand-in for the gateway's API (axum on loopback: 202 with a messageId, DELIVERED on
//! the event stream), to measure the load generator's own ceiling:
//!
//! ```sh
//! cargo run --release -p sairex-loadtest --example fake_api -- [--port 18080] [--threads 1]
//! cargo run --release -- loadtest http --target http://127.0.0.1:18080 --key sk_live_test \
//!     --max --count 300000 --concurrency 64
//! ```
//!
//! The key it accepts is `sk_live_test`. It runs until Ctrl-C.

#[path = "../tests/support/fake_api.rs"]
mod fake_api;

use std::time::Duration;

use fake_api::{FakeApi, FakeConfig};

fn main() {
    let mut port = 18080u16;
    let mut threads = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        match (flag.as_str(), value.parse::<usize>()) {
            ("--port", Ok(v)) => port = u16::try_from(v).unwrap_or(port),
            ("--threads", Ok(v)) => threads = v.max(1),
            _ => {
                eprintln!("usage: fake_api [--port N] [--threads N]");
                std::process::exit(64);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async move {
        let api = FakeApi::start_on(
            port,
            FakeConfig {
                delivery_delay: Duration::ZERO,
                record: false,
                ..FakeConfig::default()
            },
        )
        .await;
        eprintln!(
            "fake API on {} (key sk_live_test); Ctrl-C stops it",
            api.url()
        );
        let _ = tokio::signal::ctrl_c().await;
        eprintln!("{} requests", api.requests());
    });
}
