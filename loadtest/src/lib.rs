//! Load-test harness for Sairex SMS: an SMSC simulator that tests, load tests and people run
//! the gateway against, in-process or as `sairex smsc-sim`, and the load generators of
//! `sairex loadtest`.
//!
//! # Layout
//! - [`fakes`]: fake Twilio, Vonage and Veevo Tech servers ([`fakes::FakeServer`]) that accept
//!   sends and call back with signed receipts and inbound messages.
//! - [`load`]: the HTTP load generator, and the statistics, schedules, traffic mix and reports
//!   every mode of `sairex loadtest` uses.
//! - [`sim`]: the SMSC simulator ([`sim::SimServer`], [`sim::SimHandle`], [`sim::SimConfig`],
//!   [`sim::SimStats`]).
#![deny(missing_docs)]

pub mod fakes;
pub mod load;
pub mod sim;
