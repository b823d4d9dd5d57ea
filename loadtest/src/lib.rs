//! Load-test harness for Sairex SMS. For now: an SMSC simulator that tests, load tests and
//! people run the gateway against, in-process or as `sairex smsc-sim`.
//!
//! # Layout
//! - [`sim`]: the SMSC simulator ([`sim::SimServer`], [`sim::SimHandle`], [`sim::SimConfig`],
//!   [`sim::SimStats`]).
#![deny(missing_docs)]

pub mod sim;
