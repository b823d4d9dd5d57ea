//! Load generators and their arithmetic: `sairex loadtest http` drives a gateway over its REST
//! API like a client population would; the `smpp` and `store` modes (in the `sairex` binary,
//! which may link the engine) share the statistics and reports.
//!
//! # Layout
//! - [`stats`]: latency recording ([`stats::LatencyRecorder`], hdrhistogram in µs), rates,
//!   error counts.
//! - [`schedule`]: open-loop (fixed arrival rate, free of coordinated omission) and closed-loop
//!   pacing, and when a run stops.
//! - [`mix`]: the priority mix, segment counts and their bodies, destination numbers.
//! - [`sse`]: a Server-Sent Events parser for the gateway's event stream.
//! - [`track`]: matches accepted messages with their final status (end-to-end latency).
//! - [`http`]: the HTTP generator ([`http::run`]).
//! - [`report`]: the reports, as JSON and as text, and the live progress line.

pub mod http;
pub mod mix;
pub mod report;
pub mod schedule;
pub mod sse;
pub mod stats;
pub mod track;

/// Why a load test could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// A setting is wrong.
    #[error("{flag}: {problem}")]
    Invalid {
        /// The option, as on the command line.
        flag: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The target could not be reached at all.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// host:port.
        target: String,
        /// The failure.
        source: std::io::Error,
    },
    /// The event stream (needed for end-to-end latency) could not be opened.
    #[error("the event stream {url}: {problem}")]
    Events {
        /// Its URL.
        url: String,
        /// What went wrong.
        problem: String,
    },
}

impl LoadError {
    /// A bad setting.
    pub fn invalid(flag: &'static str, problem: impl Into<String>) -> Self {
        Self::Invalid {
            flag,
            problem: problem.into(),
        }
    }
}
